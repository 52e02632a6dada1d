import { closeSync, readSync } from 'node:fs';
import { WorkspaceError } from '../../../protocol/errors';
import { PolicyEngine, type Policy } from '../../policy';
import { foldPathName } from '../../shared/fold';
import { lstatAt, openFileAt, resolveConfined, walkHeldEntries, type ConfinedRootHandle } from '../confined';
import { compileGlob } from '../glob';
import { compileMatcher, type Matcher } from './engine';
import { isIgnored, parseIgnoreFile, type IgnoreFile } from './gitignore';
import type { SearchMatch, SearchTask, TaskResult, TruncationReason } from './messages';

/** Directories never searched, whatever the ignore files say. */
const SKIPPED_DIRECTORIES = new Set(['.git', 'node_modules']);
/** A NUL byte in the first bytes marks a binary file, which is skipped. */
const BINARY_SNIFF_BYTES = 8192;
/**
 * Below the start, the entries down to this depth are listed by every shard (their files split by
 * path hash); each directory at this depth is walked by the one shard that claims it first.
 */
const SPLIT_DEPTH = 2;
/** Largest .gitignore read. */
const MAX_IGNORE_FILE_BYTES = 256 * 1024;

let cachedPolicy: { key: string; engine: PolicyEngine } | undefined;

/** The engine for `policy`, compiled once while the policy stays the same. */
function policyEngine(policy: Policy): PolicyEngine {
  const key = JSON.stringify(policy);
  if (cachedPolicy?.key !== key) cachedPolicy = { key, engine: new PolicyEngine(policy) };
  return cachedPolicy.engine;
}

