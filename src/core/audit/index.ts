import { hash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import {
  AUDIT_FILE,
  GENESIS,
  HEAD_FILE,
  HEAD_FILE_SIZE,
  encodeHead,
  lineFromBody,
  readHeadFile,
  serializeBody,
  type ChainHead,
} from './format';
import {
  createRedactor,
  createSummaryCache,
  loadRedactionKey,
  type Redact,
  type SummaryCache,
} from './redact';
import { verifyAuditLog } from './verify';
import { OffsetIndex, TailRing, readLines, scanLines } from './store';
import {
  AUDIT_RECORD_VERSION,
  type AuditDecision,
  type AuditEntry,
  type AuditOpenOptions,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type VerifyResult,
} from './types';

export { AUDIT_FILE } from './format';
export {
  REDACTED,
  REDACTION_KEY_BYTES,
  createRedactor,
  loadRedactionKey,
  redact,
  type Redact,
  type RedactorOptions,
} from './redact';
export { verifyAuditLog, type AuditSnapshot } from './verify';
export { AUDIT_RECORD_VERSION } from './types';
export type {
  AuditDecision,
  AuditEntry,
  AuditOpenOptions,
  AuditPage,
  AuditQuery,
  AuditRecord,
  VerifyResult,
} from './types';

/** The redaction key's file name inside the audit directory. */
export const REDACTION_KEY_FILE = 'redaction.key';
const RING_SIZE = 1000;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const QUERY_CHUNK = 256 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

interface Pending {
  record: AuditRecord;
  line: string;
  resolve: (record: AuditRecord) => void;
  reject: (err: unknown) => void;
}

/**
 * Tamper-evident, append-only JSONL log of every action, hash-chained record to record, with group
 * commit (one write + fdatasync per batch), an in-memory tail and paged queries.
 */
export class AuditLog {
  private readonly listeners = new Set<(record: AuditRecord) => void>();
  private readonly reads = new Set<Promise<unknown>>();
  private queue: Pending[] = [];
  private writing = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private failure: WorkspaceError | null = null;
  private lastAppend: Promise<unknown> = Promise.resolve();
  private nextSeq: number;
  private prevHash: string;
  private committed: Readonly<ChainHead>;
  /** ISO form of `lastTsMs`, reused while the clock stays within the same millisecond. */
  private lastTs = '';

  private constructor(
    /** The JSONL file path. */
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly headFh: FileHandle,
    private readonly index: OffsetIndex,
    private readonly ring: TailRing,
    private readonly fsync: boolean,
    head: ChainHead,
    private lastTsMs: number,
    private readonly redact: Redact,
    private readonly summaries: SummaryCache,
  ) {
    this.committed = Object.freeze({ ...head });
    this.nextSeq = head.seq + 1;
    this.prevHash = head.hash;
  }

  /**
   * Opens (creating dir 0700 and file 0600 if missing) the log in `options.dir`, drops an incomplete last
   * line left by a crash and resumes the chain. Rejects if `audit.head` shows records were removed.
   */
  static async open(options: AuditOpenOptions): Promise<AuditLog> {
    const dir = resolve(options.dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, AUDIT_FILE);
    const fsync = options.fsync ?? true;
    const key = await loadRedactionKey(options.redactionKeyFile ?? join(dir, REDACTION_KEY_FILE));
    const summaries = createSummaryCache(key);
    const redactor = createRedactor({
      key,
      summaries,
      ...(options.secrets ? { secrets: options.secrets } : {}),
    });
    const fh = await open(path, 'a+', 0o600);
    let headFh: FileHandle | undefined;
    try {
      const { index, size } = await scanLines(fh);
      if (size > index.end) {
        await fh.truncate(index.end);
        if (fsync) await fh.datasync();
      }
      const ring = new TailRing(RING_SIZE);
      const tail = await loadTail(fh, index, path);
      for (const record of tail) ring.push(record);
      const last = tail.at(-1);
      const head: ChainHead = last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS };
      await checkHeadFile(join(dir, HEAD_FILE), fh, index, head, path);
      headFh = await open(join(dir, HEAD_FILE), constants.O_RDWR | constants.O_CREAT, 0o600);
      await headFh.write(encodeHead(head), 0, HEAD_FILE_SIZE, 0);
      await headFh.truncate(HEAD_FILE_SIZE);
      return new AuditLog(
        path,
        fh,
        headFh,
        index,
        ring,
        fsync,
        head,
        last ? Date.parse(last.ts) : 0,
        redactor,
        summaries,
      );
    } catch (err) {
      await headFh?.close();
      await fh.close();
      throw err;
    }
  }

  /** The last committed record's sequence number and hash (`{0, 64 zeros}` for an empty log). */
  /** Verifies the chain up to everything committed so far, safely while appends continue. */
  async verify(): Promise<VerifyResult> {
    await this.flush();
    return verifyAuditLog(dirname(this.path), { bytes: this.index.end, head: this.committed });
  }

  get head(): { seq: number; hash: string } {
    return this.committed;
  }

  /**
   * Computes, off the event loop, the summaries that redacting `entry` will need for its large
   * strings (a file's content), so that {@link append} does not hash megabytes synchronously.
   * Optional: append computes whatever was not prepared.
   */
  prepare(entry: Pick<AuditEntry, 'params'>): Promise<void> {
    return this.summaries.prepare(entry.params);
  }

  /**
   * Redacts and chains `entry` (seq, prev and hash are fixed now, in call order) and resolves with the
   * record once its batch is durably written.
   */
  append(entry: AuditEntry): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(closedError());
    if (this.failure) return Promise.reject(this.failure);
    let record: AuditRecord;
    let line: string;
    try {
      ({ record, line } = this.seal(entry));
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = new Promise<AuditRecord>((resolve, reject) => {
      this.queue.push({ record, line, resolve, reject });
    });
    this.lastAppend = promise;
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => void this.drain());
    }
    return promise;
  }

  /**
   * Committed records matching `q`, newest first, read backwards from `q.before` (or the end) until
   * `q.limit` match; `nextBefore` pages on to older records.
   */
  async query(q: AuditQuery = {}): Promise<AuditPage> {
    if (this.closed) throw closedError();
    const read = this.runQuery(q);
    this.reads.add(read);
    try {
      return await read;
    } finally {
      this.reads.delete(read);
    }
  }

  /** The last `n` committed records (at most 1000), oldest first. */
  tail(n: number): AuditRecord[] {
    return this.ring.last(n);
  }

  /**
   * Calls `listener` with each record after it is committed, in seq order; a listener's exceptions are
   * ignored. Returns the unsubscribe function.
   */
  subscribe(listener: (record: AuditRecord) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resolves once every append issued so far has settled (durable, or rejected to its caller). */
  flush(): Promise<void> {
    return this.lastAppend.then(noop, noop);
  }

  /** Flushes, then closes the files; later appends and queries reject. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await this.flush();
    await Promise.allSettled([...this.reads]);
    this.listeners.clear();
    await this.fh.close();
    await this.headFh.close();
  }

  /** Builds the record and its line, advancing the in-memory chain. */
  private seal(entry: AuditEntry): { record: AuditRecord; line: string } {
    if (entry.decision !== 'allow' && entry.decision !== 'deny') {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Audit decision must be "allow" or "deny", got ${JSON.stringify(entry.decision)}.`,
      );
    }
    const now = Date.now();
    if (now > this.lastTsMs || this.lastTs === '') {
      this.lastTsMs = Math.max(now, this.lastTsMs);
      this.lastTs = new Date(this.lastTsMs).toISOString();
    }
    const duration = entry.durationMs;
    const record: AuditRecord = {
      seq: this.nextSeq,
      prev: this.prevHash,
      ts: this.lastTs,
      v: AUDIT_RECORD_VERSION,
      sessionId: entry.sessionId == null ? null : String(entry.sessionId),
      agent: String(entry.agent),
      role: String(entry.role),
      transport: String(entry.transport),
      op: String(entry.op),
      decision: entry.decision,
      rule: entry.rule == null ? null : String(entry.rule),
      decisions: (this.redact(entry.decisions ?? []) ?? []) as AuditDecision[],
      params: this.redact(entry.params) ?? null,
      outcome: (this.redact(entry.outcome) ?? null) as AuditRecord['outcome'],
      durationMs: Number.isFinite(duration) && duration !== 0 ? duration : 0,
      hash: '',
    };
    const body = serializeBody(record);
    record.hash = hash('sha256', body, 'hex');
    this.nextSeq = record.seq + 1;
    this.prevHash = record.hash;
    return { record, line: lineFromBody(body, record.hash) };
  }

  /** The single writer: commits queued lines batch by batch until the queue is empty. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.commit(batch);
      } catch (err) {
        await this.recover(batch, err);
      }
    }
    this.writing = false;
  }

  /** One group commit: write, fdatasync, head file; then resolve, remember and notify. */
  private async commit(batch: Pending[]): Promise<void> {
    let text = '';
    for (const p of batch) text += p.line;
    const buf = Buffer.from(text);
    let written = 0;
    while (written < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, written, buf.length - written);
      written += bytesWritten;
    }
    if (this.fsync) await this.fh.datasync();
    const last = batch[batch.length - 1].record;
    const head = Object.freeze({ seq: last.seq, hash: last.hash });
    await this.headFh.write(encodeHead(head), 0, HEAD_FILE_SIZE, 0);

    this.index.pushLines(buf, this.index.end);
    this.committed = head;
    for (const p of batch) {
      this.ring.push(p.record);
      p.resolve(p.record);
    }
    if (this.listeners.size === 0) return;
    const listeners = [...this.listeners];
    for (const p of batch) {
      for (const listener of listeners) {
        if (!this.listeners.has(listener)) continue;
        try {
          listener(p.record);
        } catch {
          // A faulty subscriber must not stall or break the audit writer.
        }
      }
    }
  }

  /**
   * A failed commit: reject the batch and everything chained after it, roll the chain back to the last
   * committed record and cut the file back to it. If even that fails, the log refuses further appends.
   */
  private async recover(batch: Pending[], cause: unknown): Promise<void> {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const error = new WorkspaceError('INTERNAL', `Could not write the audit log: ${reason}`);
    const dropped = batch.concat(this.queue);
    this.queue = [];
    this.nextSeq = this.committed.seq + 1;
    this.prevHash = this.committed.hash;
    for (const p of dropped) p.reject(error);
    try {
      await this.fh.truncate(this.index.end);
    } catch {
      this.failure = error;
      for (const p of this.queue.splice(0)) p.reject(error);
    }
  }

  private async runQuery(q: AuditQuery): Promise<AuditPage> {
    const limit =
      q.limit === undefined ? DEFAULT_LIMIT : Math.min(MAX_LIMIT, Math.max(1, Math.floor(q.limit)));
    if (Number.isNaN(limit))
      throw new WorkspaceError('INVALID_ARGUMENT', 'Audit query limit must be a number.');
    const since = isoBound(q.since, 'since');
    const until = isoBound(q.until, 'until');
    const text = q.text ? q.text.toLowerCase() : null;
    // Exact fields are serialised as `"key":<JSON string>`: a cheap substring test before JSON.parse.
    const needles: string[] = [];
    if (q.sessionId !== undefined) needles.push('"sessionId":' + JSON.stringify(q.sessionId));
    if (q.agent !== undefined) needles.push('"agent":' + JSON.stringify(q.agent));
    if (q.op !== undefined) needles.push('"op":' + JSON.stringify(q.op));
    if (q.decision !== undefined) needles.push('"decision":' + JSON.stringify(q.decision));

    let hi = this.index.count;
    if (q.before !== undefined) {
      if (Number.isNaN(q.before))
        throw new WorkspaceError('INVALID_ARGUMENT', 'Audit query before must be a number.');
      hi = Math.min(hi, Math.max(0, Math.ceil(q.before) - 1));
    }
    const records: AuditRecord[] = [];
    let exhausted = true;
    scan: while (hi > 0) {
      const end = this.index.start(hi);
      let lo = hi - 1;
      while (lo > 0 && end - this.index.start(lo - 1) <= QUERY_CHUNK) lo--;
      const buf = await readLines(this.fh, this.index, lo, hi);
      const base = this.index.start(lo);
      for (let i = hi - 1; i >= lo; i--) {
        const line = buf.toString('utf8', this.index.start(i) - base, this.index.start(i + 1) - base - 1);
        if (since !== null || until !== null) {
          const at = line.indexOf('"ts":"') + 6;
          const ts = line.slice(at, at + 24);
          // ts never decreases along the log, so nothing older can be inside the window.
          if (since !== null && ts < since) break scan;
          if (until !== null && ts > until) continue;
        }
        if (!needles.every((needle) => line.includes(needle))) continue;
        if (text !== null && !line.toLowerCase().includes(text)) continue;
        const record = parseRecord(line);
        if (record === null || !matches(record, q)) continue;
        records.push(record);
        if (records.length === limit) {
          exhausted = i === 0;
          break scan;
        }
      }
      hi = lo;
    }
    return { records, nextBefore: exhausted ? null : records[records.length - 1].seq };
  }
}

function noop(): void {}

function closedError(): WorkspaceError {
  return new WorkspaceError('INTERNAL', 'The audit log is closed.');
}

/** Normalises a query time bound to the `toISOString` form records use, so strings compare in time order. */
function isoBound(value: string | undefined, name: string): string | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Audit query ${name} must be an ISO date, got ${JSON.stringify(value)}.`,
    );
  }
  return new Date(ms).toISOString();
}

