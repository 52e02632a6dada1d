import type * as Y from 'yjs';
import { toSharedOffset, type Eol } from './eol';

/** One change of an editor document, as VS Code reports it (offsets in the editor's text). */
export interface EditorChange {
  rangeOffset: number;
  rangeLength: number;
  text: string;
}

/**
 * Applies the changes of one editor event to `text`, in one transaction with `origin`, and returns
 * the new shared text. `base` is the shared text the editor showed before the event (it must equal
 * `text` now); the changes apply one after the other, as VS Code reports them, each mapped from
 * editor offsets to shared offsets so the untouched line endings stay as they are.
 */
export function applyEditorChanges(
  text: Y.Text,
  base: string,
  changes: readonly EditorChange[],
  eol: Eol,
  origin: unknown,
): string {
  let shared = base;
  text.doc!.transact(() => {
    for (const change of changes) {
      const start = toSharedOffset(shared, eol, change.rangeOffset);
      const end = toSharedOffset(shared, eol, change.rangeOffset + change.rangeLength);
      if (end > start) text.delete(start, end - start);
      if (change.text.length > 0) text.insert(start, change.text);
      shared = shared.slice(0, start) + change.text + shared.slice(end);
    }
  }, origin);
  return shared;
}

/**
 * The shared text an editor holds after a local edit, keeping the line endings of `base` (the
 * shared text it showed before) outside the edited region: for a change that arrives while the
 * editor is behind the shared text, merged three-way.
 */
export function editorToShared(base: string, baseEditor: string, editor: string, eol: Eol): string {
  if (baseEditor === editor) return base;
  const max = Math.min(baseEditor.length, editor.length);
  let start = 0;
  while (start < max && baseEditor.charCodeAt(start) === editor.charCodeAt(start)) start++;
  let endBase = baseEditor.length;
  let endNext = editor.length;
  while (
    endBase > start &&
    endNext > start &&
    baseEditor.charCodeAt(endBase - 1) === editor.charCodeAt(endNext - 1)
  ) {
    endBase--;
    endNext--;
  }
  const sharedStart = toSharedOffset(base, eol, start);
  const sharedEnd = toSharedOffset(base, eol, endBase);
  return base.slice(0, sharedStart) + editor.slice(start, endNext) + base.slice(sharedEnd);
}
