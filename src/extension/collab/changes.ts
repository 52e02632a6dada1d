import type * as Y from 'yjs';
import { toSharedOffset, type Eol } from './eol';

/** One change of an editor document, as VS Code reports it (offsets in the editor's text). */
export interface EditorChange {
  rangeOffset: number;
  rangeLength: number;
  text: string;
}

/** One change in shared offsets: `[start, end)` of the shared text before it became `text`. */
export interface SharedSplice {
  start: number;
  end: number;
  text: string;
}

/**
 * The changes of one editor event as splices of the shared text, and the shared text after them.
 * `base` is the shared text the editor showed before the event; the changes apply one after the
 * other, as VS Code reports them, each mapped from editor offsets to shared offsets so the
 * untouched line endings stay as they are.
 */
export function toSharedSplices(
  base: string,
  changes: readonly EditorChange[],
  eol: Eol,
): { splices: SharedSplice[]; after: string } {
  let shared = base;
  const splices: SharedSplice[] = [];
  for (const change of changes) {
    const start = toSharedOffset(shared, eol, change.rangeOffset);
    const end = toSharedOffset(shared, eol, change.rangeOffset + change.rangeLength);
    splices.push({ start, end, text: change.text });
    shared = shared.slice(0, start) + change.text + shared.slice(end);
  }
  return { splices, after: shared };
}

/**
 * Applies the changes of one editor event to `text` (which must hold `base`, the shared text the
 * editor showed before the event), in one transaction with `origin`; returns the new shared text.
 */
export function applyEditorChanges(
  text: Y.Text,
  base: string,
  changes: readonly EditorChange[],
  eol: Eol,
  origin: unknown,
): string {
  const { splices, after } = toSharedSplices(base, changes, eol);
  text.doc!.transact(() => {
    for (const { start, end, text: insert } of splices) {
      if (end > start) text.delete(start, end - start);
      if (insert.length > 0) text.insert(start, insert);
    }
  }, origin);
  return after;
}

/**
 * The shared form of an editor text `editor`, given `base` (a shared text) and `baseEditor` (how an
 * editor shows it): the one region where they differ is taken from the editor, the line endings of
 * `base` are kept everywhere else (used when an editor with its own text is bound).
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
