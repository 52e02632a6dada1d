/**
 * The audit-log webview's message protocol, shared by the extension host (src/extension/auditPanel.ts)
 * and the webview script (media/audit/). No `vscode` import: the webview bundles what it uses.
 *
 * Commands go webview -> host and are untrusted input: the host accepts them only through
 * {@link parseWebviewMessage}, which checks them against zod schemas. Notifications go host -> webview.
 * The webview script imports only this file's types, so zod stays out of its bundle.
 */
import { z } from 'zod';
import type { AuditPage, AuditQuery, VerifyResult } from '../../protocol/audit';
import type { AuditRecordData as AuditRecord } from '../../protocol/operations';

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

/**
 * Only plain objects and null-prototype objects: a class instance or an object whose fields are
 * inherited is refused before zod reads a property, so nothing is taken from a prototype.
 */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** `schema`, applied only to a plain object (otherwise refused with `error`). */
function plainObject<T extends z.ZodType>(schema: T, error: string) {
  return z
    .custom<z.input<T>>(isPlainObject, { error })
    .pipe(schema as unknown as z.ZodType<z.output<T>, z.input<T>>);
}

/** A text filter: a string up to {@link MAX_FILTER_LENGTH}; the empty string means "no filter". */
function textFilter(key: 'agent' | 'op' | 'sessionId' | 'text') {
  return z
    .string({ error: `filter ${key} must be a string` })
    .max(MAX_FILTER_LENGTH, { error: `filter ${key} is longer than ${MAX_FILTER_LENGTH} characters` })
    .optional();
}

const filtersSchema = plainObject(
  z.strictObject({
    agent: textFilter('agent'),
    op: textFilter('op'),
    decision: z
      .enum(['allow', 'deny', ''], { error: 'filter decision must be "allow" or "deny"' })
      .optional(),
    sessionId: textFilter('sessionId'),
    text: textFilter('text'),
  }),
  'filters must be an object',
).transform((raw): AuditFilters => {
  const filters: AuditFilters = {};
  for (const key of ['agent', 'op', 'sessionId', 'text'] as const) {
    const v = raw[key];
    if (v !== undefined && v !== '') filters[key] = v;
  }
  if (raw.decision !== undefined && raw.decision !== '') filters.decision = raw.decision;
  return filters;
});

const requestIdSchema = z
  .number({ error: 'requestId must be a non-negative integer' })
  .int({ error: 'requestId must be a non-negative integer' })
  .min(0, { error: 'requestId must be a non-negative integer' });
const limitSchema = z
  .number({ error: `limit must be an integer from 1 to ${MAX_PAGE_SIZE}` })
  .int({ error: `limit must be an integer from 1 to ${MAX_PAGE_SIZE}` })
  .min(1, { error: `limit must be an integer from 1 to ${MAX_PAGE_SIZE}` })
  .max(MAX_PAGE_SIZE, { error: `limit must be an integer from 1 to ${MAX_PAGE_SIZE}` });
const beforeSchema = z
  .number({ error: 'before must be a positive integer' })
  .int({ error: 'before must be a positive integer' })
  .min(1, { error: 'before must be a positive integer' });

const webviewMessageSchema = plainObject(
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('ready') }),
    z.strictObject({ type: z.literal('verify') }),
    z.strictObject({
      type: z.literal('query'),
      requestId: requestIdSchema,
      filters: filtersSchema,
      before: beforeSchema.optional(),
      limit: limitSchema,
    }),
  ]),
  'message must be an object',
).transform((raw): WebviewMessage => {
  if (raw.type !== 'query') return { type: raw.type };
  // A clean copy: `before` only when given, so a first page is told from a later one by its absence.
  const message: QueryCommand = {
    type: 'query',
    requestId: raw.requestId,
    filters: raw.filters,
    limit: raw.limit,
  };
  if (raw.before !== undefined) message.before = raw.before;
  return message;
});

/** One line saying why `value` was refused, from the first (most telling) zod issue. */
function describeRefusal(error: z.ZodError, value: unknown): string {
  const issues = error.issues;
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (issue === undefined) return 'invalid message';
  if (issue.code === 'unrecognized_keys') {
    const what = issue.path[0] === 'filters' ? 'filter' : 'field';
    return `unknown ${what} ${JSON.stringify(issue.keys[0])}`;
  }
  if (issue.code === 'invalid_union' && issue.path.length === 1 && issue.path[0] === 'type') {
    const type = isPlainObject(value) ? value.type : undefined;
    return `unknown message type ${JSON.stringify(type)}`;
  }
  return issue.message;
}

/**
 * Validates filters from the webview and returns a normalised copy: unknown keys and wrong types are
 * refused, empty strings mean "no filter", strings are capped at {@link MAX_FILTER_LENGTH}.
 */
export function parseFilters(
  value: unknown,
): { ok: true; filters: AuditFilters } | { ok: false; error: string } {
  const parsed = filtersSchema.safeParse(value);
  if (parsed.success) return { ok: true, filters: parsed.data };
  const issue = parsed.error.issues.find((i) => i.code === 'unrecognized_keys');
  if (issue?.code === 'unrecognized_keys') {
    return { ok: false, error: `unknown filter ${JSON.stringify(issue.keys[0])}` };
  }
  return { ok: false, error: parsed.error.issues[0]?.message ?? 'invalid filters' };
}

/**
 * Validates one message from the webview (untrusted: a compromised webview can send anything) and
 * returns a clean copy holding only the known fields.
 */
export function parseWebviewMessage(value: unknown): ParseResult {
  const parsed = webviewMessageSchema.safeParse(value);
  if (parsed.success) return { ok: true, message: parsed.data };
  return { ok: false, error: describeRefusal(parsed.error, value) };
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
