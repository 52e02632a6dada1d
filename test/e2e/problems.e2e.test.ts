/**
 * The Problems panel of a real VS Code (code-server + Chromium) shows what an agent's typed-tool
 * run found, under the tool's name, and a clean run of that tool clears it. The tool is a manifest
 * in the workspace: busybox `cat` of a report file (no shell), read by a regex problem matcher.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Page } from 'playwright-core';
import { callTool, connectMcp } from '../helpers/clients';
import { runCommand, screenshot, waitFor } from './harness';
import { openExtensionWindow, ownedServer, type ExtensionWindow } from './window';

const TEST_IMAGE = 'mcpw-test-busybox:1';

/** A report file in the workspace, printed by busybox cat and read as `file:line:col: severity code: message`. */
const NOTES_TOOL = {
  name: 'notes',
  title: 'Notes',
  description: 'Prints a report file; its lines are problems.',
  inputSchema: {
    type: 'object',
    properties: { file: { type: 'string', format: 'workspace-path' } },
    required: ['file'],
  },
  argv: ['cat', '--', '{file}'],
  parser: {
    type: 'regex',
    pattern: '^([^:]+):(\\d+):(\\d+): (error|warning) ([a-z-]+): (.+)$',
    stream: 'stdout',
    file: 1,
    line: 2,
    column: 3,
    severity: 4,
    code: 5,
    message: 6,
  },
};

const MESSAGE = 'greeting is never used';
const OTHER_MESSAGE = 'f is never called';

