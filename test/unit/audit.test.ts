import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUDIT_FILE,
  AuditLog,
  createRedactor,
  loadRedactionKey,
  redact,
  verifyAuditLog,
  type AuditEntry,
  type AuditRecord,
} from '../../src/core/audit';
import { createLogger, redactingLogger } from '../../src/core/log';
import { lineFromBody, serializeBody } from '../../src/protocol/audit';
import { WorkspaceError } from '../../src/protocol/errors';
import { auditEntry as entry } from '../helpers/fixtures';

const GENESIS = '0'.repeat(64);
const HEX_A = 'a'.repeat(64);

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const KEY = Buffer.alloc(32, 7);
function hmac(data: string | Buffer): string {
  return createHmac('sha256', KEY).update(data).digest('hex');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('audit log', () => {
  let dir: string;
  let log: AuditLog | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-test-'));
    log = undefined;
  });

  afterEach(async () => {
    await log?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function openLog(): Promise<AuditLog> {
    log = await AuditLog.open({ dir });
    return log;
  }

  async function appendN(l: AuditLog, n: number, make: (i: number) => Partial<AuditEntry> = () => ({})) {
    const out: AuditRecord[] = [];
    for (let i = 0; i < n; i++) out.push(await l.append(entry(make(i))));
    return out;
  }

  async function readLines(): Promise<string[]> {
    const text = await readFile(join(dir, AUDIT_FILE), 'utf8');
    assert.ok(text.endsWith('\n'));
    return text.slice(0, -1).split('\n');
  }

  async function writeLines(lines: string[]): Promise<void> {
    await writeFile(join(dir, AUDIT_FILE), lines.map((l) => l + '\n').join(''));
  }

  /** Re-hashes an edited line the way an attacker would, so only the chain link gives it away. */
  function rehash(line: string): string {
    const body = line.slice(0, line.length - 75) + '}';
    return body.slice(0, -1) + ',"hash":"' + sha256(body) + '"}';
  }

  async function fiveRecordLog(): Promise<AuditRecord[]> {
    const l = await openLog();
    const records = await appendN(l, 5, (i) => ({ params: { path: `file-${i + 1}.ts` } }));
    await l.close();
    log = undefined;
    return records;
  }

  describe('append and chain', () => {
    it('assigns increasing seq, links prev to the previous hash and hashes the stored body', async () => {
      const l = await openLog();
      assert.deepEqual(l.head, { seq: 0, hash: GENESIS });
      const [a, b, c] = await appendN(l, 3);
      assert.deepEqual([a.seq, b.seq, c.seq], [1, 2, 3]);
      assert.equal(a.prev, GENESIS);
      assert.equal(b.prev, a.hash);
      assert.equal(c.prev, b.hash);
      assert.deepEqual(l.head, { seq: 3, hash: c.hash });

      const lines = await readLines();
      assert.equal(lines.length, 3);
      for (const [i, line] of lines.entries()) {
        const record = [a, b, c][i];
        assert.ok(line.startsWith(`{"seq":${record.seq},"prev":"${record.prev}",`), line);
        assert.ok(line.endsWith(`,"hash":"${record.hash}"}`), line);
        const body = line.slice(0, line.length - 75) + '}';
        assert.equal(sha256(body), record.hash);
        assert.deepEqual(JSON.parse(line), record);
      }
    });

    it('serialises nested params deterministically whatever the key order', async () => {
      const l = await openLog();
      await l.append(entry({ params: { b: 1, a: { y: [1, { d: 1, c: 2 }], x: null } } }));
      await l.append(entry({ params: { a: { x: null, y: [1, { c: 2, d: 1 }] }, b: 1 } }));
      const [first, second] = await readLines();
      const params = (line: string) => line.slice(line.indexOf('"params":'), line.indexOf(',"outcome":'));
      assert.equal(params(first), '"params":{"a":{"x":null,"y":[1,{"c":2,"d":1}]},"b":1}');
      assert.equal(params(second), params(first));
    });

    it('keeps records across close and open and continues the sequence', async () => {
      const records = await fiveRecordLog();
      const l = await openLog();
      assert.deepEqual(l.head, { seq: 5, hash: records[4].hash });
      assert.deepEqual(l.tail(10), records);
      const next = await l.append(entry());
      assert.equal(next.seq, 6);
      assert.equal(next.prev, records[4].hash);
      await l.close();
      assert.deepEqual(await verifyAuditLog(dir), { ok: true, records: 6, head: next.hash });
    });

    it('creates the directory 0700 and the file 0600', async () => {
      const nested = join(dir, 'state', 'audit');
      log = await AuditLog.open({ dir: nested });
      await log.append(entry());
      assert.equal((await stat(nested)).mode & 0o777, 0o700);
      assert.equal((await stat(join(nested, AUDIT_FILE))).mode & 0o777, 0o600);
      assert.equal(log.path, join(nested, AUDIT_FILE));
    });

    it('makes 5,000 concurrent appends durable, in call order, with a valid chain', async () => {
      const l = await openLog();
      const records = await Promise.all(
        Array.from({ length: 5000 }, (_, i) => l.append(entry({ params: { i } }))),
      );
      assert.deepEqual(
        records.map((r) => r.seq),
        Array.from({ length: 5000 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        records.map((r) => (r.params as { i: number }).i),
        Array.from({ length: 5000 }, (_, i) => i),
      );
      assert.equal((await readLines()).length, 5000);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, { ok: true, records: 5000, head: records[4999].hash });
    });

    it('keeps the last 1000 records in the tail ring, newest last', async () => {
      const l = await openLog();
      await Promise.all(Array.from({ length: 1005 }, (_, i) => l.append(entry({ params: { i } }))));
      const all = l.tail(5000);
      assert.equal(all.length, 1000);
      assert.equal(all[0].seq, 6);
      assert.equal(all[999].seq, 1005);
      assert.deepEqual(
        l.tail(3).map((r) => r.seq),
        [1003, 1004, 1005],
      );
      assert.deepEqual(l.tail(0), []);
    });

    it('rejects an invalid decision without consuming a sequence number', async () => {
      const l = await openLog();
      await assert.rejects(
        l.append(entry({ decision: 'maybe' as 'allow' })),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_ARGUMENT',
      );
      assert.equal((await l.append(entry())).seq, 1);
    });

    it('rejects append and query after close', async () => {
      const l = await openLog();
      await l.append(entry());
      await l.close();
      await assert.rejects(
        l.append(entry()),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'INTERNAL',
      );
      await assert.rejects(l.query({}), /closed/);
      assert.equal((await readLines()).length, 1);
    });

    it('flush waits for pending appends and close flushes', async () => {
      const l = await openLog();
      const pending = Array.from({ length: 50 }, () => l.append(entry()));
      await l.flush();
      assert.equal(l.head.seq, 50);
      const more = l.append(entry());
      await l.close();
      assert.equal((await more).seq, 51);
      assert.equal((await readLines()).length, 51);
      await Promise.all(pending);
    });
  });

  describe('verify', () => {
    it('accepts a missing log with no head as empty', async () => {
      assert.deepEqual(await verifyAuditLog(join(dir, 'nothing')), { ok: true, records: 0, head: GENESIS });
    });

    it('detects an edited record', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      lines[2] = lines[2].replace('file-3.ts', 'file-X.ts');
      await writeLines(lines);
      assert.deepEqual(await verifyAuditLog(dir), {
        ok: false,
        records: 2,
        badSeq: 3,
        reason: 'hash mismatch',
      });
    });

    it('detects an edited record whose hash was recomputed, at the next link', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      lines[2] = rehash(lines[2].replace('file-3.ts', 'file-X.ts'));
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, { ok: false, records: 3, badSeq: 4, reason: 'prev does not match record 3' });
    });

    it('detects a removed middle record', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      lines.splice(2, 1);
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, {
        ok: false,
        records: 2,
        badSeq: 3,
        reason: 'sequence gap: expected 3, found 4',
      });
    });

    it('detects a reordered pair', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      [lines[1], lines[2]] = [lines[2], lines[1]];
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.badSeq, 2);
      assert.equal(!result.ok && result.reason, 'sequence gap: expected 2, found 3');
    });

    it('detects an inserted copy of a record', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      lines.splice(3, 0, lines[1]);
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, {
        ok: false,
        records: 3,
        badSeq: 4,
        reason: 'sequence out of order: expected 4, found 2',
      });
    });

    it('detects an inserted forged record with a valid hash', async () => {
      const records = await fiveRecordLog();
      const lines = await readLines();
      const forged = rehash(
        JSON.stringify({ seq: 3, prev: records[1].hash, ts: records[2].ts }).slice(0, -1) +
          ',"hash":"' +
          HEX_A +
          '"}',
      );
      lines.splice(2, 0, forged);
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, {
        ok: false,
        records: 3,
        badSeq: 4,
        reason: 'sequence out of order: expected 4, found 3',
      });
    });

    it('detects records removed from the end through the head file', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      await writeLines(lines.slice(0, 4));
      const result = await verifyAuditLog(dir);
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.badSeq, 5);
      assert.equal(result.records, 4);
      assert.match(!result.ok ? result.reason : '', /1 record\(s\) removed from the end/);
      await assert.rejects(AuditLog.open({ dir }), /removed from the end/);
    });

    it('detects a rewritten last record through the head file', async () => {
      await fiveRecordLog();
      const lines = await readLines();
      lines[4] = rehash(lines[4].replace('file-5.ts', 'file-X.ts'));
      await writeLines(lines);
      const result = await verifyAuditLog(dir);
      assert.deepEqual(result, {
        ok: false,
        records: 5,
        badSeq: 5,
        reason: 'record does not match the head file',
      });
      await assert.rejects(AuditLog.open({ dir }), /record 5 does not match audit\.head/);
    });

    it('reports a missing log whose head names records', async () => {
      await fiveRecordLog();
      await unlink(join(dir, AUDIT_FILE));
      const result = await verifyAuditLog(dir);
      assert.equal(!result.ok && result.badSeq, 1);
    });

    it('reports an incomplete last line, which open then drops', async () => {
      const records = await fiveRecordLog();
      await appendFile(join(dir, AUDIT_FILE), '{"seq":6,"prev":"' + records[4].hash + '","ts":"20');
      assert.deepEqual(await verifyAuditLog(dir), {
        ok: false,
        records: 5,
        badSeq: 6,
        reason: 'incomplete last record (no trailing newline)',
      });
      const l = await openLog();
      assert.deepEqual(l.head, { seq: 5, hash: records[4].hash });
      const next = await l.append(entry());
      assert.equal(next.seq, 6);
      assert.equal(next.prev, records[4].hash);
      await l.close();
      assert.deepEqual(await verifyAuditLog(dir), { ok: true, records: 6, head: next.hash });
    });
  });

  describe('query', () => {
    async function mixedLog(): Promise<AuditRecord[]> {
      const l = await openLog();
      return appendN(l, 30, (i) => ({
        agent: i % 3 === 0 ? 'claude' : 'copilot',
        op: i % 2 === 0 ? 'write_file' : 'read_file',
        decision: i % 5 === 0 ? 'deny' : 'allow',
        sessionId: i < 10 ? 'sess-a' : null,
        params: { path: i === 17 ? 'docs/Needle.md' : `src/f${i}.ts` },
      }));
    }

    const seqs = (records: AuditRecord[]) => records.map((r) => r.seq);
    const expected = (all: AuditRecord[], keep: (r: AuditRecord) => boolean) =>
      seqs(all.filter(keep).reverse());

    it('returns everything newest first by default', async () => {
      const all = await mixedLog();
      const page = await log!.query({});
      assert.deepEqual(page.records, [...all].reverse());
      assert.equal(page.nextBefore, null);
    });

    it('filters by agent, op, decision and sessionId', async () => {
      const all = await mixedLog();
      const l = log!;
      assert.deepEqual(
        seqs((await l.query({ agent: 'claude' })).records),
        expected(all, (r) => r.agent === 'claude'),
      );
      assert.deepEqual(
        seqs((await l.query({ op: 'read_file' })).records),
        expected(all, (r) => r.op === 'read_file'),
      );
      assert.deepEqual(seqs((await l.query({ decision: 'deny' })).records), [26, 21, 16, 11, 6, 1]);
      assert.deepEqual(
        seqs((await l.query({ sessionId: 'sess-a', agent: 'copilot', op: 'write_file' })).records),
        [9, 5, 3],
      );
      assert.deepEqual((await l.query({ agent: 'nobody' })).records, []);
    });

    it('matches text case-insensitively over the record JSON', async () => {
      await mixedLog();
      assert.deepEqual(seqs((await log!.query({ text: 'needle' })).records), [18]);
      assert.deepEqual(seqs((await log!.query({ text: 'DOCS/NEEDLE' })).records), [18]);
      assert.deepEqual((await log!.query({ text: 'absent-text' })).records, []);
    });

    it('filters by since and until', async () => {
      const l = await openLog();
      const early = await appendN(l, 3);
      await sleep(15);
      const middle = await appendN(l, 3);
      await sleep(15);
      const late = await appendN(l, 3);
      const since = await l.query({ since: middle[0].ts });
      assert.deepEqual(seqs(since.records), seqs([...middle, ...late].reverse()));
      const until = await l.query({ until: middle[2].ts });
      assert.deepEqual(seqs(until.records), seqs([...early, ...middle].reverse()));
      const window = await l.query({ since: middle[0].ts, until: middle[2].ts });
      assert.deepEqual(seqs(window.records), [6, 5, 4]);
      await assert.rejects(l.query({ since: 'not a date' }), /since must be an ISO date/);
    });

    it('pages with before and nextBefore across several pages', async () => {
      const l = await openLog();
      await Promise.all(Array.from({ length: 250 }, (_, i) => l.append(entry({ params: { i } }))));
      const first = await l.query({ limit: 100 });
      assert.deepEqual(
        seqs(first.records),
        Array.from({ length: 100 }, (_, i) => 250 - i),
      );
      assert.equal(first.nextBefore, 151);
      const second = await l.query({ limit: 100, before: first.nextBefore! });
      assert.equal(second.records[0].seq, 150);
      assert.equal(second.nextBefore, 51);
      const third = await l.query({ limit: 100, before: second.nextBefore! });
      assert.deepEqual(
        seqs(third.records),
        Array.from({ length: 50 }, (_, i) => 50 - i),
      );
      assert.equal(third.nextBefore, null);
      const exact = await l.query({ limit: 50, before: 51 });
      assert.equal(exact.records.length, 50);
      assert.equal(exact.nextBefore, null);
      assert.equal((await l.query({})).records.length, 100);
      assert.equal((await l.query({ limit: 5000 })).records.length, 250);
    });

    it('pages a filtered query', async () => {
      const all = await mixedLog();
      const want = expected(all, (r) => r.agent === 'copilot');
      const got: number[] = [];
      let before: number | undefined;
      let pages = 0;
      for (;;) {
        const page = await log!.query({ agent: 'copilot', limit: 6, before });
        got.push(...seqs(page.records));
        pages++;
        if (page.nextBefore === null) break;
        before = page.nextBefore;
      }
      assert.deepEqual(got, want);
      assert.equal(pages, Math.ceil(want.length / 6));
    });

    it('queries records written before a reopen', async () => {
      const records = await fiveRecordLog();
      const l = await openLog();
      const page = await l.query({ text: 'file-2.ts' });
      assert.deepEqual(page.records, [records[1]]);
    });
  });

  describe('record versions', () => {
    it('verifies and extends a log written before version 2 (records without v or decisions)', async () => {
      // A version 1 log as an older server wrote it: the body layout without `v` and `decisions`.
      const v1 = {
        seq: 1,
        prev: '0'.repeat(64),
        ts: '2026-01-01T00:00:00.000Z',
        sessionId: 's1',
        agent: 'alice',
        role: 'agent',
        transport: 'rest',
        op: 'read_file',
        decision: 'allow' as const,
        rule: 'allow read(**)',
        params: { path: 'a.txt' },
        outcome: { ok: true },
        durationMs: 1,
      };
      const body = serializeBody(v1);
      const hash = createHash('sha256').update(body).digest('hex');
      assert.doesNotMatch(body, /"v":|"decisions"/);
      await writeFile(join(dir, AUDIT_FILE), lineFromBody(body, hash), { mode: 0o600 });
      const l = await openLog();
      const next = await l.append(
        entry({
          decisions: [{ action: 'read', target: 'a.txt', decision: 'allow', rule: 'allow read(**)' }],
        }),
      );
      assert.equal(next.seq, 2);
      assert.equal(next.prev, hash);
      assert.equal(next.v, 2);
      assert.deepEqual((await l.verify()).ok, true);
      await l.close();
      const lines = (await readFile(join(dir, AUDIT_FILE), 'utf8')).trim().split('\n');
      assert.doesNotMatch(lines[0]!, /"v":/);
      assert.match(lines[1]!, /"v":2,.*"decisions":\[\{"action":"read"/);
      assert.equal((await verifyAuditLog(dir)).ok, true);
      // Tampering with the version 1 record is still caught.
      await writeFile(join(dir, AUDIT_FILE), lines.join('\n').replace('"a.txt"', '"b.txt"') + '\n');
      assert.equal((await verifyAuditLog(dir)).ok, false);
    });
  });

  describe('subscribe', () => {
    it('delivers committed records in order until unsubscribed', async () => {
      const l = await openLog();
      const seen: number[] = [];
      // The log swallows a listener's exceptions: collect what it saw and assert outside it.
      const headAtDelivery: number[] = [];
      const unsubscribe = l.subscribe((r) => {
        headAtDelivery.push(l.head.seq);
        seen.push(r.seq);
      });
      await Promise.all(Array.from({ length: 20 }, () => l.append(entry())));
      assert.deepEqual(
        seen,
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      // Delivered only once committed: the head had reached each record when it was delivered.
      seen.forEach((seq, i) => assert.ok(headAtDelivery[i]! >= seq, `record ${seq} delivered before commit`));
      unsubscribe();
      await l.append(entry());
      assert.equal(seen.length, 20);
    });

    it('keeps writing when a subscriber throws', async () => {
      const l = await openLog();
      l.subscribe(() => {
        throw new Error('boom');
      });
      assert.equal((await l.append(entry())).seq, 1);
      assert.equal((await l.append(entry())).seq, 2);
    });
  });

  describe('redaction', () => {
    const cases: [string, string, string][] = [
      [
        'bearer token',
        'curl -H "Authorization: Bearer abc123def456ghi789"',
        'curl -H "Authorization: Bearer [REDACTED]"',
      ],
      [
        'private key block',
        'key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\ndone',
        'key:\n[REDACTED]\ndone',
      ],
      ['github classic token', 'push with ghp_' + 'A1b2'.repeat(9) + ' now', 'push with [REDACTED] now'],
      ['github oauth token', 'gho_' + 'z'.repeat(36), '[REDACTED]'],
      ['github fine-grained token', 'github_pat_11ABCDEFG0_' + 'x'.repeat(40), '[REDACTED]'],
      ['aws access key', 'aws AKIAIOSFODNN7EXAMPLE end', 'aws [REDACTED] end'],
      ['slack token', 'slack=xoxb-123456789012-abcdefghijkl', 'slack=[REDACTED]'],
      ['openai key', 'OPENAI=sk-proj-abcdefghijklmnopqrstuvwx', 'OPENAI=[REDACTED]'],
      ['anthropic key', 'use sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123', 'use [REDACTED]'],
      [
        'jwt',
        'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U ok',
        'jwt [REDACTED] ok',
      ],
      ['credentials in a URL', 'psql postgres://app:pw@db/app', 'psql postgres://[REDACTED]@db/app'],
      ['token as URL user', 'https://ghs_tok@github.com/o/r.git', 'https://[REDACTED]@github.com/o/r.git'],
      ['secret-named assignment', 'MY_KEY=abc echo', 'MY_KEY=[REDACTED] echo'],
      ['quoted secret-named assignment', "export DB_PASSWORD='a b'", "export DB_PASSWORD='[REDACTED]'"],
      ['curl user and password', 'curl -u bob:pw https://x', 'curl -u bob:[REDACTED] https://x'],
      ['hex token in key=value', 'SESSION_KEY=' + HEX_A + ' rest', 'SESSION_KEY=[REDACTED] rest'],
      ['hex token after token', 'token ' + HEX_A, 'token [REDACTED]'],
      ['hex token in JSON text', '{"api_token": "' + HEX_A + '"}', '{"api_token": "[REDACTED]"}'],
    ];
    for (const [name, input, output] of cases) {
      it(`redacts a secret inside a string: ${name}`, () => {
        assert.deepEqual(redact({ command: input }), { command: output });
      });
    }

    it('keeps ordinary text and bare 64-hex revisions', () => {
      const value = { path: 'src/a.ts', revision: HEX_A, message: 'sk- is a prefix; Bearer' };
      assert.deepEqual(redact(value), value);
    });

    it('redacts values of secret-named keys at any depth', () => {
      const input = {
        apiKey: 'k',
        api_key: 1,
        password: 'p',
        nested: { Authorization: 'Basic x', client_secret: { a: 1 }, privateKey: 'pk', private_key: 'pk' },
        list: [{ cookie: 'c', credentials: ['a'], accessToken: 'x' }],
        safe: 'value',
        empty: null,
      };
      assert.deepEqual(redact(input), {
        apiKey: '[REDACTED]',
        api_key: '[REDACTED]',
        password: '[REDACTED]',
        nested: {
          Authorization: '[REDACTED]',
          client_secret: '[REDACTED]',
          privateKey: '[REDACTED]',
          private_key: '[REDACTED]',
        },
        list: [{ cookie: '[REDACTED]', credentials: '[REDACTED]', accessToken: '[REDACTED]' }],
        safe: 'value',
        empty: null,
      });
    });

    it('summarises content, stdin, edit texts and long strings as bytes and a keyed hash', () => {
      const keyed = createRedactor({ key: KEY });
      const long = 'x'.repeat(2000);
      assert.deepEqual(
        keyed({
          content: 'héllo',
          stdin: '',
          note: long,
          short: 'y'.repeat(1024),
          oldText: 'pw1',
          newText: 'pw2',
        }),
        {
          content: { bytes: 6, hmac: hmac('héllo') },
          stdin: { bytes: 0, hmac: hmac('') },
          note: { bytes: 2000, hmac: hmac(long) },
          newText: { bytes: 3, hmac: hmac('pw2') },
          oldText: { bytes: 3, hmac: hmac('pw1') },
          short: 'y'.repeat(1024),
        },
      );
      assert.deepEqual(keyed({ content: Buffer.from('abc') }), { content: { bytes: 3, hmac: hmac('abc') } });
      // Without the key, a short secret cannot be found by hashing guesses.
      const summary = keyed({ newText: 'hunter2' }) as { newText: { hmac: string } };
      assert.notEqual(summary.newText.hmac, sha256('hunter2'));
      const other = createRedactor({ key: Buffer.alloc(32, 9) })({ newText: 'hunter2' }) as typeof summary;
      assert.notEqual(other.newText.hmac, summary.newText.hmac);
      assert.throws(() => createRedactor({ key: Buffer.alloc(8) }), /at least 16 bytes/);
    });

    const planted: [string, string, string][] = [
      ['URL with user and password', 'psql postgres://app:s3cr3t-pw@db.internal:5432/app', 's3cr3t-pw'],
      [
        'URL with a token as user',
        'git clone https://x-token-abcdef123456@github.com/o/r',
        'x-token-abcdef123456',
      ],
      ['env prefix with a secret name', 'MY_KEY=plainvalue123 ./deploy.sh', 'plainvalue123'],
      ['export of a password', "export DB_PASSWORD='correct horse'", 'correct horse'],
      ['JSON text with a secret name', '{"client_secret": "cs-98765"}', 'cs-98765'],
      ['flag with equals', 'tool --api-key=zzzkey42 run', 'zzzkey42'],
      ['flag with a space', 'mysql --password hunter2 -h db', 'hunter2'],
      ['curl -u', 'curl -u admin:pa55word https://example.com', 'pa55word'],
      ['header with a secret name', 'curl -H "X-Api-Key: k-123456" https://api', 'k-123456'],
      ['basic auth header', 'Authorization: Basic dXNlcjpwYXNzd29yZA==', 'dXNlcjpwYXNzd29yZA'],
      [
        'random value after any name',
        'CONFIG=Zk8xQ2p4dGhpc2lzcmFuZG9tYmFzZTY0 go',
        'Zk8xQ2p4dGhpc2lzcmFuZG9tYmFzZTY0',
      ],
      [
        'long hex after any name',
        'seed=0123456789abcdef0123456789abcdef end',
        '0123456789abcdef0123456789abcdef',
      ],
      ['mcp-workspace agent token', 'token mcpw_' + 'Q'.repeat(43), 'mcpw_' + 'Q'.repeat(43)],
      ['stripe key', 'sk_live_' + '4'.repeat(24), 'sk_live_' + '4'.repeat(24)],
      ['google api key', 'AIza' + 'B'.repeat(35), 'AIza' + 'B'.repeat(35)],
      ['npm token', 'npm_' + 'c'.repeat(36), 'npm_' + 'c'.repeat(36)],
      ['gitlab token', 'glpat-' + 'd'.repeat(20), 'glpat-' + 'd'.repeat(20)],
    ];
    for (const [name, input, secret] of planted) {
      it(`removes a planted secret: ${name}`, () => {
        const out = JSON.stringify(redact({ command: input }));
        assert.ok(!out.includes(secret), out);
        assert.ok(out.includes('[REDACTED]'), out);
      });
    }

    it('redacts env values by name and argv values after a secret flag or -u', () => {
      assert.deepEqual(
        redact({
          env: { GITHUB_TOKEN: 'a', AWS_SECRET_ACCESS_KEY: 'b', PGPASSWORD: 'c', NODE_ENV: 'production' },
          args: ['--password', 'p1', '-u', 'me:p2', '--token', 't3', '--verbose', 'x'],
        }),
        {
          args: [
            '--password',
            '[REDACTED]',
            '-u',
            'me:[REDACTED]',
            '--token',
            '[REDACTED]',
            '--verbose',
            'x',
          ],
          env: {
            AWS_SECRET_ACCESS_KEY: '[REDACTED]',
            GITHUB_TOKEN: '[REDACTED]',
            NODE_ENV: 'production',
            PGPASSWORD: '[REDACTED]',
          },
        },
      );
    });

    it('keeps ordinary commands, paths and words readable', () => {
      const value = {
        command: 'npm test -- --grep "author name" && NODE_ENV=production node build/index.js',
        cwd: 'src/components',
        url: 'https://registry.npmjs.org/express',
      };
      assert.deepEqual(redact(value), value);
    });

    it('redacts every log line, whoever supplied the logger', () => {
      const lines: string[] = [];
      const seen: Array<[string, Record<string, unknown> | undefined]> = [];
      const owner = 'owner-token-0123456789';
      const keyed = createRedactor({ key: KEY, secrets: () => [owner] });
      const log = createLogger((line) => lines.push(line), keyed);
      log.warn(`build step: RUN echo ${owner}`, {
        message: 'DB_PASSWORD=abc123 ok',
        env: { API_TOKEN: 'x' },
      });
      const wrapped = redactingLogger(
        {
          info: (msg, fields) => seen.push([msg, fields]),
          warn: () => undefined,
          error: () => undefined,
        },
        keyed,
      );
      wrapped.info('clone https://u:p4ss@host/r', { stdin: 'typed secret' });
      const parsed = JSON.parse(lines[0]!);
      assert.equal(parsed.msg, 'build step: RUN echo [REDACTED]');
      assert.equal(parsed.message, 'DB_PASSWORD=[REDACTED] ok');
      assert.deepEqual(parsed.env, { API_TOKEN: '[REDACTED]' });
      assert.deepEqual(seen, [
        ['clone https://[REDACTED]@host/r', { stdin: { bytes: 12, hmac: hmac('typed secret') } }],
      ]);
    });

    it('removes exact known secrets wherever they appear', () => {
      const owner = 'plain-owner-token-without-shape';
      const keyed = createRedactor({ key: KEY, secrets: () => [owner] });
      assert.deepEqual(keyed({ message: `bad ${owner}!` }), { message: 'bad [REDACTED]!' });
    });

    it('creates the redaction key once, 32 bytes, mode 0600, and refuses a damaged one', async () => {
      const file = join(dir, 'redaction.key');
      const [a, b] = await Promise.all([loadRedactionKey(file), loadRedactionKey(file)]);
      assert.equal(a.length, 32);
      assert.deepEqual(a, b);
      assert.deepEqual(await loadRedactionKey(file), a);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      await writeFile(file, 'short');
      await assert.rejects(loadRedactionKey(file), /not a 32-byte redaction key/);
    });

    it('caps depth and array length and makes values JSON-safe', () => {
      const deep = { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } };
      assert.deepEqual(redact(deep), {
        a: { b: { c: { d: { e: { f: { g: { h: '[Truncated: max depth]' } } } } } } },
      });
      const list = redact(Array.from({ length: 150 }, (_, i) => i)) as unknown[];
      assert.equal(list.length, 101);
      assert.equal(list[99], 99);
      assert.equal(list[100], '[Truncated: 50 more items]');
      assert.deepEqual(
        redact({ n: NaN, u: undefined, f: () => 1, big: 10n, d: new Date(0), a: [undefined] }),
        {
          n: null,
          big: '10',
          d: '1970-01-01T00:00:00.000Z',
          a: [null],
        },
      );
      const cyclic: Record<string, unknown> = { name: 'loop' };
      cyclic.self = cyclic;
      assert.doesNotThrow(() => JSON.stringify(redact(cyclic)));
    });

    it('does not mutate its input', () => {
      const input = { password: 'p', content: 'c' };
      redact(input);
      assert.deepEqual(input, { password: 'p', content: 'c' });
    });

    it('redacts params and outcome before anything is written', async () => {
      const l = await openLog();
      const secret = 'ghp_' + 'S'.repeat(36);
      const record = await l.append(
        entry({
          params: { path: 'a.ts', content: 'top secret body', token: 'tok-123', cmd: `git push ${secret}` },
          outcome: { ok: false, code: 'INTERNAL', message: `failed with ${secret}`, stdin: 'input' },
        }),
      );
      const key = await readFile(join(dir, 'redaction.key'));
      const keyed = (data: string) => createHmac('sha256', key).update(data).digest('hex');
      assert.deepEqual(record.params, {
        cmd: 'git push [REDACTED]',
        content: { bytes: 15, hmac: keyed('top secret body') },
        path: 'a.ts',
        token: '[REDACTED]',
      });
      assert.deepEqual(record.outcome, {
        code: 'INTERNAL',
        message: 'failed with [REDACTED]',
        ok: false,
        stdin: { bytes: 5, hmac: keyed('input') },
      });
      await l.close();
      const text = await readFile(join(dir, AUDIT_FILE), 'utf8');
      for (const leaked of [secret, 'top secret body', 'tok-123']) assert.ok(!text.includes(leaked), leaked);
    });

    it('summarises a large content prepared off the event loop exactly as it would inline', async () => {
      const l = await openLog();
      const key = await readFile(join(dir, 'redaction.key'));
      const keyed = (data: string) => createHmac('sha256', key).update(data).digest('hex');
      const big = 'é'.repeat(300 * 1024) + 'end';
      const other = 'x'.repeat(400 * 1024);
      const params = { path: 'big.txt', content: big, nested: [{ note: other }] };
      await l.prepare({ params });
      const prepared = await l.append(entry({ params }));
      // Nothing prepared this time: the same record comes out of the synchronous path.
      const inline = await l.append(
        entry({ params: { path: 'big.txt', content: big, nested: [{ note: other }] } }),
      );
      const expected = {
        content: { bytes: Buffer.byteLength(big), hmac: keyed(big) },
        nested: [{ note: { bytes: other.length, hmac: keyed(other) } }],
        path: 'big.txt',
      };
      assert.deepEqual(prepared.params, expected);
      assert.deepEqual(inline.params, expected);
      assert.equal((await l.verify()).ok, true);
    });
  });
});
