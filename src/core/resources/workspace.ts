import { closeSync, fstatSync, readlinkSync, type Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { foldPathName } from '../shared/fold';
import { isErrno } from '../shared/fs';
import { quote } from '../shared/text';
import { assertExpected, assertSize } from './args';
import {
  assertNotProtected,
  fdPath,
  lstatAt,
  openFileAt,
  type ConfinedPath,
  type ConfinedRootHandle,
} from './confined';
import { hashFd, readFd } from './content';
import { KeyedMutex } from './mutex';
import { isWithin, toFsError } from './paths';
import { SearchPool } from './search';

/** Limits of one workspace, fixed when it is opened. */
export interface WorkspaceLimits {
  maxFileBytes: number;
  maxSearchResults: number;
  searchTimeoutMs: number;
}

/**
 * The state every resource operation shares: the held root, the protected entries, the limits, the
 * per-path locks and the worker pool, with the checks each operation makes on a resolution before
 * and while it does its I/O. Private to the resources component; the public face is ResourceManager.
 */
export class ConfinedWorkspace {
  /** Real path of the workspace root. */
  readonly root: string;
  /** Per-real-path locks, so check-then-write sequences cannot interleave. */
  readonly locks = new KeyedMutex();
  private searchPool: SearchPool | undefined;

  constructor(
    /** The held root descriptor and protected identities. */
    readonly confined: ConfinedRootHandle,
    /** Real workspace-relative paths of protected entries inside the workspace, folded ('.' never). */
    readonly protectedRels: readonly string[],
    readonly limits: WorkspaceLimits,
  ) {
    this.root = confined.path;
  }

  /** The worker threads for searches and large edits, started on first use. */
  pool(): SearchPool {
    this.searchPool ??= new SearchPool();
    return this.searchPool;
  }

  /** Ends the worker threads, if any were started (searches still running fail). */
  async closePool(): Promise<void> {
    const pool = this.searchPool;
    this.searchPool = undefined;
    await pool?.close();
  }

  /** Runs `fn`, turning Node.js file-system errors into WorkspaceErrors that name `label`. */
  async guard<T>(label: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toFsError(err, typeof label === 'string' ? label : String(label));
    }
  }

  /** Protected by name (folded, so `.STATE` is `.state` on a case-insensitive file system). */
  isProtectedRel(realRel: string): boolean {
    if (this.protectedRels.length === 0) return false;
    const folded = foldPathName(realRel);
    return this.protectedRels.some((p) => folded === p || folded.startsWith(`${p}/`));
  }

  /** Refuses deleting or moving the root, or a directory that contains a protected entry. */
  assertChangeable(loc: ConfinedPath, verb: string): void {
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
  assertStillAt(target: ConfinedPath): void {
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
  currentStats(target: ConfinedPath): Stats | undefined {
    if (target.missingDirs.length > 0) return undefined;
    if (target.name === '') return fstatSync(target.parentFd);
    const stats = lstatAt(target.parentFd, target.name);
    assertNotProtected(this.confined, stats, target.rel);
    return stats;
  }

  /** The entry's current stats, which must be those of a regular file (NOT_FOUND, NOT_A_FILE). */
  requireFile(rel: string, target: ConfinedPath): Stats {
    const stats = this.currentStats(target);
    if (stats === undefined) throw this.notFound(rel);
    if (!stats.isFile()) throw new WorkspaceError('NOT_A_FILE', `${quote(rel)} is not a regular file.`);
    return stats;
  }

  /** Makes sure the directory that will hold the target exists, creating it (on held descriptors) if allowed. */
  ensureParent(target: ConfinedPath, create: boolean): void {
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

  /** Throws FILE_TOO_LARGE when `size` is over this workspace's file size cap. */
  assertSize(size: number): void {
    assertSize(size, this.limits.maxFileBytes);
  }

  /** The NOT_FOUND error for `rel`. */
  notFound(rel: string): WorkspaceError {
    return new WorkspaceError('NOT_FOUND', `No such file or directory: ${quote(rel)}.`);
  }

  /** Throws REVISION_CONFLICT unless the file at `loc` is at `expected` (when one was given). */
  async assertLocationRevision(loc: ConfinedPath, stats: Stats, expected: string | undefined): Promise<void> {
    if (expected === undefined) return;
    if (!stats.isFile()) {
      throw new WorkspaceError(
        'NOT_A_FILE',
        `expectedRevision applies to files only; ${quote(loc.rel)} is not one.`,
      );
    }
    assertExpected(expected, await this.hashAt(loc.parentFd, loc.name, loc.rel), loc.rel);
  }

  /** sha256 of regular file `name` of the held directory `dirFd` (never through a link). */
  async hashAt(dirFd: number, name: string, rel: string): Promise<string> {
    const { fd } = openFileAt(this.confined, dirFd, name, rel);
    try {
      return await hashFd(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Reads regular file `name` of `dirFd` without following a link, enforcing the size cap. */
  async readBytes(dirFd: number, name: string, rel: string): Promise<Buffer> {
    const { fd, stats } = openFileAt(this.confined, dirFd, name, rel);
    try {
      return await readFd(fd, stats.size, this.limits.maxFileBytes);
    } finally {
      closeSync(fd);
    }
  }
}
