import { WorkspaceError } from '../protocol/errors';

/** Most nesting levels accepted in a JSON request body or message (no operation needs more than a few). */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Refuses JSON nested deeper than `maxDepth` before it is parsed, so a body of a million brackets
 * costs a scan that stops at the limit instead of a parse and a recursive walk. Strings are skipped
 * with a byte search; only the structure outside them is read.
 */
export function assertJsonDepth(body: Buffer, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === QUOTE) {
      // The closing quote is the next one preceded by an even number of backslashes.
      let close = body.indexOf(QUOTE, i + 1);
      while (close !== -1) {
        let backslashes = 0;
        while (body[close - 1 - backslashes] === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
        close = body.indexOf(QUOTE, close + 1);
      }
      if (close === -1) return;
      i = close;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) {
        throw new WorkspaceError(
          'INVALID_ARGUMENT',
          `The JSON body is nested deeper than ${maxDepth} levels; no operation takes such input.`,
          { maxDepth },
        );
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}
