import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { callTool, connectMcp } from '../helpers/clients';
import { ensureDocker, TEST_IMAGE } from '../helpers/docker';
import { until } from '../helpers/wait';
import { destroy, replica, type Replica } from '../helpers/replica';
import { upgradeStatus } from '../helpers/sockets';
import { startTestServer, type TestServer } from '../helpers/server';
import { encodeSaving, MESSAGE_SAVING } from '../../src/protocol/saving';

async function synced(r: Replica): Promise<void> {
  await until('the replica to sync', () => r.provider.synced);
}

/** A deterministic pseudo-random generator, so failures replay. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('live co-editing: /collab/<path> with stock y-websocket clients', function () {
  this.timeout(60_000);
  let t: TestServer;
  let agentToken: string;
  let viewerToken: string;

  beforeEach(async () => {
    t = await startTestServer(
      {
        // Short timings; documents go dormant after 30 ms of quiet, so waking them is exercised too.
        collab: { flushDelayMs: 50, maxFlushDelayMs: 200, diskPollMs: 50, dormantAfterMs: 30 },
      },
      async (ws) => {
        await writeFile(join(ws, 'shared.txt'), 'line one\r\nline two\n#MARK\n');
        await writeFile(join(ws, 'notes.md'), 'hello\n');
        await writeFile(join(ws, '.env'), 'SECRET=1\n');
        await writeFile(join(ws, 'blob.bin'), Buffer.from([0xff, 0xfe, 0x00, 0x01]));
        await mkdir(join(ws, '.git'));
        await writeFile(join(ws, '.git', 'config'), '[core]\n');
        await mkdir(join(ws, '.vscode'));
        await writeFile(join(ws, '.vscode', 'settings.json'), '{}\n');
      },
    );
    agentToken = (await t.api('/tokens', { method: 'POST', body: { name: 'builder', role: 'agent' } })).body
      .token;
    viewerToken = (await t.api('/tokens', { method: 'POST', body: { name: 'watcher', role: 'viewer' } })).body
      .token;
  });

  afterEach(async () => {
    await t.close();
  });

  async function auditOk(): Promise<void> {
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
  }

  async function records(op: string): Promise<any[]> {
    const res = await t.api('/audit?limit=1000');
    return (res.body.records as any[]).filter((r) => r.op === op);
  }

  it('N stock clients and an MCP agent edit concurrently; every replica and the disk converge byte-identical', async () => {
    const clients = [
      replica(t.url, 'shared.txt', agentToken),
      replica(t.url, 'shared.txt', agentToken),
      replica(t.url, 'shared.txt', t.token),
    ];
    await Promise.all(clients.map(synced));
    for (const c of clients) assert.equal(c.text.toString(), 'line one\r\nline two\n#MARK\n');
    const mcp = await connectMcp(t.server.mcpUrl, agentToken);
    try {
      const rnd = random(11);
      const agentEdits = (async () => {
        for (let i = 0; i < 10; i++) {
          const result = await callTool(mcp.client, 'edit_file', {
            path: 'shared.txt',
            // The agent writes below the mark; the people type above it.
            edits: [{ oldText: '#MARK\n', newText: `#MARK\nagent-${i}\n` }],
          });
          assert.ok(!result.error, JSON.stringify(result));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      for (let round = 0; round < 60; round++) {
        const c = clients[round % clients.length]!;
        const limit = c.text.toString().indexOf('#MARK');
        const current = c.text.toString();
        // Random inserts and deletes in the typed region (never across the agent's anchor or a line end).
        const at = Math.floor(rnd() * Math.max(1, limit));
        if (rnd() < 0.35 && at < limit - 1 && current[at] !== '\n' && current[at] !== '\r') {
          c.text.delete(at, 1);
        } else if (current[at - 1] !== '\r') {
          c.text.insert(at, String.fromCharCode(97 + Math.floor(rnd() * 26)));
        }
        if (round % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
      }
      await agentEdits;
      await until('every replica and the disk to converge', async () => {
        const texts = clients.map((c) => c.text.toString());
        const disk = await readFile(join(t.workspace, 'shared.txt'), 'utf8');
        return texts.every((text) => text === texts[0]) && disk === texts[0];
      });
      const final = clients[0]!.text.toString();
      for (let i = 0; i < 10; i++) assert.equal(final.split(`agent-${i}\n`).length, 2, `agent-${i} once`);
      assert.ok(final.includes('\r\n'), 'the CRLF line ending is preserved as is');
      const disk = await readFile(join(t.workspace, 'shared.txt'));
      assert.ok(disk.equals(Buffer.from(final, 'utf8')), 'the disk is byte-identical');
      // Edits are audited per client and file in batches, with the resulting revision.
      await until('edit batches audited', async () => (await records('collab_edit')).length > 0);
      const edits = await records('collab_edit');
      assert.ok(edits.length < 60, `batched, not per keystroke (${edits.length} records)`);
      assert.ok(edits.some((r) => r.agent === 'builder') && edits.some((r) => r.agent === 'owner'));
      for (const r of edits) {
        assert.equal(r.params.path, 'shared.txt');
        assert.match(r.outcome.revision, /^[0-9a-f]{64}$/);
        assert.ok(r.outcome.updates >= 1);
      }
      assert.equal((await records('collab_open')).length, 3);
    } finally {
      await mcp.close();
      destroy(...clients);
    }
    await until('connections closed and audited', async () => (await records('collab_close')).length === 3);
    await auditOk();
  });

  it('an offline edit merges on reconnect after the document was unloaded (no duplicated text)', async () => {
    const a = replica(t.url, 'notes.md', agentToken);
    await synced(a);
    a.provider.disconnect();
    await until('the document to unload', () => t.server.collab.documentCount === 0);
    const states = await readdir(join(t.stateDir, 'collab'));
    assert.equal(states.filter((name) => name.endsWith('.ystate')).length, 1, 'its Yjs state persists');
    a.text.insert(0, 'OFFLINE ');
    // Meanwhile an agent changes the file on disk through the API.
    const written = await t.api('/files/notes.md', { method: 'PUT', body: { content: 'hello\nworld\n' } });
    assert.equal(written.status, 200);
    a.provider.connect();
    const b = replica(t.url, 'notes.md', t.token);
    try {
      await synced(a);
      await synced(b);
      await until('both replicas and the disk to merge', async () => {
        const disk = await readFile(join(t.workspace, 'notes.md'), 'utf8');
        return (
          a.text.toString() === 'OFFLINE hello\nworld\n' &&
          b.text.toString() === a.text.toString() &&
          disk === a.text.toString()
        );
      });
    } finally {
      destroy(a, b);
    }
    await until('unloaded again', () => t.server.collab.documentCount === 0);
    await auditOk();
  });

  it('a quiet document goes dormant, still answers new readers, and wakes on the next edit', async () => {
    const a = replica(t.url, 'notes.md', agentToken);
    const b = replica(t.url, 'notes.md', t.token);
    try {
      await Promise.all([synced(a), synced(b)]);
      a.text.insert(0, 'one ');
      await until(
        'the edit on disk',
        async () => (await readFile(join(t.workspace, 'notes.md'), 'utf8')) === 'one hello\n',
      );
      await until('the document to go dormant', () => t.server.collab.dormantCount === 1);
      const c = replica(t.url, 'notes.md', viewerToken);
      try {
        await synced(c);
        assert.equal(c.text.toString(), 'one hello\n', 'a reader is answered from the encoded state');
        assert.equal(t.server.collab.dormantCount, 1, 'a reader does not wake it');
        b.text.insert(b.text.length, 'two\n');
        await until(
          'every replica and the disk to take the edit',
          async () =>
            [a, b, c].every((r) => r.text.toString() === 'one hello\ntwo\n') &&
            (await readFile(join(t.workspace, 'notes.md'), 'utf8')) === 'one hello\ntwo\n',
        );
      } finally {
        destroy(c);
      }
    } finally {
      destroy(a, b);
    }
    await until('documents unloaded', () => t.server.collab.documentCount === 0);
  });

  it("a viewer's edits never land, it is told once, and presence is stamped from the token", async () => {
    const viewer = replica(t.url, 'notes.md', viewerToken);
    const writer = replica(t.url, 'notes.md', agentToken);
    try {
      await synced(viewer);
      await synced(writer);
      viewer.provider.awareness.setLocalStateField('user', { name: 'owner', role: 'owner' });
      viewer.provider.awareness.setLocalStateField('cursor', 3);
      viewer.text.insert(0, 'VIEWER WAS HERE ');
      viewer.text.insert(0, 'AGAIN ');
      writer.text.insert(5, ' there');
      await until('the writer sees the viewer with its real name', () =>
        [...writer.provider.awareness.getStates().values()].some(
          (s) => s['user']?.name === 'watcher' && s['user']?.role === 'viewer' && s['cursor'] === 3,
        ),
      );
      assert.ok(
        ![...writer.provider.awareness.getStates().values()].some((s) => s['user']?.name === 'owner'),
        'a client cannot claim another identity',
      );
      await until('the writer edit on disk', async () =>
        (await readFile(join(t.workspace, 'notes.md'), 'utf8')).includes('hello there'),
      );
      await until('the viewer is told it is read-only', () => viewer.denied.length > 0);
      assert.equal(viewer.denied.length, 1, 'told once');
      assert.match(viewer.denied[0]!, /read-only/);
      const disk = await readFile(join(t.workspace, 'notes.md'), 'utf8');
      assert.equal(disk, 'hello there\n');
      assert.ok(!writer.text.toString().includes('VIEWER'));
    } finally {
      destroy(viewer, writer);
    }
  });

  it('refuses a wrong token and a foreign Origin at the upgrade; the token never reaches logs or audit', async () => {
    const base = `${t.url.replace('http', 'ws')}/collab/notes.md`;
    assert.equal(await upgradeStatus(`${base}?token=not-a-token-1234567890`, {}), 401);
    assert.equal(await upgradeStatus(base, {}), 401);
    assert.equal(await upgradeStatus(`${base}?token=${agentToken}`, { Origin: 'http://evil.example' }), 403);
    assert.equal(await upgradeStatus(`${base}?token=${agentToken}`, { Origin: 'http://localhost:1' }), 403);
    assert.equal(await upgradeStatus(base, { Authorization: `Bearer ${agentToken}` }), 101);
    assert.equal(await upgradeStatus(`${base}?token=${agentToken}`, {}), 101);
    const r = replica(t.url, 'notes.md', agentToken);
    await synced(r);
    destroy(r);
    await until('the document to unload', () => t.server.collab.documentCount === 0);
    const logs = t.logs.join('\n');
    assert.ok(!logs.includes(agentToken) && !logs.includes('not-a-token-1234567890'));
    const audit = JSON.stringify((await t.api('/audit?limit=1000')).body);
    assert.ok(!audit.includes(agentToken));
    await auditOk();
  });

  it('an outside change on disk (new inode or in place) reaches every replica as a delta', async () => {
    const a = replica(t.url, 'shared.txt', agentToken);
    const b = replica(t.url, 'shared.txt', t.token);
    try {
      await synced(a);
      await synced(b);
      // A command, a formatter or git changes the file behind the server's back (a new inode).
      const temp = join(t.workspace, '.shared.tmp');
      await writeFile(temp, 'line one\r\nline two changed\n#MARK\n');
      const { rename } = await import('node:fs/promises');
      await rename(temp, join(t.workspace, 'shared.txt'));
      await until('every replica to see it', () =>
        [a, b].every((r) => r.text.toString() === 'line one\r\nline two changed\n#MARK\n'),
      );
      // In-place rewrite (same inode), then an append.
      await writeFile(join(t.workspace, 'shared.txt'), 'line one\r\nline two changed\n#MARK\ntail\n');
      await until('the append to arrive', () => [a, b].every((r) => r.text.toString().endsWith('tail\n')));
    } finally {
      destroy(a, b);
    }
  });

  it('cannot open a file the policy hides; protected files open read-only and stay untouched', async () => {
    const hidden = replica(t.url, '.env', agentToken);
    const binary = replica(t.url, 'blob.bin', agentToken);
    const missing = replica(t.url, 'nope.txt', agentToken);
    await symlink('/etc', join(t.workspace, 'escape'));
    const outside = replica(t.url, 'escape/hostname', agentToken);
    const slashed = replica(t.url, '..%2F..%2Fetc%2Fpasswd', agentToken);
    const git = replica(t.url, '.git/config', agentToken);
    const vscode = replica(t.url, '.vscode/settings.json', agentToken);
    try {
      await until('the hidden file to be refused', () => hidden.closes.length > 0);
      assert.equal(hidden.closes[0]!.code, 4403);
      assert.match(hidden.closes[0]!.reason, /POLICY_DENIED/);
      assert.equal(hidden.text.toString(), '');
      await until('the binary file to be refused', () => binary.closes.length > 0);
      assert.equal(binary.closes[0]!.code, 4415);
      await until('the missing file to be refused', () => missing.closes.length > 0);
      assert.equal(missing.closes[0]!.code, 4404);
      await until(
        'the escaping rooms to be refused',
        () => outside.closes.length > 0 && slashed.closes.length > 0,
      );
      assert.equal(outside.closes[0]!.code, 4403);
      assert.match(outside.closes[0]!.reason, /PATH_OUTSIDE_WORKSPACE/);
      assert.equal(slashed.closes[0]!.code, 4400);
      await synced(git);
      await synced(vscode);
      assert.equal(git.text.toString(), '[core]\n');
      git.text.insert(0, '[core]\n\thooksPath = /tmp/evil\n');
      vscode.text.insert(1, '"terminal.integrated.shell.linux": "/tmp/x"');
      await until('both told read-only', () => git.denied.length > 0 && vscode.denied.length > 0);
      assert.match(git.denied[0]!, /policy denies write/);
    } finally {
      destroy(hidden, binary, missing, outside, slashed, git, vscode);
    }
    await until('documents unloaded', () => t.server.collab.documentCount === 0);
    assert.equal(await readFile(join(t.workspace, '.git', 'config'), 'utf8'), '[core]\n');
    assert.equal(await readFile(join(t.workspace, '.vscode', 'settings.json'), 'utf8'), '{}\n');
    assert.equal(await readFile(join(t.workspace, '.env'), 'utf8'), 'SECRET=1\n');
    const opens = await records('collab_open');
    assert.ok(opens.some((r) => r.params.path === '.env' && r.decision === 'deny'));
    assert.ok(opens.some((r) => r.params.path === '.git/config' && r.outcome.readOnly === true));
    await auditOk();
  });

  it("another agent's exclusive lease makes the document read-only until it is released", async () => {
    const rules = ['allow read(**)', 'allow write(**)', 'deny write(.git/**)', 'deny lease-conflict(**)'];
    assert.equal((await t.api('/policies', { method: 'PUT', body: { id: 'exclusive', rules } })).status, 200);
    const agent = replica(t.url, 'notes.md', agentToken);
    try {
      await synced(agent);
      const lease = await t.api('/leases', {
        method: 'POST',
        body: { paths: ['notes.md'], reason: 'rewriting notes' },
      });
      assert.equal(lease.status, 200, JSON.stringify(lease.body));
      await until('the agent to be told it is read-only', () => agent.denied.length > 0);
      assert.match(agent.denied[0]!, /owner holds an exclusive lease \(rewriting notes\)/);
      agent.text.insert(0, 'KEPT ');
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(
        await readFile(join(t.workspace, 'notes.md'), 'utf8'),
        'hello\n',
        'nothing lands under the lease',
      );
      const released = await t.api(`/leases/${lease.body.id}`, { method: 'DELETE' });
      assert.equal(released.status, 200, JSON.stringify(released.body));
      // Writable again: the client is asked to reconnect and then sends what it kept, like an offline edit.
      await until('the reconnect request', () => agent.closes.some((c) => c.code === 4100));
      agent.text.insert(agent.text.length, 'after\n');
      await until(
        'both edits to land once the lease is gone',
        async () => (await readFile(join(t.workspace, 'notes.md'), 'utf8')) === 'KEPT hello\nafter\n',
      );
    } finally {
      destroy(agent);
    }
  });

  it('closes at once on token revocation and on a policy change; a deleted file closes its document', async () => {
    const agent = replica(t.url, 'notes.md', agentToken);
    const owner = replica(t.url, 'notes.md', t.token);
    const other = replica(t.url, 'shared.txt', t.token);
    try {
      await Promise.all([synced(agent), synced(owner), synced(other)]);
      const revoked = await t.api('/tokens/builder', { method: 'DELETE' });
      assert.equal(revoked.status, 200);
      await until('the revoked agent to be closed', () => agent.closes.length > 0);
      assert.equal(agent.closes[0]!.code, 4401);
      await until('the client to stop reconnecting', () => !agent.provider.shouldConnect);

      const viewer = replica(t.url, 'notes.md', viewerToken);
      await synced(viewer);
      const policy = await t.api('/policies', {
        method: 'PUT',
        body: { id: 'no-notes', rules: ['allow read(**)', 'allow write(**)', 'deny read(notes.md) @viewer'] },
      });
      assert.equal(policy.status, 200, JSON.stringify(policy.body));
      await until('the viewer to be closed', () => viewer.closes.length > 0);
      assert.equal(viewer.closes[0]!.code, 4403);
      assert.equal(owner.closes.length, 0, 'the owner may still read');
      destroy(viewer);

      await rm(join(t.workspace, 'shared.txt'));
      await until('the deleted file to close its document', () => other.closes.length > 0);
      assert.equal(other.closes[0]!.code, 4404);
      assert.match(other.closes[0]!.reason, /moved or deleted/);
      assert.ok(!existsSync(join(t.workspace, 'shared.txt')), 'a closed document does not recreate its file');
    } finally {
      destroy(agent, owner, other);
    }
    await until('documents unloaded', () => t.server.collab.documentCount === 0);
    await auditOk();
  });
});

/**
 * A y-protocols client on a raw WebSocket, so a test sees every frame the server sends: it syncs
 * like a stock client, sends each local change as its own update frame (as y-websocket does), and
 * records the updates it receives.
 */
