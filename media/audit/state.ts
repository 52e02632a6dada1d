/**
 * The audit-log webview's state and its transitions: the loaded rows, the filters, paging and fill
 * requests, live records held while paused, the selection, the details pane, the banner and chain
 * verification. No DOM access (the root tsconfig, which has no DOM library, type-checks it), so it runs
 * and is tested under plain Node; the view pieces read it and call its transitions, and it reaches the
 * outside world only through {@link AuditViewEffects}.
 */
import type {
  AppendedNotification,
  AuditFilters,
  AuditRecord,
  RecordsNotification,
  StatusNotification,
  VerifyResult,
  WebviewMessage,
} from '../../src/extension/webview/protocol';
import { RowStore, matchesFilters } from '../../src/extension/webview/model';

/** Records asked for per query. */
export const PAGE_SIZE = 500;
/** Ask for the next older page when the view is this close to the last row. */
export const PREFETCH_ROWS = 200;
/** Records kept in memory after an eviction. */
export const MAX_LOADED = 20_000;
/** Above this many records in memory, those far from the viewport are dropped down to MAX_LOADED. */
export const EVICT_AT = 25_000;
/** Rows on each side of the viewport whose records are never evicted. */
export const KEEP_MARGIN = 1_000;
/** Fill queries (for evicted rows) in flight at once. */
export const MAX_FILLS = 2;
/** Live records held while paused before the view just offers to reload. */
export const MAX_HELD = 5_000;
/** Distinct operation and agent names remembered for the filter lists. */
export const MAX_SEEN = 500;
/** Longest search text sent to the host (the host refuses longer ones). */
export const MAX_SEARCH_LENGTH = 200;

/** What the webview keeps across being hidden and shown (VS Code's webview state). */
export interface PersistedState {
  filters: AuditFilters;
  paused: boolean;
}

/** The persisted state from whatever VS Code kept (possibly nothing, or something malformed). */
export function restoreState(saved: unknown): PersistedState {
  const s = (saved ?? {}) as Partial<PersistedState>;
  const filters: AuditFilters = {};
  const f = (s.filters ?? {}) as Record<string, unknown>;
  for (const key of ['agent', 'op', 'sessionId', 'text'] as const) {
    const v = f[key];
    if (typeof v === 'string' && v !== '') filters[key] = v;
  }
  if (f.decision === 'allow' || f.decision === 'deny') filters.decision = f.decision;
  return { filters, paused: s.paused === true };
}

/** Whether two filter sets select the same records. */
export function sameFilters(a: AuditFilters, b: AuditFilters): boolean {
  return (
    a.agent === b.agent &&
    a.op === b.op &&
    a.decision === b.decision &&
    a.sessionId === b.sessionId &&
    a.text === b.text
  );
}

/** Filters from the toolbar's inputs (trimmed; empty means none), keeping the session chip's session. */
export function filtersFromInputs(
  inputs: { agent: string; op: string; decision: string; text: string },
  sessionId: string | undefined,
): AuditFilters {
  const next: AuditFilters = {};
  const agent = inputs.agent.trim();
  if (agent) next.agent = agent;
  if (inputs.op) next.op = inputs.op;
  if (inputs.decision === 'allow' || inputs.decision === 'deny') next.decision = inputs.decision;
  if (sessionId) next.sessionId = sessionId;
  const text = inputs.text.trim();
  if (text) next.text = text.slice(0, MAX_SEARCH_LENGTH);
  return next;
}

/** The chain verification shown in the toolbar. */
export type VerifyState = { kind: 'idle' } | { kind: 'pending' } | { kind: 'done'; result: VerifyResult };

/** The error banner: its message, and whether it offers a retry. */
export interface BannerState {
  message: string;
  canRetry: boolean;
}

/** The record in the details pane; `version` changes every time it is (re)opened. */
export interface DetailsState {
  record: AuditRecord;
  version: number;
}

