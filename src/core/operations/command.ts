/**
 * The exec check of run_command: what the policy judges is exactly what runs. Characters a shell
 * and the check could read differently are refused, never normalised; a command allowed by a
 * narrow rule is split into an argv here and run with no shell at all; shell syntax needs
 * `allow exec(*)`. Private to the operation runner.
 */
import { WorkspaceError } from '../../protocol/errors';

/**
 * Code point ranges refused in commands, arguments, cwd and env values: control characters (tab and
 * newline are judged separately), and whitespace or invisible code points that are not ASCII —
 * U+00A0 reads as a space to a human and to `\s`, but not to sh.
 */
const FORBIDDEN_RANGES: readonly (readonly [number, number])[] = [
  [0x00, 0x08],
  [0x0b, 0x1f],
  [0x7f, 0xa0],
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x61c, 0x61c],
  [0x115f, 0x1160],
  [0x1680, 0x1680],
  [0x17b4, 0x17b5],
  [0x180b, 0x180f],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x206f],
  [0x3000, 0x3000],
  [0x3164, 0x3164],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
  [0xffa0, 0xffa0],
];

/** Whether a code point is refused outright. */
function forbidden(code: number): boolean {
  return FORBIDDEN_RANGES.some(([low, high]) => code >= low && code <= high);
}

/** Characters that mean something to sh outside quotes (redirections, globs, expansions, lists...). */
const SHELL_SYNTAX = new Set([...'|&;<>()$`\\*?[]#~{}!\n']);

/** Characters that mean something to sh inside double quotes. */
const DOUBLE_QUOTE_SYNTAX = new Set([...'$`\\!']);

/** How a run_command request runs: an argv with no shell, or `sh -c` for an `allow exec(*)` caller. */
export interface CommandPlan {
  argv: string[];
  shell: boolean;
}

/** Describes an offending character as `U+00A0` for messages. */
function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Refuses control characters and non-ASCII whitespace in `value` (`what` names the field in the
 * message). `allowNewline` admits tab and newline (a script for `sh -c`, an env value).
 */
export function refuseAmbiguousCharacters(what: string, value: string, allowNewline: boolean): void {
  let offset = 0;
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (forbidden(code) || (!allowNewline && (code === 0x09 || code === 0x0a))) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `${what} contains ${codePoint(char)} at offset ${offset}: control characters and whitespace ` +
          'other than ASCII space are refused, because a shell and the policy check could read them ' +
          'differently. Use plain spaces (or pass arguments in `args`).',
        { field: what, offset, codePoint: codePoint(char) },
      );
    }
    offset += char.length;
  }
}

/**
 * Splits a command into words the way sh would when it contains no shell syntax: words separated
 * by spaces or tabs, `'...'` literal, `"..."` literal when free of `$`, backquote, `\` and `!`.
 * Returns null when sh would do anything more (expansion, redirection, lists, globs, assignments).
 */
export function tokenizeCommand(command: string): string[] | null {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (const char of command) {
    if (quote === "'") {
      if (char === "'") quote = null;
      else word += char;
      continue;
    }
    if (quote === '"') {
      if (char === '"') quote = null;
      else if (DOUBLE_QUOTE_SYNTAX.has(char)) return null;
      else word += char;
      continue;
    }
    if (char === ' ' || char === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    if (SHELL_SYNTAX.has(char)) return null;
    // `NAME=value cmd` is an assignment to sh, not a program name.
    if (char === '=' && words.length === 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word) && !quote) return null;
    inWord = true;
    if (char === "'" || char === '"') quote = char;
    else word += char;
  }
  if (quote !== null) return null;
  if (inWord) words.push(word);
  return words.length > 0 ? words : null;
}

/** Quotes an argv word for the policy check (and messages) so that words with spaces stay one word. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The policy target of an argv: its words, quoted where needed, joined by single spaces. */
export function argvTarget(argv: readonly string[]): string {
  return argv.map(shellWord).join(' ');
}

// `;`, newline, `&&`, `||`, `|` and `&`, but not the `&` and `|` of redirections (`>&2`, `&>`, `>|`).
const SHELL_SEPARATORS = /\|\||&&|[;\n]|(?<![<>&])&(?![>&])|(?<![>|])\|(?!\|)/;

/**
 * The parts of a shell command line chained with `;`, `&&`, `||`, `|` or `&`. Only a best effort
 * for `deny exec(...)` rules under `allow exec(*)`: a shell can always spell a command differently.
 */
export function shellParts(command: string): string[] {
  const parts = command
    .split(SHELL_SEPARATORS)
    .map((part) => part.trim())
    .filter(Boolean);
  return parts.length > 0 ? parts : [command.trim()];
}
