/// <reference lib="dom" />
/**
 * The audit-log webview: toolbar, virtualised table, details pane. Bundled by esbuild to media/audit.js
 * (IIFE, browser). Records hold agent-controlled strings: they only ever reach the DOM as textContent.
 */
import type {
  AppendedNotification,
  AuditFilters,
  AuditRecord,
  HostMessage,
  RecordsNotification,
  StatusNotification,
  VerifyResult,
  WebviewMessage,
} from '../../src/extension/webview/protocol';
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
  scrollToReveal,
  visibleRange,
} from '../../src/extension/webview/model';

interface PersistedState {
  filters: AuditFilters;
  paused: boolean;
}

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: PersistedState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** Must match `.row { height }` in audit.css. */
const ROW_HEIGHT = 22;
const PAGE_SIZE = 500;
/** Ask for the next older page when the view is this close to the last row. */
const PREFETCH_ROWS = 200;
const OVERSCAN = 8;
/** Records held in memory: above EVICT_AT, those far from the viewport are dropped down to MAX_LOADED. */
const MAX_LOADED = 20_000;
const EVICT_AT = 25_000;
const KEEP_MARGIN = 1_000;
const MAX_FILLS = 2;
/** Live records held while paused before the view just offers to reload. */
const MAX_HELD = 5_000;
const SEARCH_DEBOUNCE_MS = 300;
const MAX_SEEN = 500;

const vscode = acquireVsCodeApi();

// ---------------------------------------------------------------------------------------------
// DOM helpers (textContent only)