/** FNV-1a of a path: which shard takes a file or a subtree, the same in every shard. */
function shardOf(rel: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < rel.length; i++) {
    hash ^= rel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** Reads regular files through the confined layer into a buffer reused across files. */
class FileReader {
  private buffer = Buffer.allocUnsafe(1024 * 1024);

  constructor(
    private readonly root: ConfinedRootHandle,
    private readonly maxBytes: number,
  ) {}

  /**
   * Entry `name` of the held directory `dirFd` (never through a link, never a protected entry), as a
   * view valid until the next read; undefined when it is not a readable regular file within the cap.
   */
  read(dirFd: number, name: string, rel: string): Buffer | undefined {
    let opened: { fd: number; stats: { size: number } };
    try {
      opened = openFileAt(this.root, dirFd, name, rel);
    } catch {
      return undefined;
    }
    const { fd, stats } = opened;
    try {
      if (stats.size > this.maxBytes) return undefined;
      // One spare byte shows a file that grew since fstat; a short read is the end of the file.
      const want = stats.size + 1;
      if (this.buffer.length < want) this.buffer = Buffer.allocUnsafe(want);
      let length = 0;
      for (;;) {
        const n = readSync(fd, this.buffer, length, want - length, length);
        length += n;
        if (n === 0 || length >= stats.size) break;
      }
      // A file that grew past the cap since fstat is skipped, not cut.
      if (length > this.maxBytes) return undefined;
      return this.buffer.subarray(0, length);
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }
}

/** The .gitignore files of the directories above the start (outermost first), read on held descriptors. */
function ancestorsIgnores(task: SearchTask): IgnoreFile[] {
  if (task.startReal === '.') return [];
  const files: IgnoreFile[] = [];
  const reader = new FileReader(task.confined, MAX_IGNORE_FILE_BYTES);
  const parts = task.startReal.split('/');
  for (let depth = 0; depth < parts.length; depth++) {
    const dirRel = depth === 0 ? '.' : parts.slice(0, depth).join('/');
    let bytes: Buffer | undefined;
    if (dirRel === '.') {
      bytes = reader.read(task.confined.fd, '.gitignore', '.gitignore');
    } else {
      try {
        const dir = resolveConfined(task.confined, dirRel, { followFinal: false });
        try {
          bytes = reader.read(dir.openDirectory(), '.gitignore', `${dirRel}/.gitignore`);
        } finally {
          dir.close();
        }
      } catch {
        // A directory above that vanished or turned into a link contributes no rules.
      }
    }
    if (bytes !== undefined) files.push(parseIgnoreFile(dirRel, bytes.toString('utf8')));
  }
  return files;
}

/**
 * Runs one shard of a search on this thread (a worker thread: the work is synchronous and CPU-bound).
 * Walks the tree through the confined layer from the held start descriptor, in name order, honouring
 * `.gitignore` files and skipping `.git`, `node_modules`, links, protected entries, binary and
 * oversized files, and files the caller may not read; stops at the cap or the deadline with what it
 * found.
 */
export function runSearchTask(task: SearchTask): TaskResult {
  let matcher: Matcher;
  let globMatch: ((rel: string) => boolean) | undefined;
  try {
    matcher = compileMatcher(task.query, { regex: task.regex, caseSensitive: task.caseSensitive });
    globMatch = task.glob === undefined ? undefined : compileGlob(task.glob);
  } catch (err) {
    if (err instanceof WorkspaceError) {
      return {
        id: task.id,
        ok: false,
        code: err.code,
        message: err.message,
        ...(err.details ? { details: err.details } : {}),
      };
    }
    throw err;
  }
  const policy = task.access === undefined ? undefined : policyEngine(task.access.policy);
  const principal = task.access?.principal;
  const readable =
    policy === undefined || principal === undefined ? () => true : policy.pathDecider(principal, 'read');
  const reader = new FileReader(task.confined, task.maxFileBytes);
  const ignoreReader = new FileReader(task.confined, MAX_IGNORE_FILE_BYTES);
  const matches: SearchMatch[] = [];
  let filesScanned = 0;
  let reason: TruncationReason | undefined;
  const expired = (): boolean => Date.now() > task.deadline;
  // Protected paths are compared in their folded form (`.GIT` is `.git` on a case-insensitive disk).
  const isProtectedRel = (realRel: string): boolean => {
    if (task.protectedRels.length === 0) return false;
    const folded = foldPathName(realRel);
    return task.protectedRels.some((p) => folded === p || folded.startsWith(`${p}/`));
  };
  // Results are shown under the path as asked; the walk reports paths under where it really is.
  const shown = (realRel: string): string => {
    const below = task.startReal === '.' ? realRel : realRel.slice(task.startReal.length + 1);
    if (below === '') return task.start;
    return task.start === '.' ? below : `${task.start}/${below}`;
  };

  const searchFile = (dirFd: number, name: string, realRel: string, rel: string): void => {
    if (globMatch !== undefined && !globMatch(rel)) return;
    if (!readable(rel) || (realRel !== rel && !readable(realRel))) return;
    const bytes = reader.read(dirFd, name, realRel);
    if (bytes === undefined) return;
    if (bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return;
    filesScanned++;
    const end = matcher.scan(
      bytes,
      (match) => {
        if (matches.length >= task.cap) {
          reason = 'max_results';
          return false;
        }
        matches.push({ path: rel, ...match });
        return true;
      },
      expired,
    );
    if (end === 'expired') reason = 'deadline';
  };

  if (task.startIsFile) {
    searchFile(task.startFd, task.startName, task.startReal, task.start);
  } else {
    // The ignore files in force in each directory reached, loaded on its first entry from the held
    // descriptor the walk gives (outermost first).
    const ignores = new Map<string, IgnoreFile[]>([[task.startReal, ancestorsIgnores(task)]]);
    const loaded = new Set<string>();
    const ignoresIn = (dirRel: string, dirFd: number, firstName: string): IgnoreFile[] => {
      const inherited = ignores.get(dirRel) ?? [];
      if (loaded.has(dirRel)) return inherited;
      loaded.add(dirRel);
      // Entries come in name order: a first entry after '.gitignore' means there is none. Otherwise
      // look before opening (a failed open costs an exception).
      const present =
        firstName === '.gitignore' || (firstName < '.gitignore' && lstatAt(dirFd, '.gitignore')?.isFile());
      const bytes = present
        ? ignoreReader.read(dirFd, '.gitignore', dirRel === '.' ? '.gitignore' : `${dirRel}/.gitignore`)
        : undefined;
      const own =
        bytes === undefined ? inherited : [...inherited, parseIgnoreFile(dirRel, bytes.toString('utf8'))];
      ignores.set(dirRel, own);
      return own;
    };
    // Subtrees at the split depth, numbered in walk order (the same in every shard): the first shard
    // to reach one claims it; past the claim table, a path hash decides.
    const claims = task.claims === undefined ? undefined : new Int32Array(task.claims);
    let subtree = 0;
    const claim = (rel: string): boolean => {
      const index = subtree++;
      if (claims === undefined || index >= claims.length) return shardOf(rel, task.shards) === task.shard;
      return Atomics.compareExchange(claims, index, 0, task.shard + 1) === 0;
    };
    // Entry kinds come from the listing; files are opened O_NOFOLLOW and checked on their fstat.
    walkHeldEntries(task.confined, task.startFd, task.startReal, {
      maxDepth: Number.MAX_SAFE_INTEGER,
      onEntry: (entry) => {
        if (reason !== undefined) return 'stop';
        if (expired()) {
          reason = 'deadline';
          return 'stop';
        }
        if (entry.type === 'symlink' || isProtectedRel(entry.rel)) return 'skip';
        const active = ignoresIn(entry.dirRel, entry.dirFd, entry.name);
        const depth = entry.depth;
        if (entry.type === 'directory') {
          if (SKIPPED_DIRECTORIES.has(foldPathName(entry.name)) || isIgnored(active, entry.rel, true)) {
            return 'skip';
          }
          if (depth === SPLIT_DEPTH && !claim(entry.rel)) return 'skip';
          ignores.set(entry.rel, active);
          return undefined;
        }
        if (entry.type !== 'file') return undefined;
        if (depth <= SPLIT_DEPTH && shardOf(entry.rel, task.shards) !== task.shard) return undefined;
        if (isIgnored(active, entry.rel, false)) return undefined;
        searchFile(entry.dirFd, entry.name, entry.rel, shown(entry.rel));
        return reason !== undefined ? 'stop' : undefined;
      },
    });
  }
  return {
    kind: 'search',
    id: task.id,
    ok: true,
    matches,
    filesScanned,
    truncated: reason !== undefined,
    ...(reason !== undefined ? { reason } : {}),
  };
}
