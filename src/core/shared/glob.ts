/**
 * Glob engine shared by the policy rules (workspace paths, tool names, command patterns) and by
 * resource search filters. Malformed globs throw {@link GlobSyntaxError}; callers add their own context.
 *
 * Every matcher here runs in time linear in the length of the tested value times the length of the
 * pattern, whatever both contain: a glob is never handed whole to a backtracking regular-expression
 * engine (a pattern such as `*a*a*a*b` or `**\/a/**\/a/**\/b` compiles into a regex that takes
 * seconds to minutes to reject a long path, which would stall the server). Instead a pattern is cut
 * at its `*` runs and at its `/` separators; each piece in between has a fixed length, so it is
 * compiled to a regex that cannot backtrack, and the pieces are placed leftmost-first (which is
 * exact for star-separated fixed-length pieces), segments and `**` by a set-of-states walk.
 *
 * Path pieces are compiled by picomatch, configured so that it cannot widen or narrow a rule behind
 * the policy's back: `dot: true` (a `deny write(.git/**)` must match dot paths), `nonegate: true` (a
 * leading `!` is a literal character, not "everything except"), `noextglob: true` (`+(a|b)` is
 * literal), `nobrace: true` (`{a,b}` groups are expanded here, with a bound and clear errors),
 * `windows: false` (paths are POSIX: `\` escapes, it never separates), `posix: false` (no
 * `[[:alpha:]]` classes, as before), `strictSlashes` and `literalBrackets: false` (a class matches
 * one character, never the literal text `[abc]`). Characters that picomatch would read as regex
 * syntax (`(`, `|`, `+`, `@`, `!` ...) are escaped before it sees them.
 */
import picomatch from 'picomatch';

/** Most alternatives a single pattern may expand to through `{a,b}` groups. */
const MAX_ALTERNATIVES = 256;

/** The picomatch options for one star-free, slash-free piece of a path glob (see the file comment). */
const PICOMATCH_OPTIONS: picomatch.PicomatchOptions = Object.freeze({
  dot: true,
  nonegate: true,
  noextglob: true,
  nobrace: true,
  windows: false,
  posix: false,
  strictSlashes: true,
  literalBrackets: false,
  fastpaths: false,
});

/** A malformed glob; the message says what is wrong, without the rule context. */
export class GlobSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GlobSyntaxError';
  }
}

/** A compiled glob: `test` says whether a whole value matches. */
export interface GlobMatcher {
  test(value: string): boolean;
  /**
   * Path globs only: whether the answer for a non-empty path depends on its last segment alone
   * (every alternative is `**` or `**` followed by one name pattern), so callers may memoise by name.
   */
  readonly nameOnly?: boolean;
}

/**
 * Escapes every RegExp metacharacter in `text` (plus `/` and `-`) so it matches literally. The result
 * is meant for RegExps without the `u`/`v` flag, where escaping `-` is an identity escape.
 */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Index of the `]` closing the character class that opens at `start`, or -1 when it is unclosed. */
function classEnd(s: string, start: number): number {
  let j = start + 1;
  if (s[j] === '!' || s[j] === '^') j++;
  if (s[j] === ']') j++;
  while (j < s.length && s[j] !== ']') {
    if (s[j] === '\\') j++;
    j++;
  }
  return j < s.length ? j : -1;
}

/**
 * Expands `{a,b,c}` groups (nested groups allowed) into plain patterns. Backslash escapes and
 * character classes are respected; unbalanced braces throw.
 */
