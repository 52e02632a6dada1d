/**
 * Pure helpers of the audit-log webview: filtering live records, formatting cells, the row store
 * behind the virtualised table. No DOM, no `vscode` and no host code (the host end is ./bridge.ts), so
 * they run and are tested under plain Node and are bundled into the webview script.
 */
import { lineFromBody, serializeBody } from '../../protocol/audit';
import type { AuditFilters, AuditRecord } from './protocol';

/** True when at least one filter is set. */
export function hasFilters(filters: AuditFilters): boolean {
  return Boolean(filters.agent || filters.op || filters.decision || filters.sessionId || filters.text);
}

/** The record as the audit log stores it, so a live record matches `text` the way a query does. */
export function recordLine(r: AuditRecord): string {
  return lineFromBody(serializeBody(r), r.hash).trimEnd();
}

/** Whether a (live) record matches the filters, with the same semantics as `AuditLog.query`. */
export function matchesFilters(r: AuditRecord, filters: AuditFilters): boolean {
  if (filters.agent && r.agent !== filters.agent) return false;
  if (filters.op && r.op !== filters.op) return false;
  if (filters.decision && r.decision !== filters.decision) return false;
  if (filters.sessionId && r.sessionId !== filters.sessionId) return false;
  if (filters.text && !recordLine(r).toLowerCase().includes(filters.text.toLowerCase())) return false;
  return true;
}

const MAX_CELL = 300;

function clip(s: string): string {
  return s.length > MAX_CELL ? s.slice(0, MAX_CELL - 1) + '…' : s;
}