interface Props {
  className?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string>;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function option(value: string, label: string): HTMLOptionElement {
  const o = h('option', { text: label });
  o.value = value;
  return o;
}

function debounce(fn: () => void, ms: number): { (): void; flush(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = (): void => {
    timer = undefined;
    fn();
  };
  const debounced = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  debounced.flush = (): void => {
    if (timer === undefined) return;
    clearTimeout(timer);
    run();
  };
  return debounced;
}

// ---------------------------------------------------------------------------------------------
// State

function restoreState(): PersistedState {
  const saved = vscode.getState() as Partial<PersistedState> | undefined;
  const filters: AuditFilters = {};
  const f = (saved?.filters ?? {}) as Record<string, unknown>;
  for (const key of ['agent', 'op', 'sessionId', 'text'] as const) {
    if (typeof f[key] === 'string' && f[key] !== '') filters[key] = f[key];
  }
  if (f.decision === 'allow' || f.decision === 'deny') filters.decision = f.decision;
  return { filters, paused: saved?.paused === true };
}

const saved = restoreState();
let filters: AuditFilters = saved.filters;
let paused = saved.paused;
/** null until the host has told us whether a server is attached. */
let running: boolean | null = null;

const store = new RowStore();
let nextBefore: number | null = null;
/** Bumped by every fresh (first-page) query; answers to older ones are dropped. */
let generation = 0;
let nextRequestId = 1;
type Request = { kind: 'replace' | 'more' | 'fill'; generation: number; seq?: number };
const requests = new Map<number, Request>();
let replacing = false;
let moreInFlight = false;
const fillsInFlight = new Set<number>();
/** Paging failed: stop asking until the user retries. */
let pagingBlocked = false;
/** Live records that arrived while a fresh query was in flight (merged when it answers). */
let liveDuringReplace: AuditRecord[] = [];
/** The host dropped a flood of live records while a fresh query was in flight. */
let missedDuringReplace = false;
/** Matching live records held while paused, newest first. */
let held: AuditRecord[] = [];
let heldOverflow = false;

let selectedSeq: number | null = null;

const operations = new Set<string>();
const agents = new Set<string>();
let operationsDirty = true;
let agentsDirty = true;

let verifyState: { kind: 'idle' } | { kind: 'pending' } | { kind: 'done'; result: VerifyResult } = {
  kind: 'idle',
};

function persist(): void {
  vscode.setState({ filters, paused });
}

function post(message: WebviewMessage): void {
  vscode.postMessage(message);
}

// ---------------------------------------------------------------------------------------------
// Layout

const app = document.getElementById('app') ?? document.body;

const agentInput = h('input', {
  className: 'filter agent',
  title: 'Show only this agent (exact name)',
  attrs: {
    type: 'search',
    placeholder: 'Agent',
    list: 'audit-agents',
    'aria-label': 'Agent',
    spellcheck: 'false',
  },
});
const agentList = h('datalist', { attrs: { id: 'audit-agents' } });
const opSelect = h('select', { className: 'filter op', attrs: { 'aria-label': 'Operation' } });
const decisionSelect = h(
  'select',
  { className: 'filter decision', attrs: { 'aria-label': 'Decision' } },
  option('', 'All decisions'),
  option('allow', 'Allowed'),
  option('deny', 'Denied'),
);
const searchInput = h('input', {
  className: 'filter search',
  title: 'Case-insensitive text anywhere in the record',
  attrs: {
    type: 'search',
    placeholder: 'Search records',
    'aria-label': 'Search records',
    spellcheck: 'false',
  },
});
const sessionChipText = h('span');
const sessionChip = h(
  'button',
  {
    className: 'session-chip',
    title: 'Showing one session only. Click to show all sessions.',
    attrs: { type: 'button' },
  },
  sessionChipText,
  h('span', { className: 'chip-x', text: ' ✕', attrs: { 'aria-hidden': 'true' } }),
);
const liveButton = h('button', { className: 'live-toggle', attrs: { type: 'button' } });
const verifyButton = h('button', {
  className: 'verify',
  text: 'Verify chain',
  title: 'Check every record against the hash chain',
  attrs: { type: 'button' },
});
const verifyStatus = h('span', {
  className: 'verify-status',
  attrs: { role: 'status', 'aria-live': 'polite' },
});

const toolbar = h(
  'div',
  { className: 'toolbar', attrs: { role: 'toolbar', 'aria-label': 'Audit log filters' } },
  agentInput,
  agentList,
  opSelect,
  decisionSelect,
  searchInput,
  sessionChip,
  h('span', { className: 'spacer' }),
  liveButton,
  verifyButton,
  verifyStatus,
);

const bannerText = h('span', { className: 'banner-text' });
const bannerRetry = h('button', { className: 'link', text: 'Retry', attrs: { type: 'button' } });
const bannerClose = h('button', {
  className: 'icon',
  text: '✕',
  title: 'Dismiss',
  attrs: { type: 'button', 'aria-label': 'Dismiss' },
});
const banner = h(
  'div',
  { className: 'banner', attrs: { role: 'alert' } },
  bannerText,
  bannerRetry,
  bannerClose,
);
banner.hidden = true;

const COLUMNS = ['Time', 'Agent', 'Operation', 'Target', 'Decision', 'Outcome', 'Duration'];
const header = h(
  'div',
  { className: 'thead', attrs: { role: 'row', 'aria-rowindex': '1' } },
  ...COLUMNS.map((name, i) =>
    h('div', { className: `cell c${i}`, text: name, attrs: { role: 'columnheader' } }),
  ),
);
const tbody = h('div', { className: 'tbody', attrs: { role: 'rowgroup' } });
const viewport = h(
  'div',
  { className: 'viewport', attrs: { role: 'grid', tabindex: '0', 'aria-label': 'Audit records' } },
  header,
  tbody,
);
const emptyState = h('div', { className: 'empty' });
const newChip = h('button', { className: 'new-chip', attrs: { type: 'button' } });
newChip.hidden = true;
const table = h('div', { className: 'table' }, viewport, emptyState, newChip);

const detailsTitle = h('span', { className: 'details-title' });
const detailsClose = h('button', {
  className: 'icon',
  text: '✕',
  title: 'Close details (Escape)',
  attrs: { type: 'button', 'aria-label': 'Close details' },
});
const detailsBody = h('div', { className: 'details-body' });
const details = h(
  'aside',
  { className: 'details', attrs: { 'aria-label': 'Record details' } },
  h('div', { className: 'details-head' }, detailsTitle, detailsClose),
  detailsBody,
);
details.hidden = true;

const footerCount = h('span', { className: 'count' });
const footerState = h('span', { className: 'state' });
const footer = h('div', { className: 'footer' }, footerCount, footerState);

app.replaceChildren(toolbar, banner, h('div', { className: 'main' }, table, details), footer);

// ---------------------------------------------------------------------------------------------
// Queries

function replaceQuery(): void {
  if (running !== true) return;
  generation++;
  requests.clear();
  replacing = true;
  moreInFlight = false;
  fillsInFlight.clear();
  pagingBlocked = false;
  liveDuringReplace = [];
  missedDuringReplace = false;
  held = [];
  heldOverflow = false;
  const requestId = nextRequestId++;
  requests.set(requestId, { kind: 'replace', generation });
  post({ type: 'query', requestId, filters, limit: PAGE_SIZE });
  scheduleRender();
}

function requestMore(): void {
  if (nextBefore === null || moreInFlight || replacing || pagingBlocked || running !== true) return;
  moreInFlight = true;
  const requestId = nextRequestId++;
  requests.set(requestId, { kind: 'more', generation });
  post({ type: 'query', requestId, filters, before: nextBefore, limit: PAGE_SIZE });
}

function requestFill(index: number): void {
  if (replacing || pagingBlocked || fillsInFlight.size >= MAX_FILLS || running !== true) return;
  const seq = store.seqAt(index);
  if (fillsInFlight.has(seq)) return;
  fillsInFlight.add(seq);
  const requestId = nextRequestId++;
  requests.set(requestId, { kind: 'fill', generation, seq });
  post({ type: 'query', requestId, filters, before: seq + 1, limit: PAGE_SIZE });
}

function remember(records: readonly AuditRecord[]): void {
  for (const r of records) {
    if (!operations.has(r.op) && operations.size < MAX_SEEN) {
      operations.add(r.op);
      operationsDirty = true;
    }
    if (!agents.has(r.agent) && agents.size < MAX_SEEN) {
      agents.add(r.agent);
      agentsDirty = true;
    }
  }
}

function onRecords(msg: RecordsNotification): void {
  const request = requests.get(msg.requestId);
  requests.delete(msg.requestId);
  if (!request || request.generation !== generation) return;
  remember(msg.records);
  switch (request.kind) {
    case 'replace': {
      replacing = false;
      store.clear();
      store.appendPage(msg.records);
      nextBefore = msg.nextBefore;
      const top = store.topSeq;
      const late = liveDuringReplace.filter((r) => r.seq > top).sort((a, b) => b.seq - a.seq);
      liveDuringReplace = [];
      if (paused) held = late;
      else store.prepend(late);
      if (missedDuringReplace) {
        // Records committed while this page was read may be missing: fetch again (or offer to, when paused).
        missedDuringReplace = false;
        if (paused) heldOverflow = true;
        else queueMicrotask(replaceQuery);
      }
      viewport.scrollTop = 0;
      if (selectedSeq !== null && store.indexOfSeq(selectedSeq) < 0) selectedSeq = null;
      break;
    }
    case 'more':
      moreInFlight = false;
      store.appendPage(msg.records);
      nextBefore = msg.nextBefore;
      break;
    case 'fill':
      if (request.seq !== undefined) fillsInFlight.delete(request.seq);
      store.fill(msg.records);
      break;
  }
  hideBanner();
  scheduleRender();
}

function onAppended(msg: AppendedNotification): void {
  if (running !== true) return;
  if (msg.truncated) {
    if (replacing) {
      missedDuringReplace = true;
      return;
    }
    if (paused) {
      heldOverflow = true;
      held = [];
      scheduleRender();
    } else {
      replaceQuery();
    }
    return;
  }
  remember(msg.records);
  const matching = msg.records.filter((r) => matchesFilters(r, filters));
  if (matching.length === 0) {
    scheduleRender();
    return;
  }
  if (replacing) {
    liveDuringReplace.push(...matching);
  } else if (paused) {
    if (!heldOverflow) {
      const top = Math.max(store.topSeq, held.length > 0 ? held[0].seq : 0);
      held = matching.filter((r) => r.seq > top).concat(held);
      if (held.length > MAX_HELD) {
        held = [];
        heldOverflow = true;
      }
    }
  } else {
    insertLive(matching);
  }
  scheduleRender();
}

/** Puts live records (newest first) on top, keeping the rows under the user still when scrolled down. */
function insertLive(records: readonly AuditRecord[]): void {
  const added = store.prepend(records);
  if (added > 0 && viewport.scrollTop > 0) viewport.scrollTop += added * ROW_HEIGHT;
}

function showHeld(): void {
  if (heldOverflow) {
    replaceQuery();
    return;
  }
  insertLive(held);
  held = [];
  viewport.scrollTop = 0;
  scheduleRender();
}

function onStatus(msg: StatusNotification): void {
  for (const op of msg.operations) {
    if (!operations.has(op)) {
      operations.add(op);
      operationsDirty = true;
    }
  }
  running = msg.running;
  verifyState = { kind: 'idle' };
  if (running) {
    replaceQuery();
  } else {
    generation++;
    requests.clear();
    replacing = false;
    store.clear();
    nextBefore = null;
    held = [];
    heldOverflow = false;
    closeDetails();
    hideBanner();
  }
  scheduleRender();
}

function onError(message: string, requestId: number | undefined): void {
  let retry: (() => void) | null = null;
  if (requestId !== undefined) {
    const request = requests.get(requestId);
    requests.delete(requestId);
    if (!request || request.generation !== generation) return;
    if (request.kind === 'replace') {
      replacing = false;
      retry = replaceQuery;
    } else {
      if (request.kind === 'more') moreInFlight = false;
      if (request.seq !== undefined) fillsInFlight.delete(request.seq);
      pagingBlocked = true;
      retry = () => {
        pagingBlocked = false;
        scheduleRender();
      };
    }
  }
  if (verifyState.kind === 'pending' && requestId === undefined) verifyState = { kind: 'idle' };
  showBanner(message, retry);
  scheduleRender();
}

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const msg = event.data;
  switch (msg?.type) {
    case 'status':
      onStatus(msg);
      break;
    case 'records':
      onRecords(msg);
      break;
    case 'appended':
      onAppended(msg);
      break;
    case 'verified':
      verifyState = { kind: 'done', result: msg.result };
      renderToolbar();
      break;
    case 'error':
      onError(msg.message, msg.requestId);
      break;
  }
});

