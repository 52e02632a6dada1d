/**
 * The built VSIX in a real VS Code (code-server) driven by headless Chromium: the embedded server
 * starts with the stored token, VS Code itself lists and connects to it through the MCP provider,
 * an MCP client's write shows in the open editor and in the audit webview, unsaved edits are
 * protected, the status bar tells the truth, and Stop stops the server.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { AUDIT_FILE, verifyAuditLog, type AuditRecord } from '../../src/core/audit';
import { type DiscoveredServer } from '../../src/extension/discovery';
import { callTool, connectMcp } from '../helpers/clients';
import { runCommand, screenshot, waitFor, webviewFrame } from './harness';
import { openExtensionWindow, type ExtensionWindow } from './window';

describe('VS Code extension end to end (code-server + Chromium)', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let workspace: string;
  let page: Page;
  let server: DiscoveredServer;
  let token: string;

  const discovered = (): Promise<DiscoveredServer | null> => win.discovered();
  const statusText = async (): Promise<string> =>
    (await page.locator('.statusbar-item').filter({ hasText: /MCP/ }).allInnerTexts()).join(' | ');
  // "MCP: List Servers" answers with a quick pick of its own: run it without waiting for a close.
  const listServers = async (): Promise<void> => {
    await page.keyboard.press('F1');
    await page.locator('.quick-input-widget input').fill('>MCP: List Servers');
    await page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: /MCP: List Servers/ })
      .first()
      .click();
  };
  const editorText = async (): Promise<string> =>
    (await page.locator('.monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');

  before(async function () {
    this.timeout(900_000);
    win = await openExtensionWindow({
      name: 'extension',
      // Live editing off: this suite proves the write guard of editors that are not bound (see
      // collab.e2e.test.ts for bound editors).
      settings: {
        'chat.mcp.enabled': true,
        'chat.mcp.autostart': 'never',
        'mcpWorkspace.liveEditing': false,
      },
      populate: async (folder) => {
        await writeFile(join(folder, 'hello.txt'), 'hello from disk\n');
        await writeFile(join(folder, 'notes.md'), '# notes\n');
      },
    });
    ({ workspace, page } = win);
    server = (await waitFor(discovered, 60_000, {
      what: 'the discovery file of the window',
      page,
    })) as DiscoveredServer;
    token = (await readFile(server.tokenFile, 'utf8')).trim();
  });

  after(async () => {
    await win?.close();
  });

  it('starts the server bound to the folder; it answers with the stored token only', async () => {
    assert.equal(server.folder, workspace);
    const ok = await fetch(`${server.url}/files/hello.txt`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { content: string }).content, 'hello from disk\n');
    const refused = await fetch(`${server.url}/files/hello.txt`);
    assert.equal(refused.status, 401);
    await waitFor(async () => /MCP :\d+/.test(await statusText()), 30_000, {
      what: 'the status bar item',
      page,
    });
  });

  it('is listed by VS Code through the MCP provider, and VS Code connects to it', async () => {
    await listServers();
    const ours = page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: 'MCP Workspace (project)' });
    await waitFor(() => ours.first().isVisible(), 30_000, {
      what: 'our server in "MCP: List Servers"',
      page,
    });
    await screenshot(page, 'extension-mcp-list-servers');
    await ours.first().click();
    const start = page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: /Start Server/i })
      .first();
    await waitFor(() => start.isVisible(), 30_000, { what: 'the "Start Server" action of our server', page });
    await start.click();
    const sessions = await waitFor(
      async () => {
        const res = await fetch(`${server.url}/sessions`, { headers: { authorization: `Bearer ${token}` } });
        const body = (await res.json()) as { sessions: { agent: string; transport: string }[] };
        return body.sessions.find((s) => s.agent === 'vscode-agent' && s.transport === 'mcp') ? body : null;
      },
      60_000,
      { what: 'VS Code to open an MCP session with its agent token', page },
    );
    assert.ok(sessions);
    await page.keyboard.press('Escape');
    // VS Code validates every tool's schema and drops (with a warning) those it cannot use: its
    // output for our server must show the tools discovered and no such warning.
    await listServers();
    await page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: 'MCP Workspace (project)' })
      .first()
      .click();
    const showOutput = page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: /Show Output/i })
      .first();
    await waitFor(() => showOutput.isVisible(), 30_000, { what: 'the "Show Output" action', page });
    await showOutput.click();
    const output = await waitFor(
      async () => {
        const text = (await page.locator('.part.panel').first().innerText()).replace(/\s+/g, ' ');
        return /Discovered \d+ tools/.test(text) ? text : null;
      },
      30_000,
      { what: 'VS Code to discover our tools', page },
    );
    const count = Number(/Discovered (\d+) tools/.exec(output)?.[1]);
    assert.ok(count >= 10, `tools discovered: ${output}`);
    assert.doesNotMatch(output, /invalid/i, `VS Code rejected tool schemas: ${output}`);
    await screenshot(page, 'extension-mcp-output');
  });

  it("shows an agent's write in the open editor, and protects unsaved edits", async () => {
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill('hello.txt');
    await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: 'hello.txt' }).first().click();
    await waitFor(async () => (await editorText()).includes('hello from disk'), 30_000, {
      what: 'hello.txt open in an editor',
      page,
    });
    const agent = await fetch(`${server.url}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'e2e-agent', role: 'agent' }),
    });
    const agentToken = ((await agent.json()) as { token: string }).token;
    const mcp = await connectMcp(server.mcp, agentToken);
    try {
      const written = await callTool(mcp.client, 'write_file', {
        path: 'hello.txt',
        content: 'written by the agent\n',
      });
      assert.equal(written.bytes, 21);
      await waitFor(async () => (await editorText()).includes('written by the agent'), 30_000, {
        what: "the agent's write to show in the open editor",
        page,
      });
      await waitFor(async () => /session/.test(await statusText()), 10_000, {
        what: 'sessions in the status bar',
        page,
      });
      assert.match(await statusText(), /MCP :\d+ · \d+ sessions?/);

      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type('typed by the user');
      const refused = await callTool(mcp.client, 'write_file', { path: 'hello.txt', content: 'clobber\n' });
      assert.equal(refused.error?.code, 'REVISION_CONFLICT', JSON.stringify(refused));
      assert.match(await editorText(), /typed by the user/);
      assert.equal(await readFile(join(workspace, 'hello.txt'), 'utf8'), 'written by the agent\n');
    } finally {
      await mcp.close();
    }
  });

  it('lists the write live in the audit-log webview', async () => {
    await runCommand(page, 'MCP Workspace: Show Audit Log');
    const frame = webviewFrame(page);
    await waitFor(
      async () => {
        const text = await frame
          .locator('body')
          .innerText()
          .catch(() => '');
        return text.includes('write_file') && text.includes('hello.txt') && text.includes('e2e-agent');
      },
      30_000,
      { what: 'the write in the audit webview', page },
    );
    await screenshot(page, 'extension-audit-webview');
  });

  it('stops the server with "Stop Server"', async () => {
    await runCommand(page, 'MCP Workspace: Stop Server');
    await waitFor(async () => /MCP stopped/.test(await statusText()), 30_000, {
      what: 'the stopped status',
      page,
    });
    await assert.rejects(fetch(`${server.url}/health`));
    assert.equal(await discovered(), null, 'the discovery file is removed');
    // Start and stop are owner actions on the record: first and last lines of the audit log.
    const records = (await readFile(join(dirname(server.tokenFile), 'audit', AUDIT_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditRecord);
    const [first, last] = [records[0]!, records[records.length - 1]!];
    assert.equal(first.op, 'server_start');
    assert.equal(last.op, 'server_stop');
    for (const record of [first, last]) {
      assert.equal(record.agent, 'owner');
      assert.equal(record.transport, 'vscode');
    }
    assert.equal((last.params as { reason: string }).reason, 'stop command');
    assert.equal((await verifyAuditLog(join(dirname(server.tokenFile), 'audit'))).ok, true);
    await screenshot(page, 'extension-stopped');
  });
});