interface RawReplica {
  doc: Y.Doc;
  text: Y.Text;
  ws: WebSocket;
  /** Incremental updates received (sync message type 2), in order. */
  updates: Uint8Array[];
  closes: Array<{ code: number; reason: string }>;
  /** Sends raw bytes as one y-websocket update frame. */
  sendUpdate(update: Uint8Array): void;
}

const REMOTE = Symbol('remote');

function syncFrame(step: number, payload: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarUint(encoder, step);
  encoding.writeVarUint8Array(encoder, payload);
  return encoding.toUint8Array(encoder);
}

async function rawReplica(url: string, room: string, token: string): Promise<RawReplica> {
  const doc = new Y.Doc();
  const ws = new WebSocket(`${url.replace('http', 'ws')}/collab/${room}?token=${token}`);
  const r: RawReplica = {
    doc,
    text: doc.getText('content'),
    ws,
    updates: [],
    closes: [],
    sendUpdate: (update) => ws.send(syncFrame(2, update)),
  };
  let synced = false;
  ws.on('close', (code, reason) => r.closes.push({ code, reason: reason.toString() }));
  ws.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(new Uint8Array(data));
    if (decoding.readVarUint(decoder) !== 0) return;
    const step = decoding.readVarUint(decoder);
    const payload = decoding.readVarUint8Array(decoder);
    if (step === 0) {
      ws.send(syncFrame(1, Y.encodeStateAsUpdate(doc, payload)));
      return;
    }
    Y.applyUpdate(doc, payload, REMOTE);
    if (step === 1) synced = true;
    else r.updates.push(payload);
  });
  doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== REMOTE && ws.readyState === ws.OPEN) r.sendUpdate(update);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.send(syncFrame(0, Y.encodeStateVector(doc)));
      resolve();
    });
    ws.once('error', reject);
  });
  await until('the raw replica to sync', () => synced);
  return r;
}