function expandBraces(pattern: string): string[] {
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      if (end !== -1) i = end;
    } else if (c === '}') {
      throw new GlobSyntaxError("unmatched '}'");
    } else if (c === '{') {
      open = i;
      break;
    }
  }
  if (open === -1) return [pattern];

  const alternatives: string[] = [];
  let depth = 0;
  let start = open + 1;
  let close = -1;
  for (let i = open + 1; i < pattern.length && close === -1; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      const end = classEnd(pattern, i);
      if (end !== -1) i = end;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      if (depth === 0) close = i;
      else depth--;
    } else if (c === ',' && depth === 0) {
      alternatives.push(pattern.slice(start, i));
      start = i + 1;
    }
  }
  if (close === -1) throw new GlobSyntaxError("unmatched '{'");
  alternatives.push(pattern.slice(start, close));

  const prefix = pattern.slice(0, open);
  const suffixes = expandBraces(pattern.slice(close + 1));
  const result: string[] = [];
  for (const alternative of alternatives) {
    for (const expanded of expandBraces(alternative)) {
      for (const suffix of suffixes) {
        result.push(prefix + expanded + suffix);
        if (result.length > MAX_ALTERNATIVES) {
          throw new GlobSyntaxError(`'{...}' groups expand to more than ${MAX_ALTERNATIVES} alternatives`);
        }
      }
    }
  }
  return result;
}

/**
 * Cuts a brace-free glob fragment at its unescaped `*` runs (outside classes), checking escapes and
 * classes on the way. `['a', 'b']` means `a*b`; a fragment without a star gives one piece.
 */
