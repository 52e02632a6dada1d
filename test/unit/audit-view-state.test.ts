import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditEntry } from '../../src/core/audit';
import { AuditBridge } from '../../src/extension/webview/bridge';
import type {
  AuditRecord,
  HostMessage,
  QueryCommand,
  WebviewMessage,
} from '../../src/extension/webview/protocol';
import {
  emptyMessage,
  footerText,
  liveToggle,
  newRecordsChip,
  operationChoices,
  verifyStatus,
} from '../../media/audit/display';
import {
  AuditViewState,
  EVICT_AT,
  MAX_FILLS,
  MAX_HELD,
  MAX_LOADED,
  MAX_SEEN,
  PAGE_SIZE,
  filtersFromInputs,
  keyTarget,
  restoreState,
  sameFilters,
  type AuditViewEffects,
  type PersistedState,
} from '../../media/audit/state';
import { auditRecord } from '../helpers/fixtures';

/** A record whose path names its seq, so rows are told apart. */
function record(seq: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return auditRecord(seq, { params: { path: `src/f${seq}.ts` }, ...overrides });
}

/** Records seq `from` down to `to`, newest first, like a query page. */
function page(from: number, to: number, overrides: Partial<AuditRecord> = {}): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let s = from; s >= to; s--) out.push(record(s, overrides));
  return out;
}

/** Effects that record what the state asked for. */
class Recorder implements AuditViewEffects {
  posted: WebviewMessage[] = [];
  persisted: PersistedState[] = [];
  changes = 0;
  scrolledToTop = 0;
  inserted = 0;
  post(message: WebviewMessage): void {
    this.posted.push(message);
  }
  persist(state: PersistedState): void {
    this.persisted.push(state);
  }
  changed(): void {
    this.changes++;
  }
  scrollToTop(): void {
    this.scrolledToTop++;
  }
  rowsInserted(rows: number): void {
    this.inserted += rows;
  }
  queries(): QueryCommand[] {
    return this.posted.filter((m): m is QueryCommand => m.type === 'query');
  }
  lastQuery(): QueryCommand {
    const q = this.queries().at(-1);
    assert.ok(q, 'a query was posted');
    return q;
  }
}

const seqs = (state: AuditViewState) =>
  Array.from({ length: state.store.length }, (_, i) => state.store.seqAt(i));

/** A state attached to a running server whose first page (`records`) has been answered. */
function loaded(
  records: AuditRecord[],
  nextBefore: number | null,
  saved?: PersistedState,
): { state: AuditViewState; fx: Recorder } {
  const fx = new Recorder();
  const state = new AuditViewState(fx, saved);
  state.onStatus({ type: 'status', running: true, operations: ['read_file', 'write_file'] });
  const q = fx.lastQuery();
  state.onRecords({ type: 'records', requestId: q.requestId, records, nextBefore, replace: true });
  return { state, fx };
}

const flushMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('audit webview state (media/audit/state.ts)', () => {
  describe('restoreState', () => {
    it('keeps only well-formed filters and a true paused flag', () => {
      assert.deepEqual(restoreState(undefined), { filters: {}, paused: false });
      assert.deepEqual(restoreState('garbage'), { filters: {}, paused: false });
      assert.deepEqual(
        restoreState({
          filters: { agent: 'claude', op: 7, decision: 'maybe', sessionId: '', text: 'x', hash: 'h' },
          paused: 'yes',
        }),
        { filters: { agent: 'claude', text: 'x' }, paused: false },
      );
      assert.deepEqual(restoreState({ filters: { decision: 'deny' }, paused: true }), {
        filters: { decision: 'deny' },
        paused: true,
      });
    });
  });

  describe('filters from the toolbar', () => {
    it('trims, drops empty values, keeps the session and caps the search text', () => {
      assert.deepEqual(
        filtersFromInputs({ agent: '  claude ', op: '', decision: 'all', text: '   ' }, undefined),
        { agent: 'claude' },
      );
      const f = filtersFromInputs(
        { agent: '', op: 'read_file', decision: 'deny', text: 'x'.repeat(300) },
        's1',
      );
      assert.deepEqual(Object.keys(f).sort(), ['decision', 'op', 'sessionId', 'text']);
      assert.equal(f.text?.length, 200);
      assert.equal(f.sessionId, 's1');
    });

    it('compares filter sets field by field', () => {
      assert.equal(sameFilters({}, {}), true);
      assert.equal(sameFilters({ agent: 'a' }, { agent: 'a' }), true);
      assert.equal(sameFilters({ agent: 'a' }, { agent: 'a', text: 't' }), false);
      assert.equal(sameFilters({ decision: 'allow' }, { decision: 'deny' }), false);
    });
  });

  describe('status', () => {
    it('queries nothing until a server is attached, then asks for the first page', () => {
      const fx = new Recorder();
      const state = new AuditViewState(fx, { filters: { agent: 'claude' }, paused: false });
      state.onViewport(0, 0);
      state.setFilters({ agent: 'cursor' });
      assert.equal(fx.queries().length, 0);
      assert.equal(state.startVerify(), false);
      assert.equal(emptyMessage(state).title, 'Loading…');
      state.onStatus({ type: 'status', running: true, operations: ['read_file'] });
      assert.deepEqual(fx.posted, [
        { type: 'query', requestId: 1, filters: { agent: 'cursor' }, limit: PAGE_SIZE },
      ]);
      assert.equal(state.replacing, true);
      assert.ok(state.operations.has('read_file'));
    });

    it('clears everything when the server stops, and drops answers that arrive afterwards', () => {
      const { state, fx } = loaded(page(10, 1), null);
      state.select(2);
      state.openSelected();
      state.onError('boom', undefined);
      const q = fx.lastQuery();
      state.onStatus({ type: 'status', running: false, operations: [] });
      assert.equal(state.store.length, 0);
      assert.equal(state.details, null);
      assert.equal(state.banner, null);
      assert.deepEqual(emptyMessage(state), {
        title: 'Server stopped',
        detail: 'Start the MCP Workspace server to see its audit log.',
      });
      assert.deepEqual(footerText(state), { count: '', state: '' });
      state.onRecords({
        type: 'records',
        requestId: q.requestId,
        records: page(5, 1),
        nextBefore: null,
        replace: true,
      });
      state.onAppended({ type: 'appended', records: [record(11)], truncated: false });
      assert.equal(state.store.length, 0);
    });
  });

  describe('paging', () => {
    it('loads the first page, then older pages as the view nears the end, once at a time', () => {
      const { state, fx } = loaded(page(1000, 501), 501);
      assert.deepEqual(seqs(state).slice(0, 3), [1000, 999, 998]);
      assert.equal(fx.scrolledToTop, 1);
      assert.equal(footerText(state).count, '500+ records');
      state.onViewport(0, 40);
      assert.equal(fx.queries().length, 1, 'far from the end: no paging');
      state.onViewport(280, 320);
      state.onViewport(290, 330);
      const more = fx.lastQuery();
      assert.equal(fx.queries().length, 2, 'one page request in flight at a time');
      assert.equal(more.before, 501);
      assert.equal(footerText(state).state, 'Loading…');
      state.onRecords({
        type: 'records',
        requestId: more.requestId,
        records: page(500, 1),
        nextBefore: null,
        replace: false,
      });
      assert.equal(state.store.length, 1000);
      assert.deepEqual(
        seqs(state),
        page(1000, 1).map((r) => r.seq),
      );
      state.onViewport(960, 1000);
      assert.equal(fx.queries().length, 2, 'the end of the log: no more paging');
      assert.deepEqual(footerText(state), { count: '1,000 records', state: 'End of log' });
    });

    it('drops answers to queries made before the filters changed', () => {
      const { state, fx } = loaded(page(1000, 501), 501);
      state.onViewport(400, 500);
      const stale = fx.lastQuery();
      state.setFilters({ decision: 'deny' });
      const fresh = fx.lastQuery();
      assert.deepEqual(fresh.filters, { decision: 'deny' });
      assert.equal(fresh.before, undefined);
      assert.deepEqual(fx.persisted.at(-1), { filters: { decision: 'deny' }, paused: false });
      state.onRecords({
        type: 'records',
        requestId: stale.requestId,
        records: page(500, 1),
        nextBefore: null,
        replace: false,
      });
      assert.equal(state.store.length, 500, 'the stale page is ignored');
      state.onRecords({
        type: 'records',
        requestId: fresh.requestId,
        records: page(40, 31, { decision: 'deny' }),
        nextBefore: null,
        replace: true,
      });
      assert.deepEqual(
        seqs(state),
        page(40, 31).map((r) => r.seq),
      );
      assert.equal(footerText(state).count, '10 records matching');
    });

    it('changes nothing when the same filters are set again', () => {
      const { state, fx } = loaded(page(10, 1), null, { filters: { op: 'read_file' }, paused: false });
      const posted = fx.posted.length;
      state.setFilters({ op: 'read_file' });
      assert.equal(fx.posted.length, posted);
      assert.equal(fx.persisted.length, 0);
    });

    it('fetches evicted rows again by seq, at most MAX_FILLS at a time', () => {
      const { state, fx } = loaded(page(30_000, 1), null);
      assert.ok(state.store.loaded > EVICT_AT);
      state.onViewport(15_000, 15_040);
      assert.equal(state.store.loaded, MAX_LOADED, 'records far from the viewport are evicted');
      assert.notEqual(state.store.get(15_000), null);
      assert.equal(state.store.get(0), null);
      const before = fx.queries().length;
      state.onViewport(0, 40);
      state.onViewport(100, 140);
      state.onViewport(200, 240);
      const fills = fx.queries().slice(before);
      assert.equal(fills.length, MAX_FILLS);
      assert.equal(fills[0].before, 30_001);
      assert.equal(fills[1].before, 30_000 - 100 + 1);
      state.onRecords({
        type: 'records',
        requestId: fills[0].requestId,
        records: page(30_000, 29_501),
        nextBefore: 29_501,
        replace: false,
      });
      assert.equal(state.store.get(0)?.seq, 30_000);
      assert.equal(state.store.length, 30_000, 'a fill restores rows, it adds none');
    });
  });

  describe('live records', () => {
    it('puts matching live records on top and remembers new operations and agents', () => {
      const { state, fx } = loaded(page(10, 1), null, { filters: { agent: 'claude' }, paused: false });
      const opsVersion = state.operationsVersion;
      const agentsVersion = state.agentsVersion;
      state.onAppended({
        type: 'appended',
        records: [
          record(13, { agent: 'cursor', op: 'move_file' }),
          record(12),
          record(11, { op: 'run_command' }),
        ],
        truncated: false,
      });
      assert.deepEqual(seqs(state).slice(0, 3), [12, 11, 10]);
      assert.equal(fx.inserted, 2);
      assert.ok(state.operations.has('move_file') && state.operations.has('run_command'));
      assert.ok(state.agents.has('cursor'));
      assert.ok(state.operationsVersion > opsVersion);
      assert.ok(state.agentsVersion > agentsVersion);
      state.onAppended({ type: 'appended', records: [record(12)], truncated: false });
      assert.equal(state.store.length, 12, 'a record already shown is not added twice');
    });

    it('matches the text filter against the stored line, as the server does', () => {
      const { state } = loaded([], null, { filters: { text: 'SECRET.ts' }, paused: false });
      state.onAppended({
        type: 'appended',
        records: [
          record(3, { params: { path: 'plain.ts' } }),
          record(2, { params: { path: 'src/secret.TS' } }),
        ],
        truncated: false,
      });
      assert.deepEqual(seqs(state), [2]);
    });

    it("matches the text filter against a version 2 record's decisions, which its stored line holds", () => {
      const { state } = loaded([], null, { filters: { text: 'Secrets/KEY' }, paused: false });
      const decision = { action: 'write', target: 'secrets/key.pem', decision: 'deny' as const, rule: null };
      state.onAppended({
        type: 'appended',
        records: [
          record(5, { v: 2, params: { path: 'a.ts' }, decisions: [{ ...decision, target: 'a.ts' }] }),
          record(4, { v: 2, params: { path: 'a.ts' }, decisions: [decision] }),
          record(3, { params: { path: 'a.ts' } }),
        ],
        truncated: false,
      });
      assert.deepEqual(seqs(state), [4]);
    });

    it('caps the remembered names', () => {
      const { state } = loaded([], null);
      const flood = Array.from({ length: MAX_SEEN + 50 }, (_, i) =>
        record(1000 - i, { op: `op_${i}`, agent: `agent_${i}` }),
      );
      state.onAppended({ type: 'appended', records: flood, truncated: false });
      assert.equal(state.operations.size, MAX_SEEN);
      assert.equal(state.agents.size, MAX_SEEN);
    });

    it('merges records that arrive during a fresh query once it answers', () => {
      const fx = new Recorder();
      const state = new AuditViewState(fx);
      state.onStatus({ type: 'status', running: true, operations: [] });
      const q = fx.lastQuery();
      state.onAppended({ type: 'appended', records: [record(12), record(11), record(9)], truncated: false });
      assert.equal(state.store.length, 0);
      state.onRecords({
        type: 'records',
        requestId: q.requestId,
        records: page(10, 1),
        nextBefore: null,
        replace: true,
      });
      assert.deepEqual(seqs(state).slice(0, 3), [12, 11, 10], 'only those newer than the page, in order');
      assert.equal(state.store.length, 12);
    });

    it('queries again after the host dropped a flood during a fresh query', async () => {
      const fx = new Recorder();
      const state = new AuditViewState(fx);
      state.onStatus({ type: 'status', running: true, operations: [] });
      const q = fx.lastQuery();
      state.onAppended({ type: 'appended', records: [], truncated: true });
      assert.equal(fx.queries().length, 1);
      state.onRecords({
        type: 'records',
        requestId: q.requestId,
        records: page(10, 1),
        nextBefore: null,
        replace: true,
      });
      await flushMicrotasks();
      assert.equal(fx.queries().length, 2);
      assert.equal(fx.lastQuery().before, undefined);
    });

    it('queries again when a flood was dropped while live', () => {
      const { state, fx } = loaded(page(10, 1), null);
      state.onAppended({ type: 'appended', records: [], truncated: true });
      assert.equal(fx.queries().length, 2);
      assert.equal(state.replacing, true);
    });
  });

  describe('pausing', () => {
    it('holds matching live records while paused and shows them when going live', () => {
      const { state, fx } = loaded(page(10, 1), null);
      state.togglePaused();
      assert.equal(state.paused, true);
      assert.deepEqual(fx.persisted.at(-1), { filters: {}, paused: true });
      assert.deepEqual(liveToggle(true).text, '❚❚ Paused');
      state.onAppended({ type: 'appended', records: [record(12), record(11)], truncated: false });
      state.onAppended({ type: 'appended', records: [record(13), record(12)], truncated: false });
      assert.equal(state.store.length, 10);
      assert.deepEqual(
        state.held.map((r) => r.seq),
        [13, 12, 11],
      );
      assert.deepEqual(newRecordsChip(state), { hidden: false, text: '3 new' });
      const scrolled = fx.scrolledToTop;
      state.togglePaused();
      assert.deepEqual(seqs(state).slice(0, 4), [13, 12, 11, 10]);
      assert.equal(state.held.length, 0);
      assert.equal(fx.scrolledToTop, scrolled + 1);
      assert.equal(newRecordsChip(state).hidden, true);
      assert.deepEqual(liveToggle(false).text, '● Live');
    });

    it('stops holding past MAX_HELD and offers to reload instead', () => {
      const { state, fx } = loaded(page(10, 1), null, { filters: {}, paused: true });
      state.onAppended({ type: 'appended', records: page(10 + MAX_HELD + 1, 11), truncated: false });
      assert.equal(state.held.length, 0);
      assert.equal(state.heldOverflow, true);
      assert.deepEqual(newRecordsChip(state), {
        hidden: false,
        text: `${MAX_HELD.toLocaleString()}+ new · reload`,
      });
      state.onAppended({ type: 'appended', records: [record(20_000)], truncated: false });
      assert.equal(state.held.length, 0, 'nothing more is held once it overflowed');
      const queries = fx.queries().length;
      state.showHeld();
      assert.equal(fx.queries().length, queries + 1, 'showing them is a fresh query');
      assert.equal(state.heldOverflow, false);
    });

    it('offers to reload when a flood was dropped while paused', () => {
      const { state, fx } = loaded(page(10, 1), null, { filters: {}, paused: true });
      state.onAppended({ type: 'appended', records: [record(11)], truncated: false });
      state.onAppended({ type: 'appended', records: [], truncated: true });
      assert.equal(state.held.length, 0);
      assert.equal(state.heldOverflow, true);
      assert.equal(fx.queries().length, 1);
    });
  });

  describe('errors and the banner', () => {
    it('offers to retry a failed first page', () => {
      const { state, fx } = loaded(page(10, 1), null);
      state.setFilters({ agent: 'x' });
      const q = fx.lastQuery();
      state.onError('disk on fire', q.requestId);
      assert.deepEqual(state.banner, { message: 'disk on fire', canRetry: true });
      assert.equal(state.replacing, false);
      state.retryBanner();
      assert.equal(state.banner, null);
      assert.deepEqual(fx.lastQuery().filters, { agent: 'x' });
      assert.notEqual(fx.lastQuery().requestId, q.requestId);
    });

    it('stops paging after a failed page until the user retries', () => {
      const { state, fx } = loaded(page(1000, 501), 501);
      state.onViewport(460, 500);
      const more = fx.lastQuery();
      state.onError('gone', more.requestId);
      state.onViewport(460, 500);
      assert.equal(fx.lastQuery(), more, 'no new page request while blocked');
      state.retryBanner();
      state.onViewport(460, 500);
      assert.equal(fx.lastQuery().before, 501);
      assert.notEqual(fx.lastQuery().requestId, more.requestId);
    });

    it('ignores an error for a stale query and clears a pending verification on a general error', () => {
      const { state, fx } = loaded(page(10, 1), null);
      const first = fx.lastQuery();
      state.setFilters({ op: 'read_file' });
      state.onError('late', first.requestId);
      assert.equal(state.banner, null);
      assert.equal(state.startVerify(), true);
      assert.deepEqual(fx.posted.at(-1), { type: 'verify' });
      assert.equal(verifyStatus(state.verify).text, 'Verifying…');
      state.onError('Could not verify the audit log: EIO', undefined);
      assert.equal(state.verify.kind, 'idle');
      assert.deepEqual(state.banner, { message: 'Could not verify the audit log: EIO', canRetry: false });
      state.dismissBanner();
      assert.equal(state.banner, null);
    });

    it('hides the banner when records arrive', () => {
      const { state, fx } = loaded(page(1000, 501), 501);
      state.onError('transient', undefined);
      state.onViewport(460, 500);
      const more = fx.lastQuery();
      state.onRecords({
        type: 'records',
        requestId: more.requestId,
        records: page(500, 1),
        nextBefore: null,
        replace: false,
      });
      assert.equal(state.banner, null);
    });
  });

  describe('verification', () => {
    it('shows an intact chain and a tampered one', () => {
      const { state } = loaded(page(3, 1), null);
      state.startVerify();
      state.onVerified({ ok: true, records: 1234, head: 'abc' });
      assert.deepEqual(verifyStatus(state.verify), {
        text: '✓ Intact · 1,234 records',
        tone: 'ok',
        title: 'Chain head abc',
      });
      state.onVerified({ ok: false, records: 41, badSeq: 42, reason: 'hash mismatch' });
      const bad = verifyStatus(state.verify);
      assert.equal(bad.tone, 'bad');
      assert.equal(bad.text, '✗ Tampered at #42: hash mismatch');
      assert.match(bad.title, /41 records before it are intact/);
      state.onStatus({ type: 'status', running: true, operations: [] });
      assert.equal(state.verify.kind, 'idle', 'a new server starts unverified');
    });
  });

  describe('selection and details', () => {
    it('selects clamped rows, follows with the details pane and closes it', () => {
      const { state } = loaded(page(10, 1), null);
      const details = () => state.details;
      assert.equal(state.select(-5), 0);
      assert.equal(state.selectedSeq, 10);
      assert.equal(details(), null, 'selecting does not open the details');
      state.openSelected();
      assert.equal(details()?.record.seq, 10);
      const version = details()?.version;
      assert.equal(state.select(99), 9);
      assert.equal(details()?.record.seq, 1, 'an open pane follows the selection');
      assert.notEqual(details()?.version, version);
      state.closeDetails();
      assert.equal(details(), null);
      assert.equal(state.selectedIndex(), 9);
    });

    it('keeps the selection on its record when live rows arrive, and drops it when a new query lacks it', () => {
      const { state, fx } = loaded(page(10, 1), null);
      state.select(3);
      assert.equal(state.selectedSeq, 7);
      state.onAppended({ type: 'appended', records: [record(12), record(11)], truncated: false });
      assert.equal(state.selectedIndex(), 5);
      state.setFilters({ agent: 'nobody' });
      state.onRecords({
        type: 'records',
        requestId: fx.lastQuery().requestId,
        records: [],
        nextBefore: null,
        replace: true,
      });
      assert.equal(state.selectedSeq, null);
      assert.equal(state.select(0), -1, 'nothing to select in an empty table');
      assert.deepEqual(emptyMessage(state), {
        title: 'No records match',
        detail: 'Change or clear the filters.',
      });
    });

    it('maps navigation keys to rows', () => {
      const nav = { current: 5, firstVisible: 2, pageRows: 10, count: 100 };
      assert.equal(keyTarget('ArrowDown', nav), 6);
      assert.equal(keyTarget('ArrowUp', nav), 4);
      assert.equal(keyTarget('PageDown', nav), 15);
      assert.equal(keyTarget('PageUp', nav), -5);
      assert.equal(keyTarget('Home', nav), 0);
      assert.equal(keyTarget('End', nav), 99);
      assert.equal(keyTarget('Enter', nav), 'open');
      assert.equal(keyTarget(' ', nav), 'open');
      assert.equal(keyTarget('a', nav), null);
      const none = { ...nav, current: -1 };
      assert.equal(keyTarget('ArrowDown', none), 2, 'without a selection, start at the first visible row');
      assert.equal(keyTarget('ArrowUp', none), 2);
      assert.equal(keyTarget('PageDown', none), 12);
    });
  });

  describe('what the view shows', () => {
    it('says why the table is empty', () => {
      const { state } = loaded([], null);
      assert.deepEqual(emptyMessage(state), {
        title: 'No audit records yet',
        detail: 'Agent actions appear here as they happen.',
      });
      state.onAppended({ type: 'appended', records: [record(1)], truncated: false });
      assert.deepEqual(emptyMessage(state), { title: '', detail: '' });
      assert.deepEqual(footerText(state), { count: '1 record', state: 'End of log' });
    });

    it('offers the known operations sorted, with an unknown filtered one first', () => {
      const { state } = loaded(page(3, 1, { op: 'move_file' }), null, {
        filters: { op: 'zz_custom' },
        paused: false,
      });
      assert.deepEqual(operationChoices(state), ['zz_custom', 'move_file', 'read_file', 'write_file']);
    });
  });
});

