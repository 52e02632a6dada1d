/**
 * The audit-log webview's message protocol, shared by the extension host (src/extension/auditPanel.ts)
 * and the webview script (media/audit/main.ts). No `vscode` import: the webview bundles what it uses.
 *
 * Commands go webview -> host and are untrusted input: the host accepts them only through
 * {@link parseWebviewMessage}. Notifications go host -> webview.
 */
import type { AuditPage, AuditQuery, AuditRecord, VerifyResult } from '../../core/audit/types';

export type { AuditPage, AuditQuery, AuditRecord, VerifyResult };

/** Longest agent / operation / session id / search text the host accepts in a filter. */
export const MAX_FILTER_LENGTH = 200;
/** Largest page the host asks the audit log for (AuditLog caps `limit` at 1000). */
export const MAX_PAGE_SIZE = 1000;

/** What the user filters the table by; every given field must match (all absent = every record). */
export interface AuditFilters {
  /** Exact principal name. */
  agent?: string;
  /** Exact operation name, e.g. `write_file` or `execution_end`. */
  op?: string;
  decision?: 'allow' | 'deny';
  /** Exact session id. */
  sessionId?: string;
  /** Case-insensitive substring of the stored record. */
  text?: string;
}

// ---------------------------------------------------------------------------------------------
// Commands: webview -> host

/** The webview script has loaded (also after it was hidden and shown again): send the status. */
export interface ReadyCommand {
  type: 'ready';
}

/** One page of records matching `filters`, newest first, older than `before` when given. */
export interface QueryCommand {
  type: 'query';
  /** Echoed in the answer so the webview can match it and drop stale ones. */
  requestId: number;
  filters: AuditFilters;
  /** Paging cursor: only records with `seq < before` (a previous page's `nextBefore`). */
  before?: number;
  /** Page size, 1..{@link MAX_PAGE_SIZE}. */
  limit: number;
}

/** Check the hash chain of the whole log. */
export interface VerifyCommand {
  type: 'verify';
}

/** Every message the webview may post to the host (untrusted: check with parseWebviewMessage). */
export type WebviewMessage = ReadyCommand | QueryCommand | VerifyCommand;

// ---------------------------------------------------------------------------------------------
// Notifications: host -> webview

/** Whether a server (an audit source) is attached; sent after `ready` and whenever it changes. */
export interface StatusNotification {
  type: 'status';
  running: boolean;
  /** Operation names to offer in the filter (records may still carry others). */
  operations: string[];
}

/** The answer to a {@link QueryCommand}. */
export interface RecordsNotification {
  type: 'records';
  requestId: number;
  records: AuditRecord[];
  nextBefore: number | null;
  /** True for a first page (no `before`): it replaces the table rather than extending it. */
  replace: boolean;
}

/** Records committed since the last batch, newest first; the webview applies its own filters. */
export interface AppendedNotification {
  type: 'appended';
  records: AuditRecord[];
  /** More records were committed than one batch carries: the webview should query again. */
  truncated: boolean;
}

/** The answer to a {@link VerifyCommand}. */
export interface VerifiedNotification {
  type: 'verified';
  result: VerifyResult;
}

/** A command failed; `requestId` names the failed query, if it was one. */
export interface ErrorNotification {
  type: 'error';
  message: string;
  requestId?: number;
}

/** Every message the host posts to the webview. */
export type HostMessage =
  StatusNotification | RecordsNotification | AppendedNotification | VerifiedNotification | ErrorNotification;

// ---------------------------------------------------------------------------------------------
// Validation of what the webview sends

/** The outcome of {@link parseWebviewMessage}: a clean copy of the command, or why it was refused. */
export type ParseResult = { ok: true; message: WebviewMessage } | { ok: false; error: string };

const FILTER_KEYS: readonly (keyof AuditFilters)[] = ['agent', 'op', 'decision', 'sessionId', 'text'];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(obj).filter((key) => !allowed.includes(key));
}

/**
 * Validates filters from the webview and returns a normalised copy: unknown keys and wrong types are
 * refused, empty strings mean "no filter", strings are capped at {@link MAX_FILTER_LENGTH}.
 */
export function parseFilters(
  value: unknown,
): { ok: true; filters: AuditFilters } | { ok: false; error: string } {
  if (!isPlainObject(value)) return { ok: false, error: 'filters must be an object' };
  const extra = unknownKeys(value, FILTER_KEYS);
  if (extra.length > 0) return { ok: false, error: `unknown filter ${JSON.stringify(extra[0])}` };
  const filters: AuditFilters = {};
  for (const key of ['agent', 'op', 'sessionId', 'text'] as const) {
    const v = own(value, key);
    if (v === undefined) continue;
    if (typeof v !== 'string') return { ok: false, error: `filter ${key} must be a string` };
    if (v.length > MAX_FILTER_LENGTH) {
      return { ok: false, error: `filter ${key} is longer than ${MAX_FILTER_LENGTH} characters` };
    }
    if (v !== '') filters[key] = v;
  }
  const decision = own(value, 'decision');
  if (decision !== undefined && decision !== '') {
    if (decision !== 'allow' && decision !== 'deny') {
      return { ok: false, error: 'filter decision must be "allow" or "deny"' };
    }
    filters.decision = decision;
  }
  return { ok: true, filters };
}

function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * Validates one message from the webview (untrusted: a compromised webview can send anything) and
 * returns a clean copy holding only the known fields.
 */
export function parseWebviewMessage(value: unknown): ParseResult {
  if (!isPlainObject(value)) return { ok: false, error: 'message must be an object' };
  const type = own(value, 'type');
  switch (type) {
    case 'ready':
    case 'verify': {
      const extra = unknownKeys(value, ['type']);
      if (extra.length > 0) return { ok: false, error: `unknown field ${JSON.stringify(extra[0])}` };
      return { ok: true, message: { type } };
    }
    case 'query': {
      const extra = unknownKeys(value, ['type', 'requestId', 'filters', 'before', 'limit']);
      if (extra.length > 0) return { ok: false, error: `unknown field ${JSON.stringify(extra[0])}` };
      const requestId = own(value, 'requestId');
      if (!isIntIn(requestId, 0, Number.MAX_SAFE_INTEGER)) {
        return { ok: false, error: 'requestId must be a non-negative integer' };
      }
      const limit = own(value, 'limit');
      if (!isIntIn(limit, 1, MAX_PAGE_SIZE)) {
        return { ok: false, error: `limit must be an integer from 1 to ${MAX_PAGE_SIZE}` };
      }
      const before = own(value, 'before');
      if (before !== undefined && !isIntIn(before, 1, Number.MAX_SAFE_INTEGER)) {
        return { ok: false, error: 'before must be a positive integer' };
      }
      const parsed = parseFilters(own(value, 'filters'));
      if (!parsed.ok) return parsed;
      const message: QueryCommand = { type: 'query', requestId, filters: parsed.filters, limit };
      if (before !== undefined) message.before = before;
      return { ok: true, message };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(type)}` };
  }
}

/** Type guard over {@link parseWebviewMessage}; prefer the parser, which also strips the message. */
export function isWebviewMessage(value: unknown): value is WebviewMessage {
  return parseWebviewMessage(value).ok;
}

/** The AuditLog query for a validated {@link QueryCommand}. */
export function toAuditQuery(command: QueryCommand): AuditQuery {
  const q: AuditQuery = { ...command.filters, limit: command.limit };
  if (command.before !== undefined) q.before = command.before;
  return q;
}