/** What the state needs from its surroundings (the VS Code webview API and the view). */
export interface AuditViewEffects {
  /** Sends a command to the extension host. */
  post(message: WebviewMessage): void;
  /** Saves what should survive the webview being hidden. */
  persist(state: PersistedState): void;
  /** Something shown changed: render soon. */
  changed(): void;
  /** The table was replaced, or the held records shown: scroll back to the top. */
  scrollToTop(): void;
  /** `rows` rows were inserted above the first one: keep the rows under the user where they are. */
  rowsInserted(rows: number): void;
}

interface PendingQuery {
  kind: 'replace' | 'more' | 'fill';
  /** The fresh query this belongs to; answers to an older one are dropped. */
  generation: number;
  /** The row a fill query restores. */
  seq?: number;
}

/**
 * The state of one audit-log webview. Host notifications and user actions are its transitions; each
 * one posts the queries it needs and calls {@link AuditViewEffects.changed} when the view must render.
 */
export class AuditViewState {
  /** The loaded rows, newest first. */
  readonly store = new RowStore();
  /** Operation names seen or offered by the host (at most {@link MAX_SEEN}). */
  readonly operations = new Set<string>();
  /** Agent names seen (at most {@link MAX_SEEN}). */
  readonly agents = new Set<string>();

  private _filters: AuditFilters;
  private _paused: boolean;
  private _running: boolean | null = null;
  private _nextBefore: number | null = null;
  private _replacing = false;
  private _moreInFlight = false;
  private readonly fillsInFlight = new Set<number>();
  /** Paging failed: stop asking until the user retries. */
  private pagingBlocked = false;
  /** Bumped by every fresh (first-page) query; answers to older ones are dropped. */
  private generation = 0;
  private nextRequestId = 1;
  private readonly requests = new Map<number, PendingQuery>();
  /** Live records that arrived while a fresh query was in flight (merged when it answers). */
  private liveDuringReplace: AuditRecord[] = [];
  /** The host dropped a flood of live records while a fresh query was in flight. */
  private missedDuringReplace = false;
  private _held: AuditRecord[] = [];
  private _heldOverflow = false;
  private _selectedSeq: number | null = null;
  private _details: DetailsState | null = null;
  private detailsVersion = 0;
  private _banner: BannerState | null = null;
  private bannerRetry: (() => void) | null = null;
  private _verify: VerifyState = { kind: 'idle' };
  private _operationsVersion = 0;
  private _agentsVersion = 0;

  constructor(
    private readonly effects: AuditViewEffects,
    saved: PersistedState = { filters: {}, paused: false },
  ) {
    this._filters = saved.filters;
    this._paused = saved.paused;
  }

  /** The filters every query and live record is matched against. */
  get filters(): AuditFilters {
    return this._filters;
  }
  /** Paused: live records are held back instead of shown. */
  get paused(): boolean {
    return this._paused;
  }
  /** Whether a server is attached; null until the host has said. */
  get running(): boolean | null {
    return this._running;
  }
  /** Cursor of the next older page, or null at the end of the log. */
  get nextBefore(): number | null {
    return this._nextBefore;
  }
  /** A fresh query (first page) is in flight. */
  get replacing(): boolean {
    return this._replacing;
  }
  /** Any query is in flight. */
  get loading(): boolean {
    return this._replacing || this._moreInFlight || this.fillsInFlight.size > 0;
  }
  /** Matching live records held while paused, newest first. */
  get held(): readonly AuditRecord[] {
    return this._held;
  }
  /** More records arrived while paused than are held: showing them means querying again. */
  get heldOverflow(): boolean {
    return this._heldOverflow;
  }
  /** Seq of the selected row, or null. */
  get selectedSeq(): number | null {
    return this._selectedSeq;
  }
  /** The record in the details pane, or null when the pane is closed. */
  get details(): DetailsState | null {
    return this._details;
  }
  /** The error banner, or null when none is shown. */
  get banner(): BannerState | null {
    return this._banner;
  }
  /** The chain verification state. */
  get verify(): VerifyState {
    return this._verify;
  }
  /** Changes whenever a name is added to {@link operations}. */
  get operationsVersion(): number {
    return this._operationsVersion;
  }
  /** Changes whenever a name is added to {@link agents}. */
  get agentsVersion(): number {
    return this._agentsVersion;
  }

