/**
 * Session containers never outlive the extension's server in a real VS Code (code-server):
 * "Stop Server" removes them, and when the extension host dies by SIGKILL (no deactivate runs)
 * the Docker engine removes them by itself.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Page } from 'playwright-core';
import { discoveryDir, readDiscoveryFiles, type DiscoveredServer } from '../../src/extension/discovery';
import {
  descendants,
  launchBrowser,
  openWorkbench,
  packageVsix,
  provisionE2E,
  runCommand,
  startCodeServer,
  waitFor,
  waitForActivation,
  type BrowserSession,
  type RunningCodeServer,
} from './harness';

const EXTENSION_ID = 'mcp-workspace.mcp-workspace';
const TEST_IMAGE = 'mcpw-test-busybox:1';

describe('VS Code extension: session containers end with the server', function () {
  this.timeout(180_000);
  let root: string;
  let workspace: string;
  let stateHome: string;
  let codeServer: RunningCodeServer;
  let browser: BrowserSession;
  let page: Page;
  const docker = new Docker();

  /** The discovery entry of the running server, when its port differs from `previousUrl`. */
  const discovered = async (previousUrl?: string): Promise<DiscoveredServer | null> => {
    const server = (await readDiscoveryFiles(discoveryDir({ XDG_STATE_HOME: stateHome })))[0]?.servers[0];
    return server && server.url !== previousUrl ? server : null;
  };
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
    await provisionE2E();
    root = await mkdtemp(join(tmpdir(), 'mcpw-e2e-containers-'));
    workspace = join(root, 'project');
    stateHome = join(root, 'state-home');
    await mkdir(workspace);
    await mkdir(stateHome);
    await writeFile(join(workspace, 'README.md'), '# project\n');
    const policyFile = join(root, 'policy.txt');
    await writeFile(policyFile, 'allow read(**)\nallow exec(*)\n');
    const vsix = packageVsix(join(root, 'mcp-workspace.vsix'));
    codeServer = await startCodeServer({
      vsix,
      workspace,
      name: 'containers',
      env: { XDG_STATE_HOME: stateHome },
      settings: {
        'mcpWorkspace.defaultImage': TEST_IMAGE,
        'mcpWorkspace.policyFile': policyFile,
        ...(process.env.DOCKER_HOST ? { 'mcpWorkspace.dockerHost': process.env.DOCKER_HOST } : {}),
      },
    });
    browser = await launchBrowser({ viewport: { width: 1400, height: 900 } });
    page = browser.page;
    await openWorkbench(page, codeServer.url, workspace);
    await waitForActivation(codeServer, EXTENSION_ID, 60_000, page);
  });

  after(async () => {
    await browser?.close();
    await codeServer?.stop();
    for (const id of await containers().catch(() => [])) {
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    if (root) await rm(root, { recursive: true, force: true });
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
    const hosts = descendants(codeServer.pid).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('extensionHost');
      } catch {
        return false;
      }
    });
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
