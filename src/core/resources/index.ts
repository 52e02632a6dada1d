import { isUtf8 } from 'node:buffer';
import { createHash, webcrypto } from 'node:crypto';
import { closeSync, fstatSync, read, readlinkSync, readSync, type Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { promisify } from 'node:util';
import { WorkspaceError } from '../../protocol/errors';
import { atomicWriteAt } from './atomic';
import {
  assertNotProtected,
  fdPath,
  fsyncDirectory,
  lstatAt,
  mkdirAt,
  openConfinedRoot,
  openDirAt,
  openFileAt,
  readdirAt,
  renameAt,
  resolveConfined,
  rmdirAt,
  unlinkAt,
  walkHeldDirectory,
  type ConfinedPath,
  type ConfinedRootHandle,
} from './confined';
import { foldPathName } from '../shared/fold';
import { applyEdits, type EditOp } from './edits';
import { KeyedMutex } from './mutex';
import { isErrno, isWithin, normalizeWorkspacePath, quote, realpathLoose, toFsError } from './paths';
import { SearchPool, type ReadAccess, type SearchMatch, type TruncationReason } from './search';

export type { ReadAccess, SearchMatch, TruncationReason } from './search';
export type { EditOp } from './edits';

export type { ConfinedPath, ConfinedRootHandle } from './confined';
export { assertOutsideWorkspace } from './paths';
export { walkConfined, walkHeldDirectory, openFileAt, type WalkEntry, type WalkOptions } from './confined';

const readAsync = promisify(read);

/** How file content travels over the wire. */
export type Encoding = 'utf8' | 'base64';
/** Kind of a directory entry, from `lstat` (symlinks are reported, never followed, when listing). */
export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

/** Construction options for {@link ResourceManager}. */
export interface ResourceManagerOptions {
  /** Workspace folder; must exist and be a directory. */
  root: string;
  /** Largest file read or written, in bytes (default 10 MiB). */
  maxFileBytes?: number;
  /** Absolute paths that no operation may touch (e.g. the server's state dir inside the workspace). */
  protectedPaths?: string[];
  /** Default cap on search matches (default 200). */
  maxSearchResults?: number;
  /** How long a search may run before it answers with what it found (default 10 s). */
  searchTimeoutMs?: number;
}

/** A file's content as returned by {@link ResourceManager.readFile}. */
export interface FileContent {
  path: string;
  content: string;
  encoding: Encoding;
  /** sha256 hex of the bytes; pass back as `expectedRevision` for optimistic concurrency. */
  revision: string;
  size: number;
}

/** Outcome of {@link ResourceManager.writeFile}. */
export interface WriteResult {
  path: string;
  revision: string;
  bytes: number;
  /** True if the file did not exist before. */
  created: boolean;
}

/** One entry of a directory listing. */
export interface DirEntry {
  path: string;
  name: string;
  type: EntryType;
  /** Size in bytes, files only. */
  size?: number;
  mtimeMs: number;
}

/** Outcome of {@link ResourceManager.listFiles}. */
export interface FileList {
  path: string;
  entries: DirEntry[];
  /** True if `maxEntries` cut the listing short. */
  truncated: boolean;
}

/** Outcome of {@link ResourceManager.stat} (symlinks inside the workspace are followed). */
export interface FileInfo {
  path: string;
  type: EntryType;
  size: number;
  mtimeMs: number;
  /** Content revision, files only. */
  revision?: string;
}

/** Outcome of {@link ResourceManager.edit}. */
export interface EditResult {
  path: string;
  /** Revision after the edit (unchanged for a dry run). */
  revision: string;
  /** Unified diff of the change; empty if the content did not change. */
  diff: string;
  /** Total number of replacements made across all edits. */
  applied: number;
  dryRun: boolean;
}

/** Outcome of {@link ResourceManager.search}. */
export interface SearchResult {
  matches: SearchMatch[];
  /** True if the result cap or the deadline stopped the search early. */
  truncated: boolean;
  /** Why the search was cut short, when it was. */
  truncatedReason?: TruncationReason;
  filesScanned: number;
}

const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
const DEFAULT_MAX_SEARCH_RESULTS = 200;
const DEFAULT_LIST_DEPTH = 1;
const MAX_LIST_DEPTH = 20;
const DEFAULT_MAX_ENTRIES = 5000;
const HARD_MAX_RESULTS = 10_000;
const IGNORED_DIRS = new Set(['.git', 'node_modules']);
const DEFAULT_SEARCH_TIMEOUT_MS = 10_000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** `expectedRevision` value meaning "the file must not exist yet". */
const MUST_NOT_EXIST = 'none';

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new WorkspaceError('INVALID_ARGUMENT', `${name} must be a positive integer.`);
  }
  return value;
}

