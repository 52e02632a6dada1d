/**
 * One change between two texts: `a[aStart, aEnd)` became `b[bStart, bEnd)` (UTF-16 indices). Hunks
 * of one diff are in order and never overlap.
 */
export interface Hunk {
  aStart: number;
  aEnd: number;
  bStart: number;
  bEnd: number;
}

/** Most line edits the diff looks for before it settles for one hunk over the whole changed window. */
const MAX_LINE_EDITS = 500;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * The one region `a[from, aTo)` -> `b[from', bTo)` left once the common prefix and suffix of the two
 * ranges are taken off, never splitting a surrogate pair; null when they are equal.
 */
export function trimmed(
  a: string,
  aFrom: number,
  aTo: number,
  b: string,
  bFrom: number,
  bTo: number,
): Hunk | null {
  let aStart = aFrom;
  let bStart = bFrom;
  while (aStart < aTo && bStart < bTo && a.charCodeAt(aStart) === b.charCodeAt(bStart)) {
    aStart++;
    bStart++;
  }
  if (aStart > aFrom && isHighSurrogate(a.charCodeAt(aStart - 1))) {
    aStart--;
    bStart--;
  }
  let aEnd = aTo;
  let bEnd = bTo;
  while (aEnd > aStart && bEnd > bStart && a.charCodeAt(aEnd - 1) === b.charCodeAt(bEnd - 1)) {
    aEnd--;
    bEnd--;
  }
  if (aEnd < aTo && isLowSurrogate(a.charCodeAt(aEnd))) {
    aEnd++;
    bEnd++;
  }
  return aStart === aEnd && bStart === bEnd ? null : { aStart, aEnd, bStart, bEnd };
}

/** Start offsets of the lines of `text[from, to)` (each line keeps its `\n`), plus `to`. */
function lineStarts(text: string, from: number, to: number): number[] {
  const starts = [from];
  for (let i = text.indexOf('\n', from); i !== -1 && i < to - 1; i = text.indexOf('\n', i + 1))
    starts.push(i + 1);
  starts.push(to);
  return starts;
}

/**
 * Myers' O(ND) diff of two sequences of line ids: the matching runs `[aIndex, bIndex, length]` in
 * order, or null when more than `maxEdits` insertions and deletions would be needed.
 */
function matchingRuns(
  a: Int32Array,
  b: Int32Array,
  maxEdits: number,
): Array<[number, number, number]> | null {
  const n = a.length;
  const m = b.length;
  const offset = maxEdits + 1;
  const v = new Int32Array(2 * maxEdits + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= maxEdits && found < 0; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)
          ? v[offset + k + 1]!
          : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return null;
  // Walk back from the end, collecting the diagonal runs (matches) between edits.
  const runs: Array<[number, number, number]> = [];
  let x = n;
  let y = m;
  for (let d = found; d >= 0; d--) {
    const before = trace[d]!;
    const k = x - y;
    let prevK: number;
    if (d === 0) prevK = k;
    else {
      prevK = k === -d || (k !== d && before[offset + k - 1]! < before[offset + k + 1]!) ? k + 1 : k - 1;
    }
    const prevX = d === 0 ? 0 : before[offset + prevK]!;
    const prevY = prevX - prevK;
    // After the edit from (prevX, prevY) comes a snake down to (x, y).
    const snakeStartX = d === 0 ? 0 : prevK === k + 1 ? prevX : prevX + 1;
    const snakeStartY = snakeStartX - k;
    if (x > snakeStartX) runs.push([snakeStartX, snakeStartY, x - snakeStartX]);
    x = prevX;
    y = prevY;
  }
  return runs.reverse();
}

/**
 * The hunks that turn `a` into `b`: common prefix and suffix off, a line diff of what is left
 * (Myers), each changed run of lines narrowed to the characters that differ. Small separate edits
 * come out as separate hunks; a window needing more than {@link MAX_LINE_EDITS} line edits comes out
 * as one hunk.
 */
export function diffHunks(a: string, b: string): Hunk[] {
  const window = trimmed(a, 0, a.length, b, 0, b.length);
  if (!window) return [];
  // Whole lines around the window, so that lines compare as lines.
  const aFrom = window.aStart === 0 ? 0 : a.lastIndexOf('\n', window.aStart - 1) + 1;
  const bFrom = window.bStart - (window.aStart - aFrom);
  const aNext = a.indexOf('\n', window.aEnd);
  const aTo = window.aEnd === a.length || aNext === -1 ? a.length : aNext + 1;
  const bTo = window.bEnd + (aTo - window.aEnd);
  const aLines = lineStarts(a, aFrom, aTo);
  const bLines = lineStarts(b, bFrom, bTo);
  const ids = new Map<string, number>();
  const idsOf = (text: string, starts: number[]): Int32Array => {
    const out = new Int32Array(starts.length - 1);
    for (let i = 0; i + 1 < starts.length; i++) {
      const line = text.slice(starts[i], starts[i + 1]);
      let id = ids.get(line);
      if (id === undefined) {
        id = ids.size;
        ids.set(line, id);
      }
      out[i] = id;
    }
    return out;
  };
  const runs = matchingRuns(idsOf(a, aLines), idsOf(b, bLines), MAX_LINE_EDITS);
  if (!runs) return [window];
  const hunks: Hunk[] = [];
  let ai = 0;
  let bi = 0;
  for (const [aIndex, bIndex, length] of [...runs, [aLines.length - 1, bLines.length - 1, 0] as const]) {
    if (aIndex > ai || bIndex > bi) {
      const hunk = trimmed(a, aLines[ai]!, aLines[aIndex]!, b, bLines[bi]!, bLines[bIndex]!);
      if (hunk) hunks.push(hunk);
    }
    ai = aIndex + length;
    bi = bIndex + length;
  }
  return hunks;
}