function str(params: Record<string, unknown>, key: string): string | null {
  const v = params[key];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** What an action was aimed at, from its params: a path, `from → to`, a command line or an execution id. */
export function describeTarget(r: AuditRecord): string {
  const p = r.params;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return '';
  const params = p as Record<string, unknown>;
  const from = str(params, 'from');
  const to = str(params, 'to');
  if (from !== null && to !== null) return clip(`${from} → ${to}`);
  const command = str(params, 'command');
  if (command !== null) {
    const args = Array.isArray(params.args) ? params.args.filter((a) => typeof a === 'string') : [];
    return clip(args.length > 0 ? `${command} ${args.join(' ')}` : command);
  }
  const path = str(params, 'path');
  const query = str(params, 'query');
  if (query !== null) return clip(path !== null ? `${query} in ${path}` : query);
  if (path !== null) return clip(path);
  for (const key of ['executionId', 'name', 'uri']) {
    const v = str(params, key);
    if (v !== null) return clip(v);
  }
  return '';
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local date and time with milliseconds, `YYYY-MM-DD HH:MM:SS.mmm`; the raw value if it is not a date. */
export function formatLocalTime(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

/** A duration in milliseconds for a table cell: `0.42 ms`, `12 ms`, `1.25 s`, `2 m 05 s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} m ${pad(seconds % 60)} s`;
}

/** The outcome cell: `ok`, or the error code (`exit 2`, the status, or `error` when there is none). */
export function formatOutcome(r: AuditRecord): { label: string; ok: boolean } {
  const o = r.outcome as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') return { label: '', ok: true };
  if (o.ok === true) return { label: 'ok', ok: true };
  if (typeof o.code === 'string' && o.code !== '') return { label: o.code, ok: false };
  if (typeof o.exitCode === 'number' && o.exitCode !== 0) return { label: `exit ${o.exitCode}`, ok: false };
  if (typeof o.status === 'string' && o.status !== '') return { label: o.status, ok: false };
  return { label: 'error', ok: false };
}

/** `allowed` / `denied`. */
export function decisionLabel(decision: AuditRecord['decision']): string {
  return decision === 'deny' ? 'denied' : 'allowed';
}

/** The hover text of a decision badge: the deciding policy rule. */
export function decisionTitle(r: AuditRecord): string {
  if (r.rule !== null && r.rule !== '') return `Policy rule: ${r.rule}`;
  return r.decision === 'deny' ? 'Denied by default: no policy rule allowed it' : 'No policy rule involved';
}

/** Pretty JSON for the details pane. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? String(value);
}

/** Rows to render for a scroll position: `[start, end)`, widened by `overscan` on both sides. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan: number,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  return { start: Math.max(0, first - overscan), end: Math.min(count, last + overscan) };
}

/** The scrollTop that brings row `index` fully into view (unchanged when it already is). */
export function scrollToReveal(
  index: number,
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewportHeight) return Math.max(0, top + rowHeight - viewportHeight);
  return scrollTop;
}

/**
 * The rows of the table, newest first, with strictly decreasing `seq`. Live records are prepended and
 * older pages appended in O(1) each; every row keeps its `seq` but its record may be evicted to bound
 * memory, and is then fetched again by seq ({@link firstMissing}, {@link fill}).
 */
export class RowStore {
  // Live records, oldest first (so prepending is a push); row i < head.length is head[head.length - 1 - i].
  private headSeq: number[] = [];
  private headRec: (AuditRecord | null)[] = [];
  // Pages, newest first; row i >= head.length is body[i - head.length].
  private bodySeq: number[] = [];
  private bodyRec: (AuditRecord | null)[] = [];
  private held = 0;

  /** Number of rows. */
  get length(): number {
    return this.headSeq.length + this.bodySeq.length;
  }

  /** Number of rows whose record is in memory. */
  get loaded(): number {
    return this.held;
  }

  /** Seq of the newest row, or 0 when empty. */
  get topSeq(): number {
    return this.length === 0 ? 0 : this.seqAt(0);
  }

  /** Seq of the oldest row, or 0 when empty. */
  get bottomSeq(): number {
    return this.length === 0 ? 0 : this.seqAt(this.length - 1);
  }

  clear(): void {
    this.headSeq = [];
    this.headRec = [];
    this.bodySeq = [];
    this.bodyRec = [];
    this.held = 0;
  }

  seqAt(i: number): number {
    const h = this.headSeq.length;
    return i < h ? this.headSeq[h - 1 - i] : this.bodySeq[i - h];
  }

  /** The record of row `i`, or null when it is evicted (or `i` is out of range). */
  get(i: number): AuditRecord | null {
    if (i < 0 || i >= this.length) return null;
    const h = this.headSeq.length;
    return (i < h ? this.headRec[h - 1 - i] : this.bodyRec[i - h]) ?? null;
  }

  private set(i: number, record: AuditRecord | null): void {
    const h = this.headSeq.length;
    if (i < h) this.headRec[h - 1 - i] = record;
    else this.bodyRec[i - h] = record;
  }

  /** Adds records newer than every row (given newest first); older or known ones are skipped. Returns the count added. */
  prepend(records: readonly AuditRecord[]): number {
    let added = 0;
    for (let k = records.length - 1; k >= 0; k--) {
      const r = records[k];
      if (this.length > 0 && r.seq <= this.topSeq) continue;
      this.headSeq.push(r.seq);
      this.headRec.push(r);
      this.held++;
      added++;
    }
    return added;
  }

  /** Adds an older page (newest first) below every row; newer or known ones are skipped. Returns the count added. */
  appendPage(records: readonly AuditRecord[]): number {
    let added = 0;
    for (const r of records) {
      if (this.length > 0 && r.seq >= this.bottomSeq) continue;
      this.bodySeq.push(r.seq);
      this.bodyRec.push(r);
      this.held++;
      added++;
    }
    return added;
  }

  /** Row index of `seq`, or -1 (binary search: seq decreases with the index). */
  indexOfSeq(seq: number): number {
    let lo = 0;
    let hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.seqAt(mid);
      if (s === seq) return mid;
      if (s > seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The first row in `[from, to)` whose record is evicted, or -1. */
  firstMissing(from: number, to: number): number {
    const end = Math.min(to, this.length);
    for (let i = Math.max(0, from); i < end; i++) if (this.get(i) === null) return i;
    return -1;
  }

  /** Puts records fetched again back into their (evicted) rows, by seq. Returns the count restored. */
  fill(records: readonly AuditRecord[]): number {
    let restored = 0;
    for (const r of records) {
      const i = this.indexOfSeq(r.seq);
      if (i < 0 || this.get(i) !== null) continue;
      this.set(i, r);
      this.held++;
      restored++;
    }
    return restored;
  }

  /**
   * Drops records of rows outside `[keepFrom, keepTo)`, farthest first, until at most `target` are held.
   * Returns the count dropped.
   */
  evict(keepFrom: number, keepTo: number, target: number): number {
    let a = 0;
    let b = this.length - 1;
    let dropped = 0;
    while (this.held > target) {
      const canA = a < keepFrom && a <= b;
      const canB = b >= keepTo && b >= a;
      if (!canA && !canB) break;
      const takeA = canA && (!canB || keepFrom - a >= b - keepTo + 1);
      const i = takeA ? a++ : b--;
      if (this.get(i) !== null) {
        this.set(i, null);
        this.held--;
        dropped++;
      }
    }
    return dropped;
  }
}
