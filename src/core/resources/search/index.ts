/**
 * search_files, off the event loop: a pool of worker threads walks the workspace and matches with a
 * byte search (literal queries) or a linear-time regex engine, under a deadline, fairly per caller.
 */
export {
  SearchPool,
  compareWalkOrder,
  type PoolResult,
  type SearchJob,
  type SearchPoolOptions,
} from './pool';
export type { ReadAccess, SearchMatch, TruncationReason } from './messages';
