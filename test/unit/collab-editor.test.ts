import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { changedRegion, mergeText } from '../../src/core/collab';
import {
  applyEditorChanges,
  editorToShared,
  toSharedSplices,
  type EditorChange,
} from '../../src/extension/collab/changes';
import { EchoGuard } from '../../src/extension/collab/echo';
import { isAligned, toEditorOffset, toEditorText, toSharedOffset } from '../../src/extension/collab/eol';
import { encodeCursor, remoteCursors } from '../../src/extension/collab/presence';

function shared(initial: string): Y.Text {
  const doc = new Y.Doc();
  const text = doc.getText('content');
  text.insert(0, initial);
  return text;
}

describe('live editing: line endings between the shared text and the editor', () => {
  it('shows CRLF and LF texts as they are, and normalises mixed ones to the editor eol', () => {
    assert.ok(isAligned('a\r\nb\r\n', '\r\n'));
    assert.ok(isAligned('a\nb\n', '\n'));
    assert.ok(!isAligned('a\r\nb\n', '\r\n'));
    assert.ok(!isAligned('a\nb\r\n', '\n'));
    assert.ok(!isAligned('a\rb', '\r\n'));
    assert.equal(toEditorText('a\r\nb\r\n', '\r\n'), 'a\r\nb\r\n');
    assert.equal(toEditorText('a\r\nb\nc\rd', '\r\n'), 'a\r\nb\r\nc\r\nd');
    assert.equal(toEditorText('a\r\nb\nc', '\n'), 'a\nb\nc');
  });

  it('maps offsets both ways on a mixed text, never into the middle of a line break', () => {
    const text = 'ab\r\ncd\nef';
    // Editor (CRLF): "ab\r\ncd\r\nef"
    const editor = toEditorText(text, '\r\n');
    assert.equal(editor, 'ab\r\ncd\r\nef');
    for (let i = 0; i <= editor.length; i++) {
      const s = toSharedOffset(text, '\r\n', i);
      if (editor[i - 1] === '\r' && editor[i] === '\n') continue; // inside a break: not a VS Code offset
      assert.equal(toEditorOffset(text, '\r\n', s), i, `editor offset ${i} -> shared ${s}`);
    }
    assert.equal(toSharedOffset(text, '\r\n', editor.indexOf('e')), text.indexOf('e'));
    assert.equal(toEditorOffset(text, '\r\n', text.indexOf('c')), editor.indexOf('c'));
    // Editor (LF) of a CRLF-and-LF text: "ab\ncd\nef"
    assert.equal(toSharedOffset(text, '\n', 3), 4);
    assert.equal(toEditorOffset(text, '\n', 4), 3);
    assert.equal(toEditorOffset(text, '\n', 3), 2, 'between \\r and \\n maps before the break');
    assert.equal(toSharedOffset(text, '\n', 99), text.length);
  });
});

describe('live editing: editor changes into the shared text', () => {
  it('applies one event as one transaction, keeping CRLF bytes', () => {
    const text = shared('one\r\ntwo\r\n');
    let transactions = 0;
    text.doc!.on('afterTransaction', () => transactions++);
    // Two cursors typing "X" at the start of each line: VS Code reports the later one first.
    const next = applyEditorChanges(
      text,
      'one\r\ntwo\r\n',
      [
        { rangeOffset: 5, rangeLength: 0, text: 'X' },
        { rangeOffset: 0, rangeLength: 0, text: 'X' },
      ],
      '\r\n',
      'me',
    );
    assert.equal(text.toString(), 'Xone\r\nXtwo\r\n');
    assert.equal(next, text.toString());
    assert.equal(transactions, 1);
    // Enter in a CRLF editor inserts CRLF.
    applyEditorChanges(text, next, [{ rangeOffset: 4, rangeLength: 0, text: '\r\n' }], '\r\n', 'me');
    assert.equal(text.toString(), 'Xone\r\n\r\nXtwo\r\n');
  });

  it('maps editor offsets of a mixed-endings file and leaves the other endings alone', () => {
    const base = 'a\r\nb\nc\r\n';
    const text = shared(base);
    // Editor (CRLF) shows "a\r\nb\r\nc\r\n": replace "c" (editor offset 6) with "C".
    applyEditorChanges(text, base, [{ rangeOffset: 6, rangeLength: 1, text: 'C' }], '\r\n', 'me');
    assert.equal(text.toString(), 'a\r\nb\nC\r\n');
    // Delete the break after "b" as the editor sees it (2 chars in the editor, 1 shared).
    applyEditorChanges(text, text.toString(), [{ rangeOffset: 4, rangeLength: 2, text: '' }], '\r\n', 'me');
    assert.equal(text.toString(), 'a\r\nbC\r\n');
  });

  it('turns a whole editor text back into shared form, with unchanged endings kept', () => {
    const base = 'a\r\nb\nc\n';
    const shown = toEditorText(base, '\n'); // a\nb\nc\n
    assert.equal(editorToShared(base, shown, 'a\nB!\nc\n', '\n'), 'a\r\nB!\nc\n');
    assert.equal(editorToShared(base, shown, shown, '\n'), base);
  });

  it('a user typing while a remote change is not shown yet: both survive (three-way)', () => {
    // The scenario the binding meets when an agent's edit reaches Yjs before the editor shows it.
    const base = 'top\nmiddle\nbottom\n';
    const text = shared(base);
    text.insert(0, '// agent\n'); // remote, not in the editor yet
    const next = editorToShared(base, base, 'top\nmiddle\nbottom typed\n', '\n');
    mergeText(text, base, next, 'me');
    assert.equal(text.toString(), '// agent\ntop\nmiddle\nbottom typed\n');
  });
});

