import type * as Y from 'yjs';
import { diffHunks, trimmed, type Hunk } from './diff';

/** One changed region between two texts: `a[start, endA)` became `b[start, endB)` (UTF-16 indices). */
export interface TextChange {
  start: number;
  endA: number;
  endB: number;
}

/**
 * The smallest single region that turns `a` into `b`: common prefix and common suffix removed, never
 * splitting a surrogate pair (Y.Text indices are UTF-16 code units). Null when the texts are equal.
 */
export function changedRegion(a: string, b: string): TextChange | null {
  const hunk = trimmed(a, 0, a.length, b, 0, b.length);
  return hunk && { start: hunk.aStart, endA: hunk.aEnd, endB: hunk.bEnd };
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

/** A group of hunks of both sides that touch each other, in base offsets `[start, end)`. */
interface HunkGroup {
  start: number;
  end: number;
  incoming: Hunk[];
  local: Hunk[];
}

/**
 * Groups the hunks of both sides: hunks that overlap, and insertions at one point, fall in one
 * group; an insertion at the start or end of the other side's replacement does not (it stays
 * beside it).
 */
function groupHunks(incoming: Hunk[], local: Hunk[]): HunkGroup[] {
  const all = [
    ...incoming.map((hunk) => ({ hunk, incoming: true })),
    ...local.map((hunk) => ({ hunk, incoming: false })),
  ].sort((x, y) => x.hunk.aStart - y.hunk.aStart || x.hunk.aEnd - y.hunk.aEnd);
  const groups: HunkGroup[] = [];
  for (const { hunk, incoming: isIncoming } of all) {
    const last = groups[groups.length - 1];
    const insertion = hunk.aStart === hunk.aEnd;
    const joins =
      last !== undefined &&
      (hunk.aStart < last.end || (insertion && last.start === last.end && hunk.aStart === last.start));
    const group = joins ? last : { start: hunk.aStart, end: hunk.aEnd, incoming: [], local: [] };
    if (!joins) groups.push(group);
    group.end = Math.max(group.end, hunk.aEnd);
    (isIncoming ? group.incoming : group.local).push(hunk);
  }
  return groups;
}

/** How much `hunks` lengthen the text (b length minus a length). */
function growth(hunks: Hunk[]): number {
  let total = 0;
  for (const h of hunks) total += h.bEnd - h.bStart - (h.aEnd - h.aStart);
  return total;
}

/**
 * Three-way merge into a shared text: `base` is the text both sides started from (the file as last
 * written), `next` the new version from one side (an agent's write, a change on disk), and the
 * shared text may hold the other side's edits since `base`. Both sides are diffed against `base`
 * (by lines, then characters); changes that do not touch each other all survive, a change both
 * sides made alike is taken once, one person's typing seen at two moments (insertions at one point
 * where one begins the other) is taken once as the longer, different insertions at one point both
 * stay, and where the sides changed the same place differently, `next` wins for that place only.
 */
export function mergeText(text: Y.Text, base: string, next: string, origin: unknown): ChangeSize {
  const size: ChangeSize = { insertedBytes: 0, deletedChars: 0 };
  text.doc!.transact(() => {
    const current = text.toString();
    const incoming = diffHunks(base, next);
    if (incoming.length === 0) return;
    const local = diffHunks(base, current);
    const apply = (at: number, deleteCount: number, insert: string): void => {
      const done = applyRegion(text, at, deleteCount, insert);
      size.insertedBytes += done.insertedBytes;
      size.deletedChars += done.deletedChars;
    };
    // Offsets: where base offsets fall in `current` (shiftLocal) and in `next` (shiftIncoming),
    // and how much what this merge applied has moved the shared text against `current` (applied).
    let shiftLocal = 0;
    let shiftIncoming = 0;
    let applied = 0;
    for (const group of groupHunks(incoming, local)) {
      if (group.local.length === 0) {
        for (const h of group.incoming) {
          const insert = next.slice(h.bStart, h.bEnd);
          apply(h.aStart + shiftLocal + applied, h.aEnd - h.aStart, insert);
          applied += insert.length - (h.aEnd - h.aStart);
        }
      } else if (group.incoming.length > 0) {
        const at = group.start + shiftLocal;
        const mine = current.slice(at, group.end + shiftLocal + growth(group.local));
        const theirs = next.slice(
          group.start + shiftIncoming,
          group.end + shiftIncoming + growth(group.incoming),
        );
        const insertions = group.start === group.end;
        if (insertions && mine.startsWith(theirs)) {
          // The same typing, seen earlier on their side: nothing to add.
        } else if (insertions && theirs.startsWith(mine)) {
          apply(at + mine.length + applied, 0, theirs.slice(mine.length));
          applied += theirs.length - mine.length;
        } else if (insertions) {
          // Different insertions at one point: both stay, theirs first.
          apply(at + applied, 0, theirs);
          applied += theirs.length;
        } else if (mine !== theirs) {
          apply(at + applied, mine.length, theirs);
          applied += theirs.length - mine.length;
        }
      }
      shiftLocal += growth(group.local);
      shiftIncoming += growth(group.incoming);
    }
  }, origin);
  return size;
}