/** Clock ranges of `clientId` in an update: where its structs start and end, or null if none. */
function rangeOf(update: Uint8Array, clientId: number): { from: number; to: number } | null {
  const meta = Y.parseUpdateMeta(update);
  const to = meta.to.get(clientId);
  return to === undefined ? null : { from: meta.from.get(clientId)!, to };
}

describe('live co-editing: relaying updates', function () {
  this.timeout(60_000);
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer({ collab: { flushDelayMs: 50, maxFlushDelayMs: 200 } }, async (ws) => {
      await writeFile(join(ws, 'relay.txt'), 'relay\n'.repeat(50));
    });
  });

  afterEach(async () => {
    await t.close();
  });

  it('relays each writer once, in order, batched per turn, and never back to the writer', async () => {
    const [a, b, watcher] = [
      await rawReplica(t.url, 'relay.txt', t.token),
      await rawReplica(t.url, 'relay.txt', t.token),
      await rawReplica(t.url, 'relay.txt', t.token),
    ];
    try {
      const rnd = random(7);
      // Two writers type a burst of 150 single-edit updates each, at once; the watcher only reads.
      for (let i = 0; i < 150; i++) {
        for (const w of [a, b]) {
          const at = Math.floor(rnd() * w.text.length);
          if (rnd() < 0.3 && at < w.text.length - 2) w.text.delete(at, 1 + Math.floor(rnd() * 2));
          else w.text.insert(at, String.fromCharCode(97 + Math.floor(rnd() * 26)));
        }
      }
      await until('every replica and the disk to converge', async () => {
        const texts = [a, b, watcher].map((r) => r.text.toString());
        const disk = await readFile(join(t.workspace, 'relay.txt'), 'utf8');
        return texts.every((text) => text === texts[0]) && disk === texts[0];
      });
      for (const [self, other] of [
        [a, b],
        [b, a],
      ] as const) {
        assert.ok(
          self.updates.every((u) => rangeOf(u, self.doc.clientID) === null),
          'a writer never receives its own updates back',
        );
        assert.ok(self.updates.some((u) => rangeOf(u, other.doc.clientID) !== null));
      }
      for (const w of [a, b]) {
        // The watcher gets the writer's 150 edits once, in order: clock ranges follow each other.
        let next = 0;
        const frames = watcher.updates.map((u) => rangeOf(u, w.doc.clientID)).filter((r) => r !== null);
        for (const range of frames) {
          assert.equal(range.from, next, 'no gap, no overlap: each update once and in order');
          next = range.to;
        }
        assert.equal(next, Y.decodeStateVector(Y.encodeStateVector(w.doc)).get(w.doc.clientID));
        assert.ok(frames.length < 150, `merged per turn, not one frame per edit (${frames.length} frames)`);
      }
      // Each writer's burst is taken in one transaction per turn, yet every update is audited.
      const audited = async (): Promise<number> => {
        const res = await t.api('/audit?limit=1000');
        return (res.body.records as any[])
          .filter((r) => r.op === 'collab_edit')
          .reduce((sum: number, r) => sum + (r.outcome.updates as number), 0);
      };
      await until('every update audited', async () => (await audited()) >= 300);
      assert.equal(await audited(), 300);
    } finally {
      for (const r of [a, b, watcher]) r.ws.close();
    }
    await until('the document to unload', () => t.server.collab.documentCount === 0);
  });

  it("through the real server, an agent's save announcement cannot make an outside change be dropped", async () => {
    const agentToken = (await t.api('/tokens', { method: 'POST', body: { name: 'sneaky', role: 'agent' } }))
      .body.token as string;
    const agent = await rawReplica(t.url, 'relay.txt', agentToken);
    const watcher = await rawReplica(t.url, 'relay.txt', t.token);
    try {
      const outside = `${agent.text.toString()}from a command\n`;
      const sha256 = createHash('sha256').update(outside).digest('hex');
      const acked = new Promise<void>((resolve) =>
        agent.ws.on('message', (data: Buffer) => {
          if (data[0] === MESSAGE_SAVING) resolve();
        }),
      );
      agent.ws.send(encodeSaving(sha256));
      await acked;
      await writeFile(join(t.workspace, 'relay.txt'), outside);
      await until('the outside change in every replica', () =>
        [agent, watcher].every((r) => r.text.toString() === outside),
      );
      assert.equal(await readFile(join(t.workspace, 'relay.txt'), 'utf8'), outside);
    } finally {
      for (const r of [agent, watcher]) r.ws.close();
    }
  });

  it('what a malformed update changed before it failed still reaches the others and the disk', async () => {
    const sender = await rawReplica(t.url, 'relay.txt', t.token);
    const other = await rawReplica(t.url, 'relay.txt', t.token);
    try {
      // A valid change (insert, then delete) cut short inside its delete set: Yjs takes the
      // insert before the decoding fails.
      const scratch = new Y.Doc();
      Y.applyUpdate(scratch, Y.encodeStateAsUpdate(sender.doc));
      let update: Uint8Array | null = null;
      scratch.on('update', (u: Uint8Array) => (update = u));
      scratch.transact(() => {
        scratch.getText('content').insert(0, 'PARTIAL ');
        scratch.getText('content').delete(20, 3);
      });
      sender.sendUpdate(update!.subarray(0, update!.length - 2));
      await until('the sender to be closed for the malformed message', () => sender.closes.length > 0);
      assert.equal(sender.closes[0]!.code, 4400);
      await until('the other replica and the disk to hold what was taken', async () => {
        const disk = await readFile(join(t.workspace, 'relay.txt'), 'utf8');
        return other.text.toString().startsWith('PARTIAL relay\n') && disk === other.text.toString();
      });
      scratch.destroy();
    } finally {
      sender.ws.close();
      other.ws.close();
    }
  });
});

