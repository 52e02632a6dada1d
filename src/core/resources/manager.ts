import { closeSync } from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { foldPathName } from '../shared/fold';
import { isErrno } from '../shared/fs';
import { quote } from '../shared/text';
import { positiveInt } from './args';
import { openConfinedRoot, resolveConfined, type ConfinedPath, type ConfinedRootHandle } from './confined';
import { revisionOf } from './content';
import { editAt } from './edit-ops';
import type { EditOp } from './edits';
import { mkdirAtPath, readFileAt, statAt, writeFileAt } from './file-ops';
import { moveAt } from './move';
import { isWithin, normalizeWorkspacePath, realpathLoose, toFsError } from './paths';
import { searchAt, type SearchOptions } from './search-files';
import { deleteAt, listFilesAt } from './tree';
import type {
  EditResult,
  Encoding,
  FileContent,
  FileInfo,
  FileList,
  PathArg,
  ResourceManagerOptions,
  SearchResult,
  WriteResult,
} from './types';
import { ConfinedWorkspace } from './workspace';

const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
const DEFAULT_MAX_SEARCH_RESULTS = 200;
const DEFAULT_SEARCH_TIMEOUT_MS = 10_000;

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
  private readonly ws: ConfinedWorkspace;
  /** Operations running now; the root descriptor is closed only when none is left. */
  private active = 0;
  private closed = false;

  private constructor(ws: ConfinedWorkspace, rootSpellings: string[]) {
    this.ws = ws;
    this.root = ws.root;
    this.confined = ws.confined;
    this.rootSpellings = rootSpellings;
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
    const searchTimeoutMs = positiveInt(
      options.searchTimeoutMs,
      'searchTimeoutMs',
      DEFAULT_SEARCH_TIMEOUT_MS,
    );
    const ws = new ConfinedWorkspace(confined, [...protectedRels], {
      maxFileBytes,
      maxSearchResults,
      searchTimeoutMs,
    });
    return new ResourceManager(ws, [...new Set([confined.path, given])]);
  }

  /** sha256 hex of the content bytes: the revision used for optimistic concurrency. */
  static revisionOf(bytes: Buffer): string {
    return revisionOf(bytes);
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
      if (this.ws.isProtectedRel(resolved.realRel)) {
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
    return this.withPath(path, true, (target) => readFileAt(this.ws, target, opts));
  }

  /** Atomically writes a file (temp file + fsync + rename), optionally only if it is at `expectedRevision`. */
  async writeFile(
    path: PathArg,
    content: string,
    opts: { encoding?: Encoding; expectedRevision?: string; createParents?: boolean } = {},
  ): Promise<WriteResult> {
    return this.withPath(path, true, (target) => writeFileAt(this.ws, target, content, opts));
  }

  /**
   * Lists a directory depth-first to `depth` levels, in path order; symlinks are listed but never
   * followed. When `maxEntries` cuts the listing, the first entries in walk order are kept.
   */
  async listFiles(
    path: PathArg,
    opts: { depth?: number; includeIgnored?: boolean; maxEntries?: number } = {},
  ): Promise<FileList> {
    return this.withPath(path, true, (target) => listFilesAt(this.ws, target, opts));
  }

  /** Type, size, mtime and (files only) revision; symlinks inside the workspace are followed. */
  async stat(path: PathArg): Promise<FileInfo> {
    return this.withPath(path, true, (target) => statAt(this.ws, target));
  }

  /** Creates a directory (with missing parents unless `recursive: false`); an existing directory is fine when recursive. */
  async mkdir(
    path: PathArg,
    opts: { recursive?: boolean } = {},
  ): Promise<{ path: string; created: boolean }> {
    return this.withPath(path, true, (target) => mkdirAtPath(this.ws, target, opts));
  }

  /** Deletes a file, symlink (the link, not its target) or directory (non-empty ones need `recursive`). */
  async delete(
    path: PathArg,
    opts: { recursive?: boolean; expectedRevision?: string } = {},
  ): Promise<{ path: string; deleted: true }> {
    return this.withPath(path, false, (loc) => deleteAt(this.ws, loc, opts));
  }

  /** Renames a file, directory or symlink inside the workspace, creating missing parents of `to`. */
  async move(
    from: PathArg,
    to: PathArg,
    opts: { overwrite?: boolean; expectedRevision?: string } = {},
  ): Promise<{ from: string; to: string }> {
    return this.withPath(from, false, (source) =>
      this.withPath(to, false, (dest) =>
        moveAt(this.ws, source, dest, typeof to === 'string' ? to : to.rel, opts),
      ),
    );
  }

  /** Applies exact-text replacements in order, all or nothing; returns a unified diff (and writes unless dryRun). */
  async edit(
    path: PathArg,
    edits: EditOp[],
    opts: { dryRun?: boolean; expectedRevision?: string; caller?: string } = {},
  ): Promise<EditResult> {
    return this.withPath(path, true, (target) => editAt(this.ws, target, edits, opts));
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
  async search(query: string, opts: { path?: PathArg } & SearchOptions = {}): Promise<SearchResult> {
    return this.withPath(opts.path ?? '.', true, (target) => searchAt(this.ws, target, query, opts));
  }

  /**
   * Ends the worker threads (searches still running fail), then closes the root descriptor once no
   * operation is running (a descriptor number closed under a running operation could be reused by
   * another open file). Later operations fail.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ws.closePool();
    if (this.active === 0) this.releaseRoot();
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
      return this.ws.guard(path.rel, () => fn(path));
    }
    return this.ws.guard(path, async () => {
      const resolved = this.resolve(path, { followFinal });
      try {
        return await fn(resolved);
      } finally {
        resolved.close();
      }
    });
  }
}