  // -------------------------------------------------------------------------------------------
  // Host notifications

  /** A server was attached or detached (also the answer to `ready`). */
  onStatus(msg: StatusNotification): void {
    for (const op of msg.operations) this.rememberOperation(op, Infinity);
    this._running = msg.running;
    this._verify = { kind: 'idle' };
    if (this._running) {
      this.replaceQuery();
    } else {
      this.generation++;
      this.requests.clear();
      this._replacing = false;
      this.store.clear();
      this._nextBefore = null;
      this._held = [];
      this._heldOverflow = false;
      this._details = null;
      this.hideBanner();
    }
    this.effects.changed();
  }

  /** The answer to one of our queries (dropped when it belongs to an older fresh query). */
  onRecords(msg: RecordsNotification): void {
    const request = this.requests.get(msg.requestId);
    this.requests.delete(msg.requestId);
    if (!request || request.generation !== this.generation) return;
    this.remember(msg.records);
    switch (request.kind) {
      case 'replace': {
        this._replacing = false;
        this.store.clear();
        this.store.appendPage(msg.records);
        this._nextBefore = msg.nextBefore;
        const top = this.store.topSeq;
        const late = this.liveDuringReplace.filter((r) => r.seq > top).sort((a, b) => b.seq - a.seq);
        this.liveDuringReplace = [];
        if (this._paused) this._held = late;
        else this.store.prepend(late);
        if (this.missedDuringReplace) {
          // Records committed while this page was read may be missing: fetch again (or offer to, when paused).
          this.missedDuringReplace = false;
          if (this._paused) this._heldOverflow = true;
          else queueMicrotask(() => this.replaceQuery());
        }
        this.effects.scrollToTop();
        if (this._selectedSeq !== null && this.store.indexOfSeq(this._selectedSeq) < 0) {
          this._selectedSeq = null;
        }
        break;
      }
      case 'more':
        this._moreInFlight = false;
        this.store.appendPage(msg.records);
        this._nextBefore = msg.nextBefore;
        break;
      case 'fill':
        if (request.seq !== undefined) this.fillsInFlight.delete(request.seq);
        this.store.fill(msg.records);
        break;
    }
    this.hideBanner();
    this.effects.changed();
  }

  /** Newly committed records (or word that a flood was dropped): shown, held or merged later. */
  onAppended(msg: AppendedNotification): void {
    if (this._running !== true) return;
    if (msg.truncated) {
      if (this._replacing) {
        this.missedDuringReplace = true;
        return;
      }
      if (this._paused) {
        this._heldOverflow = true;
        this._held = [];
        this.effects.changed();
      } else {
        this.replaceQuery();
      }
      return;
    }
    this.remember(msg.records);
    const matching = msg.records.filter((r) => matchesFilters(r, this._filters));
    if (matching.length === 0) {
      this.effects.changed();
      return;
    }
    if (this._replacing) {
      this.liveDuringReplace.push(...matching);
    } else if (this._paused) {
      if (!this._heldOverflow) {
        const top = Math.max(this.store.topSeq, this._held.length > 0 ? this._held[0].seq : 0);
        this._held = matching.filter((r) => r.seq > top).concat(this._held);
        if (this._held.length > MAX_HELD) {
          this._held = [];
          this._heldOverflow = true;
        }
      }
    } else {
      this.insertLive(matching);
    }
    this.effects.changed();
  }

