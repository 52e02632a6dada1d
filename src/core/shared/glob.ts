/**
 * Glob engine shared by the policy rules (workspace paths, tool names, command patterns) and by
 * resource search filters. Malformed globs throw {@link GlobSyntaxError}; callers add their own context.
 */

/** Most alternatives a single pattern may expand to through `{a,b}` groups. */
const MAX_ALTERNATIVES = 256;

/** A malformed glob; the message says what is wrong, without the rule context. */
export class GlobSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GlobSyntaxError';
  }
}

/**
 * Escapes every RegExp metacharacter in `text` (plus `/` and `-`) so it matches literally. The result
 * is meant for RegExps without the `u`/`v` flag, where escaping `-` is an identity escape.
 */
export function escapeRegExp(text: string): string {
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

/** Translates the body of a `[...]` class; in path mode the class never matches '/'. */
function translateClass(body: string, pathMode: boolean): string {
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
  if (negated) return pathMode ? `[^${out}/]` : `[^${out}]`;
  return pathMode ? `(?!/)[${out}]` : `[${out}]`;
}

/** Translates one glob fragment (no braces, no '/' semantics of its own) to a RegExp source. */
function translate(fragment: string, star: string, one: string, pathMode: boolean): string {
  let out = '';
  for (let i = 0; i < fragment.length; i++) {
    const c = fragment[i];
    if (c === '\\') {
      if (i + 1 >= fragment.length) throw new GlobSyntaxError('a trailing backslash escapes nothing');
      i++;
      out += escapeRegExp(fragment[i]);
    } else if (c === '*') {
      while (fragment[i + 1] === '*') i++;
      out += star;
    } else if (c === '?') {
      out += one;
    } else if (c === '[') {
      const end = classEnd(fragment, i);
      if (end === -1) throw new GlobSyntaxError("unclosed '[' (escape it as '\\[' to match it literally)");
      out += translateClass(fragment.slice(i + 1, end), pathMode);
      i = end;
    } else {
      out += escapeRegExp(c);
    }
  }
  return out;
}

/** Builds a RegExp and reports engine-level syntax errors (such as reversed ranges) as GlobSyntaxError. */
function build(source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`, 's');
  } catch (err) {
    throw new GlobSyntaxError(`it does not compile (${(err as Error).message})`);
  }
}

/** Strips any number of leading `./`. */
function stripDotSlash(pattern: string): string {
  let p = pattern;
  while (p.startsWith('./')) p = p.slice(2);
  return p;
}

/** RegExp source for one brace-free path alternative, following the segment rules of `**`. */
function pathAlternative(raw: string): string {
  const alternative = stripDotSlash(raw);
  if (alternative === '' || alternative === '.') return '';
  if (alternative.startsWith('/')) {
    throw new GlobSyntaxError("paths are relative to the workspace root; remove the leading '/'");
  }
  const segments: string[] = [];
  for (const segment of alternative.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw new GlobSyntaxError("'..' segments are not allowed");
    if (segment === '**' && segments[segments.length - 1] === '**') continue;
    segments.push(segment);
  }
  if (segments.length === 1 && segments[0] === '**') return '.*';

  let out = '';
  segments.forEach((segment, i) => {
    if (segment === '**') {
      out += i === 0 ? '(?:.*/)?' : '(?:/.*)?';
      return;
    }
    if (i > 0 && !(i === 1 && segments[0] === '**')) out += '/';
    out += segment === '*' ? '[^/]+' : translate(segment, '[^/]*', '[^/]', true);
  });
  return out;
}

/**
 * Compiles a workspace path glob: `*` and `?` stay within a segment, `**` spans any number of
 * segments (including none), `{a,b}` and `[...]` are supported, and `.` is the workspace root
 * (matched as the empty string).
 */
export function compilePathGlob(pattern: string): RegExp {
  const alternatives = expandBraces(stripDotSlash(pattern)).map(pathAlternative);
  return build(alternatives.join('|'));
}

/** Compiles a flat name glob (`*` any characters, `?` one character, `{a,b}`, `[...]`). */
export function compileNameGlob(pattern: string): RegExp {
  return build(
    expandBraces(pattern)
      .map((alternative) => translate(alternative, '.*', '.', false))
      .join('|'),
  );
}

/** Compiles a pattern whose only wildcard is `*` (any characters); everything else is literal. */
export function compileStarPattern(pattern: string): RegExp {
  const source = pattern.split('*').map(escapeRegExp).join('.*');
  return new RegExp(`^${source}$`, 's');
}
