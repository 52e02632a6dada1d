import { WorkspaceError } from '../../protocol/errors';
import { positiveInt } from './args';
import type { ConfinedPath } from './confined';
import type { ReadAccess } from './search';
import type { SearchResult } from './types';
import type { ConfinedWorkspace } from './workspace';

/** Most matches one search may return, whatever the caller asks. */
const HARD_MAX_RESULTS = 10_000;

/** Options of `ResourceManager.search` other than the starting path. */
export interface SearchOptions {
  regex?: boolean;
  caseSensitive?: boolean;
  glob?: string;
  maxResults?: number;
  access?: ReadAccess;
  caller?: string;
  timeoutMs?: number;
}

/**
 * search_files from a resolution: the walk runs in the worker pool from this resolution's
 * descriptors (descriptors are process-wide), so the tree walked is the one policy was decided on,
 * whatever is renamed meanwhile.
 */
export async function searchAt(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  query: string,
  opts: SearchOptions,
): Promise<SearchResult> {
  if (typeof query !== 'string' || query.length === 0) {
    throw new WorkspaceError('INVALID_ARGUMENT', 'The search query must be a non-empty string.');
  }
  const cap = Math.min(
    positiveInt(opts.maxResults, 'maxResults', ws.limits.maxSearchResults),
    HARD_MAX_RESULTS,
  );
  const timeoutMs = positiveInt(opts.timeoutMs, 'timeoutMs', ws.limits.searchTimeoutMs);
  const stats = ws.currentStats(target);
  if (stats === undefined) throw ws.notFound(target.rel);
  if (!stats.isFile() && !stats.isDirectory()) return { matches: [], truncated: false, filesScanned: 0 };
  const dirFd = stats.isDirectory() ? target.openDirectory() : target.parentFd;
  const result = await ws.pool().run(opts.caller ?? 'owner', {
    confined: ws.confined,
    startFd: dirFd,
    startName: stats.isFile() ? target.name : '',
    start: target.rel,
    startReal: target.realRel,
    startIsFile: stats.isFile(),
    protectedRels: [...ws.protectedRels],
    query,
    regex: opts.regex === true,
    caseSensitive: opts.caseSensitive !== false,
    ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
    cap,
    maxFileBytes: ws.limits.maxFileBytes,
    deadline: Date.now() + timeoutMs,
    ...(opts.access !== undefined ? { access: opts.access } : {}),
  });
  return {
    matches: result.matches,
    truncated: result.truncated,
    filesScanned: result.filesScanned,
    ...(result.reason !== undefined ? { truncatedReason: result.reason } : {}),
  };
}