  /** The chain verification finished. */
  onVerified(result: VerifyResult): void {
    this._verify = { kind: 'done', result };
    this.effects.changed();
  }

  /** A command failed; `requestId` names the query it answers, if any. */
  onError(message: string, requestId: number | undefined): void {
    let retry: (() => void) | null = null;
    if (requestId !== undefined) {
      const request = this.requests.get(requestId);
      this.requests.delete(requestId);
      if (!request || request.generation !== this.generation) return;
      if (request.kind === 'replace') {
        this._replacing = false;
        retry = () => this.replaceQuery();
      } else {
        if (request.kind === 'more') this._moreInFlight = false;
        if (request.seq !== undefined) this.fillsInFlight.delete(request.seq);
        this.pagingBlocked = true;
        retry = () => {
          this.pagingBlocked = false;
          this.effects.changed();
        };
      }
    }
    if (this._verify.kind === 'pending' && requestId === undefined) this._verify = { kind: 'idle' };
    this._banner = { message, canRetry: retry !== null };
    this.bannerRetry = retry;
    this.effects.changed();
  }

  // -------------------------------------------------------------------------------------------
  // User actions

  /** New filters: saved, and the table is queried again (nothing happens when they select the same). */
  setFilters(next: AuditFilters): void {
    if (sameFilters(next, this._filters)) return;
    this._filters = next;
    this.persist();
    this.replaceQuery();
  }

  /** Drops the session filter (the session chip). */
  clearSession(): void {
    const next = { ...this._filters };
    delete next.sessionId;
    this.setFilters(next);
  }

  /** Live <-> paused; going live shows what was held. */
  togglePaused(): void {
    this._paused = !this._paused;
    this.persist();
    if (!this._paused) this.showHeld();
    this.effects.changed();
  }

  /** Shows the records held while paused (or queries again when too many arrived). */
  showHeld(): void {
    if (this._heldOverflow) {
      this.replaceQuery();
      return;
    }
    this.insertLive(this._held);
    this._held = [];
    this.effects.scrollToTop();
    this.effects.changed();
  }

  /** Asks the host to verify the hash chain (only while a server is attached). */
  startVerify(): boolean {
    if (this._running !== true) return false;
    this._verify = { kind: 'pending' };
    this.effects.post({ type: 'verify' });
    return true;
  }

  /** Runs the banner's retry, if it has one, and hides it. */
  retryBanner(): void {
    const retry = this.bannerRetry;
    this.hideBanner();
    retry?.();
    this.effects.changed();
  }

  /** Hides the banner without retrying. */
  dismissBanner(): void {
    this.hideBanner();
    this.effects.changed();
  }

  /** Row index of the selection, or -1. */
  selectedIndex(): number {
    return this._selectedSeq === null ? -1 : this.store.indexOfSeq(this._selectedSeq);
  }

  /**
   * Selects row `index` (clamped to the rows); an open details pane follows it when its record is
   * loaded. Returns the selected index, or -1 when there are no rows.
   */
  select(index: number): number {
    if (this.store.length === 0) return -1;
    const i = Math.max(0, Math.min(this.store.length - 1, index));
    this._selectedSeq = this.store.seqAt(i);
    if (this._details !== null) {
      const r = this.store.get(i);
      if (r) this.showDetails(r);
    }
    this.effects.changed();
    return i;
  }

  /** Opens the details pane on the selected row, when its record is loaded. */
  openSelected(): void {
    const i = this.selectedIndex();
    const r = i >= 0 ? this.store.get(i) : null;
    if (r) {
      this.showDetails(r);
      this.effects.changed();
    }
  }

  /** Closes the details pane. */
  closeDetails(): void {
    this._details = null;
    this.effects.changed();
  }

