/**
 * Descriptor-relative confinement of every file-system operation to one workspace folder.
 *
 * An agent that can run commands in a container that mounts the workspace can swap any directory
 * for a symbolic link at any moment. A path string checked once and used again later is therefore
 * no boundary. This module holds an `O_DIRECTORY` descriptor of the workspace root and resolves a
 * workspace-relative path one component at a time with
 * `open("/proc/self/fd/<held dir>/<name>", O_RDONLY | O_DIRECTORY | O_NOFOLLOW)`: the kernel never
 * follows a symbolic link on our behalf. Links inside the workspace are followed here, hop by hop,
 * each hop confined again, with a hop limit. Every later syscall (open, temp-create, rename, link,
 * unlink, rmdir, mkdir, readdir, lstat, fsync) names a single entry of a held directory through
 * `/proc/self/fd/<fd>/<name>`, so a directory swapped for a link after the check changes nothing.
 * Protected entries (the server's state dir, the owner's policy file) are recognised by
 * `(dev, ino)`, so renaming one of their parents does not hide them.
 *
 * Supported host platform: Linux (Windows through Remote-WSL, which is Linux). macOS is not
 * supported yet: it has no `/proc/self/fd`, and `O_NOFOLLOW_ANY` covers opens but not rename or
 * unlink. {@link assertConfinementSupported} fails closed on any other platform.
 *
 * Everything here is synchronous and keyed by plain numbers and strings, so a worker thread can
 * use it with a root descriptor number received from the main thread (descriptors are
 * process-wide): pass a {@link ConfinedRootHandle} through `workerData`.
 */
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  type Dirent,
  type Stats,
} from 'node:fs';
import { isErrno } from '../shared/fs';
import { quote } from '../shared/text';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';

/** Most symbolic links followed while resolving one path (the kernel's own limit is 40). */
export const MAX_SYMLINK_HOPS = 40;

/** Open flags this module depends on; each must exist and be non-zero on the host. */
interface Flags {
  O_RDONLY: number;
  O_WRONLY: number;
  O_CREAT: number;
  O_EXCL: number;
  O_NOFOLLOW: number;
  O_DIRECTORY: number;
  O_NONBLOCK: number;
}

let cachedFlags: Flags | undefined;

/**
 * Checks that the host can confine file operations (Linux: `/proc/self/fd` and the `O_NOFOLLOW`,
 * `O_DIRECTORY`, `O_EXCL`, `O_NONBLOCK` flags) and returns the flags. Throws UNSUPPORTED_PLATFORM,
 * never silently weakens confinement (a missing flag constant would otherwise read as 0).
 */
export function assertConfinementSupported(): Flags {
  cachedFlags ??= confinementFlags(process.platform, fsConstants, existsSync('/proc/self/fd'));
  return cachedFlags;
}

/**
 * The pure check behind {@link assertConfinementSupported}, for a given platform name, `fs.constants`
 * and whether `/proc/self/fd` exists.
 */
export function confinementFlags(
  platform: string,
  constants: Readonly<Record<string, number | undefined>>,
  hasProcFd: boolean,
): Flags {
  const unsupported = (why: string): WorkspaceError =>
    new WorkspaceError(
      'UNSUPPORTED_PLATFORM',
      `MCP Workspace cannot confine file operations on this host (${why}). The supported host ` +
        'platform is Linux; on Windows run it through Remote-WSL. macOS is not supported yet.',
    );
  if (platform !== 'linux') throw unsupported(`platform ${platform}`);
  const flags: Partial<Flags> = {};
  for (const name of ['O_WRONLY', 'O_CREAT', 'O_EXCL', 'O_NOFOLLOW', 'O_DIRECTORY', 'O_NONBLOCK'] as const) {
    const value = constants[name];
    if (typeof value !== 'number' || value === 0) throw unsupported(`the ${name} flag is missing`);
    flags[name] = value;
  }
  if (constants['O_RDONLY'] !== 0) throw unsupported('O_RDONLY is not 0');
  flags.O_RDONLY = 0;
  if (!hasProcFd) throw unsupported('/proc/self/fd is not mounted');
  return flags as Flags;
}

let heldFdDir: string | undefined;