/** Every file under `dir` (recursively), for finding the output channel's log. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('VS Code extension: typed-tool diagnostics in the Problems panel', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let page: Page;
  let policyDir: string;
  let workspace: string;
  let mcp: Awaited<ReturnType<typeof connectMcp>>;
  const docker = new Docker();

  /** The Problems panel's rows as the user reads them (each row's text, whitespace folded). */
  const problemRows = async (): Promise<string[]> =>
    (await page.locator('.markers-panel .monaco-list-row').allInnerTexts()).map((t) =>
      t.replace(/\s+/g, ' ').trim(),
    );

  before(async function () {
    this.timeout(900_000);
    policyDir = await mkdtemp(join(tmpdir(), 'mcpw-e2e-policy-'));
    const policyFile = join(policyDir, 'policy.txt');
    await writeFile(
      policyFile,
      'allow read(**)\nallow write(report.txt)\nallow tool(notes)\nallow tool(other_notes)\n',
    );
    win = await openExtensionWindow({
      name: 'problems',
      settings: {
        'mcpWorkspace.defaultImage': TEST_IMAGE,
        'mcpWorkspace.policyFile': policyFile,
        ...(process.env.DOCKER_HOST ? { 'mcpWorkspace.dockerHost': process.env.DOCKER_HOST } : {}),
      },
      populate: async (folder) => {
        await mkdir(join(folder, 'src'));
        await writeFile(join(folder, 'src', 'app.js'), 'export function f() {\n  const greeting = 1;\n}\n');
        await writeFile(join(folder, 'report.txt'), `src/app.js:2:9: warning no-unused: ${MESSAGE}\n`);
        await mkdir(join(folder, '.mcp-workspace', 'tools'), { recursive: true });
        await writeFile(join(folder, 'other.txt'), `src/app.js:1:17: warning unused: ${OTHER_MESSAGE}\n`);
        await mkdir(join(folder, '.mcp-workspace', 'tools'), { recursive: true });
        await writeFile(join(folder, '.mcp-workspace', 'tools', 'notes.json'), JSON.stringify(NOTES_TOOL));
        await writeFile(
          join(folder, '.mcp-workspace', 'tools', 'other_notes.json'),
          JSON.stringify({ ...NOTES_TOOL, name: 'other_notes' }),
        );
      },
    });
    ({ page, workspace } = win);
    const { server, ownerToken: owner } = await ownedServer(win, 'the server');
    const minted = await fetch(`${server.url}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fixer', role: 'agent' }),
    });
    const body = await minted.text();
    assert.equal(minted.status, 200, body);
    const { token } = JSON.parse(body) as { token: string };
    mcp = await connectMcp(server.mcp, token);
  });

  after(async () => {
    await mcp?.close();
    await win?.close();
    const left = await docker
      .listContainers({ all: true, filters: { label: ['dev.mcp-workspace.session'] } })
      .catch(() => []);
    for (const c of left.filter((c) => c.Mounts.some((m) => m.Source === workspace))) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  it("shows an agent's tool run under the tool's name, and its next clean run clears it", async () => {
    const found = await callTool(mcp.client, 'notes', { file: 'report.txt' });
    assert.equal(found.exitCode, 0, JSON.stringify(found));
    assert.deepEqual(
      found.diagnostics.map(
        (d: { path: string; line: number; column: number }) => `${d.path}:${d.line}:${d.column}`,
      ),
      ['src/app.js:2:9'],
    );
    await runCommand(page, 'View: Focus Problems (Errors, Warnings, Infos)');
    const rows = await waitFor(
      async () => {
        const all = await problemRows();
        return all.some((r) => r.includes(MESSAGE)) ? all : null;
      },
      60_000,
      { what: 'the tool diagnostic in the Problems panel', page },
    );
    await screenshot(page, 'problems-panel-tool-diagnostic');
    const marker = rows.find((r) => r.includes(MESSAGE))!;
    // The panel shows `message  source(code)  [Ln, Col]`; the brackets are drawn by CSS, not text.
    assert.match(marker, /\bnotes\W*no-unused\b/, `the row names the tool and the code: ${marker}`);
    assert.match(marker, /\[Ln 2, Col 9\]/, `the row gives the position: ${marker}`);
    assert.ok(
      rows.some((r) => r.startsWith('app.js')),
      `the file is the group: ${rows.join(' | ')}`,
    );
    const icon = page
      .locator('.markers-panel .monaco-list-row', { hasText: MESSAGE })
      .locator('.codicon-warning');
    assert.equal(await icon.count(), 1, 'shown as a warning');

    // The agent fixes the report and runs the tool again: a clean run clears the tool's entries.
    const wrote = await callTool(mcp.client, 'write_file', { path: 'report.txt', content: 'all good\n' });
    assert.equal(wrote.error, undefined, JSON.stringify(wrote));
    const clean = await callTool(mcp.client, 'notes', { file: 'report.txt' });
    assert.deepEqual(clean.diagnostics, []);
    await waitFor(async () => !(await problemRows()).some((r) => r.includes(MESSAGE)), 60_000, {
      what: 'the Problems panel to drop the tool diagnostic after a clean run',
      page,
    });

    // The output channel summarises both runs.
    const logs = (await filesUnder(join(win.codeServer.userDataDir, 'logs'))).filter((f) =>
      f.endsWith('MCP Workspace.log'),
    );
    const text = (await Promise.all(logs.map((f) => readFile(f, 'utf8')))).join('\n');
    assert.match(text, /tool notes run by agent fixer: exit code 0; 0 errors, 1 warning, 0 info in 1 file/);
    assert.match(text, /tool notes run by agent fixer: exit code 0; 0 errors, 0 warnings, 0 info in 0 files/);
  });

  it("keeps each tool's entries apart: a removed tool's go, then the rest go when the server stops", async () => {
    const wrote = await callTool(mcp.client, 'write_file', {
      path: 'report.txt',
      content: `src/app.js:1:1: error no-unused: ${MESSAGE}\n`,
    });
    assert.equal(wrote.error, undefined, JSON.stringify(wrote));
    const found = await callTool(mcp.client, 'notes', { file: 'report.txt' });
    assert.equal(found.diagnostics.length, 1, JSON.stringify(found));
    const other = await callTool(mcp.client, 'other_notes', { file: 'other.txt' });
    assert.equal(other.diagnostics.length, 1, JSON.stringify(other));
    const both = await waitFor(
      async () => {
        const rows = await problemRows();
        return rows.some((r) => r.includes(MESSAGE)) && rows.some((r) => r.includes(OTHER_MESSAGE))
          ? rows
          : null;
      },
      60_000,
      { what: 'the diagnostics of both tools in the Problems panel', page },
    );
    assert.match(
      both.find((r) => r.includes(OTHER_MESSAGE))!,
      /\bother_notes\W*unused\b/,
    );
    // The owner removes one tool's manifest: its entries go, the other tool's stay.
    await rm(join(workspace, '.mcp-workspace', 'tools', 'other_notes.json'));
    await waitFor(async () => !(await problemRows()).some((r) => r.includes(OTHER_MESSAGE)), 60_000, {
      what: 'the removed tool diagnostics to leave the Problems panel',
      page,
    });
    assert.ok(
      (await problemRows()).some((r) => r.includes(MESSAGE)),
      'the other tool keeps its entries',
    );
    await runCommand(page, 'MCP Workspace: Stop Server');
    await waitFor(async () => !(await problemRows()).some((r) => r.includes(MESSAGE)), 60_000, {
      what: 'the Problems panel to drop the tool diagnostics when the server stopped',
      page,
    });
  });
});
