/** Lines of unchanged context around each change in a hunk. */
const CONTEXT = 3;
/** Largest edit distance Myers' algorithm explores before falling back to "replace the whole middle". */
const MAX_EDIT_DISTANCE = 2000;
/**
 * Most line comparisons Myers' algorithm may make (its cost is O((N+M)·D), which a large file with
 * changes everywhere would make huge): past it, the middle is shown replaced as a whole.
 */
const MAX_COMPARISONS = 1_000_000;
/** Longest diff text returned; the rest of a larger diff is cut with a note (the edit itself is whole). */
export const MAX_DIFF_CHARS = 256 * 1024;

type OpKind = ' ' | '-' | '+';
interface Op {
  kind: OpKind;
  line: string;
}

/** Splits text into lines that keep their '\n' terminator (the last one may lack it). */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
    lines.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/**
 * Myers' O(ND) diff of `a` against `b`, or undefined if the edit distance exceeds `maxD` or the work
 * exceeds `maxComparisons` line comparisons.
 */
function myers(
  a: readonly string[],
  b: readonly string[],
  maxD: number,
  maxComparisons: number,
): Op[] | undefined {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let comparisons = 0;
  for (let d = 0; d <= Math.min(max, maxD); d++) {
    comparisons += d + 1;
    if (comparisons > maxComparisons) return undefined;
    // Snapshot of v[-(d+1)..(d+1)] after step d-1, read back while backtracking.
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1])
          ? v[offset + k + 1]
          : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
        comparisons++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, trace);
    }
  }
  return undefined;
}

function backtrack(a: readonly string[], b: readonly string[], trace: readonly Int32Array[]): Op[] {
  const ops: Op[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const snapshot = trace[d];
    const at = (k: number): number => snapshot[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: ' ', line: a[--x] });
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: '+', line: b[--y] });
      else ops.push({ kind: '-', line: a[--x] });
    }
  }
  return ops.reverse();
}

function diffLines(a: readonly string[], b: readonly string[]): Op[] {
  let prefix = 0;
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < a.length - prefix &&
    suffix < b.length - prefix &&
    a[a.length - 1 - suffix] === b[b.length - 1 - suffix]
  ) {
    suffix++;
  }
  const midA = a.slice(prefix, a.length - suffix);
  const midB = b.slice(prefix, b.length - suffix);
  const middle = myers(midA, midB, MAX_EDIT_DISTANCE, MAX_COMPARISONS) ?? [
    ...midA.map((line): Op => ({ kind: '-', line })),
    ...midB.map((line): Op => ({ kind: '+', line })),
  ];
  const same = (line: string): Op => ({ kind: ' ', line });
  return [...a.slice(0, prefix).map(same), ...middle, ...a.slice(a.length - suffix).map(same)];
}

function renderLine(op: Op): string {
  if (op.line.endsWith('\n')) return `${op.kind}${op.line}`;
  return `${op.kind}${op.line}\n\\ No newline at end of file\n`;
}

/**
 * Line-based unified diff (`--- a/path`, `+++ b/path`, `@@ -l,n +l,n @@` hunks with 3 lines of
 * context) from `before` to `after`; the empty string when they are equal. The work is bounded (a
 * costly middle is shown replaced whole) and the text is cut after {@link MAX_DIFF_CHARS} with a note.
 */
export function unifiedDiff(path: string, before: string, after: string): string {
  if (before === after) return '';
  const ops = diffLines(splitLines(before), splitLines(after));
  const oldLine: number[] = [];
  const newLine: number[] = [];
  const changes: number[] = [];
  let o = 0;
  let n = 0;
  ops.forEach((op, i) => {
    oldLine.push(o);
    newLine.push(n);
    if (op.kind !== '+') o++;
    if (op.kind !== '-') n++;
    if (op.kind !== ' ') changes.push(i);
  });
  let out = `--- a/${path}\n+++ b/${path}\n`;
  let c = 0;
  while (c < changes.length) {
    const first = c;
    const start = Math.max(0, changes[c] - CONTEXT);
    let last = changes[c];
    while (c + 1 < changes.length && changes[c + 1] - last <= 2 * CONTEXT) last = changes[++c];
    c++;
    const end = Math.min(ops.length, last + 1 + CONTEXT);
    let oldCount = 0;
    let newCount = 0;
    for (let i = start; i < end; i++) {
      if (ops[i].kind !== '+') oldCount++;
      if (ops[i].kind !== '-') newCount++;
    }
    const oldStart = oldCount === 0 ? oldLine[start] : oldLine[start] + 1;
    const newStart = newCount === 0 ? newLine[start] : newLine[start] + 1;
    out += `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@\n`;
    for (let i = start; i < end; i++) {
      const line = renderLine(ops[i]);
      if (out.length + line.length > MAX_DIFF_CHARS) {
        // The hunk is shown as far as it fits: its header still counts the whole hunk.
        let hidden = changes.length - first;
        for (let j = start; j < i; j++) if (ops[j].kind !== ' ') hidden--;
        return `${out}# diff cut at ${MAX_DIFF_CHARS} characters: ${hidden} more changed lines not shown; read the file for the rest\n`;
      }
      out += line;
    }
  }
  return out;
}