function matches(record: AuditRecord, q: AuditQuery): boolean {
  return (
    (q.sessionId === undefined || record.sessionId === q.sessionId) &&
    (q.agent === undefined || record.agent === q.agent) &&
    (q.op === undefined || record.op === q.op) &&
    (q.decision === undefined || record.decision === q.decision)
  );
}

/** Parses one stored line; null when it is not a record (a damaged log stays queryable). */
function parseRecord(line: string): AuditRecord | null {
  try {
    const value = JSON.parse(line) as AuditRecord | null;
    return value !== null && typeof value === 'object' && typeof value.seq === 'number' ? value : null;
  } catch {
    return null;
  }
}

/** Parses the last (up to {@link RING_SIZE}) records; the very last one must be sound, as the chain resumes from it. */
async function loadTail(fh: FileHandle, index: OffsetIndex, path: string): Promise<AuditRecord[]> {
  const count = index.count;
  if (count === 0) return [];
  const from = Math.max(0, count - RING_SIZE);
  const buf = await readLines(fh, index, from, count);
  const base = index.start(from);
  const records: AuditRecord[] = [];
  for (let i = from; i < count; i++) {
    const record = parseRecord(buf.toString('utf8', index.start(i) - base, index.start(i + 1) - base - 1));
    if (record !== null) records.push(record);
  }
  const last = records.at(-1);
  if (
    last === undefined ||
    last.seq !== count ||
    typeof last.hash !== 'string' ||
    !HEX64.test(last.hash) ||
    typeof last.ts !== 'string' ||
    Number.isNaN(Date.parse(last.ts))
  ) {
    throw new WorkspaceError(
      'INTERNAL',
      `The audit log ${path} is damaged (its last record is not record ${count}). Run verify, move the file aside to keep it as evidence, then restart.`,
    );
  }
  return records;
}

/** Refuses to resume a chain that no longer contains the head recorded in `audit.head`. */
async function checkHeadFile(
  headPath: string,
  fh: FileHandle,
  index: OffsetIndex,
  head: ChainHead,
  path: string,
): Promise<void> {
  const stored = await readHeadFile(headPath);
  if (stored === null || stored === 'corrupt' || stored.seq === 0) return;
  let problem: string | null = null;
  if (stored.seq > head.seq) {
    problem = `it ends at record ${head.seq} but ${HEAD_FILE} records ${stored.seq}: records were removed from the end`;
  } else {
    const line = await readLines(fh, index, stored.seq - 1, stored.seq);
    const hashAt = line.toString('latin1', line.length - 67, line.length - 3);
    if (hashAt !== stored.hash) problem = `record ${stored.seq} does not match ${HEAD_FILE}`;
  }
  if (problem !== null) {
    throw new WorkspaceError(
      'INTERNAL',
      `The audit log ${path} was tampered with: ${problem}. Run verify, move both files aside to keep them as evidence, then restart.`,
    );
  }
}
