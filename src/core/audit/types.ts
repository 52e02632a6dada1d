/** The audit record format written today; records without a `v` field are version 1. */
export const AUDIT_RECORD_VERSION = 2;

/** One policy decision an operation made (version 2 records list every one, in order). */
export interface AuditDecision {
  /** The policy action asked about: read, write, exec, env, network, tool. */
  action: string;
  /** The target as the policy saw it (a path, a command, an env name...); redacted when stored. */
  target: string;
  decision: 'allow' | 'deny';
  /** The rule that decided, or null (deny by default). */
  rule: string | null;
}

/** One action to record, as handed to {@link AuditLog.append}; `params` and `outcome` are redacted on append. */
export interface AuditEntry {
  /** Session the action belongs to, or null outside a session. */
  sessionId: string | null;
  /** Principal name. */
  agent: string;
  /** Principal role: owner | agent | viewer. */
  role: string;
  /** Transport the request came in on: mcp | rest | cli | ... */
  transport: string;
  /** Operation name, e.g. `write_file`. */
  op: string;
  /** Raw request parameters; redacted before they are stored. */
  params: unknown;
  /** Whether policy allowed the action. */
  decision: 'allow' | 'deny';
  /** The policy rule that decided, or null (deny by default). */
  rule: string | null;
  /**
   * Every policy decision the operation made, in order (`decision`/`rule` above summarise them: the
   * refusing one, else the last). Absent means none was made.
   */
  decisions?: AuditDecision[];
  /** What happened; redacted before it is stored. */
  outcome: { ok: boolean; code?: string; message?: string; [k: string]: unknown };
  /** Wall time the action took, in milliseconds. */
  durationMs: number;
}

/** A committed audit record: the redacted entry plus its place in the hash chain. */
export interface AuditRecord extends AuditEntry {
  /** Record format version: 2 for records written now, absent in version 1 records. */
  v?: 2;
  /** 1-based sequence number, contiguous. */
  seq: number;
  /** ISO timestamp; never decreases along the log. */
  ts: string;
  /** Hash of the previous record (64 zeros for the first). */
  prev: string;
  /** sha256 hex of this record's canonical JSON without `hash`. */
  hash: string;
}

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