describe('live co-editing: writes under continuous typing', function () {
  this.timeout(60_000);
  let t: TestServer;

  beforeEach(async () => {
    // The quiet period is far longer than the gaps between keystrokes: only the cap can write.
    t = await startTestServer({ collab: { flushDelayMs: 5_000, maxFlushDelayMs: 150 } }, async (ws) => {
      await writeFile(join(ws, 'typing.txt'), 'start\n');
    });
  });

  afterEach(async () => {
    await t.close();
  });

  it('a document edited without pause is still written within the longest flush delay', async () => {
    const typist = replica(t.url, 'typing.txt', t.token);
    const reader = replica(t.url, 'typing.txt', t.token);
    try {
      await Promise.all([synced(typist), synced(reader)]);
      let written = false;
      for (let i = 0; i < 400 && !written; i++) {
        typist.text.insert(typist.text.length, String.fromCharCode(97 + (i % 26)));
        await new Promise((resolve) => setTimeout(resolve, 10));
        written = (await readFile(join(t.workspace, 'typing.txt'), 'utf8')) !== 'start\n';
      }
      assert.ok(written, 'written while the typing went on');
      const disk = await readFile(join(t.workspace, 'typing.txt'), 'utf8');
      assert.ok(typist.text.toString().startsWith(disk), 'the disk holds a version the typist passed');
      const typed = typist.text.toString();
      await until('the reader and the disk to catch up once the typing stops', async () => {
        const now = await readFile(join(t.workspace, 'typing.txt'), 'utf8');
        return reader.text.toString() === typed && now === typed;
      });
    } finally {
      destroy(typist, reader);
    }
  });
});

