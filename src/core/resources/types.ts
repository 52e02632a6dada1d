import type { ConfinedPath } from './confined';
import type { SearchMatch, TruncationReason } from './search';

/** How file content travels over the wire. */
export type Encoding = 'utf8' | 'base64';
/** Kind of a directory entry, from `lstat` (symlinks are reported, never followed, when listing). */
export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

/** A path argument: a string (resolved here) or a resolution obtained from `ResourceManager.resolve`. */
export type PathArg = string | ConfinedPath;

/** Construction options for `ResourceManager`. */
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

/** A file's content as returned by `ResourceManager.readFile`. */
export interface FileContent {
  path: string;
  content: string;
  encoding: Encoding;
  /** sha256 hex of the bytes; pass back as `expectedRevision` for optimistic concurrency. */
  revision: string;
  size: number;
}

/** Outcome of `ResourceManager.writeFile`. */
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

/** Outcome of `ResourceManager.listFiles`. */
export interface FileList {
  path: string;
  entries: DirEntry[];
  /** True if `maxEntries` cut the listing short. */
  truncated: boolean;
}

/** Outcome of `ResourceManager.stat` (symlinks inside the workspace are followed). */
export interface FileInfo {
  path: string;
  type: EntryType;
  size: number;
  mtimeMs: number;
  /** Content revision, files only. */
  revision?: string;
}

/** Outcome of `ResourceManager.edit`. */
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

/** Outcome of `ResourceManager.search`. */
export interface SearchResult {
  matches: SearchMatch[];
  /** True if the result cap or the deadline stopped the search early. */
  truncated: boolean;
  /** Why the search was cut short, when it was. */
  truncatedReason?: TruncationReason;
  filesScanned: number;
}
