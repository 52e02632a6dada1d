import { isUtf8 } from 'node:buffer';
import * as rregex from 'rregex';
import { RRegex, escape as escapeRegex } from 'rregex';
import { WorkspaceError } from '../../../protocol/errors';

/**
 * The matchers behind search_files. Literal queries are a byte search over the file (Buffer.indexOf);
 * regex queries run in Rust's `regex` engine compiled to WebAssembly (the engine ripgrep uses): finite
 * automata, no backtracking, so the time is linear in the text whatever the pattern. Both report
 * matching lines, one match per line, as ripgrep does.
 */

/**
 * The engine's raw WebAssembly exports, as the rregex version pinned in package.json exposes them
 * (`__wasm`, typed by its `rregex.wasm.d.ts`). The public API takes a JavaScript string and copies it
 * into the engine's memory one UTF-16 unit at a time, which costs far more than the search itself; a
 * file's bytes are already the UTF-8 the engine reads, so a block is screened by copying the bytes
 * into the engine's memory in one move instead. `rregex_isMatchAt` takes ownership of the text it is
 * given (the wasm-bindgen ABI of a `&str` argument: the engine frees it).
 */
interface RawEngine {
  /** The engine's linear memory (a WebAssembly.Memory): where its input text must be. */
  memory: { readonly buffer: ArrayBuffer };
  __wbindgen_malloc(size: number, align: number): number;
  rregex_isMatchAt(regex: number, text: number, length: number, start: number): number;
}

let rawEngine: RawEngine | null | undefined;

/** The engine's pointer to a compiled regex (wasm-bindgen's handle field), if it has one. */
function handleOf(regex: RRegex): number | undefined {
  const handle = (regex as unknown as { __wbg_ptr?: unknown }).__wbg_ptr;
  return typeof handle === 'number' && handle !== 0 ? handle : undefined;
}