// ---------------------------------------------------------------------------------------------
// Banner

let bannerRetryAction: (() => void) | null = null;

function showBanner(message: string, retry: (() => void) | null): void {
  bannerText.textContent = message;
  bannerRetryAction = retry;
  bannerRetry.hidden = retry === null;
  banner.hidden = false;
}

function hideBanner(): void {
  banner.hidden = true;
  bannerRetryAction = null;
}

bannerRetry.addEventListener('click', () => {
  const retry = bannerRetryAction;
  hideBanner();
  retry?.();
});
bannerClose.addEventListener('click', hideBanner);

// ---------------------------------------------------------------------------------------------
// Rendering

interface RowView {
  el: HTMLDivElement;
  cells: HTMLDivElement[];
  badge: HTMLSpanElement;
  outcome: HTMLSpanElement;
  /** What the row shows now: `seq`, or -seq while its record is still loading. */
  shown: number;
}

const pool: RowView[] = [];
let renderQueued = false;

function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function createRow(): RowView {
  const cells = COLUMNS.map((_, i) => h('div', { className: `cell c${i}`, attrs: { role: 'gridcell' } }));
  const badge = h('span', { className: 'badge' });
  const outcome = h('span', { className: 'outcome' });
  cells[4].append(badge);
  cells[5].append(outcome);
  const el = h('div', { className: 'row', attrs: { role: 'row' } }, ...cells);
  tbody.append(el);
  return { el, cells, badge, outcome, shown: 0 };
}

