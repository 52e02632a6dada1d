import { isUtf8 } from 'node:buffer';
import { createHash, webcrypto } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  promises as fs,
  readSync,
  statSync,
  type Dirent,
  type Stats,
} from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { atomicWrite } from './atomic';
import { unifiedDiff } from './diff';
import { KeyedMutex } from './mutex';
import { isErrno, isWithin, normalizeWorkspacePath, quote, realpathLoose, toFsError } from './paths';
import { SearchPool, type ReadAccess, type SearchMatch, type TruncationReason } from './search';

export type { ReadAccess, SearchMatch, TruncationReason } from './search';

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

/** One exact-text replacement for {@link ResourceManager.edit}. */
export interface EditOp {
  oldText: string;
  newText: string;
  /** Replace every occurrence instead of requiring exactly one. */
  replaceAll?: boolean;
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

interface Target {
  rel: string;
  /** Real path (symlinks followed); for missing paths, the deepest real ancestor plus the rest. */
  real: string;
  /** `stat` of `real`, undefined if it does not exist. */
  stats: Stats | undefined;
}

interface Location {
  rel: string;
  /** Real parent directory joined with the base name: the link itself when the path is a symlink. */
  real: string;
  /** `lstat` of `real`, undefined if it does not exist. */
  stats: Stats | undefined;
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new WorkspaceError('INVALID_ARGUMENT', `${name} must be a positive integer.`);
  }
  return value;
}

function entryType(stats: Stats | Dirent): EntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

function joinRel(parent: string, name: string): string {
  return parent === '.' ? name : `${parent}/${name}`;
}

// Metadata calls are synchronous on purpose: see realpathLoose in paths.ts.
async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** Files up to this size are read with synchronous syscalls (a few µs); larger ones asynchronously. */
const SYNC_READ_LIMIT = 256 * 1024;

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Contents from this size on are hashed on the thread pool (WebCrypto), not on the event loop. */
const ASYNC_HASH_BYTES = 256 * 1024;

/** {@link ResourceManager.revisionOf}, off the event loop for large contents. */
async function revisionAsync(bytes: Buffer): Promise<string> {
  if (bytes.length < ASYNC_HASH_BYTES) return ResourceManager.revisionOf(bytes);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) count++;
  return count;
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

/**
 * Confined file access to one workspace folder: every path is normalised and realpath-checked against
 * the root and the protected paths, writes are atomic and revision-checked under a per-path mutex.
 */
export class ResourceManager {
  /** Real path of the workspace root. */
  readonly root: string;
  private readonly rootSpellings: readonly string[];
  private readonly maxFileBytes: number;
  private readonly maxSearchResults: number;
  private readonly protectedPaths: readonly string[];
  private readonly locks = new KeyedMutex();
  private searchTimeoutMs = DEFAULT_SEARCH_TIMEOUT_MS;
  private searchPool: SearchPool | undefined;

  private constructor(
    root: string,
    rootSpellings: string[],
    protectedPaths: string[],
    maxFileBytes: number,
    maxSearchResults: number,
  ) {
    this.root = root;
    this.rootSpellings = rootSpellings;
    this.protectedPaths = protectedPaths;
    this.maxFileBytes = maxFileBytes;
    this.maxSearchResults = maxSearchResults;
  }

