import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { mergeInGroups } from '../../src/core/collab';

/** A deterministic pseudo-random generator, so failures replay. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** `writers` replicas of `base` each make `edits` single-edit updates; all of them, interleaved. */
function concurrentUpdates(base: Uint8Array, writers: number, edits: number): Uint8Array[] {
  const perWriter: Uint8Array[][] = [];
  for (let w = 0; w < writers; w++) {
    const doc = new Y.Doc();
    Y.applyUpdate(doc, base);
    const text = doc.getText('content');
    const updates: Uint8Array[] = [];
    doc.on('update', (update: Uint8Array) => updates.push(update));
    const rnd = random(w + 1);
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(rnd() * text.length);
      if (rnd() < 0.3 && at < text.length - 3) text.delete(at, 1 + Math.floor(rnd() * 3));
      else text.insert(at, 'xyz'.slice(0, 1 + Math.floor(rnd() * 3)));
    }
    perWriter.push(updates);
    doc.destroy();
  }
  const all: Uint8Array[] = [];
  for (let i = 0; i < edits; i++) for (const updates of perWriter) all.push(updates[i]!);
  return all;
}

function replay(base: Uint8Array, ...updates: Uint8Array[]): { text: string; state: Uint8Array } {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, base);
  for (const update of updates) Y.applyUpdate(doc, update);
  const result = { text: doc.getText('content').toString(), state: Y.encodeStateVector(doc) };
  doc.destroy();
  return result;
}

describe('collab update merging', () => {
  const seed = new Y.Doc();
  seed.getText('content').insert(0, 'shared text line\n'.repeat(40));
  const base = Y.encodeStateAsUpdate(seed);

  it('one writer: grouped merging of many updates equals applying them one by one', () => {
    for (const count of [1, 2, 31, 32, 33, 500, 1100]) {
      const updates = concurrentUpdates(base, 1, count);
      const merged = mergeInGroups(updates);
      assert.deepEqual(replay(base, merged), replay(base, ...updates), `${count} updates`);
      assert.deepEqual(merged, Y.mergeUpdates(updates), `${count} updates: the same bytes as one merge`);
    }
  });

  it('concurrent writers: the merged update converges to the same text and state vector', () => {
    const updates = concurrentUpdates(base, 5, 120);
    const merged = mergeInGroups(updates);
    const expected = replay(base, ...updates);
    assert.deepEqual(replay(base, merged), expected);
    // Merged in any grouping, the result takes the same effect as the single merge.
    assert.deepEqual(replay(base, Y.mergeUpdates(updates)), expected);
    assert.ok(merged.length < updates.reduce((sum, u) => sum + u.length, 0), 'smaller than the parts');
  });
});