function fillRow(view: RowView, index: number): void {
  const seq = store.seqAt(index);
  const r = store.get(index);
  const shown = r ? seq : -seq;
  view.el.dataset.index = String(index);
  view.el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
  view.el.setAttribute('aria-rowindex', String(index + 2));
  const selected = seq === selectedSeq;
  view.el.classList.toggle('selected', selected);
  view.el.setAttribute('aria-selected', String(selected));
  if (selected) view.el.id = 'audit-selected-row';
  else if (view.el.id) view.el.removeAttribute('id');
  if (view.shown === shown) return;
  view.shown = shown;
  view.el.classList.toggle('placeholder', r === null);
  view.el.classList.toggle('denied', r?.decision === 'deny');
  const [time, agent, op, target, , , duration] = view.cells;
  if (r === null) {
    time.textContent = `#${seq} …`;
    time.title = '';
    for (const c of [agent, op, target, duration]) {
      c.textContent = '';
      c.title = '';
    }
    view.badge.textContent = '';
    view.badge.className = 'badge';
    view.outcome.textContent = '';
    return;
  }
  time.textContent = formatLocalTime(r.ts);
  time.title = `#${r.seq} · ${r.ts}`;
  agent.textContent = r.agent;
  agent.title = `${r.agent} (${r.role}) via ${r.transport}`;
  op.textContent = r.op;
  op.title = r.op;
  const targetText = describeTarget(r);
  target.textContent = targetText;
  target.title = targetText;
  view.badge.textContent = decisionLabel(r.decision);
  view.badge.className = `badge ${r.decision}`;
  view.badge.title = decisionTitle(r);
  const outcome = formatOutcome(r);
  view.outcome.textContent = outcome.label;
  view.outcome.className = outcome.ok ? 'outcome ok' : 'outcome err';
  const message = (r.outcome as Record<string, unknown> | null)?.message;
  view.outcome.title = typeof message === 'string' ? message : outcome.label;
  duration.textContent = formatDuration(r.durationMs);
  duration.title = `${r.durationMs} ms`;
}

