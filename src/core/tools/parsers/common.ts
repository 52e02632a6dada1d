import type { RRegex } from 'rregex';
import type { Diagnostic, DiagnosticSeverity, ParsedResult, TestCounts } from '../../../protocol/diagnostics';
import { WorkspaceError } from '../../../protocol/errors';
import { toWorkspacePath, type PathContext } from './paths';

/** Bounds on what a parser reads and returns: tool output is whatever the agent's code printed. */
export const PARSER_LIMITS = {
  /** Characters of each stream that are parsed; the rest is ignored (the result says truncated). */
  maxOutputChars: 4 * 1024 * 1024,
  /** Diagnostics returned; more are dropped (the result says truncated). */
  maxDiagnostics: 1000,
  /** Characters of a diagnostic's message; longer ones end with an ellipsis. */
  maxMessageChars: 2000,
  /** Characters of a rule or error code. */
  maxCodeChars: 200,
  /** Characters of one output line a line pattern sees. */
  maxLineChars: 8192,
} as const;

/** A tool run's output, as the execution layer returns it. */
export interface ToolOutput {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

/** A diagnostic as a parser read it, before its path is mapped and its fields bounded. */
export interface RawDiagnostic {
  /** The path the tool printed; null when it named no file. */
  file: string | null;
  line?: number | string | undefined;
  column?: number | string | undefined;
  severity: DiagnosticSeverity;
  code?: string | undefined;
  message: string;
}

/**
 * Collects a parser's findings under {@link PARSER_LIMITS}: maps each path into the workspace
 * (dropping and counting those outside), bounds fields, and assembles the {@link ParsedResult}.
 */
export class ResultBuilder {
  private readonly diagnostics: Diagnostic[] = [];
  private truncated = false;
  private outsideWorkspace = 0;
  private tests: TestCounts | undefined;
  private parseError: string | undefined;

  constructor(
    private readonly ctx: PathContext,
    private readonly source: string,
  ) {}

  /** Whether more diagnostics are still taken (false once the cap is reached). */
  get accepting(): boolean {
    return this.diagnostics.length < PARSER_LIMITS.maxDiagnostics;
  }

  /** Adds one diagnostic (mapped and bounded), or counts it as dropped. */
  add(raw: RawDiagnostic): void {
    const path = raw.file === null ? '.' : toWorkspacePath(raw.file, this.ctx);
    if (path === null) {
      this.outsideWorkspace++;
      return;
    }
    if (!this.accepting) {
      this.truncated = true;
      return;
    }
    const diagnostic: Diagnostic = {
      path,
      line: position(raw.line),
      column: position(raw.column),
      severity: raw.severity,
      message: bound(raw.message.trim(), PARSER_LIMITS.maxMessageChars),
      source: this.source,
    };
    const code = raw.code?.trim();
    if (code) diagnostic.code = bound(code, PARSER_LIMITS.maxCodeChars);
    this.diagnostics.push(diagnostic);
  }

  /** Records that part of the output was not parsed. */
  markTruncated(): void {
    this.truncated = true;
  }

  /** Sets the test counts of the run. */
  setTests(tests: TestCounts): void {
    this.tests = tests;
  }

  /** Records why the output could not be read as expected. */
  fail(reason: string): void {
    this.parseError = bound(reason, PARSER_LIMITS.maxMessageChars);
  }

  /** The result, in the wire shape of src/protocol/diagnostics.ts. */
  result(): ParsedResult {
    const result: ParsedResult = {
      diagnostics: this.diagnostics,
      truncated: this.truncated,
      outsideWorkspace: this.outsideWorkspace,
    };
    if (this.tests !== undefined) result.tests = this.tests;
    if (this.parseError !== undefined) result.parseError = this.parseError;
    return result;
  }
}

/** A 1-based position from a number or digits; 1 when absent or not a sane positive integer. */
function position(value: number | string | undefined): number {
  const n = typeof value === 'string' ? digits(value) : value;
  return n !== undefined && Number.isSafeInteger(n) && n >= 1 && n <= 0x7fffffff ? n : 1;
}

/** The number `text` spells in 1 to 9 decimal digits, else NaN. */
function digits(text: string): number {
  if (text.length === 0 || text.length > 9) return NaN;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return NaN;
  }
  return Number(text);
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function bound(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The part of a stream a parser reads: at most {@link PARSER_LIMITS.maxOutputChars} characters,
 * cut at a line end when cut (so no half line is parsed); `cut` says whether anything was left out.
 */
export function capped(text: string): { text: string; cut: boolean } {
  if (text.length <= PARSER_LIMITS.maxOutputChars) return { text, cut: false };
  const head = text.slice(0, PARSER_LIMITS.maxOutputChars);
  const lastNewline = head.lastIndexOf('\n');
  return { text: lastNewline === -1 ? head : head.slice(0, lastNewline + 1), cut: true };
}

/**
 * The lines of a stream, ready for a line pattern: terminal escape sequences removed (compilers
 * colour their output on a terminal), control characters replaced, each cut to
 * {@link PARSER_LIMITS.maxLineChars}.
 */
export function outputLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    lines.push(cleanLine(line));
    start = end + 1;
  }
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

const ESC = 0x1b;
const BEL = 0x07;

/** `line` without ANSI escape sequences (CSI and OSC), other control characters but tab as U+FFFD. */
function cleanLine(line: string): string {
  const max = PARSER_LIMITS.maxLineChars;
  let i = 0;
  while (i < line.length && i < max && !isControl(line.charCodeAt(i))) i++;
  // Most lines have no control character: keep them as they are (no copy).
  if (i === line.length || i === max) return line.length > max ? line.slice(0, max) : line;
  const parts: string[] = [line.slice(0, i)];
  let length = i;
  while (i < line.length && length < max) {
    const code = line.charCodeAt(i);
    if (code === ESC && line[i + 1] === '[') {
      // CSI: parameter and intermediate bytes, then one final byte in 0x40-0x7e.
      i += 2;
      while (i < line.length && (line.charCodeAt(i) < 0x40 || line.charCodeAt(i) > 0x7e)) i++;
      i++;
    } else if (code === ESC && line[i + 1] === ']') {
      // OSC (hyperlinks): up to BEL or ESC \.
      i += 2;
      while (i < line.length && line.charCodeAt(i) !== BEL && line.charCodeAt(i) !== ESC) i++;
      i += line.charCodeAt(i) === ESC ? 2 : 1;
    } else if (isControl(code)) {
      parts.push('\ufffd');
      length++;
      i++;
    } else {
      let end = i + 1;
      while (end < line.length && end - i < max - length && !isControl(line.charCodeAt(end))) end++;
      parts.push(line.slice(i, end));
      length += end - i;
      i = end;
    }
  }
  return parts.join('');
}

function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || code === 0x7f;
}