describe('live editing: echo suppression', () => {
  it('recognises the echo of an applied edit by its content, once, and nothing else', () => {
    const guard = new EchoGuard();
    const edit = { rangeOffset: 0, rangeLength: 0, text: '// agent\n' };
    assert.equal(guard.match([edit]), false, 'nothing in flight');
    const ticket = guard.expect(edit);
    assert.ok(guard.inFlight);
    assert.equal(guard.match([{ rangeOffset: 23, rangeLength: 0, text: 't' }]), false, 'a keystroke');
    assert.equal(guard.match([edit, edit]), false, 'one edit reports one change');
    assert.equal(guard.match([{ ...edit }]), true);
    assert.equal(guard.match([edit]), false, 'an echo is consumed');
    guard.settle(ticket);
    assert.ok(!guard.inFlight);
    const refused = guard.expect(edit);
    guard.settle(refused);
    assert.equal(guard.match([edit]), false, 'an edit that resolved has no echo to come');
  });

  it('an edit that VS Code applies on top of a keystroke is neither echoed nor lost', () => {
    // What the binding does, with its pure pieces, on the sequence seen in VS Code: a remote
    // insert arrives, the user types a key, and VS Code applies the remote edit after the key.
    const doc = new Y.Doc();
    const text = doc.getText('content');
    text.insert(0, 'alpha\n');
    const origin = {};
    const guard = new EchoGuard();
    let editor = 'alpha\n';
    let base = editor; // the shared text the editor shows
    let behind = false;
    const onEditorChange = (changes: EditorChange[]): void => {
      const before = base;
      base = toSharedSplices(before, changes, '\n').after;
      if (guard.match(changes)) {
        behind = text.toString() !== editor;
        return;
      }
      if (!behind) applyEditorChanges(text, before, changes, '\n', origin);
      else mergeText(text, before, base, origin);
    };
    const type = (change: EditorChange): void => {
      editor =
        editor.slice(0, change.rangeOffset) +
        change.text +
        editor.slice(change.rangeOffset + change.rangeLength);
      onEditorChange([change]);
    };
    // Remote insert at the top.
    const remote = new Y.Doc();
    Y.applyUpdate(remote, Y.encodeStateAsUpdate(doc));
    remote.getText('content').insert(0, '// agent\n');
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote, Y.encodeStateVector(doc)), 'remote');
    behind = true;
    // The binding computes its edit against the editor as it is...
    const region = changedRegion(editor, text.toString())!;
    const edit = {
      rangeOffset: region.start,
      rangeLength: region.endA - region.start,
      text: text.toString().slice(region.start, region.endB),
    };
    const ticket = guard.expect(edit);
    // ...the user types at the end first, then VS Code applies the edit on top.
    type({ rangeOffset: editor.length, rangeLength: 0, text: 'x' });
    type(edit);
    guard.settle(ticket);
    assert.equal(editor, '// agent\nalpha\nx');
    assert.equal(text.toString(), '// agent\nalpha\nx', 'the agent line is there once, the keystroke too');
    assert.equal(behind, false, 'nothing left to apply: the version settles');
    assert.equal(base, editor);
  });
});

describe('live editing: cursors in awareness', () => {
  it('carries a selection as relative positions that follow concurrent inserts', () => {
    const text = shared('hello world');
    const cursor = encodeCursor(text, 6, 11);
    JSON.parse(JSON.stringify(cursor)); // survives the awareness wire format
    text.insert(0, '>> ');
    const states = new Map<number, Record<string, unknown>>([
      [1, { cursor, user: { name: 'agent-a' } }],
      [2, { cursor, user: { name: 'me' } }],
      [3, { user: { name: 'no-cursor' } }],
      [4, { cursor: { head: 'garbage' }, user: { name: 'bad' } }],
    ]);
    const cursors = remoteCursors(text.doc!, text, states, 2);
    assert.equal(cursors.length, 1);
    assert.equal(cursors[0]!.name, 'agent-a');
    assert.equal(cursors[0]!.anchor, 9);
    assert.equal(cursors[0]!.head, 14);
  });
});
