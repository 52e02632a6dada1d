import type * as Y from 'yjs';

/** One changed region between two texts: `a[start, endA)` became `b[start, endB)` (UTF-16 indices). */
export interface TextChange {
  start: number;
  endA: number;
  endB: number;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * The smallest single region that turns `a` into `b`: common prefix and common suffix removed, never
 * splitting a surrogate pair (Y.Text indices are UTF-16 code units). Null when the texts are equal.
 */
export function changedRegion(a: string, b: string): TextChange | null {
  if (a === b) return null;
  const max = Math.min(a.length, b.length);
  let start = 0;
  while (start < max && a.charCodeAt(start) === b.charCodeAt(start)) start++;
  if (start > 0 && isHighSurrogate(a.charCodeAt(start - 1))) start--;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) {
    endA--;
    endB--;
  }
  if (endA < a.length && isLowSurrogate(a.charCodeAt(endA))) {
    endA++;
    endB++;
  }
  return { start, endA, endB };
}

/** What a text change did, for the audit: UTF-8 bytes inserted and UTF-16 units deleted. */
export interface ChangeSize {
  insertedBytes: number;
  deletedChars: number;
}

function applyRegion(text: Y.Text, at: number, deleteCount: number, insert: string): ChangeSize {
  if (deleteCount > 0) text.delete(at, deleteCount);
  if (insert.length > 0) text.insert(at, insert);
  return { insertedBytes: Buffer.byteLength(insert), deletedChars: deleteCount };
}

/**
 * Brings `text` from what it holds now to `next` with one minimal delete + insert, in one
 * transaction with `origin`, so concurrent edits elsewhere in the document survive.
 */
export function replaceText(text: Y.Text, next: string, origin: unknown): ChangeSize {
  let size: ChangeSize = { insertedBytes: 0, deletedChars: 0 };
  text.doc!.transact(() => {
    size = applyDifference(text, text.toString(), next);
  }, origin);
  return size;
}

/** Applies the one changed region between `current` (the shared text now) and `next`. */
function applyDifference(text: Y.Text, current: string, next: string): ChangeSize {
  const region = changedRegion(current, next);
  if (!region) return { insertedBytes: 0, deletedChars: 0 };
  return applyRegion(text, region.start, region.endA - region.start, next.slice(region.start, region.endB));
}

/**
 * Three-way merge into a shared text: `base` is the text both sides started from (the file as last
 * written), `next` the new version from one side (an agent's write, a change on disk), and the
 * shared text may hold the other side's edits since `base`. When the two changed regions do not
 * overlap, both survive (the incoming change is shifted past the local one); when they overlap,
 * `next` wins for the whole text.
 */
export function mergeText(text: Y.Text, base: string, next: string, origin: unknown): ChangeSize {
  let size: ChangeSize = { insertedBytes: 0, deletedChars: 0 };
  text.doc!.transact(() => {
    const current = text.toString();
    const incoming = changedRegion(base, next);
    if (!incoming) return;
    const local = changedRegion(base, current);
    const insert = next.slice(incoming.start, incoming.endB);
    const deleteCount = incoming.endA - incoming.start;
    if (local && local.start === local.endA && deleteCount === 0 && incoming.start === local.start) {
      // Both sides inserted at one point and one insertion begins the other: one person's typing
      // seen at two moments (an editor saved while its user kept typing). Taken once, the longer.
      const typed = current.slice(local.start, local.endB);
      if (typed.startsWith(insert)) return;
      if (insert.startsWith(typed)) {
        size = applyRegion(text, local.endB, 0, insert.slice(typed.length));
        return;
      }
    }
    if (!local) {
      size = applyRegion(text, incoming.start, deleteCount, insert);
    } else if (incoming.endA <= local.start) {
      size = applyRegion(text, incoming.start, deleteCount, insert);
    } else if (incoming.start >= local.endA) {
      const shift = local.endB - local.endA;
      size = applyRegion(text, incoming.start + shift, deleteCount, insert);
    } else {
      size = applyDifference(text, current, next);
    }
  }, origin);
  return size;
}