describe('live co-editing: size caps', function () {
  this.timeout(60_000);
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer(
      {
        collab: {
          flushDelayMs: 20,
          maxFlushDelayMs: 100,
          maxDocumentBytes: 1024,
          maxUpdateBytes: 512,
          dormantAfterMs: 10,
        },
      },
      async (ws) => {
        await writeFile(join(ws, 'big.txt'), 'x'.repeat(2000));
        await writeFile(join(ws, 'small.txt'), 'small\n');
      },
    );
  });

  afterEach(async () => {
    await t.close();
  });

  it('refuses a file over the cap, an oversized update, and growth past the document cap', async () => {
    const big = replica(t.url, 'big.txt', t.token);
    const burst = replica(t.url, 'small.txt', t.token);
    try {
      await until('the big file to be refused', () => big.closes.length > 0);
      assert.equal(big.closes[0]!.code, 4413);
      assert.match(big.closes[0]!.reason, /FILE_TOO_LARGE/);
      await synced(burst);
      burst.text.insert(0, 'y'.repeat(600));
      await until('the oversized update to close the connection', () => burst.closes.length > 0);
      assert.equal(burst.closes[0]!.code, 4413);
      assert.match(burst.closes[0]!.reason, /over the cap/);
    } finally {
      destroy(big, burst);
    }
    const grower = replica(t.url, 'small.txt', t.token);
    try {
      await synced(grower);
      for (let i = 0; i < 5 && grower.closes.length === 0; i++) {
        grower.text.insert(0, 'z'.repeat(300));
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      await until('growth past the cap to close the connection', () => grower.closes.length > 0);
      assert.equal(grower.closes[0]!.code, 4413);
    } finally {
      destroy(grower);
    }
    await until('documents unloaded', () => t.server.collab.documentCount === 0);
    const disk = await readFile(join(t.workspace, 'small.txt'), 'utf8');
    assert.ok(Buffer.byteLength(disk) <= 1024, `the file stays under the cap (${disk.length})`);
    assert.ok(!disk.includes('y'), 'the oversized update never landed');
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });
});

