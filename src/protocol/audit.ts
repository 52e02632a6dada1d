/**
 * Audit records as they cross a boundary, beside their schema in ./operations.ts: the query, page and
 * verification types the audit log answers with, and the canonical serialisation (the exact bytes each
 * record's hash covers). Pure (no Node.js or DOM imports), so the server's AuditLog and the audit
 * webview share one definition and a live record in the webview matches a text filter exactly as the
 * server's query does.
 */
import type { AuditRecordData } from './operations';

/** Filters for `AuditLog.query`; all given filters must match. */
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
  records: AuditRecordData[];
  /** Pass as `before` for the next older page; null when there are no more. */
  nextBefore: number | null;
}

/** Outcome of verifying the hash chain: the chain head, or the first bad record and why. */
export type VerifyResult =
  | { ok: true; records: number; head: string }
  | { ok: false; records: number; badSeq: number; reason: string };

/**
 * The record's canonical JSON without `hash`: the exact bytes its hash covers. `params`, `outcome`
 * and `decisions` must come from `redact()`, whose sorted key order makes `JSON.stringify`
 * deterministic. Version 1 records (no `v`) keep their original layout, so old logs still verify.
 */
export function serializeBody(r: Omit<AuditRecordData, 'hash'>): string {
  return (
    '{"seq":' +
    r.seq +
    ',"prev":"' +
    r.prev +
    '","ts":"' +
    r.ts +
    (r.v === 2 ? '","v":2,"sessionId":' : '","sessionId":') +
    JSON.stringify(r.sessionId) +
    ',"agent":' +
    JSON.stringify(r.agent) +
    ',"role":' +
    JSON.stringify(r.role) +
    ',"transport":' +
    JSON.stringify(r.transport) +
    ',"op":' +
    JSON.stringify(r.op) +
    ',"decision":"' +
    r.decision +
    '","rule":' +
    JSON.stringify(r.rule) +
    (r.v === 2 ? ',"decisions":' + JSON.stringify(r.decisions ?? []) : '') +
    ',"params":' +
    JSON.stringify(r.params) +
    ',"outcome":' +
    JSON.stringify(r.outcome) +
    ',"durationMs":' +
    r.durationMs +
    '}'
  );
}

/** A full log line (with newline) from a body and its hash. */
export function lineFromBody(body: string, hash: string): string {
  return body.slice(0, -1) + ',"hash":"' + hash + '"}\n';
}
