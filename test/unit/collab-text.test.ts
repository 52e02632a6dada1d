import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { changedRegion, mergeText, replaceText } from '../../src/core/collab';

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
});
