import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditEntry } from '../../src/core/audit';
import {
  MAX_FILTER_LENGTH,
  isWebviewMessage,
  parseFilters,
  parseWebviewMessage,
  toAuditQuery,
  type AuditRecord,
  type HostMessage,
  type QueryCommand,
} from '../../src/extension/webview/protocol';
import { AuditBridge, type AuditSource } from '../../src/extension/webview/bridge';
import {
  RowStore,
  decisionLabel,
  decisionTitle,
  describeTarget,
  formatDuration,
  formatLocalTime,
  formatOutcome,
  hasFilters,
  matchesFilters,
  prettyJson,
  recordLine,
  scrollToReveal,
  visibleRange,
} from '../../src/extension/webview/model';
import { auditRecord } from '../helpers/fixtures';

function record(seq: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return auditRecord(seq, overrides);
}

/** Records seq `from` down to `to`, newest first, like a query page. */
function page(from: number, to: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let s = from; s >= to; s--) out.push(record(s));
  return out;
}

describe('audit webview protocol', () => {
  describe('parseWebviewMessage', () => {
    it('accepts ready and verify', () => {
      assert.deepEqual(parseWebviewMessage({ type: 'ready' }), { ok: true, message: { type: 'ready' } });
      assert.deepEqual(parseWebviewMessage({ type: 'verify' }), { ok: true, message: { type: 'verify' } });
    });

    it('accepts a query and returns a clean copy', () => {
      const result = parseWebviewMessage({
        type: 'query',
        requestId: 7,
        filters: { agent: 'claude', op: 'write_file', decision: 'deny', text: 'secret', sessionId: 's1' },
        before: 120,
        limit: 500,
      });
      assert.deepEqual(result, {
        ok: true,
        message: {
          type: 'query',
          requestId: 7,
          filters: { agent: 'claude', op: 'write_file', decision: 'deny', text: 'secret', sessionId: 's1' },
          before: 120,
          limit: 500,
        },
      });
    });

    it('treats empty filter strings as no filter and omits an absent before', () => {
      const result = parseWebviewMessage({
        type: 'query',
        requestId: 0,
        filters: { agent: '', decision: '', text: '' },
        limit: 1,
      });
      assert.deepEqual(result, { ok: true, message: { type: 'query', requestId: 0, filters: {}, limit: 1 } });
      assert.ok(result.ok && !('before' in result.message));
    });

    const bad: [string, unknown][] = [
      ['null', null],
      ['a string', 'ready'],
      ['an array', [{ type: 'ready' }]],
      ['an unknown type', { type: 'eval', code: '1' }],
      ['a missing type', {}],
      ['extra fields on ready', { type: 'ready', x: 1 }],
      ['a query without filters', { type: 'query', requestId: 1, limit: 10 }],
      ['filters that are an array', { type: 'query', requestId: 1, limit: 10, filters: [] }],
      ['an unknown filter', { type: 'query', requestId: 1, limit: 10, filters: { hash: 'x' } }],
      ['a non-string agent', { type: 'query', requestId: 1, limit: 10, filters: { agent: 1 } }],
      ['a bad decision', { type: 'query', requestId: 1, limit: 10, filters: { decision: 'maybe' } }],
      [
        'a too long text',
        { type: 'query', requestId: 1, limit: 10, filters: { text: 'x'.repeat(MAX_FILTER_LENGTH + 1) } },
      ],
      ['limit 0', { type: 'query', requestId: 1, limit: 0, filters: {} }],
      ['limit 1001', { type: 'query', requestId: 1, limit: 1001, filters: {} }],
      ['a fractional limit', { type: 'query', requestId: 1, limit: 1.5, filters: {} }],
      ['a string limit', { type: 'query', requestId: 1, limit: '10', filters: {} }],
      ['before 0', { type: 'query', requestId: 1, limit: 10, before: 0, filters: {} }],
      ['before NaN', { type: 'query', requestId: 1, limit: 10, before: Number.NaN, filters: {} }],
      ['before Infinity', { type: 'query', requestId: 1, limit: 10, before: Infinity, filters: {} }],
      ['a negative requestId', { type: 'query', requestId: -1, limit: 10, filters: {} }],
      ['an extra query field', { type: 'query', requestId: 1, limit: 10, filters: {}, since: 'x' }],
    ];
    for (const [name, value] of bad) {
      it(`refuses ${name}`, () => {
        const result = parseWebviewMessage(value);
        assert.equal(result.ok, false);
        assert.equal(isWebviewMessage(value), false);
      });
    }

    it('ignores inherited properties and refuses class instances', () => {
      const proto = { type: 'ready' };
      assert.equal(parseWebviewMessage(Object.create(proto)).ok, false);
      class Ready {
        type = 'ready';
      }
      assert.equal(parseWebviewMessage(new Ready()).ok, false);
      const polluted = JSON.parse(
        '{"type":"query","requestId":1,"limit":5,"filters":{"__proto__":{"agent":"x"}}}',
      );
      assert.equal(parseWebviewMessage(polluted).ok, false);
    });

    it('says which field was refused and why', () => {
      const refusals: [unknown, string][] = [
        [[], 'message must be an object'],
        [{ type: 'eval' }, 'unknown message type "eval"'],
        [{}, 'unknown message type undefined'],
        [{ type: 'verify', x: 1 }, 'unknown field "x"'],
        [{ type: 'query', requestId: 1, limit: 10, filters: {}, since: 'x' }, 'unknown field "since"'],
        [{ type: 'query', requestId: 1, limit: 10, filters: { hash: 'x' } }, 'unknown filter "hash"'],
        [{ type: 'query', requestId: 1, limit: 10, filters: 'x' }, 'filters must be an object'],
        [{ type: 'query', requestId: 1, limit: 10, filters: { op: 3 } }, 'filter op must be a string'],
        [
          {
            type: 'query',
            requestId: 1,
            limit: 10,
            filters: { sessionId: 's'.repeat(MAX_FILTER_LENGTH + 1) },
          },
          `filter sessionId is longer than ${MAX_FILTER_LENGTH} characters`,
        ],
        [
          { type: 'query', requestId: 1, limit: 10, filters: { decision: 'maybe' } },
          'filter decision must be "allow" or "deny"',
        ],
        [
          { type: 'query', requestId: 1.5, limit: 10, filters: {} },
          'requestId must be a non-negative integer',
        ],
        [
          { type: 'query', requestId: Number.MAX_SAFE_INTEGER + 2, limit: 10, filters: {} },
          'requestId must be a non-negative integer',
        ],
        [
          { type: 'query', requestId: 1, limit: 1001, filters: {} },
          'limit must be an integer from 1 to 1000',
        ],
        [
          { type: 'query', requestId: 1, limit: 10, before: -3, filters: {} },
          'before must be a positive integer',
        ],
      ];
      for (const [value, error] of refusals) {
        assert.deepEqual(parseWebviewMessage(value), { ok: false, error }, JSON.stringify(value));
      }
      assert.deepEqual(parseFilters({ agent: 'a', zz: 1 }), { ok: false, error: 'unknown filter "zz"' });
      assert.deepEqual(parseFilters(null), { ok: false, error: 'filters must be an object' });
    });

    it('accepts a null-prototype message and drops an explicitly undefined before', () => {
      const bare = Object.assign(Object.create(null) as object, { type: 'verify' });
      assert.deepEqual(parseWebviewMessage(bare), { ok: true, message: { type: 'verify' } });
      const result = parseWebviewMessage({
        type: 'query',
        requestId: 2,
        limit: 3,
        filters: {},
        before: undefined,
      });
      assert.deepEqual(result, { ok: true, message: { type: 'query', requestId: 2, filters: {}, limit: 3 } });
      assert.ok(result.ok && !('before' in result.message));
    });

    it('accepts a filter string of exactly the maximum length', () => {
      const text = 'x'.repeat(MAX_FILTER_LENGTH);
      assert.deepEqual(parseFilters({ text }), { ok: true, filters: { text } });
    });
  });

  describe('toAuditQuery', () => {
    it('maps filters, before and limit', () => {
      const command: QueryCommand = {
        type: 'query',
        requestId: 3,
        filters: { agent: 'a', decision: 'allow', text: 't' },
        before: 42,
        limit: 500,
      };
      assert.deepEqual(toAuditQuery(command), {
        agent: 'a',
        decision: 'allow',
        text: 't',
        before: 42,
        limit: 500,
      });
    });

    it('leaves before out of a first page', () => {
      const q = toAuditQuery({ type: 'query', requestId: 1, filters: {}, limit: 100 });
      assert.deepEqual(q, { limit: 100 });
      assert.ok(!('before' in q));
    });
  });
});

