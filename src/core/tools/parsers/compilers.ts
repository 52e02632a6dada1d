import { z } from 'zod';
import { capped, LinePattern, outputLines, type ResultBuilder, severityOf, type ToolOutput } from './common';

/**
 * Parsers for linters and compilers whose output names files: ESLint's JSON formatter, the
 * TypeScript compiler and GCC/Clang. Each reads the stream the tool writes its findings to.
 */

/** The part of ESLint's JSON formatter output the parser reads; anything else in it is ignored. */
const eslintReport = z.array(
  z.object({
    filePath: z.string(),
    messages: z.array(
      z.object({
        ruleId: z.string().nullable().optional(),
        severity: z.number(),
        message: z.string(),
        line: z.number().optional(),
        column: z.number().optional(),
      }),
    ),
  }),
);

/** ESLint run with `-f json`: one JSON array on stdout. */
export function parseEslint(output: ToolOutput, into: ResultBuilder): void {
  const { text, cut } = capped(output.stdout);
  if (cut) {
    into.markTruncated();
    into.fail('ESLint printed more JSON than the parser reads; lint fewer files per run.');
    return;
  }
  const trimmed = text.trim();
  if (trimmed === '') {
    into.fail(`ESLint printed no JSON report (exit code ${String(output.exitCode)}); see stderr.`);
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    into.fail('ESLint\'s output is not JSON: run it with "-f json" and nothing else on stdout.');
    return;
  }
  const report = eslintReport.safeParse(json);
  if (!report.success) {
    into.fail("ESLint's JSON does not have the JSON formatter's shape (an array of file results).");
    return;
  }
  for (const file of report.data) {
    for (const message of file.messages) {
      if (!into.accepting) {
        into.markTruncated();
        return;
      }
      into.add({
        file: file.filePath,
        line: message.line,
        column: message.column,
        severity: message.severity >= 2 ? 'error' : message.severity === 1 ? 'warning' : 'info',
        code: message.ruleId ?? undefined,
        message: message.message,
      });
    }
  }
}

/** Every tsc diagnostic line holds one of these (lines without skip the regex engine). */
const TSC_LITERALS = ['error TS', 'warning TS', 'message TS'];

let tscPatterns: { located: LinePattern; pretty: LinePattern; global: LinePattern } | undefined;

/**
 * The TypeScript compiler: `file(line,col): error TS1234: msg` (`--pretty false`, the default off a
 * terminal), `file:line:col - error TS1234: msg` (`--pretty`), and `error TS1234: msg` for errors
 * that name no file. Indented lines after a diagnostic continue its message.
 */
export function parseTsc(output: ToolOutput, into: ResultBuilder): void {
  tscPatterns ??= {
    located: new LinePattern(
      String.raw`^(.+?)\((\d+),(\d+)\): (error|warning|message) (TS\d+): (.*)$`,
      [1, 2, 3, 4, 5, 6],
      TSC_LITERALS,
    ),
    pretty: new LinePattern(
      String.raw`^(.+?):(\d+):(\d+) - (error|warning|message) (TS\d+): (.*)$`,
      [1, 2, 3, 4, 5, 6],
      TSC_LITERALS,
    ),
    global: new LinePattern(String.raw`^(error|warning|message) (TS\d+): (.*)$`, [1, 2, 3], TSC_LITERALS),
  };
  const patterns = tscPatterns;
  const { text, cut } = capped(output.stdout);
  if (cut) into.markTruncated();
  const lines = outputLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    let found = patterns.located.match(line) ?? patterns.pretty.match(line);
    let file: string | null = null;
    if (found !== null) {
      file = found[0] as string;
      found = found.slice(1);
    } else {
      const global = patterns.global.match(line);
      if (global === null) continue;
      found = ['', '', ...global];
    }
    const [lineNo, column, severity, code, first] = found as [string, string, string, string, string];
    let message = first;
    while (i + 1 < lines.length && (lines[i + 1] as string).startsWith('  ')) {
      message += `\n${(lines[i + 1] as string).trim()}`;
      i++;
    }
    if (!into.accepting) {
      into.markTruncated();
      return;
    }
    into.add({ file, line: lineNo, column, severity: severityOf(severity) ?? 'error', code, message });
  }
}

let gccPattern: LinePattern | undefined;

/**
 * GCC and Clang: `file:line[:col]: (fatal error|error|warning|note): msg [-Wflag]` on stderr; the
 * flag in brackets becomes the code (Clang's `[-Werror,-Wflag]` gives the last one).
 */
export function parseGcc(output: ToolOutput, into: ResultBuilder): void {
  gccPattern ??= new LinePattern(
    String.raw`^(.+?):(\d+):(?:(\d+):)? (fatal error|error|warning|note): (.*?)(?: \[(-[Wf][^\]]*)\])?$`,
    [1, 2, 3, 4, 5, 6],
    ['error: ', 'warning: ', 'note: '],
  );
  const pattern = gccPattern;
  const { text, cut } = capped(output.stderr);
  if (cut) into.markTruncated();
  for (const line of outputLines(text)) {
    const found = pattern.match(line);
    if (found === null) continue;
    const [file, lineNo, column, severity, message, flags] = found as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!into.accepting) {
      into.markTruncated();
      return;
    }
    const code = flags === '' ? undefined : flags.split(',').pop();
    into.add({ file, line: lineNo, column, severity: severityOf(severity) ?? 'error', code, message });
  }
}
