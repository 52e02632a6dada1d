/**
 * Issue 11 in a real VS Code (code-server + Chromium) with the built VSIX: an MCP agent joins and
 * broadcasts, and the message shows as a notification whose Reply reaches the agent as an owner
 * broadcast (audited, transport vscode); a burst of messages is coalesced into one notification
 * with a list; the agent's lease and the shared document it opens show in the Sessions view, and
 * the owner releases the lease from there.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { verifyAuditLog } from '../../src/core/audit';
import { type DiscoveredServer } from '../../src/extension/discovery';
import { callTool, connectMcp } from '../helpers/clients';
import { quickPickRows, screenshot, waitFor, waitVisible } from './harness';
import { openExtensionWindow, ownedServer, restClient, type ExtensionWindow } from './window';

interface AuditRow {
  op: string;
  agent: string;
  transport: string;
  params: Record<string, unknown>;
  outcome: { ok: boolean };
}

describe('VS Code: presence in the Sessions view, messages to the human', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let page: Page;
  let server: DiscoveredServer;
  let ownerToken: string;
  let agentToken: string;
  let agent: Awaited<ReturnType<typeof connectMcp>>;
  const notes: { logger?: string; data: any }[] = [];

  const owner = restClient(
    () => server.url,
    () => ownerToken,
  );
  const audit = async (op: string): Promise<AuditRow[]> =>
    ((await owner(`/audit?op=${op}&limit=200`)) as { records: AuditRow[] }).records;
  const toast = (text: string | RegExp) =>
    page.locator('.notifications-toasts .notification-toast').filter({ hasText: text });
  const sidebarText = async (): Promise<string> =>
    (await page.locator('.part.sidebar').first().innerText()).replace(/\s+/g, ' ');

  before(async function () {
    this.timeout(900_000);
    win = await openExtensionWindow({
      name: 'presence',
      populate: async (folder) => {
        await writeFile(join(folder, 'notes.md'), '# notes\n');
      },
    });
    page = win.page;
    ({ server, ownerToken } = await ownedServer(win));
    agentToken = (
      (await owner('/tokens', { method: 'POST', body: { name: 'e2e-alice', role: 'agent' } })) as {
        token: string;
      }
    ).token;
    agent = await connectMcp(server.mcp, agentToken);
    agent.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      notes.push(n.params as { logger?: string; data: any });
    });
    const { workspaceId } = await callTool(agent.client, 'list_capabilities');
    const joined = await callTool(agent.client, 'join_workspace', { workspaceId });
    assert.equal(joined.agent, 'e2e-alice', JSON.stringify(joined));
  });

  after(async () => {
    await agent?.close();
    await win?.close();
  });

  it("shows an agent's broadcast as a notification; Reply reaches the agent as the owner", async () => {
    const sent = await callTool(agent.client, 'broadcast_message', { message: 'hello from alice' });
    assert.equal(sent.delivered, 1, `the VS Code user is the one recipient: ${JSON.stringify(sent)}`);
    const shown = toast('e2e-alice: hello from alice');
    await waitVisible(page, shown, 'the notification "e2e-alice: hello from alice"');
    await waitVisible(page, shown.locator('.monaco-button', { hasText: 'Show Audit Log' }), 'Show Audit Log');
    await screenshot(page, 'presence-notification');
    await shown.locator('.monaco-button', { hasText: 'Reply' }).first().click();
    const input = page.locator('.quick-input-widget input');
    await waitVisible(page, input, 'the reply input');
    await input.fill('hi alice, the owner here');
    await page.keyboard.press('Enter');

    const reply = await waitFor(
      () => notes.find((n) => n.logger === 'mcp-workspace/message' && n.data?.from === 'owner'),
      30_000,
      { what: "the owner's reply to reach the agent", page },
    );
    assert.equal(reply.data.message, 'hi alice, the owner here');
    assert.equal(reply.data.to, 'e2e-alice');
    const records = await audit('broadcast_message');
    const byOwner = records.find((r) => r.agent === 'owner');
    assert.ok(byOwner, 'the reply is audited');
    assert.equal(byOwner.transport, 'vscode');
    assert.equal(byOwner.params['to'], 'e2e-alice');
    assert.equal(byOwner.outcome.ok, true);
    assert.ok(records.some((r) => r.agent === 'e2e-alice' && r.transport === 'mcp'));
  });

  it('coalesces a burst from one agent into one notification that lists the messages', async () => {
    const burst = Array.from({ length: 6 }, (_, i) => `burst message ${i + 1}`);
    for (const message of burst) await callTool(agent.client, 'broadcast_message', { message });
    const coalesced = toast(/e2e-alice sent \d+ messages/);
    await waitVisible(page, coalesced, 'the coalesced notification', 60_000);
    const count = Number(/sent (\d+) messages/.exec(await coalesced.first().innerText())?.[1]);
    assert.ok(count >= 5 && count <= 6, `coalesced ${count} messages`);
    // At most the first of the burst got a notification of its own.
    const single = await page
      .locator('.notifications-toasts .notification-toast')
      .filter({ hasText: /e2e-alice: burst message/ })
      .count();
    assert.ok(single <= 1, `${single} single notifications for the burst`);
    await screenshot(page, 'presence-coalesced');
    await coalesced.locator('.monaco-button', { hasText: 'Show Messages' }).first().click();
    const rows = await quickPickRows(page);
    assert.ok(
      rows.some((r) => r.includes('burst message 6')),
      `the list holds the newest message: ${rows.join(' | ')}`,
    );
    assert.equal(rows.length, count);
    await page.keyboard.press('Escape');
  });

  it("shows the agent's lease and shared document in the Sessions view; the owner releases the lease", async () => {
    const lease = await callTool(agent.client, 'acquire_lease', {
      paths: ['notes.md'],
      reason: 'e2e lease',
      ttlSeconds: 600,
    });
    assert.equal(lease.holder, 'e2e-alice', JSON.stringify(lease));
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${server.url}/collab`, 'notes.md', doc, {
      params: { token: agentToken },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    try {
      await waitFor(() => provider.synced, 30_000, { what: 'the shared document to sync', page });
      await page.locator('.activitybar [aria-label^="MCP Workspace"]').first().click();
      let typed = 0;
      const text = await waitFor(
        async () => {
          // Keep typing so the agent stays "editing" however long the view takes to show it.
          doc.getText('content').insert(0, `line ${typed++}\n`);
          const shown = await sidebarText();
          return ['e2e-alice', 'editing notes.md', 'Leases', 'e2e lease'].every((s) => shown.includes(s))
            ? shown
            : null;
        },
        60_000,
        { what: 'the agent, its edit of notes.md and its lease in the Sessions view', intervalMs: 500, page },
      );
      assert.match(text, /notes\.md/);
      await screenshot(page, 'presence-sessions-view');
      const fileRow = page.locator('.pane .monaco-list-row').filter({ hasText: /^notes\.md/ });
      await waitVisible(page, fileRow, 'the open file under the agent');

      const leaseRow = page.locator('.pane .monaco-list-row').filter({ hasText: 'e2e lease' }).first();
      const release = page.locator('.monaco-dialog-box .monaco-button').filter({ hasText: /^Release$/ });
      // The view re-renders live (the agent's edit being flushed, its editing state running out): a
      // row hovered just before a refresh loses its inline action, so hover and click again.
      await waitFor(
        async () => {
          if (await release.isVisible()) return true;
          await leaseRow.hover({ timeout: 2_000 });
          await leaseRow.locator('.action-label[aria-label="Release Lease"]').click({ timeout: 2_000 });
          await release.waitFor({ state: 'visible', timeout: 2_000 });
          return true;
        },
        30_000,
        { what: 'the "Release" button of the lease row', page },
      );
      await release.click();
      const released = await waitFor(
        async () => (await audit('release_lease')).find((r) => r.params['leaseId'] === lease.id),
        30_000,
        { what: 'release_lease in the audit log', page },
      );
      assert.equal(released.agent, 'owner');
      assert.equal(released.transport, 'vscode');
      assert.equal(released.outcome.ok, true);
      assert.deepEqual((await callTool(agent.client, 'list_leases')).leases, []);
      await waitFor(async () => !(await sidebarText()).includes('e2e lease'), 30_000, {
        what: 'the lease to leave the Sessions view',
        page,
      });
    } finally {
      provider.destroy();
      doc.destroy();
    }
    const verified = await verifyAuditLog(join(server.tokenFile, '..', 'audit'));
    assert.equal(verified.ok, true, JSON.stringify(verified));
  });
});