function splitAtStars(fragment: string): string[] {
  const pieces: string[] = [];
  let current = '';
  for (let i = 0; i < fragment.length; i++) {
    const c = fragment[i];
    if (c === '\\') {
      if (i + 1 >= fragment.length) throw new GlobSyntaxError('a trailing backslash escapes nothing');
      current += fragment.slice(i, i + 2);
      i++;
    } else if (c === '[') {
      const end = classEnd(fragment, i);
      if (end === -1) throw new GlobSyntaxError("unclosed '[' (escape it as '\\[' to match it literally)");
      current += fragment.slice(i, end + 1);
      i = end;
    } else if (c === '*') {
      while (fragment[i + 1] === '*') i++;
      pieces.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  pieces.push(current);
  return pieces;
}

/**
 * Tests one fixed-length piece at a position: the end of the match, or -1. The empty piece matches
 * everywhere without consuming.
 */
type Piece = (value: string, at: number) => number;

/** A piece from a sticky RegExp whose every match has the same length. */
function stickyPiece(source: string): Piece {
  if (source === '') return (_value, at) => at;
  let re: RegExp;
  try {
    re = new RegExp(source, 'ys');
  } catch (err) {
    throw new GlobSyntaxError(`it does not compile (${(err as Error).message})`);
  }
  return (value, at) => {
    re.lastIndex = at;
    return re.test(value) ? re.lastIndex : -1;
  };
}

/**
 * True if `pieces` (joined by `*`, each of fixed length) match the whole of `value`. Leftmost
 * placement is exact here: pushing a middle piece further right never helps the pieces after it.
 * Time O(value length x pattern length).
 */
function matchPieces(pieces: readonly Piece[], value: string): boolean {
  const n = value.length;
  let pos = pieces[0](value, 0);
  if (pos === -1) return false;
  if (pieces.length === 1) return pos === n;
  for (let p = 1; p < pieces.length - 1; p++) {
    let end = -1;
    for (let at = pos; at <= n && end === -1; at++) end = pieces[p](value, at);
    if (end === -1) return false;
    pos = end;
  }
  const last = pieces[pieces.length - 1];
  for (let at = n; at >= pos; at--) {
    if (last(value, at) === n) return true;
  }
  return false;
}

/**
 * Escapes, for picomatch, every ASCII punctuation character of a star-free piece that is not glob
 * syntax here (`?`, `[...]`, `\x`), so that `(`, `|`, `+`, `@`, `!`, `$` ... stay literal; a class
 * written `[!...]` is passed on as `[^...]` (picomatch's `nonegate` would otherwise read the `!` as a
 * member).
 */
function escapeForPicomatch(piece: string): string {
  let out = '';
  for (let i = 0; i < piece.length; i++) {
    const c = piece[i];
    if (c === '\\') {
      out += piece.slice(i, i + 2);
      i++;
    } else if (c === '[') {
      const end = classEnd(piece, i);
      const body = piece.slice(i + 1, end);
      out += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
      i = end;
    } else if (c === '?' || !/[!-/:-@[-`{-~]/.test(c)) {
      out += c;
    } else {
      out += `\\${c}`;
    }
  }
  return out;
}

/** A piece that is plain text: compared in place, no regex needed (the common case: `.env`, `src`). */
function literalPiece(text: string): Piece {
  return (value, at) => (value.startsWith(text, at) ? at + text.length : -1);
}

/** One path segment pattern: picomatch-compiled pieces between `*` runs. */
function segmentPieces(segment: string): Piece[] {
  return splitAtStars(segment).map((piece) => {
    if (piece === '') return stickyPiece('');
    if (!/[?[\\]/.test(piece)) return literalPiece(piece);
    let source: string;
    try {
      source = picomatch.parse(escapeForPicomatch(piece), PICOMATCH_OPTIONS).output;
    } catch (err) {
      throw new GlobSyntaxError(`it does not compile (${(err as Error).message})`);
    }
    return stickyPiece(source);
  });
}

/** Strips any number of leading `./`. */
function stripDotSlash(pattern: string): string {
  let p = pattern;
  while (p.startsWith('./')) p = p.slice(2);
  return p;
}

/** A brace-free path alternative: its segments, `'**'` for a globstar, each other one as pieces. */
type PathSegments = Array<'**' | Piece[]>;

/** Parses one brace-free path alternative, following the segment rules of `**`. */
function pathAlternative(raw: string): PathSegments {
  const alternative = stripDotSlash(raw);
  if (alternative === '' || alternative === '.') return [];
  if (alternative.startsWith('/')) {
    throw new GlobSyntaxError("paths are relative to the workspace root; remove the leading '/'");
  }
  const segments: PathSegments = [];
  for (const segment of alternative.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw new GlobSyntaxError("'..' segments are not allowed");
    if (segment === '**') {
      if (segments[segments.length - 1] !== '**') segments.push('**');
      continue;
    }
    segments.push(segmentPieces(segment));
  }
  return segments;
}

/**
 * True if the segments match `path` (non-empty, `/`-separated): a walk over the set of pattern
 * positions reachable after each path segment, `**` staying put or moving on, kept as a bit set.
 * Time O(path length x pattern length).
 */
function matchSegments(pattern: PathSegments, path: string): boolean {
  const size = pattern.length;
  // Pattern positions 0..size as bits (patterns are short; longer ones fall back to a Set).
  if (size >= 31) return matchSegmentsSlow(pattern, path);
  const closure = (states: number): number => {
    for (let i = 0; i < size; i++) if (states & (1 << i) && pattern[i] === '**') states |= 1 << (i + 1);
    return states;
  };
  let states = closure(1);
  let start = 0;
  for (;;) {
    const slash = path.indexOf('/', start);
    const segment = slash === -1 ? path.slice(start) : path.slice(start, slash);
    let next = 0;
    for (let i = 0; i < size; i++) {
      if (!(states & (1 << i))) continue;
      const part = pattern[i]!;
      if (part === '**') next |= 1 << i;
      // An empty segment (`a//b`, a trailing `/`) is no name: only `**` spans it, as `*` needs one character.
      else if (segment !== '' && matchPieces(part, segment)) next |= 1 << (i + 1);
    }
    if (next === 0) return false;
    states = closure(next);
    if (slash === -1) return (states & (1 << size)) !== 0;
    start = slash + 1;
  }
}

/** {@link matchSegments} for patterns of 31 segments or more, with a Set of positions. */
function matchSegmentsSlow(pattern: PathSegments, path: string): boolean {
  const closure = (states: Set<number>): Set<number> => {
    for (const i of states) if (pattern[i] === '**') states.add(i + 1);
    return states;
  };
  let states = closure(new Set([0]));
  for (const segment of path.split('/')) {
    const next = new Set<number>();
    for (const i of states) {
      const part = pattern[i];
      if (part === undefined) continue;
      if (part === '**') next.add(i);
      else if (segment !== '' && matchPieces(part, segment)) next.add(i + 1);
    }
    if (next.size === 0) return false;
    states = closure(next);
  }
  return states.has(pattern.length);
}

/**
 * A faster, equivalent test for the shapes most rules have: `**` (everything) and `**\/NAME` (the
 * last segment, which must be a name). Other shapes take the general walk.
 */
function segmentsMatcher(pattern: PathSegments): (path: string) => boolean {
  if (pattern.length === 1 && pattern[0] === '**') return () => true;
  const last = pattern[1];
  if (pattern.length === 2 && pattern[0] === '**' && last !== '**' && last !== undefined) {
    return (path) => {
      const name = path.slice(path.lastIndexOf('/') + 1);
      return name !== '' && matchPieces(last, name);
    };
  }
  return (path) => matchSegments(pattern, path);
}

/**
 * Compiles a workspace path glob: `*` and `?` stay within a segment, `**` spans any number of
 * segments (including none), `{a,b}` and `[...]` are supported, and `.` is the workspace root
 * (matched as the empty string). Dot files are matched like any other name.
 */
export function compilePathGlob(pattern: string): GlobMatcher {
  const alternatives = expandBraces(stripDotSlash(pattern)).map(pathAlternative);
  // The root (the empty path) is matched by '.' and by patterns made of '**' only.
  const matchesRoot = alternatives.some((segments) => segments.every((s) => s === '**'));
  const matchers = alternatives.map(segmentsMatcher);
  const nameOnly = alternatives.every(
    (segments) =>
      (segments.length === 1 && segments[0] === '**') ||
      (segments.length === 2 && segments[0] === '**' && segments[1] !== '**'),
  );
  return {
    test: (path) => (path === '' ? matchesRoot : matchers.some((matches) => matches(path))),
    nameOnly,
  };
}

/** Translates the body of a `[...]` class of a name glob (which, unlike a path's, may match `/`). */
function nameClass(body: string): string {
  const negated = body[0] === '!' || body[0] === '^';
  const inner = negated ? body.slice(1) : body;
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '\\') {
      i++;
      out += '\\' + (inner[i] ?? '\\');
    } else if (c === '-' && i > 0 && i < inner.length - 1) {
      out += '-';
    } else if (c === ']' || c === '[' || c === '^' || c === '-') {
      out += '\\' + c;
    } else {
      out += c;
    }
  }
  return negated ? `[^${out}]` : `[${out}]`;
}

/** Translates one star-free name-glob piece (`?` any one character, `[...]`, `\x`) to a RegExp source. */
function namePieceSource(piece: string): string {
  let out = '';
  for (let i = 0; i < piece.length; i++) {
    const c = piece[i];
    if (c === '\\') {
      i++;
      out += escapeRegExp(piece[i]);
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      const end = classEnd(piece, i);
      out += nameClass(piece.slice(i + 1, end));
      i = end;
    } else {
      out += escapeRegExp(c);
    }
  }
  return out;
}

/**
 * Compiles a flat name glob (`*` any characters, `?` one character, `{a,b}`, `[...]`), for tool
 * and environment variable names. Not picomatch: in a name, `?` and `[!...]` must also match `/`,
 * which a path glob library never does (that would let `deny env(A?B)` miss `A/B`).
 */
export function compileNameGlob(pattern: string): GlobMatcher {
  const alternatives = expandBraces(pattern).map((alternative) =>
    splitAtStars(alternative).map((piece) => stickyPiece(namePieceSource(piece))),
  );
  return { test: (name) => alternatives.some((pieces) => matchPieces(pieces, name)) };
}

/** Compiles a pattern whose only wildcard is `*` (any characters); everything else is literal. */
export function compileStarPattern(pattern: string): GlobMatcher {
  const pieces: Piece[] = pattern
    .replace(/\*+/g, '*')
    .split('*')
    .map((literal) => (value, at) => (value.startsWith(literal, at) ? at + literal.length : -1));
  return { test: (value) => matchPieces(pieces, value) };
}