  /**
   * The rows `[start, end)` are on screen: asks for the next older page near the end, for evicted
   * records in view, and evicts records far away when too many are held.
   */
  onViewport(start: number, end: number): void {
    const count = this.store.length;
    if (end >= count - PREFETCH_ROWS) this.requestMore();
    const missing = this.store.firstMissing(start, end);
    if (missing >= 0) this.requestFill(missing);
    if (this.store.loaded > EVICT_AT) this.store.evict(start - KEEP_MARGIN, end + KEEP_MARGIN, MAX_LOADED);
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  private replaceQuery(): void {
    if (this._running !== true) return;
    this.generation++;
    this.requests.clear();
    this._replacing = true;
    this._moreInFlight = false;
    this.fillsInFlight.clear();
    this.pagingBlocked = false;
    this.liveDuringReplace = [];
    this.missedDuringReplace = false;
    this._held = [];
    this._heldOverflow = false;
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { kind: 'replace', generation: this.generation });
    this.effects.post({ type: 'query', requestId, filters: this._filters, limit: PAGE_SIZE });
    this.effects.changed();
  }

  private requestMore(): void {
    if (this._nextBefore === null || this._moreInFlight || this._replacing) return;
    if (this.pagingBlocked || this._running !== true) return;
    this._moreInFlight = true;
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { kind: 'more', generation: this.generation });
    this.effects.post({
      type: 'query',
      requestId,
      filters: this._filters,
      before: this._nextBefore,
      limit: PAGE_SIZE,
    });
  }

  private requestFill(index: number): void {
    if (this._replacing || this.pagingBlocked || this._running !== true) return;
    if (this.fillsInFlight.size >= MAX_FILLS) return;
    const seq = this.store.seqAt(index);
    if (this.fillsInFlight.has(seq)) return;
    this.fillsInFlight.add(seq);
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { kind: 'fill', generation: this.generation, seq });
    this.effects.post({
      type: 'query',
      requestId,
      filters: this._filters,
      before: seq + 1,
      limit: PAGE_SIZE,
    });
  }

  /** Puts live records (newest first) on top, keeping the rows under the user still when scrolled down. */
  private insertLive(records: readonly AuditRecord[]): void {
    const added = this.store.prepend(records);
    if (added > 0) this.effects.rowsInserted(added);
  }

  private showDetails(record: AuditRecord): void {
    this._details = { record, version: ++this.detailsVersion };
  }

  private hideBanner(): void {
    this._banner = null;
    this.bannerRetry = null;
  }

  private persist(): void {
    this.effects.persist({ filters: this._filters, paused: this._paused });
  }

  private remember(records: readonly AuditRecord[]): void {
    for (const r of records) {
      this.rememberOperation(r.op, MAX_SEEN);
      if (!this.agents.has(r.agent) && this.agents.size < MAX_SEEN) {
        this.agents.add(r.agent);
        this._agentsVersion++;
      }
    }
  }

  private rememberOperation(op: string, cap: number): void {
    if (!this.operations.has(op) && this.operations.size < cap) {
      this.operations.add(op);
      this._operationsVersion++;
    }
  }
}

/**
 * The row a navigation key moves the selection to (clamped later by {@link AuditViewState.select}),
 * `'open'` for Enter and Space, or null for any other key. With no selection, movement starts from
 * the first visible row.
 */
export function keyTarget(
  key: string,
  nav: { current: number; firstVisible: number; pageRows: number; count: number },
): number | 'open' | null {
  const from = nav.current < 0 ? nav.firstVisible : nav.current;
  switch (key) {
    case 'ArrowDown':
      return nav.current < 0 ? nav.firstVisible : nav.current + 1;
    case 'ArrowUp':
      return nav.current < 0 ? nav.firstVisible : nav.current - 1;
    case 'PageDown':
      return from + nav.pageRows;
    case 'PageUp':
      return from - nav.pageRows;
    case 'Home':
      return 0;
    case 'End':
      return nav.count - 1;
    case 'Enter':
    case ' ':
      return 'open';
    default:
      return null;
  }
}
