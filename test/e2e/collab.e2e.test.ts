/**
 * Live co-editing in the real VS Code (code-server + Chromium): an agent (a stock y-websocket
 * client) edits a file open in an editor while the user types elsewhere in it through the real
 * keyboard; neither edit is lost, nothing echoes, CRLF stays CRLF, the agent's cursor shows with
 * its name, the editor is not left dirty for text on disk, and Ctrl+Z undoes only the user's typing.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { type DiscoveredServer } from '../../src/extension/discovery';
import { encodeCursor } from '../../src/extension/collab/presence';
import { screenshot, waitFor } from './harness';
import { openExtensionWindow, ownedServer, restClient, type ExtensionWindow } from './window';

/** A stock y-websocket client acting as an agent. */
interface Agent {
  doc: Y.Doc;
  text: Y.Text;
  provider: WebsocketProvider;
  /** Updates received from the server (an echo loop would keep this growing). */
  received: number;
  close(): void;
}

describe('Live co-editing in VS Code (code-server + Chromium)', function () {
  this.timeout(180_000);
  let win: ExtensionWindow;
  let page: Page;
  let server: DiscoveredServer;
  let ownerToken: string;
  let agentToken: string;
  let outsideBefore: string[];
  const agents: Agent[] = [];

  const api = restClient(
    () => server.url,
    () => ownerToken,
  );
  // Monaco reuses line elements, so their DOM order is not the visual one: sort them by position.
  const editorText = async (): Promise<string> =>
    (
      await page.evaluate<string>(
        `[...document.querySelectorAll('.editor-group-container.active .monaco-editor .view-lines .view-line')]
          .map((el) => [parseFloat(el.style.top), el.textContent])
          .sort((a, b) => a[0] - b[0])
          .map((entry) => entry[1])
          .join('\\n')`,
      )
    ).replace(/\u00a0/g, ' ');
  const activeTabDirty = async (): Promise<boolean> =>
    (await page.locator('.editor-group-container.active .tab.active.dirty').count()) > 0;

  function connectAgent(path: string): Agent {
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${server.url.replace(/^http/, 'ws')}/collab`, path, doc, {
      params: { token: agentToken },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    const agent: Agent = {
      doc,
      text: doc.getText('content'),
      provider,
      received: 0,
      close: () => {
        provider.destroy();
        doc.destroy();
      },
    };
    doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin === provider) agent.received++;
    });
    agents.push(agent);
    return agent;
  }

  /** Waits until the owner's bound editor is on the document (its presence reaches the agent). */
  async function ownerPresent(agent: Agent): Promise<void> {
    await waitFor(() => agent.provider.synced, 30_000, { what: 'the agent to sync', page });
    await waitFor(
      () =>
        [...agent.provider.awareness.getStates().values()].some(
          (s) => (s as { user?: { name?: string } }).user?.name === 'owner',
        ),
      30_000,
      { what: "the owner's bound editor to join the document", page },
    );
  }

  async function openFile(name: string, contains: string): Promise<void> {
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill(name);
    await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: name }).first().click();
    await waitFor(async () => (await editorText()).includes(contains), 30_000, {
      what: `${name} open in an editor`,
      page,
    });
  }

  /**
   * Opens `name` (showing `contains`), connects an agent to it once the owner's editor is bound, and
   * puts the caret at the end of the text, ready to type.
   */
  async function typeAtEndWithAgent(name: string, contains: string): Promise<Agent> {
    await openFile(name, contains);
    const agent = connectAgent(name);
    await ownerPresent(agent);
    await page.locator('.editor-group-container.active .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    return agent;
  }

  /** Bounded check that nothing moves any more: the agent receives no update for 20 polls. */
  async function settled(agent: Agent): Promise<void> {
    let quiet = 0;
    let last = agent.received;
    for (let i = 0; i < 200 && quiet < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (agent.received === last) quiet++;
      else {
        quiet = 0;
        last = agent.received;
      }
    }
    assert.equal(quiet, 20, `updates kept coming (echo loop?): ${agent.received}`);
  }

  before(async function () {
    this.timeout(900_000);
    win = await openExtensionWindow({
      name: 'collab',
      populate: async (folder) => {
        await writeFile(join(folder, 'shared.txt'), 'alpha\nbeta\ngamma\ndelta\n');
        await writeFile(join(folder, 'windows.txt'), 'first line\r\nsecond line\r\n');
        await writeFile(join(folder, 'undo.txt'), 'keep this\n');
        await writeFile(join(folder, 'save.txt'), 'save me\n');
      },
    });
    page = win.page;
    ({ server, ownerToken } = await ownedServer(win));
    agentToken = (await api('/tokens', { method: 'POST', body: { name: 'agent-smith', role: 'agent' } }))
      .token;
    outsideBefore = (await readdir(win.root)).sort();
  });

  after(async () => {
    for (const agent of agents.splice(0)) agent.close();
    await win?.close();
  });

  afterEach(async () => {
    // Nothing beside the workspace was created or removed, and the audit log still verifies.
    if (!server) return;
    assert.deepEqual((await readdir(win.root)).sort(), outsideBefore);
    assert.equal((await api('/audit/verify')).ok, true);
  });

  it("an agent's edit and the user's typing in the same file both survive, and nothing echoes", async () => {
    const agent = await typeAtEndWithAgent('shared.txt', 'alpha');
    // The agent's cursor at "gamma", published as Yjs relative positions.
    const at = agent.text.toString().indexOf('gamma');
    agent.provider.awareness.setLocalStateField('cursor', encodeCursor(agent.text, at, at + 5));
    const typing = page.keyboard.type('typed by the human', { delay: 25 });
    // Meanwhile, the agent edits the top of the file, several times.
    for (let i = 0; i < 5; i++) {
      agent.text.insert(0, `// agent ${i}\n`);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await typing;

    const expected = (text: string): boolean =>
      text.includes('typed by the human') && [0, 1, 2, 3, 4].every((i) => text.includes(`// agent ${i}`));
    await waitFor(async () => expected(await editorText()), 30_000, {
      what: 'both edits in the editor',
      page,
    });
    await waitFor(() => expected(agent.text.toString()), 30_000, {
      what: "the user's typing at the agent",
      page,
    });
    await settled(agent);
    assert.equal((await editorText()).replace(/\n+$/, ''), agent.text.toString().replace(/\n+$/, ''));
    await waitFor(
      async () => (await readFile(join(win.workspace, 'shared.txt'), 'utf8')) === agent.text.toString(),
      30_000,
      { what: 'the shared text on disk', page },
    );
    // Exactly once each: no edit was lost or echoed back as a copy.
    assert.equal(
      agent.text.toString(),
      '// agent 4\n// agent 3\n// agent 2\n// agent 1\n// agent 0\nalpha\nbeta\ngamma\ndelta\ntyped by the human',
    );

    // The agent's cursor shows, labelled with its name.
    await waitFor(
      () =>
        page.evaluate<boolean>(
          // In the page: a remote cursor's label is the ::after content of a decoration span.
          `[...document.querySelectorAll('.editor-group-container.active .view-lines span')].some(
            (el) => getComputedStyle(el, '::after').content.includes('agent-smith'))`,
        ),
      30_000,
      { what: "the agent's cursor decoration labelled agent-smith", page },
    );
    await screenshot(page, 'collab-agent-cursor');

    // The text is on disk: the editor is not left dirty.
    await waitFor(async () => !(await activeTabDirty()), 30_000, {
      what: 'the bound editor to be clean once its text is on disk',
      page,
    });
  });

  it('keeps CRLF line endings while both type', async () => {
    const agent = await typeAtEndWithAgent('windows.txt', 'first line');
    await page.keyboard.type('third from the human', { delay: 20 });
    // Close word suggestions first, or Enter would accept one.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Enter');
    await page.keyboard.type('fourth', { delay: 20 });
    agent.text.insert(0, 'zeroth from the agent\r\n');
    const done = (text: string): boolean =>
      text.startsWith('zeroth from the agent\r\n') && text.includes('third from the human\r\nfourth');
    await waitFor(() => done(agent.text.toString()), 30_000, { what: 'both edits in the shared text', page });
    await settled(agent);
    await waitFor(
      async () => (await readFile(join(win.workspace, 'windows.txt'), 'utf8')) === agent.text.toString(),
      30_000,
      { what: 'the shared text on disk', page },
    );
    const disk = await readFile(join(win.workspace, 'windows.txt'), 'utf8');
    assert.equal(
      disk,
      'zeroth from the agent\r\nfirst line\r\nsecond line\r\nthird from the human\r\nfourth',
    );
    assert.doesNotMatch(disk, /[^\r]\n/, `a bare LF crept in: ${JSON.stringify(disk)}`);
    await screenshot(page, 'collab-crlf');
  });

  it('Ctrl+S at any moment after typing, while an agent edits: no "file is newer" conflict, nothing lost or doubled', async () => {
    const agent = await typeAtEndWithAgent('save.txt', 'save me');
    const conflicts = page.getByText(/content of the file is newer/i);
    const onDisk = (): Promise<string> => readFile(join(win.workspace, 'save.txt'), 'utf8');
    let typed = '';
    // The server writes about 300 ms after the last keystroke: Ctrl+S before, around and after it,
    // each time with an agent's edit at the top arriving just before.
    for (const [round, pause] of [0, 250, 320, 360, 400, 480].entries()) {
      await page.keyboard.type(` w${pause}`, { delay: 10 });
      typed += ` w${pause}`;
      agent.text.insert(0, `agent ${round}\n`);
      await new Promise((resolve) => setTimeout(resolve, pause));
      await page.keyboard.press('Control+s');
      await waitFor(async () => (await onDisk()).endsWith(`save me\n${typed}`), 30_000, {
        what: `the typing on disk (Ctrl+S ${pause} ms after typing)`,
        page,
      });
      await waitFor(async () => !(await activeTabDirty()), 30_000, { what: 'the editor saved', page });
      assert.equal(await conflicts.count(), 0, `a save conflict after a ${pause} ms pause`);
    }
    // Typing on right after Ctrl+S.
    await page.keyboard.type(' o1', { delay: 10 });
    await page.keyboard.press('Control+s');
    await page.keyboard.type(' o2', { delay: 10 });
    typed += ' o1 o2';
    const agentLines = [5, 4, 3, 2, 1, 0].map((i) => `agent ${i}\n`).join('');
    const expected = `${agentLines}save me\n${typed}`;
    await waitFor(async () => (await onDisk()) === expected, 30_000, {
      what: 'everything on disk once',
      page,
    });
    await settled(agent);
    assert.equal(agent.text.toString(), expected);
    await waitFor(async () => !(await activeTabDirty()), 30_000, { what: 'the editor saved', page });
    assert.equal(await conflicts.count(), 0);
  });

  it("Ctrl+Z undoes only the user's own typing, never the agent's edit", async () => {
    const agent = await typeAtEndWithAgent('undo.txt', 'keep this');
    await page.keyboard.type('mine', { delay: 20 });
    await waitFor(() => agent.text.toString().includes('mine'), 30_000, { what: "the user's typing", page });
    agent.text.insert(0, 'AGENT WAS HERE\n');
    await waitFor(async () => (await editorText()).includes('AGENT WAS HERE'), 30_000, {
      what: "the agent's edit in the editor",
      page,
    });
    await page.keyboard.press('Control+z');
    await waitFor(() => !agent.text.toString().includes('mine'), 30_000, {
      what: 'the undo to reach the agent',
      page,
    });
    await settled(agent);
    assert.equal(agent.text.toString(), 'AGENT WAS HERE\nkeep this\n');
    await waitFor(
      async () => (await editorText()).replace(/\n+$/, '') === 'AGENT WAS HERE\nkeep this',
      30_000,
      {
        what: 'the editor to show the agent edit without the undone typing',
        page,
      },
    );
    // Redo brings the user's typing back.
    await page.keyboard.press('Control+Shift+z');
    await waitFor(() => agent.text.toString() === 'AGENT WAS HERE\nkeep this\nmine', 30_000, {
      what: 'the redo to reach the agent',
      page,
    });
    await waitFor(
      async () =>
        (await readFile(join(win.workspace, 'undo.txt'), 'utf8')) === 'AGENT WAS HERE\nkeep this\nmine',
      30_000,
      { what: 'the result on disk', page },
    );
  });
});