function entryType(stats: Stats): EntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

function joinRel(parent: string, name: string): string {
  return parent === '.' ? name : `${parent}/${name}`;
}

/** `rel` (at or below `base`, both real workspace-relative) relative to `base`. */
function relativeTo(rel: string, base: string): string {
  return base === '.' ? rel : rel.slice(base.length + 1);
}

/** Files larger than this are edited and diffed on a worker thread. */
const INLINE_EDIT_BYTES = 256 * 1024;

/** Applies edits to a small file on this thread. */
function inlineEdit(
  rel: string,
  bytes: Buffer,
  ops: EditOp[],
): { newBytes: Buffer; applied: number; diff: string } {
  const { after, applied, diff } = applyEdits(rel, bytes.toString('utf8'), ops);
  return { newBytes: Buffer.from(after, 'utf8'), applied, diff };
}

/** Contents from this size on are hashed on the thread pool (WebCrypto), not on the event loop. */
const ASYNC_HASH_BYTES = 256 * 1024;

/** {@link ResourceManager.revisionOf}, off the event loop for large contents. */
async function revisionAsync(bytes: Buffer): Promise<string> {
  if (bytes.length < ASYNC_HASH_BYTES) return ResourceManager.revisionOf(bytes);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

function validateEncoding(encoding: unknown): Encoding | undefined {
  if (encoding === undefined || encoding === 'utf8' || encoding === 'base64') return encoding;
  throw new WorkspaceError('INVALID_ENCODING', 'encoding must be "utf8" or "base64".');
}

function validateEdits(edits: unknown): EditOp[] {
  if (!Array.isArray(edits) || edits.length === 0) {
    throw new WorkspaceError('INVALID_ARGUMENT', 'edits must be a non-empty array of {oldText, newText}.');
  }
  edits.forEach((edit: Partial<EditOp> | null, index) => {
    if (typeof edit?.oldText !== 'string' || edit.oldText.length === 0 || typeof edit.newText !== 'string') {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Edit ${index} needs a non-empty string oldText and a string newText.`,
        { index },
      );
    }
  });
  return edits as EditOp[];
}

function conflict(rel: string, currentRevision: string | null): WorkspaceError {
  const state = currentRevision === null ? 'does not exist' : `is at revision ${currentRevision}`;
  return new WorkspaceError(
    'REVISION_CONFLICT',
    `${quote(rel)} ${state}, not the expected revision; read it again and retry.`,
    { currentRevision },
  );
}

function assertExpected(expected: string | undefined, current: string | null, rel: string): void {
  if (expected === undefined) return;
  if (typeof expected !== 'string' || expected === '') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `expectedRevision must be a revision or "${MUST_NOT_EXIST}" (the file must not exist).`,
    );
  }
  const ok = expected === MUST_NOT_EXIST ? current === null : current === expected;
  if (!ok) throw conflict(rel, current);
}

/** Files up to this size are read with synchronous syscalls (a few µs); larger ones asynchronously. */
const SYNC_READ_LIMIT = 256 * 1024;
const HASH_CHUNK_BYTES = 1024 * 1024;

/** sha256 hex of an open file's bytes, read from its descriptor in chunks (no size cap). */
async function hashFd(fd: number): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  let position = 0;
  for (;;) {
    const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    hash.update(chunk.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

/** A path argument: a string (resolved here) or a resolution obtained from {@link ResourceManager.resolve}. */
export type PathArg = string | ConfinedPath;

/**
 * Confined file access to one workspace folder. Every path is resolved once, component by component
 * on held directory descriptors (see confined.ts), and every syscall afterwards names one entry of a
 * held directory, so a directory swapped for a symbolic link after the check changes nothing.
 * Writes are atomic (temp file + rename, never through a hard link) and revision-checked under a
 * per-path mutex. Protected entries are refused by `(dev, ino)` and by real path.
 */
export class ResourceManager {
  /** Real path of the workspace root. */
  readonly root: string;
  /** The held root descriptor and protected identities, for walkers in worker threads. */
  readonly confined: ConfinedRootHandle;
  private readonly rootSpellings: readonly string[];
  private readonly maxFileBytes: number;
  private readonly maxSearchResults: number;
  /** Real workspace-relative paths of protected entries inside the workspace ('.' never). */
  private readonly protectedRels: readonly string[];
  private readonly locks = new KeyedMutex();
  private searchTimeoutMs = DEFAULT_SEARCH_TIMEOUT_MS;
  private searchPool: SearchPool | undefined;
  /** Operations running now; the root descriptor is closed only when none is left. */
  private active = 0;
  private closed = false;

  private constructor(
    confined: ConfinedRootHandle,
    rootSpellings: string[],
    protectedRels: string[],
    maxFileBytes: number,
    maxSearchResults: number,
  ) {
    this.root = confined.path;
    this.confined = confined;
    this.rootSpellings = rootSpellings;
    this.protectedRels = protectedRels;
    this.maxFileBytes = maxFileBytes;
    this.maxSearchResults = maxSearchResults;
  }

  /**
   * Opens a workspace; the root must be an existing directory. Its descriptor is held for the life of
   * the process. Throws UNSUPPORTED_PLATFORM where confinement cannot be enforced (not Linux).
   */
  static async create(options: ResourceManagerOptions): Promise<ResourceManager> {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new WorkspaceError('INVALID_PATH', 'The workspace root must be a non-empty path.');
    }
    const given = nodePath.resolve(options.root);
    const maxFileBytes = positiveInt(options.maxFileBytes, 'maxFileBytes', DEFAULT_MAX_FILE_BYTES);
    const maxSearchResults = positiveInt(
      options.maxSearchResults,
      'maxSearchResults',
      DEFAULT_MAX_SEARCH_RESULTS,
    );
    let confined: ConfinedRootHandle;
    try {
      confined = openConfinedRoot(
        given,
        (options.protectedPaths ?? []).map((p) => nodePath.resolve(given, p)),
      );
    } catch (err) {
      if (err instanceof WorkspaceError) throw err;
      if (isErrno(err, 'ENOTDIR')) {
        throw new WorkspaceError('INVALID_PATH', `The workspace root ${quote(given)} is not a directory.`);
      }
      throw new WorkspaceError('INVALID_PATH', `The workspace root ${quote(given)} does not exist.`);
    }
    const protectedRels = new Set<string>();
    for (const entry of options.protectedPaths ?? []) {
      const abs = nodePath.resolve(confined.path, entry);
      for (const spelling of new Set([abs, (await realpathLoose(abs)).real])) {
        const root = [confined.path, given].find((r) => isWithin(spelling, r) && spelling !== r);
        if (root !== undefined) protectedRels.add(foldPathName(spelling.slice(root.length + 1)));
      }
    }
    const manager = new ResourceManager(
      confined,
      [...new Set([confined.path, given])],
      [...protectedRels],
      maxFileBytes,
      maxSearchResults,
    );
    manager.searchTimeoutMs = positiveInt(
      options.searchTimeoutMs,
      'searchTimeoutMs',
      DEFAULT_SEARCH_TIMEOUT_MS,
    );
    return manager;
  }

  /** sha256 hex of the content bytes: the revision used for optimistic concurrency. */
  static revisionOf(bytes: Buffer): string {
    return createHash('sha256').update(bytes).digest('hex');
  }

  /**
   * Syntactic check only, no file-system access: the normalised posix workspace-relative path ('.' for
   * the root). Throws INVALID_PATH or PATH_OUTSIDE_WORKSPACE.
   */
  normalize(path: string): string {
    return normalizeWorkspacePath(path, this.rootSpellings);
  }

  /**
   * Resolves `path` once, on held descriptors: the object policy decides on (`rel` as asked,
   * `realRel` where in-workspace links lead) and the one the I/O then uses. `followFinal: false`
   * (delete, move) acts on a final link itself. Throws like any operation when the path escapes or
   * is protected. The caller must `close()` it; operations given a resolution never close it.
   */
  resolve(path: string, opts: { followFinal: boolean }): ConfinedPath {
    if (this.closed) {
      throw new WorkspaceError('INVALID_ARGUMENT', 'The workspace has been closed; start the server again.');
    }
    try {
      const rel = this.normalize(path);
      const resolved = resolveConfined(this.confined, rel, { followFinal: opts.followFinal });
      if (this.isProtectedRel(resolved.realRel)) {
        resolved.close();
        throw new WorkspaceError(
          'PROTECTED_PATH',
          `${quote(rel)} is protected by the server and cannot be accessed.`,
        );
      }
      return resolved;
    } catch (err) {
      throw toFsError(err, typeof path === 'string' ? path : String(path));
    }
  }

  /** Reads a file; without an encoding, UTF-8 text comes back as utf8 and anything else as base64. */
  async readFile(path: PathArg, opts: { encoding?: Encoding } = {}): Promise<FileContent> {
    return this.withPath(path, true, async (target) => {
      const requested = validateEncoding(opts.encoding);
      this.requireFile(target.rel, target);
      const bytes = await this.readBytes(target.parentFd, target.name, target.rel);
      this.assertStillAt(target);
      const text = isUtf8(bytes);
      if (requested === 'utf8' && !text) {
        throw new WorkspaceError(
          'INVALID_ENCODING',
          `${quote(target.rel)} is not valid UTF-8; read it with encoding "base64".`,
        );
      }
      const encoding: Encoding = requested ?? (text ? 'utf8' : 'base64');
      return {
        path: target.rel,
        content: bytes.toString(encoding),
        encoding,
        revision: await revisionAsync(bytes),
        size: bytes.length,
      };
    });
  }

  /** Atomically writes a file (temp file + fsync + rename), optionally only if it is at `expectedRevision`. */
  async writeFile(
    path: PathArg,
    content: string,
    opts: { encoding?: Encoding; expectedRevision?: string; createParents?: boolean } = {},
  ): Promise<WriteResult> {
    return this.withPath(path, true, async (target) => {
      const bytes = this.decodeContent(content, validateEncoding(opts.encoding) ?? 'utf8');
      return this.locks.run([target.realRel], async () => {
        const stats = this.currentStats(target);
        if (stats !== undefined && !stats.isFile()) {
          throw new WorkspaceError('NOT_A_FILE', `${quote(target.rel)} exists and is not a regular file.`);
        }
        if (opts.expectedRevision !== undefined) {
          const current =
            stats === undefined ? null : await this.hashAt(target.parentFd, target.name, target.rel);
          assertExpected(opts.expectedRevision, current, target.rel);
        }
        this.ensureParent(target, opts.createParents !== false);
        try {
          await atomicWriteAt(target.parentFd, target.name, bytes, {
            mode: stats === undefined ? undefined : stats.mode & 0o7777,
            exclusive: opts.expectedRevision === MUST_NOT_EXIST,
            beforePlace: () => this.assertStillAt(target),
          });
        } catch (err) {
          if (isErrno(err, 'EEXIST')) {
            throw conflict(target.rel, await this.hashAt(target.parentFd, target.name, target.rel));
          }
          throw err;
        }
        return {
          path: target.rel,
          revision: await revisionAsync(bytes),
          bytes: bytes.length,
          created: stats === undefined,
        };
      });
    });
  }

  /**
   * Lists a directory depth-first to `depth` levels, in path order; symlinks are listed but never
   * followed. When `maxEntries` cuts the listing, the first entries in walk order are kept.
   */
  async listFiles(
    path: PathArg,
    opts: { depth?: number; includeIgnored?: boolean; maxEntries?: number } = {},
  ): Promise<FileList> {
    return this.withPath(path, true, async (target) => {
      const depth = Math.min(positiveInt(opts.depth, 'depth', DEFAULT_LIST_DEPTH), MAX_LIST_DEPTH);
      const maxEntries = positiveInt(opts.maxEntries, 'maxEntries', DEFAULT_MAX_ENTRIES);
      const stats = this.currentStats(target);
      if (stats === undefined) throw this.notFound(target.rel);
      if (!stats.isDirectory()) {
        throw new WorkspaceError('NOT_A_DIRECTORY', `${quote(target.rel)} is not a directory.`);
      }
      const entries: DirEntry[] = [];
      let truncated = false;
      const base = target.rel;
      const realBase = target.realRel;
      walkHeldDirectory(this.confined, target.openDirectory(), realBase, {
        maxDepth: depth,
        onEntry: (entry) => {
          if (this.isProtectedRel(entry.rel)) return 'skip';
          if (entries.length >= maxEntries) {
            truncated = true;
            return 'stop';
          }
          const type = entry.type;
          entries.push({
            path: joinRel(base, relativeTo(entry.rel, realBase)),
            name: entry.name,
            type,
            ...(type === 'file' ? { size: entry.size } : {}),
            mtimeMs: entry.stats.mtimeMs,
          });
          if (
            type === 'directory' &&
            opts.includeIgnored !== true &&
            IGNORED_DIRS.has(foldPathName(entry.name))
          )
            return 'skip';
          return undefined;
        },
      });
      entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return { path: target.rel, entries, truncated };
    });
  }

  /** Type, size, mtime and (files only) revision; symlinks inside the workspace are followed. */
  async stat(path: PathArg): Promise<FileInfo> {
    return this.withPath(path, true, async (target) => {
      const stats = this.currentStats(target);
      if (stats === undefined) throw this.notFound(target.rel);
      const type = entryType(stats);
      return {
        path: target.rel,
        type,
        size: stats.size,
        mtimeMs: stats.mtimeMs,
        ...(type === 'file' ? { revision: await this.hashAt(target.parentFd, target.name, target.rel) } : {}),
      };
    });
  }

  /** Creates a directory (with missing parents unless `recursive: false`); an existing directory is fine when recursive. */
  async mkdir(
    path: PathArg,
    opts: { recursive?: boolean } = {},
  ): Promise<{ path: string; created: boolean }> {
    return this.withPath(path, true, async (target) => {
      const recursive = opts.recursive !== false;
      const stats = this.currentStats(target);
      if (stats !== undefined) {
        if (stats.isDirectory() && recursive) return { path: target.rel, created: false };
        throw new WorkspaceError('ALREADY_EXISTS', `${quote(target.rel)} already exists.`);
      }
      if (!recursive && target.missingDirs.length > 0) throw this.notFound(target.rel);
      target.makeParents();
      this.assertStillAt(target);
      try {
        mkdirAt(target.parentFd, target.name);
      } catch (err) {
        if (isErrno(err, 'EEXIST') && recursive) {
          const now = lstatAt(target.parentFd, target.name);
          if (now?.isDirectory()) return { path: target.rel, created: false };
          throw new WorkspaceError('NOT_A_DIRECTORY', `A component of ${quote(target.rel)} is a file.`);
        }
        throw err;
      }
      fsyncDirectory(target.parentFd);
      return { path: target.rel, created: true };
    });
  }

  /** Deletes a file, symlink (the link, not its target) or directory (non-empty ones need `recursive`). */
  async delete(
    path: PathArg,
    opts: { recursive?: boolean; expectedRevision?: string } = {},
  ): Promise<{ path: string; deleted: true }> {
    return this.withPath(path, false, async (loc) => {
      this.assertChangeable(loc, 'delete');
      return this.locks.run([loc.realRel], async () => {
        const stats = this.currentStats(loc);
        if (stats === undefined) throw this.notFound(loc.rel);
        await this.assertLocationRevision(loc, stats, opts.expectedRevision);
        this.assertStillAt(loc);
        if (!stats.isDirectory()) {
          unlinkAt(loc.parentFd, loc.name);
        } else if (opts.recursive === true) {
          this.removeTree(loc.parentFd, loc.name, loc.rel);
        } else {
          try {
            rmdirAt(loc.parentFd, loc.name);
          } catch (err) {
            if (isErrno(err, 'ENOTEMPTY', 'EEXIST')) {
              throw new WorkspaceError(
                'DIRECTORY_NOT_EMPTY',
                `The directory ${quote(loc.rel)} is not empty; pass recursive: true to delete its contents too.`,
              );
            }
            throw err;
          }
        }
        fsyncDirectory(loc.parentFd);
        return { path: loc.rel, deleted: true as const };
      });
    });
  }

  /** Renames a file, directory or symlink inside the workspace, creating missing parents of `to`. */
  async move(
    from: PathArg,
    to: PathArg,
    opts: { overwrite?: boolean; expectedRevision?: string } = {},
  ): Promise<{ from: string; to: string }> {
    return this.withPath(from, false, (source) =>
      this.withPath(to, false, async (dest) => {
        this.assertChangeable(source, 'move');
        this.assertChangeable(dest, 'move');
        if (isWithin(dest.realRel, source.realRel) && dest.realRel !== source.realRel) {
          throw new WorkspaceError(
            'INVALID_PATH',
            `Cannot move ${quote(source.rel)} into itself (${quote(dest.rel)}).`,
          );
        }
        return this.locks.run([source.realRel, dest.realRel], async () => {
          const stats = this.currentStats(source);
          if (stats === undefined) throw this.notFound(source.rel);
          await this.assertLocationRevision(source, stats, opts.expectedRevision);
          if (dest.realRel === source.realRel) return { from: source.rel, to: dest.rel };
          const existing = this.currentStats(dest);
          if (existing !== undefined && opts.overwrite !== true) {
            throw new WorkspaceError(
              'ALREADY_EXISTS',
              `${quote(dest.rel)} already exists; pass overwrite: true to replace it.`,
            );
          }
          if (existing?.isDirectory() && !stats.isDirectory()) {
            throw new WorkspaceError(
              'NOT_A_FILE',
              `${quote(dest.rel)} is a directory; cannot replace it with a file.`,
            );
          }
          await this.guard(typeof to === 'string' ? to : to.rel, async () => {
            dest.makeParents();
            this.assertStillAt(source);
            this.assertStillAt(dest);
            renameAt(source.parentFd, source.name, dest.parentFd, dest.name);
          });
          fsyncDirectory(dest.parentFd);
          if (dest.parentFd !== source.parentFd) fsyncDirectory(source.parentFd);
          return { from: source.rel, to: dest.rel };
        });
      }),
    );
  }

  /** Applies exact-text replacements in order, all or nothing; returns a unified diff (and writes unless dryRun). */
  async edit(
    path: PathArg,
    edits: EditOp[],
    opts: { dryRun?: boolean; expectedRevision?: string; caller?: string } = {},
  ): Promise<EditResult> {
    return this.withPath(path, true, async (target) => {
      const ops = validateEdits(edits);
      return this.locks.run([target.realRel], async () => {
        const stats = this.requireFile(target.rel, target);
        const bytes = await this.readBytes(target.parentFd, target.name, target.rel);
        const revision = await revisionAsync(bytes);
        assertExpected(opts.expectedRevision, revision, target.rel);
        if (!isUtf8(bytes)) {
          throw new WorkspaceError(
            'INVALID_ENCODING',
            `${quote(target.rel)} is not UTF-8 text; it cannot be edited.`,
          );
        }
        // Large files are edited and diffed on a worker thread, never on the event loop.
        const { newBytes, applied, diff } =
          bytes.length > INLINE_EDIT_BYTES
            ? await this.pool().edit(opts.caller ?? 'owner', target.rel, bytes, ops)
            : inlineEdit(target.rel, bytes, ops);
        this.assertSize(newBytes.length);
        const dryRun = opts.dryRun === true;
        if (dryRun || newBytes.equals(bytes)) return { path: target.rel, revision, diff, applied, dryRun };
        await atomicWriteAt(target.parentFd, target.name, newBytes, {
          mode: stats.mode & 0o7777,
          exclusive: false,
          beforePlace: () => this.assertStillAt(target),
        });
        return { path: target.rel, revision: await revisionAsync(newBytes), diff, applied, dryRun };
      });
    });
  }

  /**
   * Literal or regex search, line by line, over files under `path` (default: the root), honouring
   * `.gitignore` files and skipping .git, node_modules, symlinks, protected entries, binary and
   * oversized files, and files `access` may not read. The walk goes through the confined layer from
   * the descriptors of `path`'s resolution, in worker threads (never on the event loop), with a
   * linear-time regex engine; it stops at `timeoutMs` with what it found (`truncatedReason:
   * 'deadline'`). A `glob` without '/' also matches base names. `caller` is the fairness key (one per
   * token).
   */
  async search(
    query: string,
    opts: {
      path?: PathArg;
      regex?: boolean;
      caseSensitive?: boolean;
      glob?: string;
      maxResults?: number;
      access?: ReadAccess;
      caller?: string;
      timeoutMs?: number;
    } = {},
  ): Promise<SearchResult> {
    return this.withPath(opts.path ?? '.', true, async (target) => {
      if (typeof query !== 'string' || query.length === 0) {
        throw new WorkspaceError('INVALID_ARGUMENT', 'The search query must be a non-empty string.');
      }
      const cap = Math.min(
        positiveInt(opts.maxResults, 'maxResults', this.maxSearchResults),
        HARD_MAX_RESULTS,
      );
      const timeoutMs = positiveInt(opts.timeoutMs, 'timeoutMs', this.searchTimeoutMs);
      const stats = this.currentStats(target);
      if (stats === undefined) throw this.notFound(target.rel);
      if (!stats.isFile() && !stats.isDirectory()) return { matches: [], truncated: false, filesScanned: 0 };
      // The worker threads use this resolution's descriptors (descriptors are process-wide): the tree
      // they walk is the one policy was decided on, whatever is renamed meanwhile.
      const dirFd = stats.isDirectory() ? target.openDirectory() : target.parentFd;
      const result = await this.pool().run(opts.caller ?? 'owner', {
        confined: this.confined,
        startFd: dirFd,
        startName: stats.isFile() ? target.name : '',
        start: target.rel,
        startReal: target.realRel,
        startIsFile: stats.isFile(),
        protectedRels: [...this.protectedRels],
        query,
        regex: opts.regex === true,
        caseSensitive: opts.caseSensitive !== false,
        ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
        cap,
        maxFileBytes: this.maxFileBytes,
        deadline: Date.now() + timeoutMs,
        ...(opts.access !== undefined ? { access: opts.access } : {}),
      });
      return {
        matches: result.matches,
        truncated: result.truncated,
        filesScanned: result.filesScanned,
        ...(result.reason !== undefined ? { truncatedReason: result.reason } : {}),
      };
    });
  }

  /** The worker threads for searches and large edits, started on first use. */
  private pool(): SearchPool {
    this.searchPool ??= new SearchPool();
    return this.searchPool;
  }

  /** Runs `fn`, turning Node.js file-system errors into WorkspaceErrors that name `label`. */
  private async guard<T>(label: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toFsError(err, typeof label === 'string' ? label : String(label));
    }
  }

  /**
   * Runs `fn` on a resolution of `path`: a string is resolved here (and closed afterwards); a
   * resolution from {@link resolve} is used as is, so policy and I/O see the same object.
   */
  private async withPath<T>(
    path: PathArg,
    followFinal: boolean,
    fn: (resolved: ConfinedPath) => Promise<T>,
  ): Promise<T> {
    this.active++;
    try {
      return await this.runWithPath(path, followFinal, fn);
    } finally {
      if (--this.active === 0 && this.closed) this.releaseRoot();
    }
  }

  /**
   * Ends the worker threads (searches still running fail), then closes the root descriptor once no
   * operation is running (a descriptor number closed under a running operation could be reused by
   * another open file). Later operations fail.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pool = this.searchPool;
    this.searchPool = undefined;
    await pool?.close();
    if (this.active === 0) this.releaseRoot();
  }

  private releaseRoot(): void {
    try {
      closeSync(this.confined.fd);
    } catch {
      // already closed
    }
  }

  private async runWithPath<T>(
    path: PathArg,
    followFinal: boolean,
    fn: (resolved: ConfinedPath) => Promise<T>,
  ): Promise<T> {
    if (typeof path !== 'string') {
      if (path.followFinal !== followFinal) {
        throw new WorkspaceError(
          'INTERNAL',
          `${quote(path.rel)} was resolved ${path.followFinal ? 'following' : 'not following'} its final link, which this operation cannot use.`,
        );
      }
      return this.guard(path.rel, () => fn(path));
    }
    return this.guard(path, async () => {
      const resolved = this.resolve(path, { followFinal });
      try {
        return await fn(resolved);
      } finally {
        resolved.close();
      }
    });
  }

  /** Protected by name (folded, so `.STATE` is `.state` on a case-insensitive file system). */
  private isProtectedRel(realRel: string): boolean {
    if (this.protectedRels.length === 0) return false;
    const folded = foldPathName(realRel);
    return this.protectedRels.some((p) => folded === p || folded.startsWith(`${p}/`));
  }

  /** Refuses deleting or moving the root, or a directory that contains a protected entry. */
  private assertChangeable(loc: ConfinedPath, verb: string): void {
    if (loc.name === '' || loc.realRel === '.') {
      throw new WorkspaceError('INVALID_PATH', `Cannot ${verb} the workspace root.`);
    }
    const folded = foldPathName(loc.realRel);
    if (this.protectedRels.some((p) => p === folded || p.startsWith(`${folded}/`))) {
      throw new WorkspaceError(
        'PROTECTED_PATH',
        `${quote(loc.rel)} contains a protected path and cannot be changed.`,
      );
    }
  }

  /**
   * Refuses to go on when the held parent directory is no longer where the policy saw it (an agent
   * renamed it meanwhile, e.g. into a protected folder): the kernel names a held descriptor's
   * current path in /proc/self/fd.
   */
  private assertStillAt(target: ConfinedPath): void {
    if (target.missingDirs.length > 0) return;
    const parentRel = target.name === '' ? target.realRel : nodePath.posix.dirname(target.realRel);
    const expected = parentRel === '.' ? this.root : `${this.root}/${parentRel}`;
    let actual: string;
    try {
      actual = readlinkSync(fdPath(target.parentFd));
    } catch {
      actual = '';
    }
    // A case-insensitive file system may spell the folder as it was created, not as asked.
    if (actual !== expected && foldPathName(actual) !== foldPathName(expected)) {
      throw new WorkspaceError(
        isWithin(actual, this.root) ? 'INVALID_PATH' : 'PATH_OUTSIDE_WORKSPACE',
        `The folder of ${quote(target.rel)} was moved or replaced during the operation; nothing was changed. Retry.`,
      );
    }
  }

  /** The entry's `lstat` now (not at resolution time); the root's `fstat` for the root. */
  private currentStats(target: ConfinedPath): Stats | undefined {
    if (target.missingDirs.length > 0) return undefined;
    if (target.name === '') return fstatSync(target.parentFd);
    const stats = lstatAt(target.parentFd, target.name);
    assertNotProtected(this.confined, stats, target.rel);
    return stats;
  }

  /** Removes directory `name` of `parentFd` and everything below it, on held descriptors only. */
  private removeTree(parentFd: number, name: string, rel: string): void {
    const fd = openDirAt(parentFd, name);
    try {
      assertNotProtected(this.confined, fstatSync(fd), rel);
      for (const child of readdirAt(fd)) {
        const stats = lstatAt(fd, child);
        if (stats === undefined) continue;
        const childRel = `${rel}/${child}`;
        assertNotProtected(this.confined, stats, childRel);
        if (stats.isDirectory()) this.removeTree(fd, child, childRel);
        else unlinkAt(fd, child);
      }
    } finally {
      closeSync(fd);
    }
    rmdirAt(parentFd, name);
  }

  private async assertLocationRevision(
    loc: ConfinedPath,
    stats: Stats,
    expected: string | undefined,
  ): Promise<void> {
    if (expected === undefined) return;
    if (!stats.isFile()) {
      throw new WorkspaceError(
        'NOT_A_FILE',
        `expectedRevision applies to files only; ${quote(loc.rel)} is not one.`,
      );
    }
    assertExpected(expected, await this.hashAt(loc.parentFd, loc.name, loc.rel), loc.rel);
  }

  /** Makes sure the directory that will hold the target exists, creating it (on held descriptors) if allowed. */
  private ensureParent(target: ConfinedPath, create: boolean): void {
    if (target.missingDirs.length === 0) return;
    if (!create) {
      throw new WorkspaceError(
        'NOT_FOUND',
        `The parent directory of ${quote(target.rel)} does not exist; create it first or pass createParents: true.`,
      );
    }
    try {
      target.makeParents();
    } catch (err) {
      if (isErrno(err, 'EEXIST', 'ENOTDIR', 'ELOOP')) {
        throw new WorkspaceError(
          'NOT_A_DIRECTORY',
          `A parent component of ${quote(target.rel)} is not a directory.`,
        );
      }
      throw err;
    }
  }

  private requireFile(rel: string, target: ConfinedPath): Stats {
    const stats = this.currentStats(target);
    if (stats === undefined) throw this.notFound(rel);
    if (!stats.isFile()) throw new WorkspaceError('NOT_A_FILE', `${quote(rel)} is not a regular file.`);
    return stats;
  }

  private assertSize(size: number): void {
    if (size > this.maxFileBytes) {
      throw new WorkspaceError(
        'FILE_TOO_LARGE',
        `The content is ${size} bytes, over the ${this.maxFileBytes}-byte limit.`,
        { limit: this.maxFileBytes },
      );
    }
  }

  private notFound(rel: string): WorkspaceError {
    return new WorkspaceError('NOT_FOUND', `No such file or directory: ${quote(rel)}.`);
  }

  /** sha256 of regular file `name` of the held directory `dirFd` (never through a link). */
  private async hashAt(dirFd: number, name: string, rel: string): Promise<string> {
    const { fd } = openFileAt(this.confined, dirFd, name, rel);
    try {
      return await hashFd(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Reads regular file `name` of `dirFd` without following a link, enforcing the size cap. */
  private async readBytes(dirFd: number, name: string, rel: string): Promise<Buffer> {
    const { fd, stats } = openFileAt(this.confined, dirFd, name, rel);
    try {
      this.assertSize(stats.size);
      // One spare byte detects a file that grew since fstat.
      const buffer = Buffer.allocUnsafe(stats.size + 1);
      let length = 0;
      for (;;) {
        const n =
          stats.size <= SYNC_READ_LIMIT
            ? readSync(fd, buffer, length, buffer.length - length, length)
            : (await readAsync(fd, buffer, length, buffer.length - length, length)).bytesRead;
        if (n === 0) break;
        length += n;
        if (length === buffer.length) return Buffer.concat([buffer, await this.readRest(fd, length)]);
      }
      return buffer.subarray(0, length);
    } finally {
      closeSync(fd);
    }
  }

  /** The rest of a file that grew while it was read, still under the size cap. */
  private async readRest(fd: number, position: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = position;
    const chunk = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, total);
      if (bytesRead === 0) return Buffer.concat(chunks);
      total += bytesRead;
      this.assertSize(total);
      chunks.push(Buffer.from(chunk.subarray(0, bytesRead)));
    }
  }

  private decodeContent(content: string, encoding: Encoding): Buffer {
    if (typeof content !== 'string') {
      throw new WorkspaceError('INVALID_ARGUMENT', 'content must be a string.');
    }
    if (encoding === 'utf8') {
      this.assertSize(Buffer.byteLength(content, 'utf8'));
      return Buffer.from(content, 'utf8');
    }
    if (!BASE64.test(content)) {
      throw new WorkspaceError(
        'INVALID_ENCODING',
        'content is not valid base64 (use A-Z, a-z, 0-9, + and / with correct = padding, no whitespace).',
      );
    }
    const padding = content.endsWith('==') ? 2 : content.endsWith('=') ? 1 : 0;
    this.assertSize((content.length / 4) * 3 - padding);
    return Buffer.from(content, 'base64');
  }
}
