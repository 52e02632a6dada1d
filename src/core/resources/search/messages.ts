import type { Principal } from '../../../protocol/principal';
import type { Policy } from '../../policy';

/** Why a search stopped before it had looked at everything. */
export type TruncationReason = 'max_results' | 'deadline';

/** One matching line found by a search. */
export interface SearchMatch {
  path: string;
  /** 1-based line number. */
  line: number;
  /** 1-based column (UTF-16 code units) of the first match on the line. */
  column: number;
  /** The line, cut to 300 characters. */
  text: string;
}

/** Who reads: files the policy does not let this principal read are skipped, unseen. */
export interface ReadAccess {
  policy: Policy;
  principal: Principal;
}

/** One shard of a search, as sent to a worker thread (structured-clone safe). */
export interface SearchTask {
  id: number;
  /** Real path of the workspace root. */
  root: string;
  /** Workspace-relative path to search ('.' for the root); a file or a directory. */
  start: string;
  /** Whether `start` is a file (searched even if an ignore file names it) rather than a directory. */
  startIsFile: boolean;
  /** Absolute real paths nothing may be read from. */
  protectedPaths: string[];
  query: string;
  regex: boolean;
  caseSensitive: boolean;
  glob?: string;
  /** Most matches this shard reports; one more means the whole search is truncated. */
  cap: number;
  maxFileBytes: number;
  /** Epoch milliseconds after which the shard stops and reports what it found. */
  deadline: number;
  /** This shard's share of the files: those whose path hashes to `shard` modulo `shards`. */
  shard: number;
  shards: number;
  access?: ReadAccess;
}

/** A worker's answer for one task. */
export type TaskResult =
  | {
      id: number;
      ok: true;
      matches: SearchMatch[];
      filesScanned: number;
      truncated: boolean;
      reason?: TruncationReason;
    }
  | { id: number; ok: false; code: string; message: string; details?: Record<string, unknown> };
