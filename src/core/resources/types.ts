import type { OperationOutput } from '../../protocol/operations';
import type { ConfinedPath } from './confined';

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

/** A file's content as returned by `ResourceManager.readFile` (the read_file result). */
export type FileContent = OperationOutput<'read_file'>;

/** Outcome of `ResourceManager.writeFile` (the write_file result without lease warnings). */
export type WriteResult = Omit<OperationOutput<'write_file'>, 'warnings'>;

/** One entry of a directory listing. */
export type DirEntry = FileList['entries'][number];

/** Outcome of `ResourceManager.listFiles` (the list_files result). */
export type FileList = OperationOutput<'list_files'>;

/** Outcome of `ResourceManager.stat` (the file_info result; symlinks inside the workspace are followed). */
export type FileInfo = OperationOutput<'file_info'>;

/** Outcome of `ResourceManager.edit` (the edit_file result without lease warnings). */
export type EditResult = Omit<OperationOutput<'edit_file'>, 'warnings'>;

/** Outcome of `ResourceManager.search` (the search_files result). */
export type SearchResult = OperationOutput<'search_files'>;