/** Whether `regex` matches somewhere in the UTF-8 `bytes`, through the engine's public API. */
function publicIsMatch(regex: RRegex, bytes: Uint8Array): boolean {
  return regex.isMatch(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

/**
 * The raw exports, once they have been seen to agree with the public API on a sample (so an rregex
 * whose ABI differs falls back to the public API, slower but the same results); null when not.
 */
function engineExports(): RawEngine | null {
  if (rawEngine !== undefined) return rawEngine;
  rawEngine = null;
  const raw = (rregex as unknown as { __wasm?: Partial<RawEngine> }).__wasm;
  if (
    raw === undefined ||
    !(raw.memory?.buffer instanceof ArrayBuffer) ||
    typeof raw.__wbindgen_malloc !== 'function' ||
    typeof raw.rregex_isMatchAt !== 'function'
  ) {
    return rawEngine;
  }
  const probe = new RRegex('(?m)^b\\w{2}é$');
  try {
    const candidate = raw as RawEngine;
    const samples = ['a\nbxyé\n', 'a\nbxy\n', 'bx_é', 'é\nb12é'];
    const agrees = samples.every((text) => {
      const bytes = Buffer.from(text, 'utf8');
      return rawIsMatch(candidate, probe, bytes) === publicIsMatch(probe, bytes);
    });
    if (agrees) rawEngine = candidate;
  } catch {
    // Not the ABI this code was written for: keep the public API.
  } finally {
    probe.free();
  }
  return rawEngine;
}

/**
 * Whether regex searches screen blocks on their bytes in the engine's memory (true with the pinned
 * rregex), or fell back to the slower public string API because its raw exports did not check out.
 */
export function byteScreenActive(): boolean {
  return engineExports() !== null;
}

/** `regex.isMatch` on valid UTF-8 `bytes` through the raw exports; undefined when the regex has no handle. */
function rawIsMatch(raw: RawEngine, regex: RRegex, bytes: Uint8Array): boolean | undefined {
  const handle = handleOf(regex);
  if (handle === undefined) return undefined;
  const at = raw.__wbindgen_malloc(bytes.length, 1) >>> 0;
  new Uint8Array(raw.memory.buffer, at, bytes.length).set(bytes);
  return raw.rregex_isMatchAt(handle, at, bytes.length, 0) !== 0;
}

/**
 * Whether `regex` matches anywhere in `bytes` (valid UTF-8, whole lines), as `regex.isMatch` would
 * say of its text; undefined when only the public API is available (then the caller searches as usual).
 */
function screenBlock(regex: RRegex, bytes: Uint8Array): boolean | undefined {
  const raw = engineExports();
  return raw === null ? undefined : rawIsMatch(raw, regex, bytes);
}

/** One matching line of a file. */
export interface LineMatch {
  /** 1-based line number. */
  line: number;
  /** 1-based column (UTF-16 code units) of the first match on the line. */
  column: number;
  /** The line without its terminator, cut to {@link MAX_MATCH_TEXT_CHARS} characters. */
  text: string;
}

/** How a scan of one file ended. */
export type ScanEnd = 'done' | 'stopped' | 'expired';

/** Finds matching lines in file contents. */
export interface Matcher {
  /**
   * Calls `emit` for each matching line of `bytes`, in order, until `emit` returns false ('stopped')
   * or `expired()` turns true ('expired'); 'done' when the whole buffer was scanned.
   */
  scan(bytes: Buffer, emit: (match: LineMatch) => boolean, expired: () => boolean): ScanEnd;
}

/** Longest text returned for a matching line. */
export const MAX_MATCH_TEXT_CHARS = 300;
/** Bytes of text handed to the regex engine at once (whole lines; a longer line goes alone). */
const REGEX_BLOCK_BYTES = 64 * 1024;
/** Shortest required literal worth a byte-search prefilter in front of the regex engine. */
const MIN_PREFILTER_BYTES = 3;
const NEWLINE = 0x0a;
const CR = 0x0d;

/** The text of the line `[start, end)` of `bytes` for a result: no CR, cut to the display limit. */
function lineText(bytes: Buffer, start: number, end: number): string {
  let stop = end;
  if (stop > start && bytes[stop - 1] === CR) stop--;
  // 4 bytes per character at most: decode no more than the display limit needs.
  const text = bytes.toString('utf8', start, Math.min(stop, start + MAX_MATCH_TEXT_CHARS * 4));
  return text.length > MAX_MATCH_TEXT_CHARS ? text.slice(0, MAX_MATCH_TEXT_CHARS) : text;
}

function lineEnd(bytes: Buffer, from: number): number {
  const at = bytes.indexOf(NEWLINE, from);
  return at === -1 ? bytes.length : at;
}

function lineStart(bytes: Buffer, at: number): number {
  return at === 0 ? 0 : bytes.lastIndexOf(NEWLINE, at - 1) + 1;
}

/** Counts lines incrementally while a scan moves forward through a buffer. */
class LineCounter {
  private position = 0;
  private line = 1;

  constructor(private readonly bytes: Buffer) {}

  /** 1-based number of the line that starts at or contains byte `at` (never called backwards). */
  lineAt(at: number): number {
    let next = this.bytes.indexOf(NEWLINE, this.position);
    while (next !== -1 && next < at) {
      this.line++;
      this.position = next + 1;
      next = this.bytes.indexOf(NEWLINE, this.position);
    }
    return this.line;
  }
}

/** UTF-16 column of byte `at` on the line starting at byte `start`. */
function columnOf(bytes: Buffer, start: number, at: number): number {
  return bytes.toString('utf8', start, at).length + 1;
}

/**
 * How common a byte is in source text, roughly (0 = rare, 7 = everywhere): ASCII letters by English
 * frequency, upper case below lower case, common punctuation and white space at the top.
 */
function byteRank(byte: number): number {
  if (byte >= 0x80 || (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d)) return 0;
  const c = String.fromCharCode(byte);
  if (' \t\n\r'.includes(c)) return 7;
  if ('etaoinshr'.includes(c)) return 6;
  if ('dlcum(){}.,;:=_-\'"/*'.includes(c)) return 5;
  if ('wfgypbv<>[]0123456789'.includes(c)) return 4;
  if ('kjxqz'.includes(c) || '!#$%&+?@\\^`|~'.includes(c)) return 3;
  return 2; // upper-case letters
}

/** Candidates a rare-byte scan may meet per byte searched before plain substring search is cheaper. */
const MAX_CANDIDATE_DENSITY = 1 / 256;
/** Candidates seen before that density is judged. */
const MIN_CANDIDATES_JUDGED = 64;

/**
 * Finds a needle in bytes as `Buffer.indexOf` does, faster on the usual search (about 10% over this
 * project's own dependencies): it jumps with `memchr` to the needle's rarest byte (by
 * {@link byteRank}) and compares the needle there, and goes back to `Buffer.indexOf` for the rest
 * of a buffer where that byte turns out to be common.
 */
export class NeedleFinder {
  private readonly rare: number;
  private readonly at: number;

  constructor(private readonly needle: Buffer) {
    let best = 0;
    for (let i = 1; i < needle.length; i++) if (byteRank(needle[i]!) < byteRank(needle[best]!)) best = i;
    this.at = best;
    this.rare = needle[best] ?? 0;
  }

  /** The first index at or after `from` where the needle starts in `bytes`, or -1. */
  find(bytes: Buffer, from: number): number {
    const { needle, at, rare } = this;
    if (needle.length < 2) return bytes.indexOf(needle, from);
    const started = from;
    let candidates = 0;
    let next = from + at;
    for (;;) {
      const hit = bytes.indexOf(rare, next);
      if (hit === -1) return -1;
      const start = hit - at;
      if (start + needle.length > bytes.length) return -1;
      if (bytes.compare(needle, 0, needle.length, start, start + needle.length) === 0) return start;
      next = hit + 1;
      if (++candidates >= MIN_CANDIDATES_JUDGED && candidates > (hit - started) * MAX_CANDIDATE_DENSITY) {
        return bytes.indexOf(needle, start + 1);
      }
    }
  }
}

/** Case-sensitive literal search: a byte search (memchr-class) over the raw file bytes. */
class LiteralMatcher implements Matcher {
  private readonly needle: Buffer;
  private readonly finder: NeedleFinder;

  constructor(query: string) {
    this.needle = Buffer.from(query, 'utf8');
    this.finder = new NeedleFinder(this.needle);
  }

  scan(bytes: Buffer, emit: (match: LineMatch) => boolean, expired: () => boolean): ScanEnd {
    // A line-based search never matches a line break.
    if (this.needle.includes(NEWLINE)) return 'done';
    const lines = new LineCounter(bytes);
    let at = this.finder.find(bytes, 0);
    while (at !== -1) {
      if (expired()) return 'expired';
      const start = lineStart(bytes, at);
      const end = lineEnd(bytes, at);
      const match = {
        line: lines.lineAt(start),
        column: columnOf(bytes, start, at),
        text: lineText(bytes, start, end),
      };
      if (!emit(match)) return 'stopped';
      if (end >= bytes.length) return 'done';
      at = this.finder.find(bytes, end + 1);
    }
    return 'done';
  }
}

/** A compiled linear-time regex, optionally behind a byte-search prefilter on a literal every match contains. */
class RegexMatcher implements Matcher {
  private readonly prefilter: NeedleFinder | undefined;

  constructor(
    private readonly regex: RRegex,
    literal: Buffer | undefined,
  ) {
    this.prefilter = literal === undefined ? undefined : new NeedleFinder(literal);
  }

  scan(bytes: Buffer, emit: (match: LineMatch) => boolean, expired: () => boolean): ScanEnd {
    // The engine reports byte offsets into the UTF-8 of the text it was given: keep the bytes and the
    // text in step (invalid UTF-8 is searched as its U+FFFD replacement, as a text decoder reads it).
    const text = isUtf8(bytes) ? bytes : Buffer.from(bytes.toString('utf8'), 'utf8');
    return this.prefilter === undefined
      ? this.scanBlocks(text, emit, expired)
      : this.scanCandidates(text, this.prefilter, emit, expired);
  }

  /** Only lines holding the required literal can match: find them by byte search, test each alone. */
  private scanCandidates(
    bytes: Buffer,
    literal: NeedleFinder,
    emit: (match: LineMatch) => boolean,
    expired: () => boolean,
  ): ScanEnd {
    const lines = new LineCounter(bytes);
    let at = literal.find(bytes, 0);
    while (at !== -1) {
      if (expired()) return 'expired';
      const start = lineStart(bytes, at);
      const end = lineEnd(bytes, at);
      const match = this.matchLine(bytes, start, end, lines);
      if (match !== undefined && !emit(match)) return 'stopped';
      if (end >= bytes.length) return 'done';
      at = literal.find(bytes, end + 1);
    }
    return 'done';
  }

  /** Whole blocks of lines per engine call; a match that runs across a line break is re-tested per line. */
  private scanBlocks(bytes: Buffer, emit: (match: LineMatch) => boolean, expired: () => boolean): ScanEnd {
    const lines = new LineCounter(bytes);
    let blockStart = 0;
    while (blockStart < bytes.length) {
      if (expired()) return 'expired';
      const limit = Math.min(bytes.length, blockStart + REGEX_BLOCK_BYTES);
      let blockEnd = limit === bytes.length ? limit : bytes.lastIndexOf(NEWLINE, limit - 1) + 1;
      if (blockEnd <= blockStart) blockEnd = Math.min(bytes.length, lineEnd(bytes, blockStart) + 1);
      // Most blocks hold no match: rule them out on the bytes, without decoding them to a string.
      if (screenBlock(this.regex, bytes.subarray(blockStart, blockEnd)) === false) {
        blockStart = blockEnd;
        continue;
      }
      const block = bytes.toString('utf8', blockStart, blockEnd);
      let offset = 0;
      while (offset < blockEnd - blockStart) {
        const found = this.regex.findAt(block, offset);
        if (found === undefined) break;
        const start = lineStart(bytes, blockStart + found.start);
        const end = lineEnd(bytes, blockStart + found.start);
        if (blockStart + found.end <= end) {
          const match = {
            line: lines.lineAt(start),
            column: columnOf(bytes, start, blockStart + found.start),
            text: lineText(bytes, start, end),
          };
          if (!emit(match)) return 'stopped';
          offset = end + 1 - blockStart;
        } else {
          // The leftmost match spans lines: test the rest of the block line by line.
          const ended = this.scanLines(bytes, start, blockEnd, lines, emit, expired);
          if (ended !== 'done') return ended;
          break;
        }
      }
      blockStart = blockEnd;
    }
    return 'done';
  }

  private scanLines(
    bytes: Buffer,
    from: number,
    to: number,
    lines: LineCounter,
    emit: (match: LineMatch) => boolean,
    expired: () => boolean,
  ): ScanEnd {
    let start = from;
    while (start < to) {
      if (expired()) return 'expired';
      const end = lineEnd(bytes, start);
      const match = this.matchLine(bytes, start, end, lines);
      if (match !== undefined && !emit(match)) return 'stopped';
      start = end + 1;
    }
    return 'done';
  }

  private matchLine(bytes: Buffer, start: number, end: number, lines: LineCounter): LineMatch | undefined {
    let stop = end;
    if (stop > start && bytes[stop - 1] === CR) stop--;
    const found = this.regex.find(bytes.toString('utf8', start, stop));
    if (found === undefined) return undefined;
    return {
      line: lines.lineAt(start),
      column: columnOf(bytes, start, start + found.start),
      text: lineText(bytes, start, end),
    };
  }
}

/** Index just past the `]` closing the class that opens at `start` (nested classes allowed). */
function skipClass(pattern: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '[') {
      depth++;
      // A `]` right after the opening (or after `^`) is a literal member.
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
    } else if (c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return pattern.length;
}

/** Index just past the `)` closing the group that opens at `start`. */
function skipGroup(pattern: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '[') {
      i = skipClass(pattern, i);
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return pattern.length;
}

/** Index just past a quantifier (`?`, `*`, `+`, `{...}`, plus a lazy `?`) at `at`, or `at` if none. */
function skipQuantifier(pattern: string, at: number): number {
  let i = at;
  const c = pattern[i];
  if (c === '?' || c === '*' || c === '+') i++;
  else if (c === '{') {
    const close = pattern.indexOf('}', i);
    if (close === -1) return at;
    i = close + 1;
  } else return at;
  return pattern[i] === '?' ? i + 1 : i;
}

const PUNCTUATION = /^[!-/:-@[-`{-~]$/;

/**
 * The longest literal that every match of `pattern` contains, found conservatively from its top level
 * (no alternation, no flags; groups and classes end a literal run), or undefined when there is none.
 * Used only as a prefilter: a line without it cannot match.
 */
export function requiredLiteral(pattern: string): string | undefined {
  const runs: string[] = [];
  let run = '';
  const end = (): void => {
    if (run !== '') runs.push(run);
    run = '';
  };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    let literal: string | undefined;
    let next = i + 1;
    if (c === '|') return undefined;
    if (c === '\\') {
      const escaped = pattern[i + 1] ?? '';
      next = i + 2;
      if (PUNCTUATION.test(escaped)) literal = escaped;
    } else if (c === '(') {
      if (pattern[i + 1] === '?' && /^[a-zA-Z-]$/.test(pattern[i + 2] ?? '')) return undefined;
      next = skipGroup(pattern, i);
    } else if (c === '[') {
      next = skipClass(pattern, i);
    } else if (c !== '.' && c !== '^' && c !== '$' && c !== '?' && c !== '*' && c !== '+' && c !== '{') {
      literal = c;
    }
    const after = skipQuantifier(pattern, next);
    if (literal === undefined) {
      end();
    } else if (after === next) {
      run += literal;
    } else if (pattern[next] === '+') {
      // At least once: the character is required, what follows is not adjacent to it.
      run += literal;
      end();
    } else {
      end();
    }
    i = after;
  }
  end();
  let best: string | undefined;
  for (const candidate of runs) {
    if (best === undefined || Buffer.byteLength(candidate) > Buffer.byteLength(best)) best = candidate;
  }
  return best !== undefined && Buffer.byteLength(best) >= MIN_PREFILTER_BYTES ? best : undefined;
}

/** The first line of the engine's error, which names the problem (the rest draws the pattern). */
function describeRegexError(err: unknown): string {
  const text = String(err instanceof Error ? err.message : err);
  const reason = /error: (.*)/.exec(text)?.[1];
  return reason ?? text.split('\n')[0];
}

/**
 * Compiles a search query. Literal queries (case-sensitive) become a byte search; regex queries and
 * case-insensitive ones compile to the linear-time engine in multi-line mode (`^`/`$` at line ends).
 * Patterns it cannot express (backreferences, look-around) and syntax errors throw INVALID_PATTERN.
 */
export function compileMatcher(query: string, opts: { regex: boolean; caseSensitive: boolean }): Matcher {
  if (!opts.regex && opts.caseSensitive) return new LiteralMatcher(query);
  const source = opts.regex ? query : escapeRegex(query);
  const pattern = `(?m)${opts.caseSensitive ? '' : '(?i)'}${source}`;
  let regex = compiled.get(pattern);
  if (regex !== undefined) {
    // Most recently used last.
    compiled.delete(pattern);
    compiled.set(pattern, regex);
  } else {
    regex = compileRegex(pattern);
    compiled.set(pattern, regex);
    if (compiled.size > COMPILED_CACHE_SIZE) {
      const oldest = compiled.keys().next().value as string;
      compiled.get(oldest)?.free();
      compiled.delete(oldest);
    }
  }
  const literal = opts.caseSensitive && opts.regex ? requiredLiteral(query) : undefined;
  return new RegexMatcher(regex, literal === undefined ? undefined : Buffer.from(literal, 'utf8'));
}

/** Compiled patterns of recent searches (compiling a large Unicode class can take a while). */
const compiled = new Map<string, RRegex>();
const COMPILED_CACHE_SIZE = 16;

function compileRegex(pattern: string): RRegex {
  try {
    return new RRegex(pattern);
  } catch (err) {
    throw new WorkspaceError(
      'INVALID_PATTERN',
      `The regular expression cannot be used: ${describeRegexError(err)}. Search uses a linear-time engine ` +
        '(the Rust regex syntax ripgrep uses): backreferences and look-around are not available; ' +
        'search for a literal part instead, or use a character class.',
      { reason: describeRegexError(err) },
    );
  }
}
