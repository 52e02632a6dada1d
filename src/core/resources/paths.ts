import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { errnoCode, isErrno } from '../shared/fs';
import { quote } from '../shared/text';

/** Longest accepted path, in UTF-16 code units. */
export const MAX_PATH_CHARS = 4096;
/** Longest accepted path component, in UTF-8 bytes (the usual NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;
/** Most symbolic links followed while resolving one path that does not fully exist. */
const MAX_SYMLINK_HOPS = 40;

/** True if `child` is `parent` or lies below it (both absolute, normalised). */
export function isWithin(child: string, parent: string): boolean {
  if (child === parent) return true;
  const prefix = parent.endsWith('/') ? parent : `${parent}/`;
  return child.startsWith(prefix);
}

function hasControlChar(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

function stripTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === '/') end--;
  return path.slice(0, end);
}

/**
 * Syntactic normalisation of a workspace path (no file-system access). `roots` are the absolute
 * spellings of the workspace root that absolute inputs may start with.
 */
export function normalizeWorkspacePath(input: unknown, roots: readonly string[]): string {
  if (typeof input !== 'string') {
    throw new WorkspaceError('INVALID_PATH', 'The path must be a string.');
  }
  if (input.length === 0) {
    throw new WorkspaceError('INVALID_PATH', 'The path is empty; use "." for the workspace root.');
  }
  if (input.length > MAX_PATH_CHARS) {
    throw new WorkspaceError('INVALID_PATH', `The path is longer than ${MAX_PATH_CHARS} characters.`);
  }
  if (input.includes('\0')) {
    throw new WorkspaceError('INVALID_PATH', 'The path contains a NUL byte.');
  }
  if (hasControlChar(input)) {
    throw new WorkspaceError('INVALID_PATH', `The path ${quote(input)} contains control characters.`);
  }
  for (const part of input.split('/')) {
    if (Buffer.byteLength(part, 'utf8') > MAX_COMPONENT_BYTES) {
      throw new WorkspaceError(
        'INVALID_PATH',
        `A component of the path is longer than ${MAX_COMPONENT_BYTES} bytes; use shorter names.`,
      );
    }
  }
  let rel: string;
  if (input.startsWith('/')) {
    const abs = stripTrailingSlashes(nodePath.posix.normalize(input));
    const root = roots.find((candidate) => isWithin(abs, candidate));
    if (root === undefined) {
      throw new WorkspaceError(
        'PATH_OUTSIDE_WORKSPACE',
        `The path ${quote(input)} is outside the workspace; use a path relative to the workspace root.`,
      );
    }
    rel = abs === root ? '.' : abs.slice(root.endsWith('/') ? root.length : root.length + 1);
  } else {
    rel = stripTrailingSlashes(nodePath.posix.normalize(input));
  }
  if (rel === '' || rel === './' || rel === '/') rel = '.';
  if (rel === '..' || rel.startsWith('../')) {
    throw new WorkspaceError(
      'PATH_OUTSIDE_WORKSPACE',
      `The path ${quote(input)} leaves the workspace; use a path relative to the workspace root.`,
    );
  }
  return rel;
}

/**
 * Real path of `abs`, even when it does not (fully) exist: the deepest existing ancestor is
 * realpath'd (following dangling symlinks to where they point) and the missing rest appended.
 */
export async function realpathLoose(abs: string, hops = 0): Promise<{ real: string; exists: boolean }> {
  // Path metadata lives in the kernel's dentry cache: the synchronous syscalls take ~5 µs, where
  // a trip through libuv's thread pool costs ~100 µs of CPU. Every operation resolves its path,
  // so this is the hot path of the whole server.
  try {
    return { real: realpathSync.native(abs), exists: true };
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
  }
  const parentAbs = nodePath.dirname(abs);
  const link = lstatSync(abs, { throwIfNoEntry: false });
  if (link?.isSymbolicLink()) {
    if (hops >= MAX_SYMLINK_HOPS) {
      throw Object.assign(new Error('Too many symbolic links'), { code: 'ELOOP' });
    }
    const target = readlinkSync(abs);
    const parent = await realpathLoose(parentAbs, hops + 1);
    return realpathLoose(nodePath.resolve(parent.real, target), hops + 1);
  }
  if (parentAbs === abs) return { real: abs, exists: false };
  const parent = await realpathLoose(parentAbs, hops);
  return { real: nodePath.join(parent.real, nodePath.basename(abs)), exists: false };
}

/** Maps a Node.js file-system error to a WorkspaceError naming `label`; other errors pass through. */
export function toFsError(err: unknown, label: string): unknown {
  if (err instanceof WorkspaceError) return err;
  const shown = quote(label);
  switch (errnoCode(err)) {
    case 'ENOENT':
      return new WorkspaceError('NOT_FOUND', `No such file or directory: ${shown}.`);
    case 'ENOTDIR':
      return new WorkspaceError('NOT_A_DIRECTORY', `A component of ${shown} is not a directory.`);
    case 'EISDIR':
      return new WorkspaceError('NOT_A_FILE', `${shown} is a directory, not a file.`);
    case 'EEXIST':
      return new WorkspaceError('ALREADY_EXISTS', `${shown} already exists.`);
    case 'ENOTEMPTY':
      return new WorkspaceError(
        'DIRECTORY_NOT_EMPTY',
        `The directory ${shown} is not empty; pass recursive: true to delete it with its contents.`,
      );
    case 'ELOOP':
      return new WorkspaceError('INVALID_PATH', `Too many levels of symbolic links in ${shown}.`);
    case 'ENAMETOOLONG':
      return new WorkspaceError('INVALID_PATH', `The path ${shown} is too long for the file system.`);
    case 'EINVAL':
      return new WorkspaceError('INVALID_PATH', `The operation is not valid for ${shown}.`);
    case 'EACCES':
    case 'EPERM':
      return new WorkspaceError('FORBIDDEN', `The operating system denied access to ${shown}.`);
    default:
      return err;
  }
}

/**
 * Refuses a server-owned path (the state dir, the owner's policy file) that lies inside the
 * workspace: an agent that runs commands there could rename one of its parents and so move it out
 * of the server's protection. Checked by real path and by the `(dev, ino)` of every ancestor, so an
 * alias spelling or a bind mount of the workspace is caught too. A relative policy file is refused
 * as well, because it would resolve into whichever workspace is opened.
 */
export async function assertOutsideWorkspace(
  what: 'state dir' | 'policy file',
  path: string,
  workspaceReal: string,
): Promise<void> {
  if (what === 'policy file' && !nodePath.isAbsolute(path)) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The policy file ${quote(path)} is a relative path, which would resolve inside the workspace; give an absolute path outside the workspace.`,
    );
  }
  const refuse = (): WorkspaceError =>
    new WorkspaceError(
      'INVALID_ARGUMENT',
      `The ${what} ${quote(path)} is inside the workspace ${quote(workspaceReal)}, where an agent that runs commands could rename a parent folder and take it out of the server's protection. Choose a ${what} outside the workspace${what === 'state dir' ? ' (or leave it unset: the default is under ~/.local/state/mcp-workspace)' : ''}.`,
    );
  const { real } = await realpathLoose(nodePath.resolve(path));
  if (isWithin(real, workspaceReal)) throw refuse();
  const root = statSync(workspaceReal);
  for (let dir = real; ; dir = nodePath.dirname(dir)) {
    const stats = statSync(dir, { throwIfNoEntry: false });
    if (stats !== undefined && stats.dev === root.dev && stats.ino === root.ino) throw refuse();
    if (nodePath.dirname(dir) === dir) return;
  }
}