describe('audit webview model', () => {
  describe('matchesFilters', () => {
    it('matches exact fields', () => {
      const r = record(1);
      assert.equal(matchesFilters(r, {}), true);
      assert.equal(matchesFilters(r, { agent: 'claude', op: 'write_file', decision: 'allow' }), true);
      assert.equal(matchesFilters(r, { agent: 'Claude' }), false);
      assert.equal(matchesFilters(r, { op: 'read_file' }), false);
      assert.equal(matchesFilters(r, { decision: 'deny' }), false);
      assert.equal(matchesFilters(r, { sessionId: 'sess-2' }), false);
      assert.equal(matchesFilters(record(2, { sessionId: null }), { sessionId: 'sess-1' }), false);
    });

    it('matches text case-insensitively anywhere in the stored record', () => {
      const r = record(5, { params: { path: 'Src/Secret.TS' }, rule: 'Allow-All' });
      assert.equal(matchesFilters(r, { text: 'secret.ts' }), true);
      assert.equal(matchesFilters(r, { text: 'ALLOW-ALL' }), true);
      assert.equal(matchesFilters(r, { text: '"seq":5' }), true);
      assert.equal(matchesFilters(r, { text: 'nowhere' }), false);
    });

    it('builds the line in the audit file field order', () => {
      const line = recordLine(record(9));
      assert.deepEqual(Object.keys(JSON.parse(line)), [
        'seq',
        'prev',
        'ts',
        'sessionId',
        'agent',
        'role',
        'transport',
        'op',
        'decision',
        'rule',
        'params',
        'outcome',
        'durationMs',
        'hash',
      ]);
    });

    it('knows when filters are set', () => {
      assert.equal(hasFilters({}), false);
      assert.equal(hasFilters({ text: '' }), false);
      assert.equal(hasFilters({ decision: 'deny' }), true);
    });
  });

  describe('describeTarget', () => {
    it('shows a path, a move, a command, a search or an execution id', () => {
      assert.equal(describeTarget(record(1)), 'src/a.ts');
      assert.equal(describeTarget(record(1, { params: { from: 'a.ts', to: 'b.ts' } })), 'a.ts → b.ts');
      assert.equal(
        describeTarget(record(1, { params: { command: 'npm', args: ['test', '--', '-x'] } })),
        'npm test -- -x',
      );
      assert.equal(describeTarget(record(1, { params: { command: 'make all', cwd: 'lib' } })), 'make all');
      assert.equal(describeTarget(record(1, { params: { query: 'TODO', path: 'src' } })), 'TODO in src');
      assert.equal(describeTarget(record(1, { params: { executionId: 'ex-12' } })), 'ex-12');
    });

    it('is empty for params without a target and clips long ones', () => {
      assert.equal(describeTarget(record(1, { params: {} })), '');
      assert.equal(describeTarget(record(1, { params: null })), '');
      assert.equal(describeTarget(record(1, { params: ['x'] })), '');
      const long = describeTarget(record(1, { params: { path: 'x'.repeat(1000) } }));
      assert.equal(long.length, 300);
      assert.ok(long.endsWith('…'));
    });
  });

  describe('formatting', () => {
    it('formats local time with milliseconds', () => {
      const ts = new Date(2024, 0, 2, 3, 4, 5, 6).toISOString();
      assert.equal(formatLocalTime(ts), '2024-01-02 03:04:05.006');
      assert.equal(formatLocalTime('not a date'), 'not a date');
    });

    it('formats durations', () => {
      assert.equal(formatDuration(0), '0.00 ms');
      assert.equal(formatDuration(0.421), '0.42 ms');
      assert.equal(formatDuration(12.4), '12 ms');
      assert.equal(formatDuration(1250), '1.25 s');
      assert.equal(formatDuration(125_000), '2 m 05 s');
      assert.equal(formatDuration(Number.NaN), '');
    });

    it('formats outcomes', () => {
      assert.deepEqual(formatOutcome(record(1)), { label: 'ok', ok: true });
      assert.deepEqual(formatOutcome(record(1, { outcome: { ok: false, code: 'POLICY_DENIED' } })), {
        label: 'POLICY_DENIED',
        ok: false,
      });
      assert.deepEqual(formatOutcome(record(1, { outcome: { ok: false, status: 'exited', exitCode: 2 } })), {
        label: 'exit 2',
        ok: false,
      });
      assert.deepEqual(
        formatOutcome(record(1, { outcome: { ok: false, status: 'timeout', exitCode: null } })),
        {
          label: 'timeout',
          ok: false,
        },
      );
      assert.deepEqual(formatOutcome(record(1, { outcome: { ok: false } })), { label: 'error', ok: false });
    });

    it('labels decisions and names the rule', () => {
      assert.equal(decisionLabel('allow'), 'allowed');
      assert.equal(decisionLabel('deny'), 'denied');
      assert.equal(decisionTitle(record(1)), 'Policy rule: allow-src');
      assert.match(decisionTitle(record(1, { decision: 'deny', rule: null })), /Denied by default/);
    });

    it('pretty-prints JSON', () => {
      assert.equal(prettyJson({ a: 1 }), '{\n  "a": 1\n}');
      assert.equal(prettyJson(undefined), 'undefined');
    });
  });

  describe('visibleRange and scrollToReveal', () => {
    it('covers the viewport plus overscan, clamped to the rows', () => {
      assert.deepEqual(visibleRange(0, 220, 22, 1000, 5), { start: 0, end: 15 });
      assert.deepEqual(visibleRange(2200, 220, 22, 1000, 5), { start: 95, end: 115 });
      assert.deepEqual(visibleRange(21_900, 220, 22, 1000, 5), { start: 990, end: 1000 });
      assert.deepEqual(visibleRange(0, 220, 22, 0, 5), { start: 0, end: 0 });
    });

    it('scrolls only as far as needed to show a row', () => {
      assert.equal(scrollToReveal(10, 0, 220, 22), 22);
      assert.equal(scrollToReveal(3, 0, 220, 22), 0);
      assert.equal(scrollToReveal(3, 200, 220, 22), 66);
    });
  });

  describe('RowStore', () => {
    it('appends pages and prepends live records in seq order', () => {
      const store = new RowStore();
      assert.equal(store.appendPage(page(100, 51)), 50);
      assert.equal(store.appendPage(page(50, 1)), 50);
      assert.equal(store.prepend(page(103, 101)), 3);
      assert.equal(store.prepend(page(105, 104)), 2);
      assert.equal(store.length, 105);
      assert.equal(store.loaded, 105);
      for (let i = 0; i < store.length; i++) {
        assert.equal(store.seqAt(i), 105 - i);
        assert.equal(store.get(i)?.seq, 105 - i);
      }
      assert.equal(store.topSeq, 105);
      assert.equal(store.bottomSeq, 1);
      assert.equal(store.get(-1), null);
      assert.equal(store.get(105), null);
    });

    it('skips duplicates and out-of-order records', () => {
      const store = new RowStore();
      store.appendPage(page(10, 6));
      assert.equal(store.prepend(page(12, 9)), 2);
      assert.equal(store.appendPage(page(7, 3)), 3);
      assert.deepEqual(
        Array.from({ length: store.length }, (_, i) => store.seqAt(i)),
        [12, 11, 10, 9, 8, 7, 6, 5, 4, 3],
      );
    });

    it('finds rows by seq, with gaps from filtering', () => {
      const store = new RowStore();
      store.appendPage([record(90), record(70), record(40)]);
      store.prepend([record(120), record(95)]);
      assert.equal(store.indexOfSeq(120), 0);
      assert.equal(store.indexOfSeq(95), 1);
      assert.equal(store.indexOfSeq(40), 4);
      assert.equal(store.indexOfSeq(80), -1);
      assert.equal(new RowStore().indexOfSeq(1), -1);
    });

    it('evicts records far from the kept window and fills them again by seq', () => {
      const store = new RowStore();
      store.prepend(page(1000, 901));
      store.appendPage(page(900, 1));
      const dropped = store.evict(400, 500, 300);
      assert.equal(dropped, 700);
      assert.equal(store.loaded, 300);
      assert.equal(store.length, 1000);
      for (let i = 400; i < 500; i++) assert.notEqual(store.get(i), null);
      assert.equal(store.seqAt(0), 1000);
      // The farthest rows go first: both ends are gone, rows next to the window stay.
      assert.equal(store.get(0), null);
      assert.equal(store.get(999), null);
      assert.notEqual(store.get(399), null);
      assert.notEqual(store.get(500), null);

      assert.equal(store.firstMissing(400, 500), -1);
      const missing = store.firstMissing(0, 1000);
      assert.equal(missing, 0);
      // A fill query is `before: seqAt(missing) + 1`: the same page as when first loaded.
      assert.equal(store.fill(page(store.seqAt(missing), store.seqAt(missing) - 99)), 100);
      assert.equal(store.fill(page(1000, 990)), 0);
      assert.equal(store.firstMissing(0, 100), -1);
      assert.equal(store.get(0)?.seq, 1000);
      assert.equal(store.loaded, 400);
    });

    it('does not evict inside the window even above the target', () => {
      const store = new RowStore();
      store.appendPage(page(100, 1));
      assert.equal(store.evict(0, 100, 10), 0);
      assert.equal(store.loaded, 100);
    });

    it('clears', () => {
      const store = new RowStore();
      store.appendPage(page(3, 1));
      store.clear();
      assert.equal(store.length, 0);
      assert.equal(store.loaded, 0);
      assert.equal(store.topSeq, 0);
      assert.equal(store.prepend(page(2, 1)), 2);
    });
  });
});

