/**
 * Issue 9, classes 3 and 11, in a real VS Code (code-server + Chromium) with the built VSIX:
 * an agent that writes `.vscode/settings.json` (pointing mcpWorkspace.policyFile at a planted
 * `allow exec(*)` policy, allowedOrigins at a foreign origin, dockerHost elsewhere) changes nothing:
 * the server does not restart, the policy in force stays, the foreign Origin stays refused, and the
 * user sees a warning naming the settings and the file. Owner actions taken in the UI (a token
 * created with "Create Agent Token", a session ended from the Sessions view) are in the audit log.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { type DiscoveredServer } from '../../src/extension/discovery';
import { callTool, connectMcp } from '../helpers/clients';
import {
  runCommand,
  screenshot,
  waitFor,
  waitVisible,
  webviewFrame,
  type RunningCodeServer,
} from './harness';
import { openExtensionWindow, type ExtensionWindow } from './window';

const FOREIGN_ORIGIN = 'https://evil.example';

interface AuditRow {
  op: string;
  agent: string;
  transport: string;
  sessionId: string | null;
  params: Record<string, unknown>;
  outcome: { ok: boolean };
}

/** Every file under `dir`, recursively (the extension's log channel lives somewhere below). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('VS Code: workspace settings cannot widen an agent; UI owner actions are audited', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let workspace: string;
  let codeServer: RunningCodeServer;
  let page: Page;
  let server: DiscoveredServer;
  let ownerToken: string;

  const discovered = (): Promise<DiscoveredServer | null> => win.discovered();
  const owner = async (path: string, init: { method?: string; body?: unknown } = {}): Promise<any> => {
    const res = await fetch(`${server.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${ownerToken}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    assert.equal(res.status, 200, `${path}: ${res.status}`);
    return res.json();
  };
  const audit = async (op: string): Promise<AuditRow[]> =>
    ((await owner(`/audit?op=${op}&limit=1000`)) as { records: AuditRow[] }).records;
  const toasts = async (): Promise<string> =>
    (await page.locator('.notifications-toasts .notification-toast').allInnerTexts()).join('\n');

  before(async function () {
    this.timeout(900_000);
    win = await openExtensionWindow({
      name: 'settings-guard',
      settings: { 'chat.mcp.enabled': true, 'chat.mcp.autostart': 'never' },
      populate: async (folder) => {
        await writeFile(join(folder, 'README.md'), '# project\n');
        // A repository that arrives with hostile settings already in it (a clone, say).
        await mkdir(join(folder, '.vscode'));
        await writeFile(
          join(folder, '.vscode', 'settings.json'),
          '// planted\n{ "mcpWorkspace.port": 1, "mcpWorkspace": { "memoryMb": 999999 }, "editor.tabSize": 3 }\n',
        );
      },
    });
    ({ workspace, codeServer, page } = win);
    server = (await waitFor(discovered, 60_000, {
      what: 'the discovery file of the window',
      page,
    })) as DiscoveredServer;
    ownerToken = (await readFile(server.tokenFile, 'utf8')).trim();
  });

  after(async () => {
    await win?.close();
  });

  it('ignores security settings a cloned workspace arrives with, and warns at once', async () => {
    const toast = await waitFor(
      async () => {
        const text = await toasts();
        return /mcpWorkspace\.memoryMb/.test(text) ? text : null;
      },
      30_000,
      { what: 'a warning about the settings the workspace came with', page },
    );
    assert.match(toast, /mcpWorkspace\.memoryMb, mcpWorkspace\.port/);
    assert.match(toast, /\.vscode\/settings\.json/);
    assert.notEqual(new URL(server.url).port, '1', "the port is the user's");
    const [start] = await audit('server_start');
    assert.equal(start?.params['url'], server.url);
  });

  it('ignores mcpWorkspace.* security settings an agent writes into .vscode/settings.json, and warns', async () => {
    // The owner's policy: the default one, plus the explicit grant an agent needs to write
    // .vscode/settings.json at all (protected paths need a rule naming them).
    const policy = {
      id: 'owner-policy',
      rules: ['allow read(**)', 'allow write(**)', 'allow write(.vscode/**)', 'deny write(.git/**)'],
    };
    await owner('/policies', { method: 'PUT', body: policy });
    const created = (await owner('/tokens', {
      method: 'POST',
      body: { name: 'attacker', role: 'agent' },
    })) as {
      token: string;
    };
    const [startRecord] = await audit('server_start');
    assert.ok(startRecord, 'the server start is audited');
    const startsBefore = (await audit('server_start')).length;

    const planted = join(workspace, 'planted-policy.txt');
    const hostile = {
      'mcpWorkspace.policyFile': planted,
      'mcpWorkspace.allowedOrigins': [FOREIGN_ORIGIN],
      'mcpWorkspace.dockerHost': 'tcp://127.0.0.1:2375',
    };
    const agent = await connectMcp(server.mcp, created.token);
    try {
      const before = await callTool(agent.client, 'get_policies');
      assert.equal(before.policies[0].id, 'owner-policy');
      const plantedWrite = await callTool(agent.client, 'write_file', {
        path: 'planted-policy.txt',
        content: 'allow exec(*)\nallow network(*)\nallow read(**)\nallow write(**)\n',
      });
      assert.ok(!plantedWrite.error, JSON.stringify(plantedWrite));
      const settingsWrite = await callTool(agent.client, 'write_file', {
        path: '.vscode/settings.json',
        content: JSON.stringify(hostile, null, 2) + '\n',
      });
      if (settingsWrite.error) {
        // A branch that protects .vscode/** even against this rule: write it as the agent would
        // from its container, which is what the extension must withstand either way.
        assert.match(settingsWrite.error.code, /POLICY_DENIED|PROTECTED_PATH/, JSON.stringify(settingsWrite));
        await mkdir(join(workspace, '.vscode'), { recursive: true });
        await writeFile(join(workspace, '.vscode', 'settings.json'), JSON.stringify(hostile, null, 2) + '\n');
      }

      // Whichever comes first: the warning, or a (wrong) restart of the server.
      const seen = await waitFor(
        async () => {
          const text = await toasts();
          if (/mcpWorkspace\.policyFile/.test(text)) return { toast: text };
          if ((await discovered())?.url !== server.url) return { restarted: true };
          return (await audit('server_start')).length > startsBefore ? { restarted: true } : null;
        },
        30_000,
        { what: 'a warning about the ignored workspace settings', page },
      );
      await screenshot(page, 'settings-guard-warning');
      assert.equal((await discovered())?.url, server.url, 'the server did not restart on another port');
      assert.equal((await audit('server_start')).length, startsBefore, 'the server did not restart');
      // The user is told, naming the settings and the file.
      const toast = seen.toast ?? '';
      assert.match(toast, /mcpWorkspace\.policyFile/);
      assert.match(toast, /mcpWorkspace\.allowedOrigins/);
      assert.match(toast, /mcpWorkspace\.dockerHost/);
      assert.match(toast, /\.vscode\/settings\.json/);
      assert.match(toast, /user settings/);
      const logged = await waitFor(
        () =>
          filesUnder(join(codeServer.userDataDir, 'logs')).find((file) =>
            readFileSync(file, 'utf8').includes(
              'ignored mcpWorkspace.allowedOrigins, mcpWorkspace.dockerHost',
            ),
          ),
        10_000,
        { what: 'the warning in the MCP Workspace log channel' },
      );
      assert.ok(logged);

      // Give a (wrong) restart every chance to happen before checking that none did.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const now = await discovered();
      assert.equal(now?.url, server.url, 'same server, same port');
      assert.equal((await readFile(server.tokenFile, 'utf8')).trim(), ownerToken, 'same owner token');
      assert.equal((await audit('server_start')).length, startsBefore, 'no server_start since: no restart');
      assert.equal((await audit('server_stop')).length, 0, 'no server_stop');
      // The agent's own session survived (a restart would have ended it).
      const after = await callTool(agent.client, 'get_policies');
      assert.deepEqual(after, before, 'the policy in force is unchanged');
      assert.ok(!JSON.stringify(after).includes('exec(*)'));
      const exec = await callTool(agent.client, 'explain_policy', { action: 'exec', target: 'id' });
      assert.equal(exec.allowed, false, 'exec is still denied');

      const foreign = await fetch(`${server.url}/policies`, {
        headers: { authorization: `Bearer ${ownerToken}`, origin: FOREIGN_ORIGIN },
      });
      assert.equal(foreign.status, 403, 'a foreign Origin is still refused');
      assert.equal(((await foreign.json()) as { error: { code: string } }).error.code, 'FORBIDDEN_ORIGIN');
      assert.equal(startRecord.params['dockerHost'], null, 'the engine in force is the one the user chose');
    } finally {
      await agent.close();
    }
  });

  it('audits a token created with "Create Agent Token", a session ended from the Sessions view and a webview Verify', async () => {
    await runCommand(page, 'MCP Workspace: Create Agent Token');
    const input = page.locator('.quick-input-widget input');
    await waitVisible(page, input, 'the agent name input');
    await input.fill('ui-agent');
    await page.keyboard.press('Enter');
    await waitVisible(
      page,
      page.locator('.quick-input-list .monaco-list-row').filter({ hasText: 'viewer' }),
      'the role pick',
    );
    await input.fill('agent');
    await page.keyboard.press('Enter');
    const dialog = page.locator('.monaco-dialog-box');
    await waitVisible(page, dialog, 'the dialog showing the new token');
    const detail = (await dialog.innerText()).split(/\s+/);
    await page.keyboard.press('Escape');
    const tokens = (await owner('/tokens')) as { tokens: { name: string; role: string }[] };
    assert.equal(tokens.tokens.find((t) => t.name === 'ui-agent')?.role, 'agent');
    const create = (await audit('create_token')).find((r) => r.params['name'] === 'ui-agent');
    assert.ok(create, 'create_token of ui-agent is in the audit log');
    assert.equal(create.agent, 'owner');
    assert.equal(create.transport, 'vscode');
    assert.equal(create.outcome.ok, true);

    // The token shown once in the dialog is the one that works; the agent connects with it.
    const uiToken = await (async () => {
      for (const word of detail.filter((w) => w.length >= 20)) {
        const res = await fetch(`${server.url}/audit?limit=1`, {
          headers: { authorization: `Bearer ${word}` },
        });
        if (res.status === 200) return word;
      }
      return null;
    })();
    assert.ok(uiToken, `the dialog shows the token: ${detail.join(' ')}`);
    const agent = await connectMcp(server.mcp, uiToken);
    try {
      const sessionId = agent.transport.sessionId!;
      assert.ok(await callTool(agent.client, 'list_capabilities'));
      await page.locator('.activitybar [aria-label^="MCP Workspace"]').first().click();
      const row = page.locator('.pane .monaco-list-row').filter({ hasText: 'ui-agent' }).first();
      await waitVisible(page, row, 'the ui-agent session in the Sessions view');
      // The agent's row ends its sessions (this MCP one and the REST one the token probe opened).
      const end = page
        .locator('.monaco-dialog-box .monaco-button')
        .filter({ hasText: /^End (This Session|All \d+ Sessions)$/ });
      // The view re-renders its rows as presence changes: a click on a row being replaced is lost,
      // so Revoke is clicked again until the dialog shows.
      await waitFor(
        async () => {
          if (await end.isVisible()) return true;
          await row.hover();
          await row
            .locator('.action-label[aria-label="Revoke"]')
            .click({ timeout: 2_000 })
            .catch(() => undefined);
          return end.waitFor({ state: 'visible', timeout: 3_000 }).then(
            () => true,
            () => false,
          );
        },
        30_000,
        { what: 'the "End … Session(s)" button', page },
      );
      await screenshot(page, 'settings-guard-revoke-session');
      await end.click();
      const revoke = await waitFor(
        async () => (await audit('revoke_session')).find((r) => r.params['sessionId'] === sessionId),
        30_000,
        { what: 'revoke_session in the audit log', page },
      );
      assert.equal(revoke.agent, 'owner');
      assert.equal(revoke.transport, 'vscode');
      assert.equal(revoke.outcome.ok, true);
      await assert.rejects(callTool(agent.client, 'list_capabilities'), 'the session has ended');
      const sessions = (await owner('/sessions')) as { sessions: { sessionId: string }[] };
      assert.ok(!sessions.sessions.some((s) => s.sessionId === sessionId));
      // The audit webview's Verify button is an owner action too.
      await runCommand(page, 'MCP Workspace: Show Audit Log');
      const frame = webviewFrame(page);
      await waitVisible(
        page,
        frame.locator('button.verify:enabled'),
        'the Verify button of the audit webview',
      );
      await frame.locator('button.verify').click();
      await waitFor(
        async () =>
          /Intact/.test(
            (await frame
              .locator('.verify-status')
              .innerText()
              .catch(() => '')) ?? '',
          ),
        30_000,
        { what: 'the webview to report the log intact', page },
      );
      // A read's record is committed right after its answer: poll for it.
      const verify = await waitFor(
        async () => (await audit('verify_audit')).find((r) => r.transport === 'vscode'),
        10_000,
        { what: 'the webview verification in the audit log', page },
      );
      assert.equal(verify.agent, 'owner');
      const verified = (await owner('/audit/verify')) as { ok: boolean };
      assert.equal(verified.ok, true, 'the audit log verifies');
    } finally {
      await agent.close().catch(() => undefined);
    }
  });
});
