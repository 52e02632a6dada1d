import { capped, LinePattern, outputLines, type ResultBuilder, type ToolOutput } from './common';

/**
 * Parsers for test runners: they read the summary a runner prints and report passed, failed and
 * skipped counts. Where a run prints several summaries (say `npm test` running two suites), the
 * counts are added up. No summary, no counts: the result then has no `tests`.
 */

/** The lines of both streams (stdout first), under the size cap. */
function bothStreams(output: ToolOutput, into: ResultBuilder): string[] {
  const lines: string[] = [];
  for (const stream of [output.stdout, output.stderr]) {
    const { text, cut } = capped(stream);
    if (cut) into.markTruncated();
    lines.push(...outputLines(text));
  }
  return lines;
}

/** Adds the counts `pattern` reads (a count group then a word group) through `classify`. */
function countSummary(
  lines: string[],
  pattern: LinePattern,
  classify: (word: string) => 'passed' | 'failed' | 'skipped' | null,
  into: ResultBuilder,
): void {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  let seen = false;
  for (const line of lines) {
    const found = pattern.match(line);
    if (found === null) continue;
    const [count, word] = found as [string, string];
    const kind = classify(word);
    const n = Number(count);
    if (kind === null || !Number.isSafeInteger(n)) continue;
    counts[kind] += n;
    seen = true;
  }
  if (seen) into.setTests(counts);
}

let nodeTestPattern: LinePattern | undefined;

/**
 * `node --test`: the summary of its TAP reporter (`# pass 3`) or spec reporter (`ℹ pass 3`).
 * Cancelled tests count as failed, todo tests as skipped.
 */
export function parseNodeTest(output: ToolOutput, into: ResultBuilder): void {
  nodeTestPattern ??= new LinePattern(
    String.raw`^(?:#|ℹ) (pass|fail|cancelled|skipped|todo) (\d+)$`,
    [2, 1],
    ['pass ', 'fail ', 'cancelled ', 'skipped ', 'todo '],
  );
  countSummary(
    bothStreams(output, into),
    nodeTestPattern,
    (word) => (word === 'pass' ? 'passed' : word === 'fail' || word === 'cancelled' ? 'failed' : 'skipped'),
    into,
  );
}

let mochaPattern: LinePattern | undefined;

/** Mocha's spec (and dot, list) reporter summary: `3 passing (12ms)`, `1 pending`, `2 failing`. */
export function parseMocha(output: ToolOutput, into: ResultBuilder): void {
  mochaPattern ??= new LinePattern(
    String.raw`^\s*(\d+) (passing|failing|pending)(?: \(\d+(?:\.\d+)?m?s\))?\s*$`,
    [1, 2],
    [' passing', ' failing', ' pending'],
  );
  countSummary(
    bothStreams(output, into),
    mochaPattern,
    (word) => (word === 'passing' ? 'passed' : word === 'failing' ? 'failed' : 'skipped'),
    into,
  );
}

let pytestPatterns: { summary: LinePattern; part: LinePattern } | undefined;

/**
 * pytest's final line, `==== 3 passed, 1 failed, 2 skipped in 0.12s ====` (or without the rules
 * under `-q`). Errors count as failed, xpassed as passed, xfailed as skipped; warnings and
 * deselected tests are not counted. Only the last summary line counts.
 */
export function parsePytest(output: ToolOutput, into: ResultBuilder): void {
  pytestPatterns ??= {
    summary: new LinePattern(
      String.raw`^=*\s*((?:\d+ [a-z]+(?:, )?)+) in \d+(?:\.\d+)?s(?: \([^)]*\))?\s*=*$`,
      [1],
      [' in '],
    ),
    part: new LinePattern(String.raw`^(\d+) ([a-z]+)$`, [1, 2]),
  };
  const patterns = pytestPatterns;
  let summary: string | undefined;
  for (const line of bothStreams(output, into)) {
    const found = patterns.summary.match(line);
    if (found !== null) summary = found[0];
  }
  if (summary === undefined) return;
  countSummary(
    summary.split(', '),
    patterns.part,
    (word) => {
      if (word === 'passed' || word === 'xpassed') return 'passed';
      if (word === 'failed' || word === 'error' || word === 'errors') return 'failed';
      if (word === 'skipped' || word === 'xfailed') return 'skipped';
      return null;
    },
    into,
  );
}

let goTestPatterns: { test: LinePattern; buildFailed: LinePattern } | undefined;

/**
 * `go test`: each `--- PASS:`, `--- FAIL:` and `--- SKIP:` line (subtests included) counts one test;
 * a package that did not build (`FAIL pkg [build failed]`) counts one failure. Without `-v`, go
 * prints no PASS or SKIP lines for passing packages, so only failures are counted: run it with -v.
 */
export function parseGoTest(output: ToolOutput, into: ResultBuilder): void {
  goTestPatterns ??= {
    test: new LinePattern(String.raw`^\s*--- (PASS|FAIL|SKIP): \S`, [1], ['--- ']),
    buildFailed: new LinePattern(String.raw`^FAIL\s+\S+\s+\[(?:build|setup) failed\]\s*$`, [], ['FAIL']),
  };
  const patterns = goTestPatterns;
  const counts = { passed: 0, failed: 0, skipped: 0 };
  let seen = false;
  for (const line of bothStreams(output, into)) {
    const test = patterns.test.match(line);
    if (test !== null) {
      seen = true;
      if (test[0] === 'PASS') counts.passed++;
      else if (test[0] === 'FAIL') counts.failed++;
      else counts.skipped++;
    } else if (patterns.buildFailed.match(line) !== null) {
      seen = true;
      counts.failed++;
    }
  }
  if (seen) into.setTests(counts);
}
