/**
 * ResourceManager: confined, atomic, revision-checked access to one workspace folder. This file is
 * the component's public entry; the rest of the folder is private to it.
 */
export { ResourceManager } from './manager';
export type {
  DirEntry,
  EditResult,
  Encoding,
  EntryType,
  FileContent,
  FileInfo,
  FileList,
  PathArg,
  ResourceManagerOptions,
  SearchResult,
  WriteResult,
} from './types';
export type { ReadAccess, SearchMatch, TruncationReason } from './search';
export type { EditOp } from './edits';
export type { ConfinedPath, ConfinedRootHandle } from './confined';
export { assertOutsideWorkspace } from './paths';
export {
  fdPath,
  openConfinedRoot,
  openFileAt,
  walkConfined,
  walkHeldDirectory,
  type WalkEntry,
  type WalkOptions,
} from './confined';