function bodyHeight(): number {
  return Math.max(0, viewport.clientHeight - header.offsetHeight);
}

function render(): void {
  const count = store.length;
  tbody.style.height = `${count * ROW_HEIGHT}px`;
  viewport.setAttribute('aria-rowcount', String(count + 1));
  const { start, end } = visibleRange(viewport.scrollTop, bodyHeight(), ROW_HEIGHT, count, OVERSCAN);

  while (pool.length < end - start) pool.push(createRow());
  for (let k = 0; k < pool.length; k++) {
    const view = pool[k];
    const index = start + k;
    if (index < end) {
      view.el.hidden = false;
      fillRow(view, index);
    } else if (!view.el.hidden) {
      view.el.hidden = true;
      view.shown = 0;
      view.el.classList.remove('selected');
      if (view.el.id) view.el.removeAttribute('id');
    }
  }
  if (selectedSeq !== null && pool.some((v) => !v.el.hidden && v.el.id === 'audit-selected-row')) {
    viewport.setAttribute('aria-activedescendant', 'audit-selected-row');
  } else {
    viewport.removeAttribute('aria-activedescendant');
  }

  if (end >= count - PREFETCH_ROWS) requestMore();
  const missing = store.firstMissing(start, end);
  if (missing >= 0) requestFill(missing);
  if (store.loaded > EVICT_AT) store.evict(start - KEEP_MARGIN, end + KEEP_MARGIN, MAX_LOADED);

  renderEmpty(count);
  renderChip();
  renderToolbar();
  renderFooter(count);
}

function renderEmpty(count: number): void {
  let text = '';
  let detail = '';
  if (running === false) {
    text = 'Server stopped';
    detail = 'Start the MCP Workspace server to see its audit log.';
  } else if (running === null || (replacing && count === 0)) {
    text = 'Loading…';
  } else if (count === 0) {
    text = hasFilters(filters) ? 'No records match' : 'No audit records yet';
    detail = hasFilters(filters)
      ? 'Change or clear the filters.'
      : 'Agent actions appear here as they happen.';
  }
  emptyState.hidden = text === '';
  emptyState.replaceChildren(h('div', { className: 'empty-title', text }));
  if (detail) emptyState.append(h('div', { className: 'empty-detail', text: detail }));
}

function renderChip(): void {
  const n = held.length;
  newChip.hidden = !(paused && (n > 0 || heldOverflow));
  newChip.textContent = heldOverflow
    ? `${MAX_HELD.toLocaleString()}+ new · reload`
    : `${n.toLocaleString()} new`;
  newChip.title = 'Show the records that arrived while paused';
}

