import type { AuditDecisionData, AuditRecordData } from '../../protocol/operations';

/** The audit record format written today; records without a `v` field are version 1. */
export const AUDIT_RECORD_VERSION = 2;

/** One policy decision an operation made (version 2 records list every one, in order). */
export type AuditDecision = AuditDecisionData;

/**
 * A committed audit record: the redacted entry plus its place in the hash chain. Its shape is the
 * protocol's (src/protocol/operations.ts), the one source every transport and the webview share.
 */
export type AuditRecord = AuditRecordData;

/**
 * One action to record, as handed to {@link AuditLog.append}: a record without its place in the
 * chain. `params`, `outcome` and the decisions' targets are redacted on append.
 */
export type AuditEntry = Omit<AuditRecord, 'seq' | 'ts' | 'prev' | 'hash' | 'v'>;

/** Filters for {@link AuditLog.query}; all given filters must match. */
export interface AuditQuery {
  sessionId?: string;
  agent?: string;
  op?: string;
  decision?: 'allow' | 'deny';
  /** ISO time, inclusive lower bound on `ts`. */
  since?: string;
  /** ISO time, inclusive upper bound on `ts`. */
  until?: string;
  /** Case-insensitive substring over the stored record JSON. */
  text?: string;
  /** Only records with `seq < before` (paging cursor). */
  before?: number;
  /** Page size: default 100, max 1000. */
  limit?: number;
}

/** One page of query results. */
export interface AuditPage {
  /** Matching records, newest first. */
  records: AuditRecord[];
  /** Pass as `before` for the next older page; null when there are no more. */
  nextBefore: number | null;
}

/** Options for {@link AuditLog.open}. */
export interface AuditOpenOptions {
  /** State directory holding `audit.jsonl` and `audit.head`. */
  dir: string;
  /** fdatasync each group commit (default true). */
  fsync?: boolean;
  /**
   * The HMAC key that summarises bulk data and edit texts in records (32 bytes, mode 0600, created
   * once); default `<dir>/redaction.key`.
   */
  redactionKeyFile?: string;
  /** Exact secrets (such as the owner token) removed from records wherever they appear. */
  secrets?: () => Iterable<string>;
}

/** Outcome of {@link verifyAuditLog}: the chain head, or the first bad record and why. */
export type VerifyResult =
  | { ok: true; records: number; head: string }
  | { ok: false; records: number; badSeq: number; reason: string };