describe('live co-editing: commands in the sandbox (real Docker engine)', function () {
  this.timeout(120_000);
  let t: TestServer;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  beforeEach(async () => {
    t = await startTestServer({ defaultImage: TEST_IMAGE, collab: { diskPollMs: 60_000 } }, async (ws) => {
      await writeFile(join(ws, 'notes.md'), 'hello\n');
    });
    const policy = {
      id: 'exec',
      rules: ['allow read(**)', 'allow write(**)', 'deny write(.git/**)', 'allow exec(*)'],
    };
    assert.equal((await t.api('/policies', { method: 'PUT', body: policy })).status, 200);
  });

  afterEach(async () => {
    await t.close();
  });

  it("a command's change to an open file reaches every replica when the command ends", async () => {
    const a = replica(t.url, 'notes.md', t.token);
    const b = replica(t.url, 'notes.md', t.token);
    try {
      await synced(a);
      await synced(b);
      const ran = await t.api('/execute', {
        method: 'POST',
        body: { command: 'echo from-sandbox >> notes.md' },
      });
      assert.equal(ran.status, 200, JSON.stringify(ran.body));
      assert.equal(ran.body.exitCode, 0, JSON.stringify(ran.body));
      // The disk poll is set to a minute here: only the check after the command can bring it in.
      await until('both replicas to see the command output', () =>
        [a, b].every((r) => r.text.toString() === 'hello\nfrom-sandbox\n'),
      );
    } finally {
      destroy(a, b);
    }
  });
});