function renderToolbar(): void {
  if (operationsDirty) {
    operationsDirty = false;
    const names = [...operations].sort();
    if (filters.op && !operations.has(filters.op)) names.unshift(filters.op);
    opSelect.replaceChildren(option('', 'All operations'), ...names.map((n) => option(n, n)));
    opSelect.value = filters.op ?? '';
  }
  if (agentsDirty) {
    agentsDirty = false;
    agentList.replaceChildren(...[...agents].sort().map((a) => option(a, a)));
  }
  sessionChip.hidden = !filters.sessionId;
  sessionChipText.textContent = `Session ${filters.sessionId ?? ''}`;
  liveButton.textContent = paused ? '❚❚ Paused' : '● Live';
  liveButton.classList.toggle('paused', paused);
  liveButton.setAttribute('aria-pressed', String(!paused));
  liveButton.title = paused
    ? 'Paused: new records are held back. Click to go live.'
    : 'Live: new records appear on top. Click to pause.';

  verifyButton.disabled = running !== true || verifyState.kind === 'pending';
  verifyStatus.className = 'verify-status';
  verifyStatus.title = '';
  if (verifyState.kind === 'pending') {
    verifyStatus.textContent = 'Verifying…';
  } else if (verifyState.kind === 'done') {
    const result = verifyState.result;
    if (result.ok) {
      verifyStatus.textContent = `✓ Intact · ${result.records.toLocaleString()} records`;
      verifyStatus.classList.add('ok');
      verifyStatus.title = `Chain head ${result.head}`;
    } else {
      verifyStatus.textContent = `✗ Tampered at #${result.badSeq}: ${result.reason}`;
      verifyStatus.classList.add('bad');
      verifyStatus.title = `Tampered at #${result.badSeq}: ${result.reason}\n${result.records.toLocaleString()} records before it are intact.`;
    }
  } else {
    verifyStatus.textContent = '';
  }
}

function renderFooter(count: number): void {
  if (running !== true) {
    footerCount.textContent = '';
  } else {
    const more = nextBefore !== null ? '+' : '';
    footerCount.textContent = `${count.toLocaleString()}${more} record${count === 1 && !more ? '' : 's'}${
      hasFilters(filters) ? ' matching' : ''
    }`;
  }
  const parts: string[] = [];
  if (replacing || moreInFlight || fillsInFlight.size > 0) parts.push('Loading…');
  else if (running === true && nextBefore === null && count > 0) parts.push('End of log');
  footerState.textContent = parts.join(' · ');
}

// ---------------------------------------------------------------------------------------------
// Selection and details

function selectedIndex(): number {
  return selectedSeq === null ? -1 : store.indexOfSeq(selectedSeq);
}

function select(index: number, reveal: boolean): void {
  if (store.length === 0) return;
  const i = Math.max(0, Math.min(store.length - 1, index));
  selectedSeq = store.seqAt(i);
  if (reveal) viewport.scrollTop = scrollToReveal(i, viewport.scrollTop, bodyHeight(), ROW_HEIGHT);
  if (!details.hidden) {
    const r = store.get(i);
    if (r) showDetails(r);
  }
  scheduleRender();
}

function field(label: string, value: string, className = ''): HTMLElement[] {
  return [h('dt', { text: label }), h('dd', { className, text: value })];
}

function showDetails(r: AuditRecord): void {
  details.hidden = false;
  detailsTitle.textContent = `#${r.seq} · ${r.op}`;
  const outcome = formatOutcome(r);
  const decision = h('dd');
  decision.append(h('span', { className: `badge ${r.decision}`, text: decisionLabel(r.decision) }));
  decision.append(
    h('span', { className: 'muted', text: ` ${r.rule ? `rule ${r.rule}` : decisionTitle(r)}` }),
  );
  const session = h('dd', { className: 'mono', text: r.sessionId ?? '(none)' });
  const sessionId = r.sessionId;
  if (sessionId !== null && filters.sessionId !== sessionId) {
    const only = h('button', { className: 'link', text: 'only this session', attrs: { type: 'button' } });
    only.addEventListener('click', () => setFilters({ ...filters, sessionId }));
    session.append(' ', only);
  }
  const list = h(
    'dl',
    {},
    ...field('Sequence', `#${r.seq}`),
    ...field('Time', `${formatLocalTime(r.ts)}  (${r.ts})`),
    h('dt', { text: 'Session' }),
    session,
    ...field('Agent', `${r.agent} (${r.role})`),
    ...field('Transport', r.transport),
    ...field('Operation', r.op),
    h('dt', { text: 'Decision' }),
    decision,
    ...field('Outcome', outcome.label, outcome.ok ? 'ok' : 'err'),
    ...field(
      'Duration',
      r.durationMs >= 1000
        ? `${formatDuration(r.durationMs)} (${Math.round(r.durationMs).toLocaleString()} ms)`
        : formatDuration(r.durationMs),
    ),
    ...field('Hash', r.hash, 'mono hash'),
    ...field('Previous', r.prev, 'mono hash'),
  );
  detailsBody.replaceChildren(
    list,
    h('h3', { text: 'Parameters (redacted)' }),
    h('pre', { text: prettyJson(r.params) }),
    h('h3', { text: 'Outcome' }),
    h('pre', { text: prettyJson(r.outcome) }),
  );
  detailsBody.scrollTop = 0;
}

