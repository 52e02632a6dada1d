/**
 * `.gitignore` rules as git reads them: one file per directory, patterns relative to it, the last
 * matching line of the deepest file decides, `!` re-includes, a trailing `/` matches directories only,
 * a `/` elsewhere anchors the pattern to the file's directory, `*`/`?`/`[...]` stay within a path
 * segment and `**` spans segments. A directory that is ignored is not entered, so nothing below it can
 * be re-included (as in git).
 */

interface Rule {
  negated: boolean;
  directoryOnly: boolean;
  /** Matched against the whole path relative to the .gitignore's directory (else the base name). */
  anchored: boolean;
  test: (subject: string) => boolean;
}

/** The rules of one `.gitignore` file. */
export interface IgnoreFile {
  /** Workspace-relative directory of the file ('.' for the root). */
  base: string;
  rules: Rule[];
}

/** Translates one glob segment sequence (no `**` handling) to RegExp source. */
function translate(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\' && i + 1 < glob.length) {
      out += escapeChar(glob[++i]);
    } else if (c === '*') {
      while (glob[i + 1] === '*') i++;
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = classClose(glob, i);
      if (close === -1) {
        out += '\\[';
      } else {
        out += translateClass(glob.slice(i + 1, close));
        i = close;
      }
    } else {
      out += escapeChar(c);
    }
  }
  return out;
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}

function classClose(glob: string, open: number): number {
  let j = open + 1;
  if (glob[j] === '!' || glob[j] === '^') j++;
  if (glob[j] === ']') j++;
  while (j < glob.length && glob[j] !== ']') {
    if (glob[j] === '\\') j++;
    j++;
  }
  return j < glob.length ? j : -1;
}

function translateClass(body: string): string {
  const negated = body[0] === '!' || body[0] === '^';
  let out = '';
  for (let i = negated ? 1 : 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\' && i + 1 < body.length) out += `\\${body[++i]}`;
    else if (c === '-' && out !== '' && i < body.length - 1) out += '-';
    else out += /[\]\\^[-]/.test(c) ? `\\${c}` : c;
  }
  return negated ? `[^/${out}]` : `(?!/)[${out}]`;
}

/** RegExp source for a pattern with `**` segments: leading `**\/`, trailing `/**`, inner `/**\/`. */
function translatePath(pattern: string): string {
  const segments = pattern.split('/');
  let out = '';
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '**') {
      if (index === 0) out += last ? '.*' : '(?:.*/)?';
      else out += last ? '/.*' : '(?:/.*)?/';
      return;
    }
    if (index > 0 && segments[index - 1] !== '**') out += '/';
    out += translate(segment);
  });
  return out;
}

function compileRule(line: string): Rule | undefined {
  let text = line;
  // Trailing spaces are ignored unless escaped with a backslash.
  while (text.endsWith(' ') && !text.endsWith('\\ ')) text = text.slice(0, -1);
  if (text === '' || text.startsWith('#')) return undefined;
  const negated = text.startsWith('!');
  if (negated) text = text.slice(1);
  else if (text.startsWith('\\!') || text.startsWith('\\#')) text = text.slice(1);
  const directoryOnly = text.endsWith('/');
  if (directoryOnly) text = text.replace(/\/+$/, '');
  if (text === '') return undefined;
  const anchored = text.includes('/');
  if (text.startsWith('/')) text = text.slice(1);
  let test: (subject: string) => boolean;
  if (!/[*?[\\]/.test(text)) {
    const exact = text;
    test = (subject) => subject === exact;
  } else if (!anchored && /^\*[^*?[\\/]+$/.test(text)) {
    const suffix = text.slice(1);
    test = (subject) => subject.endsWith(suffix);
  } else {
    const regex = new RegExp(`^(?:${translatePath(text)})$`, 's');
    test = (subject) => regex.test(subject);
  }
  return { negated, directoryOnly, anchored, test };
}

/** Parses the text of the `.gitignore` in workspace-relative directory `base`. */
export function parseIgnoreFile(base: string, content: string): IgnoreFile {
  const rules: Rule[] = [];
  for (const line of content.split(/\r?\n/)) {
    const rule = compileRule(line);
    if (rule !== undefined) rules.push(rule);
  }
  return { base, rules };
}

/**
 * Whether `rel` (workspace-relative) is ignored by the `.gitignore` files of its ancestors, given
 * outermost first. The deepest file with a matching rule decides, by its last matching rule.
 */
export function isIgnored(files: readonly IgnoreFile[], rel: string, isDirectory: boolean): boolean {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  for (let f = files.length - 1; f >= 0; f--) {
    const file = files[f];
    const local = file.base === '.' ? rel : rel.slice(file.base.length + 1);
    for (let r = file.rules.length - 1; r >= 0; r--) {
      const rule = file.rules[r];
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.test(rule.anchored ? local : name)) return !rule.negated;
    }
  }
  return false;
}
