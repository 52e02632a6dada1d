import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { mergeText } from '../../src/core/collab';
import { applyEditorChanges, editorToShared, type EditorChange } from '../../src/extension/collab/changes';
import { EchoGuard } from '../../src/extension/collab/echo';
import { EditorMirror, type EditorChangeOutcome } from '../../src/extension/collab/mirror';
import { isAligned, toEditorOffset, toEditorText, toSharedOffset } from '../../src/extension/collab/eol';
import { encodeCursor, remoteCursors } from '../../src/extension/collab/presence';

/** A deterministic pseudo-random generator, so failures replay. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

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
    // The sequence seen in VS Code: a remote insert arrives, the user types a key, and VS Code
    // applies the binding's edit after the key (its version check does not always refuse it).
    const doc = new Y.Doc();
    const text = doc.getText('content');
    text.insert(0, 'alpha\n');
    const mirror = new EditorMirror(text, {}, 'alpha\n');
    let editor = 'alpha\n';
    const apply = (change: EditorChange): EditorChangeOutcome => {
      editor =
        editor.slice(0, change.rangeOffset) +
        change.text +
        editor.slice(change.rangeOffset + change.rangeLength);
      return mirror.editorChanged([change], '\n', () => editor, false);
    };
    text.insert(0, '// agent\n'); // remote
    mirror.sharedChanged(true, '\n');
    const edit = mirror.nextEdit(editor, '\n')!;
    const ticket = mirror.echo.expect(edit);
    assert.equal(apply({ rangeOffset: editor.length, rangeLength: 0, text: 'x' }), 'merged');
    assert.equal(apply(edit), 'echo');
    mirror.echo.settle(ticket);
    assert.equal(editor, '// agent\nalpha\nx');
    assert.equal(text.toString(), '// agent\nalpha\nx', 'the agent line is there once, the keystroke too');
    assert.equal(mirror.nextEdit(editor, '\n'), null, 'nothing left to apply: the version settles');
    assert.equal(mirror.behind, false);
  });

  it('a revert absorbs only its own reload; typing during it still counts', () => {
    const doc = new Y.Doc();
    const text = doc.getText('content');
    text.insert(0, 'saved\n');
    const mirror = new EditorMirror(text, {}, 'saved\n');
    mirror.beginRevert('saved\n');
    // A keystroke lands first, then the reload from disk takes it out again.
    assert.equal(
      mirror.editorChanged([{ rangeOffset: 6, rangeLength: 0, text: 'k' }], '\n', () => 'saved\nk', false),
      'shared',
    );
    assert.equal(
      mirror.editorChanged([{ rangeOffset: 6, rangeLength: 1, text: '' }], '\n', () => 'saved\n', false),
      'revert',
    );
    mirror.endRevert();
    assert.equal(text.toString(), 'saved\nk', 'the keystroke is kept in the shared text');
    assert.deepEqual(
      mirror.nextEdit('saved\n', '\n'),
      { rangeOffset: 6, rangeLength: 0, text: 'k' },
      'and put back',
    );
  });

  it('read-only: local edits never reach the shared text and are put back', () => {
    const doc = new Y.Doc();
    const text = doc.getText('content');
    text.insert(0, 'fixed\n');
    const mirror = new EditorMirror(text, {}, 'fixed\n');
    assert.equal(
      mirror.editorChanged([{ rangeOffset: 0, rangeLength: 0, text: 'X' }], '\n', () => 'Xfixed\n', true),
      'read-only',
    );
    assert.equal(text.toString(), 'fixed\n');
    assert.deepEqual(mirror.nextEdit('Xfixed\n', '\n'), { rangeOffset: 0, rangeLength: 1, text: '' });
  });

  it('races: a simulated VS Code and a remote writer always converge, every edit exactly once', () => {
    // Bounded: 40 seeded rounds. Each step is a keystroke at the end of the user's line, a remote
    // insert at the top, the binding starting an apply, or VS Code resolving one: refused (the
    // version moved) or applied literally on top of whatever came first.
    for (let seed = 1; seed <= 40; seed++) {
      const rand = random(seed);
      const eol = seed % 2 === 0 ? '\r\n' : '\n';
      const initial = `head${eol}body${eol}`;
      const local = new Y.Doc();
      const remote = new Y.Doc();
      local.on(
        'update',
        (u: Uint8Array, origin: unknown) => origin !== remote && Y.applyUpdate(remote, u, remote),
      );
      remote.on(
        'update',
        (u: Uint8Array, origin: unknown) => origin !== local && Y.applyUpdate(local, u, local),
      );
      const text = local.getText('content');
      text.insert(0, initial);
      const origin = {};
      const mirror = new EditorMirror(text, origin, initial);
      text.observe((_e, tr) => mirror.sharedChanged(tr.origin !== origin, eol));
      let editor = initial;
      let version = 0;
      let inFlight: { change: EditorChange; ticket: number; version: number } | null = null;
      const typed: string[] = [];
      const inserted: string[] = [];
      const event = (change: EditorChange): EditorChangeOutcome => {
        editor =
          editor.slice(0, change.rangeOffset) +
          change.text +
          editor.slice(change.rangeOffset + change.rangeLength);
        version++;
        return mirror.editorChanged([change], eol, () => editor, false);
      };
      for (let step = 0; step < 60; step++) {
        const r = rand();
        if (r < 0.35) {
          const key = String.fromCharCode(97 + Math.floor(rand() * 26));
          typed.push(key);
          event({ rangeOffset: editor.length, rangeLength: 0, text: key });
        } else if (r < 0.6) {
          const line = `r${step}${eol}`;
          inserted.push(line);
          remote.getText('content').insert(0, line);
        } else if (r < 0.8 && !inFlight) {
          const change = mirror.nextEdit(editor, eol);
          if (change) inFlight = { change, ticket: mirror.echo.expect(change), version };
        } else if (inFlight) {
          const refused = version !== inFlight.version && rand() < 0.5;
          if (!refused) event(inFlight.change);
          mirror.echo.settle(inFlight.ticket);
          inFlight = null;
        }
      }
      if (inFlight) mirror.echo.settle(inFlight.ticket);
      for (
        let change = mirror.nextEdit(editor, eol), n = 0;
        change && n < 30;
        change = mirror.nextEdit(editor, eol), n++
      ) {
        const ticket = mirror.echo.expect(change);
        assert.equal(event(change), 'echo', `seed ${seed}`);
        mirror.echo.settle(ticket);
      }
      const expected = inserted.slice().reverse().join('') + initial + typed.join('');
      assert.equal(text.toString(), expected, `seed ${seed}: shared text`);
      assert.equal(remote.getText('content').toString(), expected, `seed ${seed}: remote replica`);
      assert.equal(editor, toEditorText(expected, eol), `seed ${seed}: editor`);
    }
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
