import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as decoding from 'lib0/decoding';
import * as Y from 'yjs';
import { CollabHub, type CollabConnection, type EditBatch } from '../../src/core/collab';
import { encodeSyncStep1, encodeUpdate } from '../../src/core/collab/protocol';
import { ResourceManager } from '../../src/core/resources';
import { OWNER, type Principal } from '../../src/protocol/principal';
import { encodeSaving, MESSAGE_SAVING, readSaving } from '../../src/protocol/saving';
import { makeTempWorkspace, type TempWorkspace } from '../helpers/fixtures';

/** A client of the hub driven directly (no socket): its connection, replica and what it was told. */
interface Joined {
  connection: CollabConnection;
  replica: Y.Doc;
  /** Inserts `text` at `at` (default 0) in the replica and sends the update. */
  edit: (text: string, at?: number) => void;
  /** Saves this client announced that the server acknowledged. */
  acks: string[];
}

/**
 * The hub driven directly, so that what happens in one turn of the event loop over a socket can be
 * made to happen in one turn here: updates and the end of their connection, updates and a change
 * on disk, and an editor's announced save and its write.
 */
describe('collab hub', () => {
  let ws: TempWorkspace;
  let resources: ResourceManager;
  let hub: CollabHub;
  const audited: EditBatch[] = [];

  beforeEach(async () => {
    ws = await makeTempWorkspace('collab-hub', { files: { 'notes.txt': 'hello\n' } });
    resources = await ResourceManager.create({ root: ws.root });
    audited.length = 0;
    hub = new CollabHub({
      resources,
      stateDir: path.join(ws.base, 'state'),
      limits: { flushDelayMs: 50, maxFlushDelayMs: 200 },
      auditor: { edit: (_peer, batch) => void audited.push(batch) },
      mayWrite: () => true,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
  });

  afterEach(async () => {
    await hub.close();
    await resources.close();
    await ws.remove();
  });

  /** Opens notes.txt as a client of `principal` and syncs a replica. */
  async function join(principal: Principal = OWNER): Promise<Joined> {
    const replica = new Y.Doc();
    const acks: string[] = [];
    const client = {
      send: (message: Uint8Array): void => {
        const decoder = decoding.createDecoder(message);
        const type = decoding.readVarUint(decoder);
        if (type === MESSAGE_SAVING) acks.push(readSaving(decoder));
        if (type !== 0 || decoding.readVarUint(decoder) === 0) return;
        Y.applyUpdate(replica, decoding.readVarUint8Array(decoder), 'server');
      },
      close: (): void => undefined,
    };
    const target = resources.resolve('notes.txt', { followFinal: true });
    const peer = { principal, sessionId: principal.name };
    const connection = await hub.open(target, peer, client, { readOnly: false });
    target.close();
    connection.receive(encodeSyncStep1(new Uint8Array([0])));
    assert.equal(replica.getText('content').toString(), 'hello\n');
    const edit = (text: string, at = 0): void => {
      const before = Y.encodeStateVector(replica);
      replica.getText('content').insert(at, text);
      connection.receive(encodeUpdate(Y.encodeStateAsUpdate(replica, before)));
    };
    return { connection, replica, edit, acks };
  }

  const notes = (): string => path.join(ws.root, 'notes.txt');
  const disk = (): Promise<string> => readFile(notes(), 'utf8');
  const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
  /** Has the hub look at the disk now and gives it time to take the change in. */
  async function checkDisk(): Promise<void> {
    hub.checkDisk();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(`timed out waiting for ${what}`);
  };

  describe('updates received in the turn a document ends', () => {
    it('the last connection ends right after its update: the update is written and audited', async () => {
      const { connection, edit } = await join();
      edit('one ');
      edit('two ');
      connection.end(1000, 'bye');
      await hub.close();
      assert.equal(await disk(), 'two one hello\n');
      assert.equal(
        audited.reduce((sum, batch) => sum + batch.updates, 0),
        2,
      );
    });

    it('an outside change checked in the turn of an update: both survive', async () => {
      const { edit } = await join();
      edit('mine ');
      writeFileSync(notes(), 'hello\nfrom a formatter\n');
      hub.checkDisk();
      await hub.close();
      assert.equal(await disk(), 'mine hello\nfrom a formatter\n');
    });

    it('the server stops right after an update: the update is written', async () => {
      const { edit } = await join();
      edit('last ');
      await hub.close();
      assert.equal(await disk(), 'last hello\n');
    });
  });

  describe("an editor writing the file itself (VS Code's save)", () => {
    it('the file saved with exactly the shared text is taken as written, not merged in again', async () => {
      const { edit, replica } = await join();
      edit('typed ');
      // VS Code saves the editor before the server's own write.
      writeFileSync(notes(), 'typed hello\n');
      await checkDisk();
      assert.equal(replica.getText('content').toString(), 'typed hello\n');
      assert.equal(await disk(), 'typed hello\n');
    });

    it('an announced save of an earlier state is not merged; the shared text is written over it', async () => {
      const owner = await join();
      const agent = await join({ kind: 'agent', name: 'builder', role: 'agent' });
      owner.edit('typed ');
      const saved = 'typed hello\n';
      owner.connection.receive(encodeSaving(sha256(saved)));
      assert.deepEqual(owner.acks, [sha256(saved)], 'the save is acknowledged');
      // Before the server sees the file the editor wrote, an agent edits elsewhere in the text.
      agent.edit('agent line\n', agent.replica.getText('content').length);
      await new Promise((resolve) => setImmediate(resolve));
      writeFileSync(notes(), saved);
      await checkDisk();
      const expected = 'typed hello\nagent line\n';
      assert.equal(owner.replica.getText('content').toString(), expected, "the agent's edit survives");
      await until('the shared text on disk', async () => (await disk()) === expected);
    });

    it("an agent's announcement is acknowledged but changes nothing: outside changes still merge", async () => {
      const agent = await join({ kind: 'agent', name: 'builder', role: 'agent' });
      const outside = 'hello\nfrom a command\n';
      agent.connection.receive(encodeSaving(sha256(outside)));
      assert.deepEqual(agent.acks, [sha256(outside)]);
      writeFileSync(notes(), outside);
      await checkDisk();
      assert.equal(agent.replica.getText('content').toString(), outside);
      assert.equal(await disk(), outside);
    });

    it('a malformed saving message ends the connection as a bad request', async () => {
      const closes: number[] = [];
      const target = resources.resolve('notes.txt', { followFinal: true });
      const connection = await hub.open(
        target,
        { principal: OWNER, sessionId: 'x' },
        { send: () => undefined, close: (code) => void closes.push(code) },
        { readOnly: false },
      );
      target.close();
      connection.receive(new Uint8Array([MESSAGE_SAVING, 3, 0x61, 0x62, 0x63]));
      assert.deepEqual(closes, [4400]);
    });
  });
});
