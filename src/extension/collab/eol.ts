/**
 * Line endings between a shared text and an editor. The server keeps the shared text byte for byte
 * (CRLF stays CRLF, mixed endings stay mixed); a VS Code document normalises every line break to
 * its one `eol`. Offsets are UTF-16 code units in both, and a line break is `\r\n`, `\r` or `\n`.
 */

/** The line ending of an editor document. */
export type Eol = '\n' | '\r\n';

const BREAK = /\r\n|\r|\n/g;

/** Whether every line break of `shared` already is `eol` (the editor shows the shared text as is). */
export function isAligned(shared: string, eol: Eol): boolean {
  if (eol === '\n') return !shared.includes('\r');
  // A lone \n (not after \r) or a lone \r (not before \n).
  return !/(?:^|[^\r])\n|\r(?!\n)/.test(shared);
}

/** What an editor with line ending `eol` shows for `shared`. */
export function toEditorText(shared: string, eol: Eol): string {
  return isAligned(shared, eol) ? shared : shared.replace(BREAK, eol);
}

/**
 * The offset in `shared` of offset `editorOffset` of the editor showing it with `eol`. An offset
 * past the end maps to the end.
 */
export function toSharedOffset(shared: string, eol: Eol, editorOffset: number): number {
  if (isAligned(shared, eol)) return Math.min(editorOffset, shared.length);
  let editor = 0;
  let index = 0;
  BREAK.lastIndex = 0;
  for (let m = BREAK.exec(shared); m; m = BREAK.exec(shared)) {
    const lineLength = m.index - index;
    if (editorOffset <= editor + lineLength) return index + (editorOffset - editor);
    editor += lineLength + eol.length;
    index = m.index + m[0].length;
    if (editorOffset < editor) return index; // inside the editor's line break: after it
  }
  return Math.min(index + (editorOffset - editor), shared.length);
}

/** The editor offset (with `eol`) of offset `sharedOffset` of `shared`. */
export function toEditorOffset(shared: string, eol: Eol, sharedOffset: number): number {
  if (isAligned(shared, eol)) return Math.min(sharedOffset, shared.length);
  let editor = 0;
  let index = 0;
  BREAK.lastIndex = 0;
  for (let m = BREAK.exec(shared); m; m = BREAK.exec(shared)) {
    if (sharedOffset <= m.index) return editor + (sharedOffset - index);
    const end = m.index + m[0].length;
    editor += m.index - index;
    if (sharedOffset < end) return editor; // inside a shared \r\n: before the break
    editor += eol.length;
    index = end;
  }
  return editor + (Math.min(sharedOffset, shared.length) - index);
}