describe('audit webview state against the real bridge and audit log', () => {
  let dir: string;
  let log: AuditLog;
  let bridge: AuditBridge;
  let state: AuditViewState;
  let fx: Recorder;
  let inFlight: Promise<void>[];

  function entry(i: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
    return {
      sessionId: i % 4 === 0 ? 'sess-b' : 'sess-a',
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

  /** Delivers host messages to the state, as main.ts does. */
  function deliver(msg: HostMessage): void {
    switch (msg.type) {
      case 'status':
        return state.onStatus(msg);
      case 'records':
        return state.onRecords(msg);
      case 'appended':
        return state.onAppended(msg);
      case 'verified':
        return state.onVerified(msg.result);
      case 'error':
        return state.onError(msg.message, msg.requestId);
    }
  }

  /** Waits until every command posted so far (and those they cause) has been answered. */
  async function settle(): Promise<void> {
    for (let round = 0; round < 50 && inFlight.length > 0; round++) {
      await Promise.all(inFlight.splice(0));
      await flushMicrotasks();
    }
    assert.equal(inFlight.length, 0, 'the exchange settles');
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-view-state-'));
    log = await AuditLog.open({ dir, fsync: false });
    for (let i = 1; i <= 1200; i++) await log.append(entry(i));
    inFlight = [];
    fx = new Recorder();
    const post = fx.post.bind(fx);
    fx.post = (message) => {
      post(message);
      inFlight.push(bridge.receive(message));
    };
    state = new AuditViewState(fx);
    bridge = new AuditBridge(deliver, log, {
      operations: ['read_file', 'write_file'],
      batchMs: 5,
      maxBatch: 50,
    });
  });

  afterEach(async () => {
    bridge.dispose();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pages through the whole log, newest first, exactly once per record', async () => {
    fx.post({ type: 'ready' });
    await settle();
    assert.equal(state.running, true);
    assert.equal(state.store.length, PAGE_SIZE);
    for (let round = 0; round < 10 && state.nextBefore !== null; round++) {
      state.onViewport(state.store.length - 40, state.store.length);
      await settle();
    }
    assert.deepEqual(
      seqs(state),
      Array.from({ length: 1200 }, (_, i) => 1200 - i),
    );
    assert.deepEqual(footerText(state), { count: '1,200 records', state: 'End of log' });
    assert.equal(state.banner, null);
  });

  it('shows the same records for a filter as the audit log query, live records included', async () => {
    fx.post({ type: 'ready' });
    await settle();
    state.setFilters({ agent: 'claude', decision: 'deny', sessionId: 'sess-a' });
    await settle();
    const expected = await log.query({ agent: 'claude', decision: 'deny', sessionId: 'sess-a', limit: 1000 });
    assert.ok(expected.records.length > 0);
    assert.deepEqual(
      seqs(state),
      expected.records.map((r) => r.seq),
    );

    for (let i = 1201; i <= 1240; i++) await log.append(entry(i));
    const after = await log.query({ agent: 'claude', decision: 'deny', sessionId: 'sess-a', limit: 1000 });
    assert.ok(after.records.length > expected.records.length, 'the new records include matching ones');
    const want = after.records.map((r) => r.seq);
    for (let attempt = 0; attempt < 50 && seqs(state).length < want.length; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(seqs(state), want);
    assert.equal(fx.queries().length, 2, 'live records arrived without another query');
  });

  it('recovers from a flood the bridge dropped by querying again', async () => {
    fx.post({ type: 'ready' });
    await settle();
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(entry(1201 + i))));
    for (let attempt = 0; attempt < 100 && state.store.topSeq !== 1400; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await settle();
    }
    assert.equal(state.store.topSeq, 1400);
    assert.ok(fx.queries().length >= 2, 'the flood was not forwarded record by record: it was queried');
    assert.deepEqual(
      seqs(state).slice(0, 201),
      Array.from({ length: 201 }, (_, i) => 1400 - i),
    );
  });

  it('verifies the chain through the bridge', async () => {
    fx.post({ type: 'ready' });
    await settle();
    assert.equal(state.startVerify(), true);
    await settle();
    assert.deepEqual(state.verify, {
      kind: 'done',
      result: { ok: true, records: 1200, head: log.head.hash },
    });
  });
});
