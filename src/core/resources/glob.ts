import { WorkspaceError } from '../../protocol/errors';
import { compilePathGlob, GlobSyntaxError, type GlobMatcher } from '../shared/glob';

/**
 * Compiles a search glob into a predicate over workspace-relative posix paths, using the policy's
 * path-glob syntax ({@link compilePathGlob}: `*`, `?`, `[...]` within a segment, `**` across segments,
 * `{a,b}`, `\` escapes). A glob without `/` also matches a file's base name, so `*.ts` finds files at
 * any depth. Empty or malformed globs throw INVALID_PATTERN.
 */
export function compileGlob(glob: string): (relPath: string) => boolean {
  if (typeof glob !== 'string' || glob.length === 0) {
    throw new WorkspaceError('INVALID_PATTERN', 'The glob must be a non-empty string.');
  }
  let matcher: GlobMatcher;
  try {
    matcher = compilePathGlob(glob);
  } catch (err) {
    if (err instanceof GlobSyntaxError) {
      throw new WorkspaceError(
        'INVALID_PATTERN',
        `The glob ${JSON.stringify(glob)} is invalid: ${err.message}.`,
      );
    }
    throw err;
  }
  const baseNameToo = !glob.includes('/');
  return (relPath) => {
    if (matcher.test(relPath)) return true;
    return baseNameToo && matcher.test(relPath.slice(relPath.lastIndexOf('/') + 1));
  };
}
