import { WorkspaceError } from '../../protocol/errors';
import { compilePathGlob, GlobSyntaxError, type GlobMatcher } from '../shared/glob';

/** A lease path glob, compiled once: what it matches and the literal folder its matches live under. */
export interface LeaseGlob {
  /** The glob as given (leading `./` and trailing `/` removed). */
  text: string;
  /** Matches workspace-relative paths (the root is the empty string). */
  re: GlobMatcher;
  /** The literal leading segments before the first wildcard ('' when it starts with one). */
  prefix: string;
  /** No wildcard at all: the glob names one file or folder. */
  literal: boolean;
  /** Contains `**`: it can match at any depth under its prefix. */
  deep: boolean;
}

const WILDCARD = /[*?[\]{}\\]/;

/** Workspace-relative path with the root as the empty string and no `./` or trailing `/`. */
export function normalizeRel(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.' || p === '/') return '';
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Compiles a lease glob; a malformed one (or one leaving the workspace) is INVALID_PATTERN. */
export function compileLeaseGlob(raw: string): LeaseGlob {
  const text = normalizeRel(raw.trim());
  if (text === '') {
    throw new WorkspaceError(
      'INVALID_PATTERN',
      'A lease path must name files or folders, e.g. "src/api/**"; use "**" to lease the whole workspace.',
    );
  }
  let re: GlobMatcher;
  try {
    re = compilePathGlob(text);
  } catch (err) {
    if (!(err instanceof GlobSyntaxError)) throw err;
    throw new WorkspaceError(
      'INVALID_PATTERN',
      `The lease path ${JSON.stringify(raw)} is malformed: ${err.message}.`,
    );
  }
  const segments = text.split('/');
  const fixed: string[] = [];
  for (const segment of segments) {
    if (WILDCARD.test(segment)) break;
    fixed.push(segment);
  }
  return {
    text,
    re,
    prefix: fixed.join('/'),
    literal: fixed.length === segments.length,
    deep: text.includes('**'),
  };
}

/** Whether `ancestor` is `path` or one of its parent folders ('' is the root, the parent of all). */
export function isSelfOrAncestor(ancestor: string, path: string): boolean {
  return ancestor === '' || ancestor === path || path.startsWith(ancestor + '/');
}

/** Whether the glob covers `path`: it matches the path or one of its parent folders (a leased folder covers its contents). */
export function covers(glob: LeaseGlob, path: string): boolean {
  if (glob.re.test(path)) return true;
  for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) {
    if (glob.re.test(path.slice(0, end))) return true;
  }
  return false;
}

/**
 * Whether a change at `path` touches what the glob leases: the glob covers it, or the path is a folder
 * above everything the glob can match (deleting or moving `src` touches a lease on `src/api/**`).
 */
export function touches(glob: LeaseGlob, path: string): boolean {
  return covers(glob, path) || isSelfOrAncestor(path, glob.prefix);
}

/**
 * Whether two lease globs may cover a common path. Exact when one of them is a literal path;
 * otherwise judged from their literal folders, conservatively (`src/**` and `src/*.md` overlap).
 */
export function overlaps(a: LeaseGlob, b: LeaseGlob): boolean {
  if (!isSelfOrAncestor(a.prefix, b.prefix) && !isSelfOrAncestor(b.prefix, a.prefix)) return false;
  if (a.literal && b.literal) return true;
  if (a.literal) return touches(b, a.text) || b.deep;
  if (b.literal) return touches(a, b.text) || a.deep;
  return true;
}
