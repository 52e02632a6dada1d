import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as decoding from 'lib0/decoding';
import * as Y from 'yjs';
import { CollabHub, type CollabConnection, type EditBatch } from '../../src/core/collab';
import { encodeSyncStep1, encodeUpdate } from '../../src/core/collab/protocol';
import { ResourceManager } from '../../src/core/resources';
import { OWNER } from '../../src/protocol/principal';
import { makeTempWorkspace, type TempWorkspace } from '../helpers/fixtures';

/**
 * The hub driven directly, so that an update and the end of its connection happen in one turn of the
 * event loop (over a socket, they never line up reliably): updates are applied at the end of a turn,
 * and nothing that ends a document may lose what was received before it.
 */
describe('collab hub: updates received in the turn a document ends', () => {
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

  /** Opens notes.txt as a client and syncs a replica; returns the connection and a way to edit. */
  async function join(): Promise<{ connection: CollabConnection; edit: (text: string) => void }> {
    const replica = new Y.Doc();
    const client = {
      send: (message: Uint8Array): void => {
        const decoder = decoding.createDecoder(message);
        if (decoding.readVarUint(decoder) !== 0) return;
        if (decoding.readVarUint(decoder) === 0) return;
        Y.applyUpdate(replica, decoding.readVarUint8Array(decoder), 'server');
      },
      close: (): void => undefined,
    };
    const target = resources.resolve('notes.txt', { followFinal: true });
    const connection = await hub.open(target, { principal: OWNER, sessionId: 's1' }, client, {
      readOnly: false,
    });
    target.close();
    connection.receive(encodeSyncStep1(new Uint8Array([0])));
    assert.equal(replica.getText('content').toString(), 'hello\n');
    const edit = (text: string): void => {
      const before = Y.encodeStateVector(replica);
      replica.getText('content').insert(0, text);
      connection.receive(encodeUpdate(Y.encodeStateAsUpdate(replica, before)));
    };
    return { connection, edit };
  }

  it('the last connection ends right after its update: the update is written and audited', async () => {
    const { connection, edit } = await join();
    edit('one ');
    edit('two ');
    connection.end(1000, 'bye');
    await hub.close();
    assert.equal(await readFile(path.join(ws.root, 'notes.txt'), 'utf8'), 'two one hello\n');
    assert.equal(
      audited.reduce((sum, batch) => sum + batch.updates, 0),
      2,
    );
  });

  it('an outside change checked in the turn of an update: both survive', async () => {
    const { edit } = await join();
    edit('mine ');
    writeFileSync(path.join(ws.root, 'notes.txt'), 'hello\nfrom a formatter\n');
    hub.checkDisk();
    await hub.close();
    assert.equal(await readFile(path.join(ws.root, 'notes.txt'), 'utf8'), 'mine hello\nfrom a formatter\n');
  });

  it('the server stops right after an update: the update is written', async () => {
    const { edit } = await join();
    edit('last ');
    await hub.close();
    assert.equal(await readFile(path.join(ws.root, 'notes.txt'), 'utf8'), 'last hello\n');
  });
});
