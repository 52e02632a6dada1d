import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { mergeText } from '../../src/core/collab';
import { applyEditorChanges, editorToShared } from '../../src/extension/collab/changes';
import { EchoGuard } from '../../src/extension/collab/echo';
import { isAligned, toEditorOffset, toEditorText, toSharedOffset } from '../../src/extension/collab/eol';
import { encodeCursor, remoteCursors } from '../../src/extension/collab/presence';
import { readLiveEditing } from '../../src/extension/collab/settings';

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
  it('recognises the echo of an applied edit once, and nothing else', () => {
    const guard = new EchoGuard<string>();
    let reads = 0;
    const read = (text: string) => () => {
      reads++;
      return text;
    };
    assert.equal(guard.match(read('typed')), undefined);
    assert.equal(reads, 0, 'no edit in flight: the text is not even read');
    const ticket = guard.expect('remote applied', 'v1');
    assert.ok(guard.inFlight);
    assert.equal(guard.match(read('typed meanwhile')), undefined, 'a person typing is not an echo');
    assert.equal(guard.match(read('remote applied')), 'v1');
    assert.equal(guard.match(read('remote applied')), undefined, 'an echo is consumed');
    guard.settle(ticket);
    assert.ok(!guard.inFlight);
  });

  it('forgets an edit that resolved without its echo (refused: the document moved)', () => {
    const guard = new EchoGuard<number>();
    const ticket = guard.expect('never came', 1);
    guard.settle(ticket);
    assert.equal(
      guard.match(() => 'never came'),
      undefined,
    );
  });

  it('an editor binding loop never echoes: a simulated editor converges with a settled version', async () => {
    // A minimal editor model with versions and the binding's rules: local changes go to Yjs unless
    // they are the echo of a remote apply; remote changes are applied as a whole-text replace.
    const doc = new Y.Doc();
    const text = doc.getText('content');
    const origin = {};
    const guard = new EchoGuard<string>();
    let editor = '';
    let version = 0;
    let sentToYjs = 0;
    const onEditorChange = (): void => {
      if (guard.match(() => editor) !== undefined) return;
      sentToYjs++;
      doc.transact(() => {
        text.delete(0, text.length);
        text.insert(0, editor);
      }, origin);
    };
    const applyRemote = (): void => {
      const target = text.toString();
      if (target === editor) return;
      const ticket = guard.expect(target, target);
      editor = target;
      version++;
      onEditorChange(); // VS Code reports the change before applyEdit resolves
      guard.settle(ticket);
    };
    text.observe((_e, tr) => {
      if (tr.origin !== origin) applyRemote();
    });
    const remote = new Y.Doc();
    remote.on('update', (u: Uint8Array) => Y.applyUpdate(doc, u, 'remote'));
    for (let i = 0; i < 50; i++) remote.getText('content').insert(0, `${i},`);
    const settled = version;
    applyRemote();
    assert.equal(version, settled, 'the version stops changing');
    assert.equal(editor, remote.getText('content').toString());
    assert.equal(sentToYjs, 0, 'no remote edit was sent back');
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

describe('live editing: setting', () => {
  it('is the user value (default on); a workspace can only turn it off', () => {
    assert.equal(readLiveEditing({ defaultValue: true }), true);
    assert.equal(readLiveEditing(undefined), true);
    assert.equal(readLiveEditing({ defaultValue: true, globalValue: false, workspaceValue: true }), false);
    assert.equal(readLiveEditing({ defaultValue: true, workspaceValue: false }), false);
    assert.equal(readLiveEditing({ defaultValue: true, workspaceFolderValue: false }), false);
    assert.equal(readLiveEditing({ defaultValue: true, globalValue: 'yes' }), true);
  });
});
