/**
 * Session containers never outlive the extension's server in a real VS Code (code-server):
 * "Stop Server" removes them, and when the extension host dies by SIGKILL (no deactivate runs)
 * the Docker engine removes them by itself.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Page } from 'playwright-core';
import { type DiscoveredServer } from '../../src/extension/discovery';
import { commandLine, descendants } from '../helpers/procs';
import { runCommand, waitFor, type RunningCodeServer } from './harness';
import { openExtensionWindow, type ExtensionWindow } from './window';

const TEST_IMAGE = 'mcpw-test-busybox:1';

describe('VS Code extension: session containers end with the server', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let policyDir: string;
  let workspace: string;
  let codeServer: RunningCodeServer;
  let page: Page;
  const docker = new Docker();

  const discovered = (): Promise<DiscoveredServer | null> => win.discovered();
  /** Session containers whose workspace mount is this run's folder. */
  const containers = async (): Promise<string[]> =>
    (await docker.listContainers({ all: true, filters: { label: ['dev.mcp-workspace.session'] } }))
      .filter((c) => c.Mounts.some((m) => m.Source === workspace))
      .map((c) => c.Id);
  /** Starts a long command in a session container through the server's REST API. */
  const startCommand = async (server: DiscoveredServer): Promise<void> => {
    const token = (await readFile(server.tokenFile, 'utf8')).trim();
    const res = await fetch(`${server.url}/execute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'sleep 600', background: true }),
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await containers()).length, 1, 'one session container runs the command');
  };
  const allGone = (what: string) =>
    waitFor(async () => ((await containers()).length === 0 ? true : null), 60_000, { what, page });

  before(async function () {
    this.timeout(900_000);
    policyDir = await mkdtemp(join(tmpdir(), 'mcpw-e2e-policy-'));
    const policyFile = join(policyDir, 'policy.txt');
    await writeFile(policyFile, 'allow read(**)\nallow exec(*)\n');
    win = await openExtensionWindow({
      name: 'containers',
      settings: {
        'mcpWorkspace.defaultImage': TEST_IMAGE,
        'mcpWorkspace.policyFile': policyFile,
        ...(process.env.DOCKER_HOST ? { 'mcpWorkspace.dockerHost': process.env.DOCKER_HOST } : {}),
      },
      populate: (folder) => writeFile(join(folder, 'README.md'), '# project\n'),
    });
    ({ workspace, codeServer, page } = win);
  });

  after(async () => {
    await win?.close();
    for (const id of await containers().catch(() => [])) {
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  it('"Stop Server" removes the session containers', async () => {
    const server = (await waitFor(() => discovered(), 60_000, {
      what: 'the server',
      page,
    })) as DiscoveredServer;
    await startCommand(server);
    await runCommand(page, 'MCP Workspace: Stop Server');
    await allGone('the session container to be removed after Stop Server');
  });

  it('a SIGKILLed extension host leaves no container: the engine removes it', async () => {
    await runCommand(page, 'MCP Workspace: Start Server');
    const server = (await waitFor(() => discovered(), 60_000, {
      what: 'the restarted server',
      page,
    })) as DiscoveredServer;
    await startCommand(server);
    const [id] = await containers();
    // VS Code restarts a crashed extension host, and the new server would remove the container as
    // an orphan; the engine's events tell the two apart: left alone, the runner exits 0 when its
    // stdin closes, where a forced removal kills it (137).
    const events = (await docker.getEvents({
      filters: { type: ['container'], container: [id!] },
    })) as NodeJS.ReadableStream & { destroy(): void };
    const died: string[] = [];
    events.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        const event = JSON.parse(line) as { Action: string; Actor: { Attributes: Record<string, string> } };
        if (event.Action === 'die') died.push(event.Actor.Attributes.exitCode ?? '');
      }
    });
    const hosts = descendants(codeServer.pid).filter((pid) => commandLine(pid)?.includes('extensionHost'));
    assert.ok(hosts.length > 0, 'the extension host process is found');
    for (const pid of hosts) process.kill(pid, 'SIGKILL');
    try {
      await allGone('the engine to remove the container of the killed extension host');
    } finally {
      events.destroy();
    }
    assert.deepEqual(died, ['0'], 'the runner ended by itself when the connection closed');
  });
});