/**
 * `/proc/<pid>/fd` of this process (the pid as the mounted procfs numbers it): the same directory as
 * `/proc/self/fd` (every thread of the process shares its descriptors), one symbolic link fewer for
 * the kernel to follow on each of the many opens a walk makes.
 */
function procFdDir(): string {
  if (heldFdDir === undefined) {
    let pid: string;
    try {
      pid = readlinkSync('/proc/self');
    } catch {
      pid = 'self';
    }
    heldFdDir = /^\d+$/.test(pid) ? `/proc/${pid}/fd` : '/proc/self/fd';
  }
  return heldFdDir;
}

/** The path that names entry `name` of the directory held open as `dirFd` (or the directory itself). */
export function fdPath(dirFd: number, name?: string): string {
  const dir = procFdDir();
  return name === undefined || name === '' ? `${dir}/${dirFd}` : `${dir}/${dirFd}/${name}`;
}

/** Identity key of a file-system entry: device and inode, stable across renames. */
export function identityOf(stats: { dev: number; ino: number }): string {
  return `${stats.dev}:${stats.ino}`;
}

/**
 * Everything needed to resolve paths inside one workspace, as plain data a worker thread can
 * receive: the root descriptor number, the root's real path (for absolute link targets) and the
 * `(dev, ino)` keys of protected entries.
 */
export interface ConfinedRootHandle {
  /** `O_RDONLY | O_DIRECTORY` descriptor of the workspace root, held for the server's lifetime. */
  fd: number;
  /** Real path of the root when it was opened: absolute link targets below it stay inside. */
  path: string;
  /** {@link identityOf} keys of entries no operation may reach (state dir, policy file). */
  protectedIds: readonly string[];
}

/** How {@link resolveConfined} treats the path. */
export interface ResolveOptions {
  /** Follow a symbolic link in the final component (read, write, list); false acts on the link itself. */
  followFinal: boolean;
}

/**
 * One resolved workspace path: the held parent directory, the final name in it and what was found
 * there. Policy is decided on `realRel`, and the I/O then uses `parentFd` + `name`, so nothing is
 * looked up by path string again. Close it when done (the root descriptor is never closed).
 */
