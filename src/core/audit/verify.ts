import { hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_FILE, GENESIS, HASH_SUFFIX_LENGTH, HEAD_FILE, readHeadFile, type ChainHead } from './format';
import type { VerifyResult } from './types';
import { isErrno } from '../shared/fs';

const CHUNK_SIZE = 8 * 1024 * 1024;
const NEWLINE = 0x0a;
const QUOTE = 0x22;
const COMMA = 0x2c;
const BRACE_CLOSE = 0x7d;
const SEQ_PREFIX = Buffer.from('{"seq":');
const PREV_PREFIX = Buffer.from(',"prev":"');
const HASH_PREFIX = Buffer.from(',"hash":"');
/** Shortest possible line: prefix, one digit, prev, at least `}`-worth of body, hash suffix. */
const MIN_LINE = SEQ_PREFIX.length + 1 + PREV_PREFIX.length + 64 + 2 + HASH_SUFFIX_LENGTH;

/**
 * Checks the whole hash chain in `<dir>/audit.jsonl` against itself and `<dir>/audit.head`, hashing
 * the stored bytes. Returns the head hash, or the first bad record's sequence number and why.
 */
export async function verifyAuditLog(dir: string, snapshot?: AuditSnapshot): Promise<VerifyResult> {
  const head = snapshot ? snapshot.head : await readHeadFile(join(dir, HEAD_FILE));
  let fh: FileHandle;
  try {
    fh = await open(join(dir, AUDIT_FILE), 'r');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    return new ChainChecker(head).finish();
  }
  try {
    return await verifyFile(fh, new ChainChecker(head), snapshot?.bytes ?? Infinity);
  } finally {
    await fh.close();
  }
}

/**
 * A consistent prefix of a log that is still being appended to: its committed byte length and the
 * head at that point (used instead of the head file, which may already be further on).
 */
export interface AuditSnapshot {
  bytes: number;
  head: ChainHead;
}

/** Reads the file in chunks, checking each chunk while the next one is read. */
async function verifyFile(fh: FileHandle, checker: ChainChecker, limit: number): Promise<VerifyResult> {
  const staging = Buffer.allocUnsafe(CHUNK_SIZE);
  let work = Buffer.allocUnsafe(CHUNK_SIZE * 2);
  let filled = 0;
  let position = 0;
  const readAt = (at: number): ReturnType<FileHandle['read']> =>
    fh.read(staging, 0, Math.max(0, Math.min(CHUNK_SIZE, limit - at)), at);
  let reading = readAt(position);
  for (;;) {
    const { bytesRead } = await reading;
    if (bytesRead === 0) break;
    position += bytesRead;
    if (filled + bytesRead > work.length) {
      const bigger = Buffer.allocUnsafe(Math.max(work.length * 2, filled + bytesRead));
      work.copy(bigger, 0, 0, filled);
      work = bigger;
    }
    staging.copy(work, filled, 0, bytesRead);
    filled += bytesRead;
    reading = readAt(position);
    const consumed = checker.checkLines(work, filled);
    if (checker.failure) {
      await reading;
      return checker.failure;
    }
    work.copy(work, 0, consumed, filled);
    filled -= consumed;
  }
  if (filled > 0) return checker.fail('incomplete last record (no trailing newline)');
  return checker.finish();
}

/** Streaming chain verifier: feed it buffers of whole lines, in order. */
class ChainChecker {
  failure: VerifyResult | null = null;
  private records = 0;
  private lastHash = GENESIS;
  private headMatched = false;

  constructor(private readonly head: ChainHead | null | 'corrupt') {}

  /** Checks every complete line in `buf[0, end)`; returns the offset after the last complete line. */
  checkLines(buf: Buffer, end: number): number {
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, start);
      if (nl === -1 || nl >= end) return start;
      const reason = this.checkLine(buf, start, nl);
      if (reason !== null) {
        this.fail(reason);
        return start;
      }
      start = nl + 1;
    }
  }

  /** Records a failure at the next expected sequence number. */
  fail(reason: string): VerifyResult {
    this.failure = { ok: false, records: this.records, badSeq: this.records + 1, reason };
    return this.failure;
  }

  /** Final result once every line has passed: compares the chain with the head file. */
  finish(): VerifyResult {
    const head = this.head;
    if (head === 'corrupt') return this.fail('head file audit.head is unreadable');
    if (head !== null && head.seq > this.records) {
      const removed = head.seq - this.records;
      return this.fail(
        `${removed} record(s) removed from the end: the log ends at seq ${this.records} but the head file records seq ${head.seq}`,
      );
    }
    if (head !== null && head.seq > 0 && !this.headMatched) {
      return {
        ok: false,
        records: this.records,
        badSeq: head.seq,
        reason: 'record does not match the head file',
      };
    }
    return { ok: true, records: this.records, head: this.lastHash };
  }

  /** Checks one line `buf[s, e)` (newline excluded); returns null when it is valid and chains on. */
  private checkLine(buf: Buffer, s: number, e: number): string | null {
    const expected = this.records + 1;
    if (e - s < MIN_LINE || !bytesAt(buf, s, SEQ_PREFIX)) return 'malformed record';
    let p = s + SEQ_PREFIX.length;
    const digitsStart = p;
    let seq = 0;
    for (let c = buf[p]; c >= 0x30 && c <= 0x39; c = buf[++p]) seq = seq * 10 + (c - 0x30);
    if (p === digitsStart || p - digitsStart > 15) return 'malformed record';
    if (seq !== expected) {
      return `sequence ${seq > expected ? 'gap' : 'out of order'}: expected ${expected}, found ${seq}`;
    }
    if (!bytesAt(buf, p, PREV_PREFIX)) return 'malformed record';
    p += PREV_PREFIX.length;
    if (!hexAt(buf, p, this.lastHash)) {
      return expected === 1 ? 'prev is not the genesis hash' : `prev does not match record ${expected - 1}`;
    }
    p += 64;
    const h = e - HASH_SUFFIX_LENGTH;
    if (
      buf[p] !== QUOTE ||
      buf[p + 1] !== COMMA ||
      h < p + 2 ||
      !bytesAt(buf, h, HASH_PREFIX) ||
      buf[e - 2] !== QUOTE ||
      buf[e - 1] !== BRACE_CLOSE
    ) {
      return 'malformed record';
    }
    // The hash covers the body: the line up to the hash suffix, closed by `}`. Patch it in place.
    buf[h] = BRACE_CLOSE;
    const digest = hash('sha256', buf.subarray(s, h + 1), 'hex');
    buf[h] = COMMA;
    if (!hexAt(buf, h + HASH_PREFIX.length, digest)) return 'hash mismatch';
    this.records = expected;
    this.lastHash = digest;
    if (this.head !== null && this.head !== 'corrupt' && this.head.seq === expected) {
      this.headMatched = digest === this.head.hash;
    }
    return null;
  }
}

/** Whether `buf` holds `bytes` at `at` (a JS loop: cheaper than Buffer#compare for a few bytes). */
function bytesAt(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

/** Whether `buf` holds the 64-char hex string `hex` at `at`. */
function hexAt(buf: Buffer, at: number, hex: string): boolean {
  for (let i = 0; i < 64; i++) if (buf[at + i] !== hex.charCodeAt(i)) return false;
  return true;
}
