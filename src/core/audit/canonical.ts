/**
 * The canonical serialisation of audit records: the exact bytes each record's hash covers. Pure (no
 * Node.js imports), so the audit webview can match records the way the server's query does.
 */
import type { AuditRecord } from './types';

/**
 * The record's canonical JSON without `hash`: the exact bytes its hash covers. `params`, `outcome`
 * and `decisions` must come from `redact()`, whose sorted key order makes `JSON.stringify`
 * deterministic. Version 1 records (no `v`) keep their original layout, so old logs still verify.
 */
export function serializeBody(r: Omit<AuditRecord, 'hash'>): string {
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