describe('AuditBridge (host side of the audit webview)', () => {
  let dir: string;
  let log: AuditLog;
  let posted: HostMessage[];
  let bridge: AuditBridge;
  const operations = ['read_file', 'write_file'];

  function entry(i: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
    return {
      sessionId: 'sess-1',
      agent: i % 2 === 0 ? 'claude' : 'cursor',
      role: 'agent',
      transport: 'mcp',
      op: i % 3 === 0 ? 'read_file' : 'write_file',
      params: { path: `src/f${i}.ts` },
      decision: i % 5 === 0 ? 'deny' : 'allow',
      rule: null,
      outcome: { ok: i % 5 !== 0 },
      durationMs: 1,
      ...overrides,
    };
  }

  const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const ofType = <T extends HostMessage['type']>(type: T) =>
    posted.filter((m): m is Extract<HostMessage, { type: T }> => m.type === type);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-webview-'));
    log = await AuditLog.open({ dir, fsync: false });
    for (let i = 1; i <= 30; i++) await log.append(entry(i));
    posted = [];
    bridge = new AuditBridge((m) => posted.push(m), log, { operations, batchMs: 5, maxBatch: 10 });
  });

  afterEach(async () => {
    bridge.dispose();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers ready with the status and starts forwarding live records', async () => {
    await bridge.receive({ type: 'ready' });
    assert.deepEqual(posted, [{ type: 'status', running: true, operations }]);
    assert.equal(bridge.live, true);
  });

  it('answers queries from the audit log, newest first, paged with nextBefore', async () => {
    await bridge.receive({ type: 'query', requestId: 1, filters: {}, limit: 10 });
    const first = ofType('records')[0];
    assert.equal(first.requestId, 1);
    assert.equal(first.replace, true);
    assert.deepEqual(
      first.records.map((r) => r.seq),
      [30, 29, 28, 27, 26, 25, 24, 23, 22, 21],
    );
    assert.equal(first.nextBefore, 21);
    await bridge.receive({ type: 'query', requestId: 2, filters: {}, before: 21, limit: 100 });
    const second = ofType('records')[1];
    assert.equal(second.replace, false);
    assert.equal(second.records.length, 20);
    assert.equal(second.nextBefore, null);
  });

  it('applies the filters', async () => {
    await bridge.receive({
      type: 'query',
      requestId: 3,
      filters: { agent: 'claude', decision: 'deny' },
      limit: 100,
    });
    const seqs = ofType('records')[0].records.map((r) => r.seq);
    assert.deepEqual(seqs, [30, 20, 10]);
    await bridge.receive({ type: 'query', requestId: 4, filters: { text: 'SRC/F7.TS' }, limit: 100 });
    assert.deepEqual(
      ofType('records')[1].records.map((r) => r.seq),
      [7],
    );
  });

  it('refuses an invalid message with an error and does not query', async () => {
    await bridge.receive({ type: 'query', requestId: 1, filters: { agent: 5 }, limit: 10 });
    await bridge.receive({ type: 'run', command: 'rm -rf /' });
    assert.equal(posted.length, 2);
    assert.ok(posted.every((m) => m.type === 'error'));
  });

  it('batches live records, newest first', async () => {
    await bridge.receive({ type: 'ready' });
    await Promise.all([log.append(entry(31)), log.append(entry(32)), log.append(entry(33))]);
    await tick(30);
    const appended = ofType('appended');
    assert.equal(appended.length, 1);
    assert.deepEqual(
      appended[0].records.map((r) => r.seq),
      [33, 32, 31],
    );
    assert.equal(appended[0].truncated, false);
  });

  it('flags a flood as truncated instead of forwarding it', async () => {
    await bridge.receive({ type: 'ready' });
    await Promise.all(Array.from({ length: 25 }, (_, i) => log.append(entry(100 + i))));
    await tick(30);
    const appended = ofType('appended');
    assert.ok(appended.some((m) => m.truncated && m.records.length === 0));
    assert.ok(appended.every((m) => m.records.length <= 10));
  });

  it('does not forward while hidden, and resumes on ready', async () => {
    await bridge.receive({ type: 'ready' });
    bridge.setVisible(false);
    assert.equal(bridge.live, false);
    await log.append(entry(31));
    await tick(20);
    assert.equal(ofType('appended').length, 0);
    await bridge.receive({ type: 'ready' });
    assert.equal(bridge.live, true);
  });

  it('verifies the chain', async () => {
    await bridge.receive({ type: 'verify' });
    const [verified] = ofType('verified');
    assert.deepEqual(verified.result, { ok: true, records: 30, head: log.head.hash });
  });

  it('shows a stopped server and switches to a new source', async () => {
    await bridge.receive({ type: 'ready' });
    bridge.setSource(null);
    assert.equal(bridge.live, false);
    assert.deepEqual(posted.at(-1), { type: 'status', running: false, operations });
    await bridge.receive({ type: 'query', requestId: 9, filters: {}, limit: 10 });
    assert.deepEqual(posted.at(-1), {
      type: 'error',
      message: 'The MCP Workspace server is stopped.',
      requestId: 9,
    });
    await bridge.receive({ type: 'verify' });
    assert.equal(posted.at(-1)?.type, 'error');

    bridge.setSource(log);
    assert.deepEqual(posted.at(-1), { type: 'status', running: true, operations });
    assert.equal(bridge.live, true);
    const before = posted.length;
    bridge.setSource(log);
    assert.equal(posted.length, before, 'the same source again changes nothing');
  });

  it('drops an answer from a source replaced while it was running', async () => {
    let release: () => void = () => {};
    const slow: AuditSource = {
      query: async () => {
        await new Promise<void>((resolve) => (release = resolve));
        return { records: [], nextBefore: null };
      },
      subscribe: () => () => {},
      verify: async () => ({ ok: true, records: 0, head: '0'.repeat(64) }),
    };
    bridge.setSource(slow);
    const answered = bridge.receive({ type: 'query', requestId: 5, filters: {}, limit: 10 });
    bridge.setSource(log);
    release();
    await answered;
    assert.equal(ofType('records').length, 0);
  });

  it('reports a failing query as an error for that request', async () => {
    bridge.setSource({
      query: async () => {
        throw new Error('disk on fire');
      },
      subscribe: () => () => {},
      verify: async () => ({ ok: true, records: 0, head: '' }),
    });
    await bridge.receive({ type: 'query', requestId: 8, filters: {}, limit: 10 });
    assert.deepEqual(posted.at(-1), { type: 'error', message: 'disk on fire', requestId: 8 });
  });

  it('stops posting and unsubscribes when disposed', async () => {
    let subscribed = 0;
    bridge.setSource({
      query: log.query.bind(log),
      verify: log.verify.bind(log),
      subscribe: (listener) => {
        subscribed++;
        const off = log.subscribe(listener);
        return () => {
          subscribed--;
          off();
        };
      },
    });
    await bridge.receive({ type: 'ready' });
    assert.equal(subscribed, 1);
    bridge.dispose();
    assert.equal(subscribed, 0);
    const count = posted.length;
    await bridge.receive({ type: 'verify' });
    await log.append(entry(40));
    await tick(20);
    assert.equal(posted.length, count);
  });
});