  /** Opens a workspace; the root must be an existing directory and is realpath'd. */
  static async create(options: ResourceManagerOptions): Promise<ResourceManager> {
    if (typeof options?.root !== 'string' || options.root === '') {
      throw new WorkspaceError('INVALID_PATH', 'The workspace root must be a non-empty path.');
    }
    const given = nodePath.resolve(options.root);
    let root: string;
    try {
      root = await fs.realpath(given);
    } catch {
      throw new WorkspaceError('INVALID_PATH', `The workspace root ${quote(given)} does not exist.`);
    }
    if (!(await fs.stat(root)).isDirectory()) {
      throw new WorkspaceError('INVALID_PATH', `The workspace root ${quote(given)} is not a directory.`);
    }
    const maxFileBytes = positiveInt(options.maxFileBytes, 'maxFileBytes', DEFAULT_MAX_FILE_BYTES);
    const maxSearchResults = positiveInt(
      options.maxSearchResults,
      'maxSearchResults',
      DEFAULT_MAX_SEARCH_RESULTS,
    );
    const protectedPaths: string[] = [];
    for (const entry of options.protectedPaths ?? []) {
      const abs = nodePath.resolve(root, entry);
      protectedPaths.push(abs, (await realpathLoose(abs)).real);
    }
    const manager = new ResourceManager(
      root,
      [...new Set([root, given])],
      [...new Set(protectedPaths)],
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
   * Where `path` really lands, as a workspace-relative path after following symlinks (the deepest
   * existing ancestor for new files). Policy is decided on this too, so a link cannot launder a
   * forbidden target (e.g. `docs -> .git`). Throws like any operation when it escapes.
   */
  async realRelative(path: string): Promise<string> {
    const { real } = await this.resolveTarget(path);
    const rel = nodePath.relative(this.root, real);
    return rel === '' ? '.' : rel.split(nodePath.sep).join('/');
  }

  /** Reads a file; without an encoding, UTF-8 text comes back as utf8 and anything else as base64. */
  async readFile(path: string, opts: { encoding?: Encoding } = {}): Promise<FileContent> {
    return this.guard(path, async () => {
      const requested = validateEncoding(opts.encoding);
      const target = await this.resolveTarget(path);
      this.requireFile(target.rel, target.stats);
      const bytes = await this.readBytes(target.real, target.rel);
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
    path: string,
    content: string,
    opts: { encoding?: Encoding; expectedRevision?: string; createParents?: boolean } = {},
  ): Promise<WriteResult> {
    return this.guard(path, async () => {
      const bytes = this.decodeContent(content, validateEncoding(opts.encoding) ?? 'utf8');
      const target = await this.resolveTarget(path);
      return this.locks.run([target.real], async () => {
        const stats = await statOrUndefined(target.real);
        if (stats !== undefined && !stats.isFile()) {
          throw new WorkspaceError('NOT_A_FILE', `${quote(target.rel)} exists and is not a regular file.`);
        }
        if (opts.expectedRevision !== undefined) {
          const current = stats === undefined ? null : await hashFile(target.real);
          assertExpected(opts.expectedRevision, current, target.rel);
        }
        await this.ensureParent(target.real, target.rel, opts.createParents !== false);
        try {
          await atomicWrite(target.real, bytes, {
            mode: stats === undefined ? undefined : stats.mode & 0o7777,
            exclusive: opts.expectedRevision === MUST_NOT_EXIST,
            isSafeDirectory: (dir) => this.isSafeReal(dir),
          });
        } catch (err) {
          if (isErrno(err, 'EEXIST')) throw conflict(target.rel, await hashFile(target.real));
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

  /** Lists a directory breadth-first to `depth` levels; symlinks are listed but never followed. */
  async listFiles(
    path: string,
    opts: { depth?: number; includeIgnored?: boolean; maxEntries?: number } = {},
  ): Promise<FileList> {
    return this.guard(path, async () => {
      const depth = Math.min(positiveInt(opts.depth, 'depth', DEFAULT_LIST_DEPTH), MAX_LIST_DEPTH);
      const maxEntries = positiveInt(opts.maxEntries, 'maxEntries', DEFAULT_MAX_ENTRIES);
      const target = await this.resolveTarget(path);
      if (target.stats === undefined) throw this.notFound(target.rel);
      if (!target.stats.isDirectory()) {
        throw new WorkspaceError('NOT_A_DIRECTORY', `${quote(target.rel)} is not a directory.`);
      }
      const entries: DirEntry[] = [];
      let truncated = false;
      let level: Array<{ real: string; rel: string }> = [{ real: target.real, rel: target.rel }];
      for (let d = 1; d <= depth && level.length > 0 && !truncated; d++) {
        const next: typeof level = [];
        for (const dir of level) {
          const names = await fs.readdir(dir.real).catch(() => [] as string[]);
          for (const name of names.sort()) {
            const real = nodePath.join(dir.real, name);
            if (this.isProtected(real)) continue;
            const stats = await lstatOrUndefined(real);
            if (stats === undefined) continue;
            if (entries.length >= maxEntries) {
              truncated = true;
              break;
            }
            const rel = joinRel(dir.rel, name);
            const type = entryType(stats);
            entries.push({
              path: rel,
              name,
              type,
              ...(type === 'file' ? { size: stats.size } : {}),
              mtimeMs: stats.mtimeMs,
            });
            if (type === 'directory' && (opts.includeIgnored === true || !IGNORED_DIRS.has(name))) {
              next.push({ real, rel });
            }
          }
          if (truncated) break;
        }
        level = next;
      }
      entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return { path: target.rel, entries, truncated };
    });
  }

  /** Type, size, mtime and (files only) revision; symlinks inside the workspace are followed. */
  async stat(path: string): Promise<FileInfo> {
    return this.guard(path, async () => {
      const target = await this.resolveTarget(path);
      if (target.stats === undefined) throw this.notFound(target.rel);
      const type = entryType(target.stats);
      return {
        path: target.rel,
        type,
        size: target.stats.size,
        mtimeMs: target.stats.mtimeMs,
        ...(type === 'file' ? { revision: await hashFile(target.real) } : {}),
      };
    });
  }

  /** Creates a directory (with missing parents unless `recursive: false`); an existing directory is fine when recursive. */
  async mkdir(path: string, opts: { recursive?: boolean } = {}): Promise<{ path: string; created: boolean }> {
    return this.guard(path, async () => {
      const recursive = opts.recursive !== false;
      const target = await this.resolveTarget(path);
      if (target.stats !== undefined) {
        if (target.stats.isDirectory() && recursive) return { path: target.rel, created: false };
        throw new WorkspaceError('ALREADY_EXISTS', `${quote(target.rel)} already exists.`);
      }
      try {
        await fs.mkdir(target.real, { recursive });
      } catch (err) {
        if (isErrno(err, 'EEXIST') && recursive) {
          throw new WorkspaceError('NOT_A_DIRECTORY', `A component of ${quote(target.rel)} is a file.`);
        }
        throw err;
      }
      this.assertSafeReal(await fs.realpath(target.real), target.rel);
      return { path: target.rel, created: true };
    });
  }

  /** Deletes a file, symlink (the link, not its target) or directory (non-empty ones need `recursive`). */
  async delete(
    path: string,
    opts: { recursive?: boolean; expectedRevision?: string } = {},
  ): Promise<{ path: string; deleted: true }> {
    return this.guard(path, async () => {
      const loc = await this.resolveLocation(path, 'delete');
      return this.locks.run([loc.real], async () => {
        const stats = await lstatOrUndefined(loc.real);
        if (stats === undefined) throw this.notFound(loc.rel);
        await this.assertLocationRevision(loc.real, stats, loc.rel, opts.expectedRevision);
        if (!stats.isDirectory()) {
          await fs.unlink(loc.real);
        } else if (opts.recursive === true) {
          await fs.rm(loc.real, { recursive: true });
        } else {
          try {
            await fs.rmdir(loc.real);
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
        return { path: loc.rel, deleted: true as const };
      });
    });
  }

  /** Renames a file, directory or symlink inside the workspace, creating missing parents of `to`. */
  async move(
    from: string,
    to: string,
    opts: { overwrite?: boolean; expectedRevision?: string } = {},
  ): Promise<{ from: string; to: string }> {
    return this.guard(from, async () => {
      const source = await this.resolveLocation(from, 'move');
      const dest = await this.guard(to, () => this.resolveLocation(to, 'move'));
      if (isWithin(dest.real, source.real) && dest.real !== source.real) {
        throw new WorkspaceError(
          'INVALID_PATH',
          `Cannot move ${quote(source.rel)} into itself (${quote(dest.rel)}).`,
        );
      }
      return this.locks.run([source.real, dest.real], async () => {
        const stats = await lstatOrUndefined(source.real);
        if (stats === undefined) throw this.notFound(source.rel);
        await this.assertLocationRevision(source.real, stats, source.rel, opts.expectedRevision);
        if (dest.real === source.real) return { from: source.rel, to: dest.rel };
        const existing = await lstatOrUndefined(dest.real);
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
        await this.guard(to, async () => {
          await this.ensureParent(dest.real, dest.rel, true);
          await fs.rename(source.real, dest.real);
        });
        return { from: source.rel, to: dest.rel };
      });
    });
  }

  /** Applies exact-text replacements in order, all or nothing; returns a unified diff (and writes unless dryRun). */
  async edit(
    path: string,
    edits: EditOp[],
    opts: { dryRun?: boolean; expectedRevision?: string } = {},
  ): Promise<EditResult> {
    return this.guard(path, async () => {
      const ops = validateEdits(edits);
      const target = await this.resolveTarget(path);
      return this.locks.run([target.real], async () => {
        const stats = this.requireFile(target.rel, await statOrUndefined(target.real));
        const bytes = await this.readBytes(target.real, target.rel);
        const revision = await revisionAsync(bytes);
        assertExpected(opts.expectedRevision, revision, target.rel);
        if (!isUtf8(bytes)) {
          throw new WorkspaceError(
            'INVALID_ENCODING',
            `${quote(target.rel)} is not UTF-8 text; it cannot be edited.`,
          );
        }
        const before = bytes.toString('utf8');
        let after = before;
        let applied = 0;
        ops.forEach((op, index) => {
          const matches = countOccurrences(after, op.oldText);
          if (matches === 0) {
            throw new WorkspaceError(
              'EDIT_NO_MATCH',
              `Edit ${index}: oldText was not found in ${quote(target.rel)}; read the file and copy the text exactly.`,
              { index },
            );
          }
          if (matches > 1 && op.replaceAll !== true) {
            throw new WorkspaceError(
              'EDIT_AMBIGUOUS',
              `Edit ${index}: oldText occurs ${matches} times; add surrounding context or set replaceAll.`,
              { index, matches },
            );
          }
          if (op.replaceAll === true) {
            after = after.split(op.oldText).join(op.newText);
          } else {
            const at = after.indexOf(op.oldText);
            after = after.slice(0, at) + op.newText + after.slice(at + op.oldText.length);
          }
          applied += matches;
        });
        const newBytes = Buffer.from(after, 'utf8');
        this.assertSize(newBytes.length);
        const diff = unifiedDiff(target.rel, before, after);
        const dryRun = opts.dryRun === true;
        if (dryRun || after === before) return { path: target.rel, revision, diff, applied, dryRun };
        await atomicWrite(target.real, newBytes, {
          mode: stats.mode & 0o7777,
          exclusive: false,
          isSafeDirectory: (dir) => this.isSafeReal(dir),
        });
        return { path: target.rel, revision: await revisionAsync(newBytes), diff, applied, dryRun };
      });
    });
  }

  /**
   * Literal or regex search, line by line, over files under `path` (default: the root), honouring
   * `.gitignore` files and skipping .git, node_modules, symlinks, protected paths, binary and oversized
   * files, and files `access` may not read. Runs in worker threads (never on the event loop) with a
   * linear-time regex engine, and stops at `timeoutMs` with what it found (`truncatedReason: 'deadline'`).
   * A `glob` without '/' also matches base names. `caller` is the fairness key (one per token).
   */
  async search(
    query: string,
    opts: {
      path?: string;
      regex?: boolean;
      caseSensitive?: boolean;
      glob?: string;
      maxResults?: number;
      access?: ReadAccess;
      caller?: string;
      timeoutMs?: number;
    } = {},
  ): Promise<SearchResult> {
    const start = opts.path ?? '.';
    return this.guard(start, async () => {
      if (typeof query !== 'string' || query.length === 0) {
        throw new WorkspaceError('INVALID_ARGUMENT', 'The search query must be a non-empty string.');
      }
      const cap = Math.min(
        positiveInt(opts.maxResults, 'maxResults', this.maxSearchResults),
        HARD_MAX_RESULTS,
      );
      const timeoutMs = positiveInt(opts.timeoutMs, 'timeoutMs', this.searchTimeoutMs);
      const target = await this.resolveTarget(start);
      if (target.stats === undefined) throw this.notFound(target.rel);
      const rel = nodePath.relative(this.root, target.real).split(nodePath.sep).join('/') || '.';
      if (!target.stats.isFile() && !target.stats.isDirectory()) {
        return { matches: [], truncated: false, filesScanned: 0 };
      }
      this.searchPool ??= new SearchPool();
      const result = await this.searchPool.run(opts.caller ?? 'owner', {
        root: this.root,
        start: rel,
        startIsFile: target.stats.isFile(),
        protectedPaths: [...this.protectedPaths],
        query,
        regex: opts.regex === true,
        caseSensitive: opts.caseSensitive !== false,
        ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
        cap,
        maxFileBytes: this.maxFileBytes,
        deadline: Date.now() + timeoutMs,
        ...(opts.access !== undefined ? { access: opts.access } : {}),
      });
      // Matches are reported under the path the caller asked for when a symlink led elsewhere.
      const shown =
        rel === target.rel
          ? result.matches
          : result.matches.map((m) => ({ ...m, path: target.rel + m.path.slice(rel.length) }));
      return {
        matches: shown,
        truncated: result.truncated,
        filesScanned: result.filesScanned,
        ...(result.reason !== undefined ? { truncatedReason: result.reason } : {}),
      };
    });
  }

  /** Ends the search worker threads (idle ones never keep the process alive). */
  async close(): Promise<void> {
    const pool = this.searchPool;
    this.searchPool = undefined;
    await pool?.close();
  }

  /** Runs `fn`, turning Node.js file-system errors into WorkspaceErrors that name `label`. */
  private async guard<T>(label: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toFsError(err, typeof label === 'string' ? label : String(label));
    }
  }

  private isProtected(real: string): boolean {
    return this.protectedPaths.some((p) => isWithin(real, p));
  }

  private containsProtected(real: string): boolean {
    return this.protectedPaths.some((p) => isWithin(p, real));
  }

  private isSafeReal(real: string): boolean {
    return isWithin(real, this.root) && !this.isProtected(real);
  }

  private assertSafeReal(real: string, rel: string): void {
    if (!isWithin(real, this.root)) {
      throw new WorkspaceError(
        'PATH_OUTSIDE_WORKSPACE',
        `${quote(rel)} resolves outside the workspace (through a symbolic link); access refused.`,
      );
    }
    if (this.isProtected(real)) {
      throw new WorkspaceError(
        'PROTECTED_PATH',
        `${quote(rel)} is protected by the server and cannot be accessed.`,
      );
    }
  }

  /** Normalises `path` and follows symlinks to the real target (or its deepest existing ancestor). */
  private async resolveTarget(path: string): Promise<Target> {
    const rel = this.normalize(path);
    const lexical = rel === '.' ? this.root : nodePath.join(this.root, rel);
    const { real, exists } = await realpathLoose(lexical);
    this.assertSafeReal(real, rel);
    return { rel, real, stats: exists ? await statOrUndefined(real) : undefined };
  }

  /** Like resolveTarget, but the last component is not followed: deleting or moving a symlink acts on the link. */
  private async resolveLocation(path: string, verb: string): Promise<Location> {
    const rel = this.normalize(path);
    const rootError = new WorkspaceError('INVALID_PATH', `Cannot ${verb} the workspace root.`);
    if (rel === '.') throw rootError;
    const lexical = nodePath.join(this.root, rel);
    const parent = await realpathLoose(nodePath.dirname(lexical));
    const real = nodePath.join(parent.real, nodePath.basename(lexical));
    if (real === this.root) throw rootError;
    this.assertSafeReal(real, rel);
    if (this.containsProtected(real)) {
      throw new WorkspaceError(
        'PROTECTED_PATH',
        `${quote(rel)} contains a protected path and cannot be changed.`,
      );
    }
    return { rel, real, stats: await lstatOrUndefined(real) };
  }

  private async assertLocationRevision(
    real: string,
    stats: Stats,
    rel: string,
    expected: string | undefined,
  ): Promise<void> {
    if (expected === undefined) return;
    if (!stats.isFile()) {
      throw new WorkspaceError(
        'NOT_A_FILE',
        `expectedRevision applies to files only; ${quote(rel)} is not one.`,
      );
    }
    assertExpected(expected, await hashFile(real), rel);
  }

  /** Makes sure the directory that will hold `real` exists (creating it if allowed) and is still inside. */
  private async ensureParent(real: string, rel: string, create: boolean): Promise<void> {
    const parent = nodePath.dirname(real);
    const stats = await statOrUndefined(parent);
    if (stats !== undefined) {
      if (!stats.isDirectory()) {
        throw new WorkspaceError('NOT_A_DIRECTORY', `The parent of ${quote(rel)} is not a directory.`);
      }
      return;
    }
    if (!create) {
      throw new WorkspaceError(
        'NOT_FOUND',
        `The parent directory of ${quote(rel)} does not exist; create it first or pass createParents: true.`,
      );
    }
    try {
      await fs.mkdir(parent, { recursive: true });
    } catch (err) {
      if (isErrno(err, 'EEXIST', 'ENOTDIR')) {
        throw new WorkspaceError('NOT_A_DIRECTORY', `A parent component of ${quote(rel)} is a file.`);
      }
      throw err;
    }
    this.assertSafeReal(await fs.realpath(parent), rel);
  }

  private requireFile(rel: string, stats: Stats | undefined): Stats {
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

  /** Reads a regular file without following a final symlink, enforcing the size cap. */
  private async readBytes(real: string, rel: string): Promise<Buffer> {
    const fd = openSync(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile()) throw new WorkspaceError('NOT_A_FILE', `${quote(rel)} is not a regular file.`);
      this.assertSize(stats.size);
      if (stats.size <= SYNC_READ_LIMIT) {
        // One spare byte detects a file that grew since fstat; such a file takes the async path.
        const buffer = Buffer.allocUnsafe(stats.size + 1);
        let length = 0;
        let n: number;
        do {
          n = readSync(fd, buffer, length, buffer.length - length, length);
          length += n;
        } while (n > 0 && length < buffer.length);
        if (length <= stats.size) return buffer.subarray(0, length);
      }
    } finally {
      closeSync(fd);
    }
    const handle = await fs.open(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new WorkspaceError('NOT_A_FILE', `${quote(rel)} is not a regular file.`);
      this.assertSize(stats.size);
      const bytes = await handle.readFile();
      this.assertSize(bytes.length);
      return bytes;
    } finally {
      await handle.close();
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
