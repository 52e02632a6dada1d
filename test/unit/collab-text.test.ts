import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { changedRegion, mergeText, replaceText } from '../../src/core/collab';
import { diffHunks } from '../../src/core/collab/diff';

function text(initial: string): Y.Text {
  const doc = new Y.Doc();
  const t = doc.getText('content');
  t.insert(0, initial);
  return t;
}

describe('collab text deltas', () => {
  it('finds the one changed region and never splits a surrogate pair', () => {
    assert.equal(changedRegion('same', 'same'), null);
    assert.deepEqual(changedRegion('abcXdef', 'abcYYdef'), { start: 3, endA: 4, endB: 5 });
    // U+1F600 and U+1F601 share their high surrogate: the region covers the whole pair.
    assert.deepEqual(changedRegion('a\u{1F600}b', 'a\u{1F601}b'), { start: 1, endA: 3, endB: 3 });
  });

  it('replaces with a minimal delete + insert, keeping CRLF bytes as they are', () => {
    const t = text('one\r\ntwo\r\nthree\n');
    const size = replaceText(t, 'one\r\nTWO\r\nthree\n', 'agent');
    assert.equal(t.toString(), 'one\r\nTWO\r\nthree\n');
    assert.deepEqual(size, { insertedBytes: 3, deletedChars: 3 });
  });

  it('merges a change from disk with unsaved typing elsewhere (both survive)', () => {
    const base = 'alpha\nbeta\ngamma\n';
    const t = text(base);
    t.insert(0, '>> '); // a person typing at the top
    mergeText(t, base, 'alpha\nbeta\ngamma\ndelta\n', 'disk'); // the agent appended at the end
    assert.equal(t.toString(), '>> alpha\nbeta\ngamma\ndelta\n');
    const u = text(base);
    u.insert(u.length, 'typed at the end\n');
    mergeText(u, base, 'ALPHA\nbeta\ngamma\n', 'disk');
    assert.equal(u.toString(), 'ALPHA\nbeta\ngamma\ntyped at the end\n');
  });

  it('lets the incoming version win where both changed the same region', () => {
    const base = 'one two three';
    const t = text(base);
    t.delete(5, 2); // a person deletes inside the word the agent replaces
    mergeText(t, base, 'one 2 three', 'disk');
    assert.equal(t.toString(), 'one 2 three');
    const u = text(base);
    u.insert(4, 'TYPED '); // an insertion just before the replaced word is not an overlap
    mergeText(u, base, 'one 2 three', 'disk');
    assert.equal(u.toString(), 'one TYPED 2 three');
  });

  it("takes one person's typing seen at two moments once (an editor saved while its user kept typing)", () => {
    const base = 'save me\n';
    // The disk holds an earlier moment of the typing the shared text already has: nothing changes.
    const t = text(base);
    t.insert(8, ' w0 w250');
    mergeText(t, base, 'save me\n w0 w2', 'disk');
    assert.equal(t.toString(), 'save me\n w0 w250');
    // The same typing exactly: nothing changes either.
    mergeText(t, base, 'save me\n w0 w250', 'disk');
    assert.equal(t.toString(), 'save me\n w0 w250');
    // The disk is further along: only the rest is added.
    const u = text(base);
    u.insert(8, ' w0');
    mergeText(u, base, 'save me\n w0 w250', 'disk');
    assert.equal(u.toString(), 'save me\n w0 w250');
    // Different insertions at one point are both kept, as before.
    const v = text(base);
    v.insert(8, 'mine');
    mergeText(v, base, 'save me\ntheirs', 'disk');
    assert.equal(v.toString(), 'save me\ntheirsmine');
  });

  it('takes an earlier moment of the typing once even when other edits came in meanwhile', () => {
    const base = 'save me\n w0 w360';
    // The shared text: an agent's line at the top, and the typing went on at the end.
    const t = text(base);
    t.insert(0, 'agent 4\n');
    t.insert(t.length, ' w400');
    // The editor saved the file in the middle of that typing.
    mergeText(t, base, 'save me\n w0 w360 w', 'disk');
    assert.equal(t.toString(), 'agent 4\nsave me\n w0 w360 w400');
    // An earlier moment without the agent's line, while the agent edits a line further down.
    const lines = ['one', 'two', 'three', 'four', 'five'].map((l) => `${l}\n`).join('');
    const u = text(lines);
    u.insert(lines.indexOf('four'), 'AGENT ');
    u.insert(0, 'typed ');
    mergeText(u, lines, `typed ${lines}`, 'disk');
    assert.equal(u.toString(), 'typed one\ntwo\nthree\nAGENT four\nfive\n');
  });

  it('keeps separate changes of both sides, each once, and lets the incoming side win only where both changed', () => {
    const base = 'a\nb\nc\nd\ne\nf\n';
    const t = text(base);
    t.insert(base.indexOf('b'), 'mine-');
    t.delete(base.length + 5 - 2, 1); // 'f' goes on this side
    mergeText(t, base, 'a\nb\nC\nd\ne!\nf\n', 'disk');
    assert.equal(t.toString(), 'a\nmine-b\nC\nd\ne!\n\n');
    const u = text(base);
    u.delete(base.indexOf('c'), 1);
    u.insert(base.indexOf('c'), 'mine');
    mergeText(u, base, 'a\nb\ntheirs\nd\ne\nf\n', 'disk');
    assert.equal(u.toString(), 'a\nb\ntheirs\nd\ne\nf\n');
  });
});

describe('collab line diff', () => {
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }

  it('hunks rebuild the other text, in order and without overlap (500 random pairs)', () => {
    const rnd = random(11);
    const words = ['alpha', 'beta', '', 'gamma', 'x', '\u{1F600}', 'delta\r'];
    for (let round = 0; round < 500; round++) {
      const lines = Array.from(
        { length: 1 + Math.floor(rnd() * 30) },
        () => words[Math.floor(rnd() * words.length)],
      );
      const a = lines.join('\n') + (rnd() < 0.5 ? '\n' : '');
      let b = a;
      for (let e = Math.floor(rnd() * 6); e > 0; e--) {
        const at = Math.floor(rnd() * (b.length + 1));
        const cut = rnd() < 0.5 ? Math.floor(rnd() * 6) : 0;
        b =
          b.slice(0, at) +
          (rnd() < 0.7 ? words[Math.floor(rnd() * words.length)] + (rnd() < 0.3 ? '\n' : '') : '') +
          b.slice(at + cut);
      }
      const hunks = diffHunks(a, b);
      let rebuilt = '';
      let at = 0;
      for (const h of hunks) {
        assert.ok(
          h.aStart >= at && h.aEnd >= h.aStart && h.bEnd >= h.bStart,
          JSON.stringify({ a, b, hunks }),
        );
        rebuilt += a.slice(at, h.aStart) + b.slice(h.bStart, h.bEnd);
        at = h.aEnd;
      }
      rebuilt += a.slice(at);
      assert.equal(rebuilt, b, JSON.stringify({ a, b, hunks }));
      if (a === b) assert.deepEqual(hunks, []);
    }
  });

  it('finds separate hunks for separate edits of a large text', () => {
    const a = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    const b = a.replace('line 10\n', 'line ten\n').replace('line 19990\n', 'line 19990 changed\n');
    assert.deepEqual(
      diffHunks(a, b).map((h) => b.slice(h.bStart, h.bEnd)),
      ['ten', ' changed'],
    );
  });
});
