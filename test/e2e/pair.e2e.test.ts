/**
 * Pair sessions in two real VS Code windows: the host window (the extension and its server on a
 * folder) mints a pair link; a second code-server (its own user data and extensions dirs, the same
 * VSIX, no folder and no server of its own) joins through "Join Pair Session", opens the host's
 * workspace as the `mcpw-pair://` virtual folder, and edits flow live both ways through Yjs.
 * One Chromium serves both windows (two pages) to keep the second instance lean.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { verifyAuditLog } from '../../src/core/audit';
import { discoveryDir, readDiscoveryFiles, type DiscoveredServer } from '../../src/extension/discovery';
import { parsePairLink } from '../../src/protocol/pair';
import {
  quickPickRows,
  runCommand,
  screenshot,
  startCodeServer,
  waitFor,
  waitForActivation,
  waitVisible,
  type RunningCodeServer,
} from './harness';
import { EXTENSION_ID, openExtensionWindow, ownedServer, restClient, type ExtensionWindow } from './window';

describe('pair sessions end to end: a second code-server joins through a pair link', function () {
  this.timeout(300_000);
  let host: ExtensionWindow;
  let server: DiscoveredServer;
  let ownerToken: string;
  let guestServer: RunningCodeServer;
  let guest: Page;
  let link: { link: string; id: string; token: string };
  let guestState: string;

  const editorText = async (page: Page): Promise<string> =>
    (await page.locator('.monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');
  const api = restClient(
    () => server.url,
    () => ownerToken,
  );

  before(async function () {
    this.timeout(900_000);
    host = await openExtensionWindow({
      name: 'pair-host',
      populate: async (folder) => {
        await writeFile(join(folder, 'pair.txt'), 'first line\nsecond line\n');
        await mkdir(join(folder, 'src'));
        await writeFile(join(folder, 'src', 'main.ts'), 'export {};\n');
      },
    });
    ({ server, ownerToken } = await ownedServer(host, 'the host server'));
    // The guest: the VSIX the host window installed, a fresh code-server with no folder.
    guestState = join(host.root, 'guest-state-home');
    await mkdir(guestState);
    const vsix = (await readdir(host.root)).find((f) => f.endsWith('.vsix'))!;
    guestServer = await startCodeServer({
      vsix: join(host.root, vsix),
      name: 'pair-guest',
      env: { XDG_STATE_HOME: guestState },
    });
    guest = await host.browser.context.newPage();
    await guest.setViewportSize({ width: 1400, height: 900 });
    await guest.goto(`${guestServer.url}/`, { waitUntil: 'domcontentloaded' });
    await waitVisible(guest, guest.locator('.part.statusbar'), 'the guest workbench');
    await waitForActivation(guestServer, EXTENSION_ID, 60_000, guest);
  });

  after(async () => {
    await guest?.close().catch(() => undefined);
    await guestServer?.stop();
    await host?.close();
  });

  it('the host creates a read-write pair link from the status-bar menu; it is copied and audited', async () => {
    const page = host.page;
    await host.browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: host.codeServer.url,
    });
    await page
      .locator('.statusbar-item')
      .filter({ hasText: /MCP :\d+/ })
      .first()
      .click();
    const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    const menu = await quickPickRows(page);
    assert.ok(
      menu.some((row) => row.includes('Create Pair Link')),
      menu.join(' | '),
    );
    assert.ok(
      menu.some((row) => row.includes('Join Pair Session')),
      menu.join(' | '),
    );
    await rows.filter({ hasText: 'Create Pair Link' }).first().click();
    await waitVisible(page, rows.filter({ hasText: 'Read-write' }), 'the mode pick');
    await rows.filter({ hasText: 'Read-write' }).first().click();
    const input = page.locator('.quick-input-widget input');
    await waitFor(async () => (await input.inputValue()) === 'guest', 10_000, {
      what: 'the guest name input',
      page,
    });
    await input.fill('partner');
    await page.keyboard.press('Enter');
    await waitVisible(page, rows.filter({ hasText: '1 hour' }), 'the lifetime pick');
    await rows.filter({ hasText: '1 hour' }).first().click();
    const notice = page.locator('.notification-toast').filter({ hasText: "Pair link for 'pair:partner'" });
    await waitVisible(page, notice, 'the "pair link copied" notification');
    await screenshot(page, 'pair-host-link-created');
    const copied = String(await page.evaluate('navigator.clipboard.readText()'));
    const parsed = parsePairLink(copied);
    assert.ok(typeof parsed !== 'string', `the clipboard holds no pair link: ${parsed} (${copied})`);
    assert.equal(parsed.port, Number(new URL(server.url).port));
    assert.equal(parsed.mode, 'read-write');
    link = { link: copied, id: 'pair:partner', token: parsed.token };
    const tokens = await api('/tokens');
    const entry = tokens.tokens.find((t: { name: string }) => t.name === 'pair:partner');
    assert.ok(entry?.expiresAt, JSON.stringify(tokens));
    const lifetime = Date.parse(entry.expiresAt) - Date.now();
    assert.ok(lifetime > 3_000_000 && lifetime <= 3_600_000, `lifetime ${lifetime}`);
    const audit = await api('/audit?op=create_pair_link');
    assert.equal(audit.records.length, 1);
    assert.equal(audit.records[0].transport, 'vscode');
    assert.ok(!JSON.stringify(audit).includes(parsed.token), 'the token is never audited');
  });

  it('the guest joins with the pasted link and sees the host workspace as a virtual folder', async () => {
    await runCommand(guest, 'MCP Workspace: Join Pair Session');
    const input = guest.locator('.quick-input-widget input');
    await waitVisible(guest, input, 'the pair link input box');
    await input.fill(link.link);
    await guest.keyboard.press('Enter');
    // Adding the first folder turns the window into a workspace: the workbench reloads.
    const row = (name: string) =>
      guest.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: name }).first();
    await waitFor(
      async () => {
        if (await row('pair.txt').isVisible()) return true;
        const root = row('Pair: 127.0.0.1');
        if (await root.isVisible()) {
          if ((await root.getAttribute('aria-expanded')) === 'false') await root.click();
        } else {
          await runCommand(guest, 'View: Show Explorer', 5_000).catch(() => undefined);
        }
        return false;
      },
      120_000,
      { what: 'pair.txt in the guest explorer (the mcpw-pair folder)', page: guest },
    );
    assert.ok(await row('src').isVisible(), 'the src folder of the host is listed too');
    await waitForActivation(guestServer, EXTENSION_ID, 60_000, guest);
    await screenshot(guest, 'pair-guest-explorer');
    // The guest started no server of its own: no discovery file, and its status bar says so.
    assert.deepEqual(await readDiscoveryFiles(discoveryDir({ XDG_STATE_HOME: guestState })), []);
    assert.match(
      (await guest.locator('.statusbar-item').filter({ hasText: /MCP/ }).allInnerTexts()).join(' '),
      /MCP stopped/,
    );
    const sessions = await api('/sessions');
    assert.ok(
      sessions.sessions.some((s: { agent: string }) => s.agent === 'pair:partner'),
      'the guest appears as a session of the host',
    );
  });

  it('edits flow live both ways between the host editor and the guest editor', async () => {
    await host.page.keyboard.press('Control+P');
    const quick = host.page.locator('.quick-input-widget input');
    await waitVisible(host.page, quick, 'quick open on the host');
    await quick.fill('pair.txt');
    await host.page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: 'pair.txt' })
      .first()
      .click();
    await waitFor(async () => (await editorText(host.page)).includes('first line'), 30_000, {
      what: 'pair.txt open on the host',
      page: host.page,
    });
    await guest
      .locator('.explorer-folders-view .monaco-list-row')
      .filter({ hasText: 'pair.txt' })
      .first()
      .click();
    await waitFor(async () => (await editorText(guest)).includes('first line'), 30_000, {
      what: 'pair.txt open on the guest',
      page: guest,
    });
    // Host types: the guest sees it without saving anything.
    await host.page.locator('.monaco-editor .view-lines').first().click();
    await host.page.keyboard.press('Control+End');
    await host.page.keyboard.type('typed by the host');
    await waitFor(async () => (await editorText(guest)).includes('typed by the host'), 60_000, {
      what: "the host's typing in the guest editor",
      page: guest,
    });
    // Guest types at the top: the host sees it, and the host's text survives.
    await guest.locator('.monaco-editor .view-lines').first().click();
    await guest.keyboard.press('Control+Home');
    await guest.keyboard.type('typed by the guest ');
    await waitFor(async () => (await editorText(host.page)).includes('typed by the guest'), 60_000, {
      what: "the guest's typing in the host editor",
      page: host.page,
    });
    await screenshot(host.page, 'pair-host-editor');
    await screenshot(guest, 'pair-guest-editor');
    // Both edits reach the host's disk through the server (flushed), and the guest's is audited.
    await waitFor(
      async () => {
        const disk = await readFile(join(host.workspace, 'pair.txt'), 'utf8');
        return disk.includes('typed by the host') && disk.startsWith('typed by the guest first line');
      },
      30_000,
      { what: 'both edits on the host disk' },
    );
    const edits = await waitFor(
      async () => {
        const found = await api(`/audit?op=collab_edit&agent=${encodeURIComponent('pair:partner')}`);
        return found.records.length > 0 ? found.records : null;
      },
      30_000,
      { what: "the guest's edits in the audit log" },
    );
    assert.equal(edits[0].role, 'agent');
  });

  it('revoking the link ends the guest session at once, and the audit log verifies', async () => {
    const revoked = await api(`/tokens/${encodeURIComponent(link.id)}`, { method: 'DELETE' });
    assert.equal(revoked.success, true);
    const sessions = await api('/sessions');
    assert.ok(!sessions.sessions.some((s: { agent: string }) => s.agent === 'pair:partner'));
    const refused = await fetch(`${server.url}/files/pair.txt`, {
      headers: { authorization: `Bearer ${link.token}` },
    });
    assert.equal(refused.status, 401);
    assert.equal((await verifyAuditLog(join(dirname(server.tokenFile), 'audit'))).ok, true);
    assert.deepEqual(host.browser.externalRequests, [], 'both windows only talked to 127.0.0.1');
  });
});