/** Opens the group values in a replacement result (lines never hold it: {@link outputLines} replaces it). */
const OPEN = '\u0001';
/** Closes the group values in a replacement result. */
const CLOSE = '\u0002';
let engine: typeof import('rregex') | null = null;

/**
 * The linear-time engine, loaded with the first pattern compiled: a server whose tools name no
 * parser never loads its WebAssembly (and a bundle copied alone still starts).
 */
function regexEngine(): typeof import('rregex') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous, deferred load
  return (engine ??= require('rregex') as typeof import('rregex'));
}

/** Separates group values in a replacement result. */
const SEPARATOR = '\u0000';

/**
 * A line pattern run by the linear-time engine (Rust's regex, in WebAssembly): never JavaScript's
 * backtracking RegExp, whose time on a hostile line can explode. Values of numbered groups are read
 * through the engine's replacement expansion, which keeps group numbers even when an optional group
 * did not take part (its captures list would not): the match is replaced by the values between
 * markers that output lines cannot contain.
 */
export class LinePattern {
  private readonly regex: RRegex;
  private readonly template: string;

  /**
   * Compiles `pattern` (Rust regex syntax, matched anywhere in a line) to read `groups`; throws
   * INVALID_ARGUMENT when it does not compile or lacks one of the groups. When `required` is given,
   * a line that contains none of these literals is known not to match and skips the engine.
   */
  constructor(
    pattern: string,
    private readonly groups: readonly number[],
    private readonly required: readonly string[] = [],
  ) {
    try {
      this.regex = new (regexEngine().RRegex)(pattern);
    } catch (err) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `The output parser's pattern does not compile: ${firstLine(err)}. Patterns use the Rust regex ` +
          'syntax (linear time): no backreferences or look-around.',
        { field: 'parser.pattern' },
      );
    }
    const available = this.regex.capturesLength() - 1;
    const missing = groups.find((g) => g > available);
    if (missing !== undefined) {
      this.regex.free();
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `The output parser names group ${missing}, but its pattern has ${available} capture group(s): ` +
          'fix the group indexes or the pattern.',
        { field: 'parser', group: missing },
      );
    }
    this.template = OPEN + groups.map((g) => `\${${g}}`).join(SEPARATOR) + CLOSE;
  }

  /**
   * The values of the requested groups ('' for a group that did not take part), or null when the
   * pattern does not match. `line` must come from {@link outputLines} (no control characters).
   */
  match(line: string): string[] | null {
    if (this.required.length > 0 && !this.required.some((literal) => line.includes(literal))) return null;
    const expanded = this.regex.replace(line, this.template);
    const open = expanded.indexOf(OPEN);
    if (open === -1) return null;
    const close = expanded.indexOf(CLOSE, open);
    if (close === -1) return null;
    if (this.groups.length === 0) return [];
    const values = expanded.slice(open + 1, close).split(SEPARATOR);
    return values.length === this.groups.length ? values : null;
  }

  /** Releases the engine's memory for this pattern. */
  free(): void {
    this.regex.free();
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && l !== '^');
  return bound(lines.slice(-1)[0] ?? 'syntax error', 300);
}

/** The severity a word names (error, warning, note, ...), or undefined when it names none. */
export function severityOf(word: string): DiagnosticSeverity | undefined {
  const w = word.trim().toLowerCase();
  if (w === '') return undefined;
  if (w === 'error' || w === 'err' || w === 'e' || w === 'fatal' || w === 'fatal error' || w === 'failure') {
    return 'error';
  }
  if (w === 'warning' || w === 'warn' || w === 'w') return 'warning';
  if (w === 'info' || w === 'information' || w === 'note' || w === 'hint' || w === 'message' || w === 'i') {
    return 'info';
  }
  return undefined;
}
