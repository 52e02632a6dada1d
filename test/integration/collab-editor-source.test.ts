/**
 * The live-editing document source of the VS Code binding against the real server: it syncs the
 * server's text (CRLF kept), tells read-only replicas apart, ends for files it may not open, and
 * its awareness carries the owner's stamped name and a cursor that other clients resolve.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { WebsocketDocumentSource } from '../../src/extension/collab/source';
import type { SharedDocumentHandle } from '../../src/extension/collab/types';
import { encodeCursor, remoteCursors } from '../../src/extension/collab/presence';
import { until } from '../helpers/wait';
import { startTestServer, type TestServer } from '../helpers/server';

describe('live editing document source (y-websocket to the real server)', () => {
  let t: TestServer;
  let viewerToken: string;
  const handles: SharedDocumentHandle[] = [];
  const source = (token: string): WebsocketDocumentSource =>
    new WebsocketDocumentSource({ serverUrl: `${t.url.replace(/^http/, 'ws')}/collab`, token });
  const open = (token: string, path: string): SharedDocumentHandle => {
    const handle = source(token).open(path);
    handles.push(handle);
    return handle;
  };

  beforeEach(async () => {
    t = await startTestServer(
      { collab: { flushDelayMs: 50, maxFlushDelayMs: 200, diskPollMs: 50, dormantAfterMs: 30 } },
      async (ws) => {
        await writeFile(join(ws, 'crlf.txt'), 'one\r\ntwo\r\n');
        await mkdir(join(ws, 'dir with space'));
        await writeFile(join(ws, 'dir with space', 'a#b.txt'), 'odd name\n');
        await mkdir(join(ws, '.git'));
        await writeFile(join(ws, '.git', 'config'), '[core]\n');
      },
    );
    viewerToken = (await t.api('/tokens', { method: 'POST', body: { name: 'watcher', role: 'viewer' } })).body
      .token;
  });

  afterEach(async () => {
    for (const handle of handles.splice(0)) handle.dispose();
    await t.close();
  });

  it('syncs the text byte for byte and writes the owner edits to disk, CRLF kept', async () => {
    const handle = open(t.token, 'crlf.txt');
    await handle.synced;
    assert.equal(handle.readOnly, false);
    const text = handle.doc.getText('content');
    assert.equal(text.toString(), 'one\r\ntwo\r\n');
    text.insert(5, 'one and a half\r\n');
    await until('the server to write the edit', async () =>
      (await readFile(join(t.workspace, 'crlf.txt'), 'utf8')).includes('half'),
    );
    assert.equal(await readFile(join(t.workspace, 'crlf.txt'), 'utf8'), 'one\r\none and a half\r\ntwo\r\n');
    // Rooms are percent-encoded per segment.
    const odd = open(t.token, 'dir with space/a#b.txt');
    await odd.synced;
    assert.equal(odd.doc.getText('content').toString(), 'odd name\n');
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });

  it('a viewer replica learns it is read-only at once, and its edits never land', async () => {
    const handle = open(viewerToken, 'crlf.txt');
    const changes: boolean[] = [];
    handle.onReadOnlyChange((readOnly) => changes.push(readOnly));
    await handle.synced;
    await until('the read-only signal', () => handle.readOnly);
    assert.deepEqual(changes, [true]);
    handle.doc.getText('content').insert(0, 'VIEWER ');
    const owner = open(t.token, 'crlf.txt');
    await owner.synced;
    // Bounded: the owner's replica keeps the server's text through many turns.
    for (let i = 0; i < 30; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(owner.doc.getText('content').toString(), 'one\r\ntwo\r\n');
    }
    assert.equal(await readFile(join(t.workspace, 'crlf.txt'), 'utf8'), 'one\r\ntwo\r\n');
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });

  it('ends (synced rejects, closed fires) for a file that is missing or a token it refuses', async () => {
    const missing = open(t.token, 'nope.txt');
    const closed: string[] = [];
    missing.onClosed((reason) => closed.push(reason));
    await assert.rejects(missing.synced, /4404/);
    assert.equal(closed.length, 1);
    const refused = open('not-a-token', 'crlf.txt');
    await assert.rejects(refused.synced, /could not connect/);
    assert.equal(refused.doc.getText('content').toString(), '', 'nothing was served to a bad token');
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });

  it("publishes the owner's cursor; a stock client resolves it under the server-stamped name", async () => {
    const handle = open(t.token, 'crlf.txt');
    await handle.synced;
    const text = handle.doc.getText('content');
    handle.awareness.setLocalStateField('user', { name: 'forged' });
    handle.awareness.setLocalStateField('cursor', encodeCursor(text, 5, 8));
    const doc = new Y.Doc();
    const agentToken = (await t.api('/tokens', { method: 'POST', body: { name: 'builder', role: 'agent' } }))
      .body.token;
    const agent = new WebsocketProvider(`${t.url.replace(/^http/, 'ws')}/collab`, 'crlf.txt', doc, {
      params: { token: agentToken },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    try {
      await until('the agent to sync', () => agent.synced);
      const agentText = doc.getText('content');
      await until('the owner cursor to reach the agent', () => {
        const states = agent.awareness.getStates() as Map<number, Record<string, unknown>>;
        return remoteCursors(doc, agentText, states, doc.clientID).length === 1;
      });
      agentText.insert(0, '>> ');
      const states = agent.awareness.getStates() as Map<number, Record<string, unknown>>;
      const [cursor] = remoteCursors(doc, agentText, states, doc.clientID);
      assert.equal(cursor!.name, 'owner', 'the name is stamped by the server, not taken from the client');
      assert.deepEqual([cursor!.anchor, cursor!.head], [8, 11]);
    } finally {
      agent.destroy();
      doc.destroy();
    }
  });
});
