import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  type Dirent,
} from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../../protocol/errors';
import { PolicyEngine, type Policy } from '../../policy';
import { compileGlob } from '../glob';
import { isWithin } from '../paths';
import { compileMatcher, type Matcher } from './engine';
import { isIgnored, parseIgnoreFile, type IgnoreFile } from './gitignore';
import type { SearchMatch, SearchTask, TaskResult, TruncationReason } from './messages';

/** Directories never searched, whatever the ignore files say. */
const SKIPPED_DIRECTORIES = new Set(['.git', 'node_modules']);
/** A NUL byte in the first bytes marks a binary file, which is skipped. */
const BINARY_SNIFF_BYTES = 8192;
/** Subtrees a search splits into before its shards walk them separately. */
const SHARED_FRONTIER = 64;
/** Largest .gitignore read. */
const MAX_IGNORE_FILE_BYTES = 256 * 1024;

let cachedPolicy: { key: string; engine: PolicyEngine } | undefined;

/** The engine for `policy`, compiled once while the policy stays the same. */
function policyEngine(policy: Policy): PolicyEngine {
  const key = JSON.stringify(policy);
  if (cachedPolicy?.key !== key) cachedPolicy = { key, engine: new PolicyEngine(policy) };
  return cachedPolicy.engine;
}

/** FNV-1a of a path: which shard searches a file, stable whoever walks the tree. */
function shardOf(rel: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < rel.length; i++) {
    hash ^= rel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** A directory to walk, with the .gitignore files in force above it (outermost first). */
interface Directory {
  real: string;
  rel: string;
  ignores: IgnoreFile[];
}

function joinRel(parent: string, name: string): string {
  return parent === '.' ? name : `${parent}/${name}`;
}

function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Reads a regular file without following a final symlink, into a buffer reused across files. */
class FileReader {
  private buffer = Buffer.allocUnsafe(1024 * 1024);

  constructor(private readonly maxBytes: number) {}

  /** The file's bytes (a view valid until the next read), or undefined if it is not a readable regular file. */
  read(path: string): Buffer | undefined {
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const stats = fstatSync(fd);
      if (!stats.isFile() || stats.size > this.maxBytes) return undefined;
      if (this.buffer.length < stats.size + 1) this.buffer = Buffer.allocUnsafe(stats.size + 1);
      let length = 0;
      let n: number;
      do {
        n = readSync(fd, this.buffer, length, this.buffer.length - length, length);
        length += n;
      } while (n > 0 && length < this.buffer.length);
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

/**
 * Runs one shard of a search on this thread (a worker thread: the work is synchronous and CPU-bound).
 * Walks the tree in name order (the top levels shared, subtrees split between shards), honouring `.gitignore` files and skipping `.git`,
 * `node_modules`, symlinks, protected paths, binary and oversized files, and files the caller may not
 * read; stops at the cap or the deadline with what it found.
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
  const readable = (rel: string): boolean =>
    policy === undefined || principal === undefined || policy.decide(principal, 'read', rel).allowed;
  const reader = new FileReader(task.maxFileBytes);
  const matches: SearchMatch[] = [];
  let filesScanned = 0;
  let reason: TruncationReason | undefined;
  const expired = (): boolean => Date.now() > task.deadline;
  const isProtected = (real: string): boolean => task.protectedPaths.some((p) => isWithin(real, p));

  const searchFile = (real: string, rel: string): void => {
    if (globMatch !== undefined && !globMatch(rel)) return;
    if (!readable(rel)) return;
    const bytes = reader.read(real);
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

  const ignoreFile = (dir: Directory, entries: Dirent[]): IgnoreFile | undefined => {
    const entry = entries.find((e) => e.name === '.gitignore' && e.isFile());
    if (entry === undefined) return undefined;
    const bytes = new FileReader(MAX_IGNORE_FILE_BYTES).read(`${dir.real}/.gitignore`);
    return bytes === undefined ? undefined : parseIgnoreFile(dir.rel, bytes.toString('utf8'));
  };

  /** Lists a directory: searches its files (those `mine` accepts) and returns its subdirectories. */
  const visit = (dir: Directory, mine: (rel: string) => boolean): Directory[] => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir.real, { withFileTypes: true });
    } catch {
      return [];
    }
    entries.sort(byName);
    const own = ignoreFile(dir, entries);
    const ignores = own === undefined ? dir.ignores : [...dir.ignores, own];
    const subdirectories: Directory[] = [];
    for (const entry of entries) {
      if (reason !== undefined) break;
      if (expired()) {
        reason = 'deadline';
        break;
      }
      if (entry.isSymbolicLink()) continue;
      const real = `${dir.real}/${entry.name}`;
      if (isProtected(real)) continue;
      const rel = joinRel(dir.rel, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name) && !isIgnored(ignores, rel, true)) {
          subdirectories.push({ real, rel, ignores });
        }
      } else if (entry.isFile() && mine(rel) && !isIgnored(ignores, rel, false)) {
        searchFile(real, rel);
      }
    }
    return subdirectories;
  };

  const depthFirst = (dir: Directory): void => {
    for (const sub of visit(dir, () => true)) {
      if (reason !== undefined) return;
      depthFirst(sub);
    }
  };

  const startReal = task.start === '.' ? task.root : nodePath.join(task.root, task.start);
  if (task.startIsFile) {
    searchFile(startReal, task.start);
  } else {
    // Every shard lists the top levels (splitting their files by path hash) until there are enough
    // subtrees to share out; then each shard walks its own subtrees alone.
    const mine = (rel: string): boolean => shardOf(rel, task.shards) === task.shard;
    let level: Directory[] = [{ real: startReal, rel: task.start, ignores: ancestorsIgnores(task) }];
    while (level.length > 0 && level.length < SHARED_FRONTIER && reason === undefined) {
      const next: Directory[] = [];
      for (const dir of level) next.push(...visit(dir, mine));
      level = next;
    }
    level.forEach((dir, index) => {
      if (reason === undefined && index % task.shards === task.shard) depthFirst(dir);
    });
  }
  return {
    id: task.id,
    ok: true,
    matches,
    filesScanned,
    truncated: reason !== undefined,
    ...(reason !== undefined ? { reason } : {}),
  };
}

/** The .gitignore files of the directories above a search that starts below the root. */
function ancestorsIgnores(task: SearchTask): IgnoreFile[] {
  if (task.start === '.') return [];
  const files: IgnoreFile[] = [];
  const reader = new FileReader(MAX_IGNORE_FILE_BYTES);
  const parts = task.start.split('/');
  for (let depth = 0; depth < parts.length; depth++) {
    const dirRel = depth === 0 ? '.' : parts.slice(0, depth).join('/');
    const dirReal = depth === 0 ? task.root : `${task.root}/${dirRel}`;
    const bytes = reader.read(`${dirReal}/.gitignore`);
    if (bytes !== undefined) files.push(parseIgnoreFile(dirRel, bytes.toString('utf8')));
  }
  return files;
}
