import { WorkspaceError } from '../../protocol/errors';

const REGEXP_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

/** Escapes `text` so it matches literally inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(REGEXP_SPECIAL, '\\$&');
}

/**
 * Compiles a glob (`*`, `**`, `?`, `{a,b}`, `\` escapes) into a predicate over workspace-relative
 * posix paths. A glob without `/` also matches a file's base name, so `*.ts` finds files at any depth.
 */
export function compileGlob(glob: string): (relPath: string) => boolean {
  if (typeof glob !== 'string' || glob.length === 0) {
    throw new WorkspaceError('INVALID_PATTERN', 'The glob must be a non-empty string.');
  }
  let source = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') {
      let stars = 1;
      while (glob[i + 1] === '*') {
        stars++;
        i++;
      }
      if (stars === 1) {
        source += '[^/]*';
      } else if ((i - stars < 0 || glob[i - stars] === '/') && glob[i + 1] === '/') {
        source += '(?:.*/)?';
        i++;
      } else {
        source += '.*';
      }
    } else if (ch === '?') {
      source += '[^/]';
    } else if (ch === '{') {
      braces++;
      source += '(?:';
    } else if (ch === '}' && braces > 0) {
      braces--;
      source += ')';
    } else if (ch === ',' && braces > 0) {
      source += '|';
    } else if (ch === '\\' && i + 1 < glob.length) {
      source += escapeRegExp(glob[++i]);
    } else {
      source += escapeRegExp(ch);
    }
  }
  if (braces !== 0) {
    throw new WorkspaceError('INVALID_PATTERN', `The glob ${JSON.stringify(glob)} has an unclosed "{".`);
  }
  const matcher = new RegExp(`^${source}$`);
  const baseNameToo = !glob.includes('/');
  return (relPath) => {
    if (matcher.test(relPath)) return true;
    return baseNameToo && matcher.test(relPath.slice(relPath.lastIndexOf('/') + 1));
  };
}
