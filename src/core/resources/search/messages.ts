import type { Principal } from '../../../protocol/principal';
import type { Policy } from '../../policy';
import type { ConfinedRootHandle } from '../confined';
import type { EditOp } from '../edits';

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
  kind: 'search';
  id: number;
  /** The workspace's held root descriptor and protected identities (descriptors are process-wide). */
  confined: ConfinedRootHandle;
  /**
   * Held descriptor of the start directory, or of the start file's parent directory: the resolution
   * the caller's policy was decided on. It stays open until the search returns.
   */
  startFd: number;
  /** Name of the start file in `startFd` ('' when the start is a directory). */
  startName: string;
  /** Workspace-relative start path as asked ('.' for the root): results are shown under it. */
  start: string;
  /** Where `start` really is (after in-workspace links): policy is also decided on the real paths. */
  startReal: string;
  /** Whether the start is a file (searched even if an ignore file names it) rather than a directory. */
  startIsFile: boolean;
  /** Real workspace-relative paths of protected entries, folded (also refused by identity). */
  protectedRels: string[];
  query: string;
  regex: boolean;
  caseSensitive: boolean;
  glob?: string;
  /** Most matches this shard reports; one more means the whole search is truncated. */
  cap: number;
  maxFileBytes: number;
  /** Epoch milliseconds after which the shard stops and reports what it found. */
  deadline: number;
  /** This shard's share of the work: top-level files hashed modulo `shards`, subtrees claimed. */
  shard: number;
  shards: number;
  /**
   * Claims on the subtrees at the split depth, shared by the shards of one search (0 = unclaimed):
   * the shard that reaches a subtree first walks it, so a faster shard takes more.
   */
  claims?: SharedArrayBuffer;
  access?: ReadAccess;
}

/** Edits of a large file, applied and diffed on a worker thread. */
export interface EditTask {
  kind: 'edit';
  id: number;
  /** Epoch milliseconds after which the thread running it is ended. */
  deadline: number;
  /** Workspace-relative path, for the diff header and error messages. */
  rel: string;
  /** The file's bytes (UTF-8, checked by the caller). */
  bytes: Uint8Array;
  edits: EditOp[];
}

/** Work a worker thread runs. */
export type WorkerTask = SearchTask | EditTask;

/** A worker's answer for one task. */
export type TaskResult =
  | {
      kind: 'search';
      id: number;
      ok: true;
      matches: SearchMatch[];
      filesScanned: number;
      truncated: boolean;
      reason?: TruncationReason;
    }
  | { kind: 'edit'; id: number; ok: true; after: Uint8Array; applied: number; diff: string }
  | { id: number; ok: false; code: string; message: string; details?: Record<string, unknown> };