export interface ConfinedPath {
  /** The path as asked, normalised (posix, workspace-relative, '.' for the root). */
  readonly rel: string;
  /** Where it really lands, after following in-workspace links ('.' for the root). */
  readonly realRel: string;
  /** Whether a final link was followed ({@link ResolveOptions.followFinal}). */
  readonly followFinal: boolean;
  /** The deepest existing directory on the way, held open; the parent of `name` when `missingDirs` is empty. */
  parentFd: number;
  /** Missing intermediate directories below `parentFd` (created by {@link ConfinedPath.makeParents}). */
  missingDirs: string[];
  /** Final component; '' when the path is the root itself (then `parentFd` is the root). */
  readonly name: string;
  /** `lstat` of the final entry when it exists (never a symlink when `followFinal` was set). */
  stats: Stats | undefined;
  /** Creates the missing intermediate directories, each opened `O_NOFOLLOW` as it is made. */
  makeParents(): void;
  /** Opens the resolved directory itself (the root, or `parentFd/name`) and returns its descriptor. */
  openDirectory(): number;
  /** Closes every descriptor this resolution opened. */
  close(): void;
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

function protectedError(rel: string): WorkspaceError {
  return new WorkspaceError(
    'PROTECTED_PATH',
    `${quote(rel)} is protected by the server and cannot be accessed.`,
  );
}

/** Throws PROTECTED_PATH when `stats` names a protected entry of `root`. */
export function assertNotProtected(root: ConfinedRootHandle, stats: Stats | undefined, rel: string): void {
  if (stats !== undefined && root.protectedIds.length > 0 && root.protectedIds.includes(identityOf(stats))) {
    throw protectedError(rel);
  }
}

/** `lstat` of entry `name` in the held directory `dirFd`, undefined when it does not exist. */
export function lstatAt(dirFd: number, name: string): Stats | undefined {
  try {
    return lstatSync(fdPath(dirFd, name), { throwIfNoEntry: false });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** Opens directory entry `name` of `dirFd` without following a link (ELOOP/ENOTDIR if it is not a directory). */
export function openDirAt(dirFd: number, name: string): number {
  const f = assertConfinementSupported();
  return openSync(fdPath(dirFd, name), f.O_RDONLY | f.O_DIRECTORY | f.O_NOFOLLOW);
}

/**
 * Opens regular file `name` of `dirFd` for reading: never through a link, never blocking on a FIFO,
 * never a protected entry. Returns the descriptor and its `fstat`; the caller closes it.
 */
export function openFileAt(
  root: ConfinedRootHandle,
  dirFd: number,
  name: string,
  rel: string,
): { fd: number; stats: Stats } {
  const f = assertConfinementSupported();
  const fd = openSync(fdPath(dirFd, name), f.O_RDONLY | f.O_NOFOLLOW | f.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    assertNotProtected(root, stats, rel);
    if (!stats.isFile()) throw new WorkspaceError('NOT_A_FILE', `${quote(rel)} is not a regular file.`);
    return { fd, stats };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Creates a new file `name` in `dirFd` exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`) for writing. */
export function createExclusiveAt(dirFd: number, name: string, mode = 0o666): number {
  const f = assertConfinementSupported();
  return openSync(fdPath(dirFd, name), f.O_WRONLY | f.O_CREAT | f.O_EXCL | f.O_NOFOLLOW, mode);
}

/** Renames entry `from` of `fromDirFd` to `to` of `toDirFd` (rename never follows either final name). */
export function renameAt(fromDirFd: number, from: string, toDirFd: number, to: string): void {
  renameSync(fdPath(fromDirFd, from), fdPath(toDirFd, to));
}

/** Hard-links entry `from` of `dirFd` as `to` in the same directory; EEXIST when `to` exists. */
export function linkAt(dirFd: number, from: string, to: string): void {
  linkSync(fdPath(dirFd, from), fdPath(dirFd, to));
}

/** Removes the non-directory entry `name` of `dirFd` (a link is removed, never its target). */
export function unlinkAt(dirFd: number, name: string): void {
  unlinkSync(fdPath(dirFd, name));
}

/** Removes the empty directory `name` of `dirFd`. */
export function rmdirAt(dirFd: number, name: string): void {
  rmdirSync(fdPath(dirFd, name));
}

/** Creates directory `name` in `dirFd` (mkdir never follows a final link: an existing link is EEXIST). */
export function mkdirAt(dirFd: number, name: string, mode = 0o777): void {
  mkdirSync(fdPath(dirFd, name), { mode });
}

/** Names in the held directory `dirFd`, sorted by code unit. */
export function readdirAt(dirFd: number): string[] {
  return readdirSync(fdPath(dirFd)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Flushes a held directory after a rename or create; file systems that cannot do it are skipped. */
export function fsyncDirectory(dirFd: number): void {
  try {
    fsyncSync(dirFd);
  } catch {
    // Some file systems cannot fsync a directory; the entry change itself has already happened.
  }
}

/**
 * Opens the workspace root and records the `(dev, ino)` of protected entries (absolute paths;
 * missing ones are skipped). The root descriptor stays open for the life of the process.
 */
export function openConfinedRoot(root: string, protectedPaths: readonly string[] = []): ConfinedRootHandle {
  const f = assertConfinementSupported();
  const real = realpathSync.native(root);
  const fd = openSync(real, f.O_RDONLY | f.O_DIRECTORY);
  const protectedIds: string[] = [];
  for (const path of protectedPaths) {
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats) protectedIds.push(identityOf(stats));
  }
  return { fd, path: real, protectedIds };
}

/**
 * Resolves `rel` (already normalised: posix, relative, no leading '..') inside `root`, one component
 * at a time, following in-workspace links by hand. Throws PATH_OUTSIDE_WORKSPACE when a link leads
 * out, PROTECTED_PATH when a protected entry is on the way, and Node errno errors (ENOTDIR, ELOOP,
 * ENOENT for a '..' after a missing directory) otherwise. A missing tail is not an error: it shows in
 * `missingDirs` and `stats === undefined`.
 */
export function resolveConfined(
  root: ConfinedRootHandle,
  rel: string,
  options: ResolveOptions,
): ConfinedPath {
  const owned: number[] = [];
  // Real path components below the root, with the descriptor of each opened directory.
  const stack: Array<{ name: string; fd: number }> = [];
  const current = (): number => (stack.length === 0 ? root.fd : stack[stack.length - 1]!.fd);
  const pending = rel === '.' ? [] : rel.split('/');
  let hops = 0;
  const realRelOf = (tail: string[]): string => {
    const parts = [...stack.map((s) => s.name), ...tail];
    return parts.length === 0 ? '.' : parts.join('/');
  };
  const fail = (err: unknown): never => {
    for (const fd of owned) closeSync(fd);
    throw err;
  };
  const follow = (dirFd: number, name: string): void => {
    if (++hops > MAX_SYMLINK_HOPS) fail(errno('ELOOP', 'Too many symbolic links'));
    const target = readlinkSync(fdPath(dirFd, name));
    if (target.startsWith('/')) {
      const abs = nodePath.posix.normalize(target);
      const prefix = root.path.endsWith('/') ? root.path : `${root.path}/`;
      if (abs !== root.path && !abs.startsWith(prefix)) {
        fail(
          new WorkspaceError(
            'PATH_OUTSIDE_WORKSPACE',
            `${quote(rel)} resolves outside the workspace (through a symbolic link); access refused.`,
          ),
        );
      }
      // Restart from the root; the directories held so far stay owned until close.
      stack.length = 0;
      pending.unshift(...abs.slice(root.path.length).split('/').filter(Boolean));
    } else {
      pending.unshift(...target.split('/'));
    }
  };
  try {
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (stack.length === 0) {
          // `..` from the root followed by the root's own name (a link such as `up -> ..` then
          // `up/<root name>`) comes back to the root; anything else leaves the workspace.
          const next = pending.findIndex((p) => p !== '' && p !== '.');
          if (next !== -1 && pending[next] === nodePath.posix.basename(root.path)) {
            pending.splice(0, next + 1);
            continue;
          }
          throw new WorkspaceError(
            'PATH_OUTSIDE_WORKSPACE',
            `${quote(rel)} resolves outside the workspace (through a symbolic link); access refused.`,
          );
        }
        stack.pop();
        continue;
      }
      const dirFd = current();
      const isFinal = !pending.some((p) => p !== '' && p !== '.');
      if (isFinal) {
        const stats = lstatAt(dirFd, name);
        if (stats?.isSymbolicLink() && options.followFinal) {
          follow(dirFd, name);
          continue;
        }
        assertNotProtected(root, stats, rel);
        return makePath(root, rel, options, realRelOf([name]), dirFd, [], name, stats, owned);
      }
      let fd: number;
      try {
        fd = openDirAt(dirFd, name);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          const rest = [name, ...pending].filter((p) => p !== '' && p !== '.');
          // `missing/..` cannot be resolved (the kernel says ENOENT too).
          if (rest.includes('..')) throw err;
          const last = rest.pop()!;
          return makePath(
            root,
            rel,
            options,
            realRelOf([...rest, last]),
            dirFd,
            rest,
            last,
            undefined,
            owned,
          );
        }
        if (!isErrno(err, 'ELOOP', 'ENOTDIR')) throw err;
        const stats = lstatAt(dirFd, name);
        if (!stats?.isSymbolicLink()) throw errno('ENOTDIR', 'Not a directory');
        follow(dirFd, name);
        continue;
      }
      owned.push(fd);
      assertNotProtected(root, fstatSync(fd), rel);
      stack.push({ name, fd });
    }
    // The path is the root itself (possibly through links).
    return makePath(root, rel, options, realRelOf([]), current(), [], '', fstatSync(current()), owned);
  } catch (err) {
    return fail(err);
  }
}

function makePath(
  root: ConfinedRootHandle,
  rel: string,
  options: ResolveOptions,
  realRel: string,
  parentFd: number,
  missingDirs: string[],
  name: string,
  stats: Stats | undefined,
  owned: number[],
): ConfinedPath {
  let closed = false;
  const path: ConfinedPath = {
    rel,
    realRel,
    followFinal: options.followFinal,
    parentFd,
    missingDirs,
    name,
    stats,
    makeParents() {
      while (path.missingDirs.length > 0) {
        const dir = path.missingDirs[0]!;
        try {
          mkdirAt(path.parentFd, dir);
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        // If something other than a real directory appeared there meanwhile, this refuses it.
        const fd = openDirAt(path.parentFd, dir);
        owned.push(fd);
        assertNotProtected(root, fstatSync(fd), rel);
        path.parentFd = fd;
        path.missingDirs.shift();
      }
      path.stats = lstatAt(path.parentFd, path.name);
      assertNotProtected(root, path.stats, rel);
    },
    openDirectory() {
      if (path.missingDirs.length > 0) throw errno('ENOENT', 'No such file or directory');
      if (path.name === '') return path.parentFd;
      const fd = openDirAt(path.parentFd, path.name);
      owned.push(fd);
      assertNotProtected(root, fstatSync(fd), rel);
      return fd;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const fd of owned) closeSync(fd);
      owned.length = 0;
    },
  };
  return path;
}

/** Kind of an entry met by a walk (links are reported, never followed). */
export type WalkEntryType = 'file' | 'directory' | 'symlink' | 'other';

/** One entry met by {@link walkHeldEntries}: its kind as the directory listing reports it. */
export interface WalkEntryBase {
  /** Workspace-relative posix path (as reached by the walk, under the start directory's real path). */
  rel: string;
  type: WalkEntryType;
  /** Held descriptor of the directory containing the entry (valid only during the callback). */
  dirFd: number;
  /** The entry's name in `dirFd`. */
  name: string;
  /** Workspace-relative path of the directory holding the entry (`.` for the workspace root). */
  dirRel: string;
  /** Levels below the start directory: 1 for the start directory's own entries. */
  depth: number;
}

/** One entry met by {@link walkConfined} or {@link walkHeldDirectory}, with its `lstat`. */
export interface WalkEntry extends WalkEntryBase {
  /** Size in bytes from `lstat`. */
  size: number;
  stats: Stats;
}

/** Options of a walk; `E` is the kind of entry handed to `onEntry`. */
export interface WalkOptions<E extends WalkEntryBase = WalkEntry> {
  /** Levels below the start directory to visit: 1 lists only its entries. */
  maxDepth: number;
  /**
   * Called for every entry, depth first, in code-unit order of names within a directory. `dirFd` is
   * the held parent (open files with {@link openFileAt}(root, dirFd, name, rel)). Return 'skip' to
   * not descend into a directory, 'stop' to end the walk.
   */
  onEntry: (entry: E) => 'skip' | 'stop' | void;
}

/** Outcome of {@link walkConfined}. */
export interface WalkResult {
  /** Real workspace-relative path of the start directory. */
  realRel: string;
  /** True if `onEntry` returned 'stop'. */
  stopped: boolean;
}

function typeOf(stats: Stats | Dirent): WalkEntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

/**
 * Walks the directory tree at `relDir` (links in `relDir` itself are followed inside the workspace;
 * links met during the walk are reported and never followed). Every directory is opened
 * `O_NOFOLLOW` relative to its held parent, protected entries (by `(dev, ino)`) are skipped
 * silently, and unreadable or vanished entries are skipped, so a tree changing underneath can
 * neither lead the walk outside the workspace nor into a protected directory. Synchronous; safe in
 * a worker thread given the main thread's {@link ConfinedRootHandle}. Throws like
 * {@link resolveConfined} for the start directory (NOT_FOUND-class errno errors, ENOTDIR).
 */
export function walkConfined(root: ConfinedRootHandle, relDir: string, options: WalkOptions): WalkResult {
  const start = resolveConfined(root, relDir, { followFinal: true });
  try {
    if (start.stats === undefined) throw errno('ENOENT', 'No such file or directory');
    if (!start.stats.isDirectory()) throw errno('ENOTDIR', 'Not a directory');
    const stopped = walkHeldDirectory(root, start.openDirectory(), start.realRel, options);
    return { realRel: start.realRel, stopped };
  } finally {
    start.close();
  }
}

/**
 * Like {@link walkConfined}, from a directory already held open as `dirFd` (whose workspace-relative
 * path is `dirRel`); `dirFd` is not closed. Every entry is `lstat`ed (protected ones are skipped by
 * identity). Returns true if `onEntry` stopped the walk.
 */
export function walkHeldDirectory(
  root: ConfinedRootHandle,
  dirFd: number,
  dirRel: string,
  options: WalkOptions,
): boolean {
  return walkDirectory(root, dirFd, dirRel, 1, options, statEntries);
}

/**
 * The fast walk for readers that open what they find: like {@link walkHeldDirectory}, but an entry's
 * kind is the one the directory listing reports (`d_type`), with no `lstat` per entry. The kind is
 * only a hint that can be stale by the time it is used, so confinement never rests on it: a
 * directory is descended into only through `open(O_DIRECTORY | O_NOFOLLOW)` and only if the `fstat`
 * of that held descriptor is not a protected identity, and a file must be opened with
 * {@link openFileAt} (`O_NOFOLLOW`, then its `fstat` is checked for kind and protected identity), so
 * an entry swapped for a link or a protected entry met by name fails there. Protected files are
 * therefore reported to `onEntry` (never their contents); protected directories are not entered.
 */
export function walkHeldEntries(
  root: ConfinedRootHandle,
  dirFd: number,
  dirRel: string,
  options: WalkOptions<WalkEntryBase>,
): boolean {
  return walkDirectory(root, dirFd, dirRel, 1, options, typedEntries);
}

/** Where a listed directory is: the entries' common fields. */
interface ListedAt {
  dirFd: number;
  dirRel: string;
  depth: number;
}

/** A listed directory: `count` entries in name order, each described on demand (undefined: leave it out). */
interface Listing<E extends WalkEntryBase> {
  count: number;
  at(index: number): E | undefined;
}

/** Lists a held directory for a walk; undefined when it cannot be read. */
type Lister<E extends WalkEntryBase> = (root: ConfinedRootHandle, where: ListedAt) => Listing<E> | undefined;

function relOf(where: ListedAt, name: string): string {
  return where.dirRel === '.' ? name : `${where.dirRel}/${name}`;
}

/** Names in order, each `lstat`ed only when the walk reaches it; protected and vanished entries left out. */
function statEntries(root: ConfinedRootHandle, where: ListedAt): Listing<WalkEntry> | undefined {
  const { dirFd, dirRel, depth } = where;
  let names: string[];
  try {
    names = readdirAt(dirFd);
  } catch {
    return undefined;
  }
  return {
    count: names.length,
    at(index) {
      const name = names[index]!;
      const stats = lstatAt(dirFd, name);
      if (stats === undefined) return undefined;
      if (root.protectedIds.length > 0 && root.protectedIds.includes(identityOf(stats))) return undefined;
      return {
        name,
        type: typeOf(stats),
        size: stats.size,
        stats,
        rel: relOf(where, name),
        dirFd,
        dirRel,
        depth,
      };
    },
  };
}

/** Entries with the kind `readdir` reports (Node itself `lstat`s an entry whose `d_type` is unknown). */
function typedEntries(root: ConfinedRootHandle, where: ListedAt): Listing<WalkEntryBase> | undefined {
  const { dirFd, dirRel, depth } = where;
  let dirents: Dirent[];
  try {
    dirents = readdirSync(fdPath(dirFd), { withFileTypes: true });
  } catch {
    // An entry whose d_type is unknown vanished before Node could lstat it: list the slow way.
    return statEntries(root, where);
  }
  const entries: WalkEntryBase[] = new Array<WalkEntryBase>(dirents.length);
  for (let i = 0; i < dirents.length; i++) {
    const d = dirents[i]!;
    entries[i] = { name: d.name, type: typeOf(d), rel: relOf(where, d.name), dirFd, dirRel, depth };
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { count: entries.length, at: (index) => entries[index] };
}

function walkDirectory<E extends WalkEntryBase>(
  root: ConfinedRootHandle,
  dirFd: number,
  dirRel: string,
  depth: number,
  options: WalkOptions<E>,
  list: Lister<E>,
): boolean {
  const listing = list(root, { dirFd, dirRel, depth });
  if (listing === undefined) return false;
  for (let index = 0; index < listing.count; index++) {
    const entry = listing.at(index);
    if (entry === undefined) continue;
    const verdict = options.onEntry(entry);
    if (verdict === 'stop') return true;
    if (verdict === 'skip' || entry.type !== 'directory' || depth >= options.maxDepth) continue;
    let childFd: number;
    try {
      childFd = openDirAt(dirFd, entry.name);
    } catch {
      continue; // replaced by a link or removed since it was listed: not followed
    }
    try {
      const child = fstatSync(childFd);
      if (root.protectedIds.includes(identityOf(child))) continue;
      if (walkDirectory(root, childFd, entry.rel, depth + 1, options, list)) return true;
    } finally {
      closeSync(childFd);
    }
  }
  return false;
}