function closeDetails(): void {
  details.hidden = true;
}

function openSelected(): void {
  const i = selectedIndex();
  const r = i >= 0 ? store.get(i) : null;
  if (r) showDetails(r);
}

// ---------------------------------------------------------------------------------------------
// Events

tbody.addEventListener('click', (event) => {
  const row = (event.target as HTMLElement).closest<HTMLElement>('.row');
  if (!row?.dataset.index) return;
  const index = Number(row.dataset.index);
  select(index, false);
  openSelected();
  viewport.focus({ preventScroll: true });
});

viewport.addEventListener('scroll', scheduleRender, { passive: true });
new ResizeObserver(scheduleRender).observe(viewport);

viewport.addEventListener('keydown', (event) => {
  const page = Math.max(1, Math.floor(bodyHeight() / ROW_HEIGHT) - 1);
  const current = selectedIndex();
  const firstVisible = Math.floor(viewport.scrollTop / ROW_HEIGHT);
  let target: number;
  switch (event.key) {
    case 'ArrowDown':
      target = current < 0 ? firstVisible : current + 1;
      break;
    case 'ArrowUp':
      target = current < 0 ? firstVisible : current - 1;
      break;
    case 'PageDown':
      target = (current < 0 ? firstVisible : current) + page;
      break;
    case 'PageUp':
      target = (current < 0 ? firstVisible : current) - page;
      break;
    case 'Home':
      target = 0;
      break;
    case 'End':
      target = store.length - 1;
      break;
    case 'Enter':
    case ' ':
      openSelected();
      event.preventDefault();
      return;
    default:
      return;
  }
  event.preventDefault();
  select(target, true);
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !details.hidden) {
    closeDetails();
    viewport.focus({ preventScroll: true });
    event.preventDefault();
  }
});

detailsClose.addEventListener('click', () => {
  closeDetails();
  viewport.focus({ preventScroll: true });
});

function setFilters(next: AuditFilters): void {
  const same =
    next.agent === filters.agent &&
    next.op === filters.op &&
    next.decision === filters.decision &&
    next.sessionId === filters.sessionId &&
    next.text === filters.text;
  if (same) return;
  filters = next;
  persist();
  replaceQuery();
}

function readFilters(): AuditFilters {
  const next: AuditFilters = {};
  const agent = agentInput.value.trim();
  if (agent) next.agent = agent;
  if (opSelect.value) next.op = opSelect.value;
  if (decisionSelect.value === 'allow' || decisionSelect.value === 'deny')
    next.decision = decisionSelect.value;
  if (filters.sessionId) next.sessionId = filters.sessionId;
  const text = searchInput.value.trim();
  if (text) next.text = text.slice(0, 200);
  return next;
}

const applyTyped = debounce(() => setFilters(readFilters()), SEARCH_DEBOUNCE_MS);
agentInput.addEventListener('input', applyTyped);
searchInput.addEventListener('input', applyTyped);
for (const input of [agentInput, searchInput]) {
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') applyTyped.flush();
  });
  input.addEventListener('change', () => applyTyped.flush());
}
opSelect.addEventListener('change', () => setFilters(readFilters()));
decisionSelect.addEventListener('change', () => setFilters(readFilters()));

liveButton.addEventListener('click', () => {
  paused = !paused;
  persist();
  if (!paused) showHeld();
  scheduleRender();
});
newChip.addEventListener('click', showHeld);
sessionChip.addEventListener('click', () => {
  const next = { ...filters };
  delete next.sessionId;
  setFilters(next);
});

verifyButton.addEventListener('click', () => {
  if (running !== true) return;
  verifyState = { kind: 'pending' };
  renderToolbar();
  post({ type: 'verify' });
});

// ---------------------------------------------------------------------------------------------
// Start

agentInput.value = filters.agent ?? '';
searchInput.value = filters.text ?? '';
decisionSelect.value = filters.decision ?? '';
render();
post({ type: 'ready' });
