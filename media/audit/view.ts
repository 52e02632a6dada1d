/// <reference lib="dom" />
/**
 * Renders the audit webview's state into its DOM: the visible rows, the toolbar, the banner, the
 * empty-table message, the "new records" chip, the footer and the details pane. Rendering is batched
 * to one animation frame; it also tells the state which rows are on screen (paging, fills, eviction).
 */
import type { AuditRecord } from '../../src/extension/webview/protocol';
import {
  decisionLabel,
  decisionTitle,
  formatDuration,
  formatLocalTime,
  formatOutcome,
  prettyJson,
  scrollToReveal,
  visibleRange,
} from '../../src/extension/webview/model';
import { h, option } from './dom';
import { ROW_HEIGHT, type Layout } from './layout';
import {
  emptyMessage,
  footerText,
  liveToggle,
  newRecordsChip,
  operationChoices,
  verifyStatus,
} from './display';
import type { AuditViewState } from './state';
import { SELECTED_ROW_ID, TableRows } from './table';

/** Rows rendered beyond each edge of the viewport. */
const OVERSCAN = 8;

/** The view of one {@link AuditViewState}. */
export class AuditView {
  private readonly rows: TableRows;
  private renderQueued = false;
  private operationsShown = -1;
  private agentsShown = -1;
  private detailsShown = 0;

  constructor(
    private readonly layout: Layout,
    private readonly state: AuditViewState,
  ) {
    this.rows = new TableRows(layout.tbody);
  }

  /** Renders on the next animation frame (once, however often it is asked). */
  scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  /** Height of the table body's visible part, in pixels. */
  bodyHeight(): number {
    const { viewport, header } = this.layout;
    return Math.max(0, viewport.clientHeight - header.offsetHeight);
  }

  /** The first row at least partly visible. */
  firstVisibleRow(): number {
    return Math.floor(this.layout.viewport.scrollTop / ROW_HEIGHT);
  }

  /** Rows one PageUp/PageDown moves by. */
  pageRows(): number {
    return Math.max(1, Math.floor(this.bodyHeight() / ROW_HEIGHT) - 1);
  }

  scrollToTop(): void {
    this.layout.viewport.scrollTop = 0;
  }

  /** Keeps the rows under the user still after `rows` were inserted on top (unless at the top). */
  keepRowsStill(rows: number): void {
    const viewport = this.layout.viewport;
    if (viewport.scrollTop > 0) viewport.scrollTop += rows * ROW_HEIGHT;
  }

  /** Scrolls row `index` fully into view. */
  reveal(index: number): void {
    const viewport = this.layout.viewport;
    viewport.scrollTop = scrollToReveal(index, viewport.scrollTop, this.bodyHeight(), ROW_HEIGHT);
  }

  /** Renders everything now. */
  render(): void {
    const { viewport, tbody } = this.layout;
    const { store } = this.state;
    const count = store.length;
    tbody.style.height = `${count * ROW_HEIGHT}px`;
    viewport.setAttribute('aria-rowcount', String(count + 1));
    const { start, end } = visibleRange(viewport.scrollTop, this.bodyHeight(), ROW_HEIGHT, count, OVERSCAN);
    this.rows.render(store, start, end, this.state.selectedSeq);
    if (this.state.selectedSeq !== null && this.rows.showsSelected) {
      viewport.setAttribute('aria-activedescendant', SELECTED_ROW_ID);
    } else {
      viewport.removeAttribute('aria-activedescendant');
    }
    this.state.onViewport(start, end);

    this.renderBanner();
    this.renderEmpty();
    this.renderChip();
    this.renderToolbar();
    this.renderFooter();
    this.renderDetails();
  }

  /** Renders the toolbar now (filter lists, session chip, live toggle, verification). */
  renderToolbar(): void {
    const l = this.layout;
    const { state } = this;
    if (this.operationsShown !== state.operationsVersion) {
      this.operationsShown = state.operationsVersion;
      const names = operationChoices(state);
      l.opSelect.replaceChildren(option('', 'All operations'), ...names.map((n) => option(n, n)));
      l.opSelect.value = state.filters.op ?? '';
    }
    if (this.agentsShown !== state.agentsVersion) {
      this.agentsShown = state.agentsVersion;
      l.agentList.replaceChildren(...[...state.agents].sort().map((a) => option(a, a)));
    }
    l.sessionChip.hidden = !state.filters.sessionId;
    l.sessionChipText.textContent = `Session ${state.filters.sessionId ?? ''}`;
    const live = liveToggle(state.paused);
    l.liveButton.textContent = live.text;
    l.liveButton.classList.toggle('paused', state.paused);
    l.liveButton.setAttribute('aria-pressed', String(!state.paused));
    l.liveButton.title = live.title;

    l.verifyButton.disabled = state.running !== true || state.verify.kind === 'pending';
    const status = verifyStatus(state.verify);
    l.verifyStatus.className = 'verify-status';
    if (status.tone) l.verifyStatus.classList.add(status.tone);
    l.verifyStatus.textContent = status.text;
    l.verifyStatus.title = status.title;
  }

  private renderBanner(): void {
    const l = this.layout;
    const banner = this.state.banner;
    l.banner.hidden = banner === null;
    if (banner === null) return;
    l.bannerText.textContent = banner.message;
    l.bannerRetry.hidden = !banner.canRetry;
  }

  private renderEmpty(): void {
    const { emptyState } = this.layout;
    const { title, detail } = emptyMessage(this.state);
    emptyState.hidden = title === '';
    emptyState.replaceChildren(h('div', { className: 'empty-title', text: title }));
    if (detail) emptyState.append(h('div', { className: 'empty-detail', text: detail }));
  }

  private renderChip(): void {
    const { newChip } = this.layout;
    const chip = newRecordsChip(this.state);
    newChip.hidden = chip.hidden;
    newChip.textContent = chip.text;
    newChip.title = 'Show the records that arrived while paused';
  }

  private renderFooter(): void {
    const footer = footerText(this.state);
    this.layout.footerCount.textContent = footer.count;
    this.layout.footerState.textContent = footer.state;
  }

  /** Rebuilds the details pane when another record (or the same one again) was opened. */
  private renderDetails(): void {
    const details = this.state.details;
    this.layout.details.hidden = details === null;
    if (details === null || details.version === this.detailsShown) return;
    this.detailsShown = details.version;
    this.showDetails(details.record);
  }

  private showDetails(r: AuditRecord): void {
    const l = this.layout;
    l.detailsTitle.textContent = `#${r.seq} · ${r.op}`;
    const outcome = formatOutcome(r);
    const decision = h('dd');
    decision.append(h('span', { className: `badge ${r.decision}`, text: decisionLabel(r.decision) }));
    decision.append(
      h('span', { className: 'muted', text: ` ${r.rule ? `rule ${r.rule}` : decisionTitle(r)}` }),
    );
    const session = h('dd', { className: 'mono', text: r.sessionId ?? '(none)' });
    const sessionId = r.sessionId;
    if (sessionId !== null && this.state.filters.sessionId !== sessionId) {
      const only = h('button', { className: 'link', text: 'only this session', attrs: { type: 'button' } });
      only.addEventListener('click', () => this.state.setFilters({ ...this.state.filters, sessionId }));
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
    l.detailsBody.replaceChildren(
      list,
      h('h3', { text: 'Parameters (redacted)' }),
      h('pre', { text: prettyJson(r.params) }),
      h('h3', { text: 'Outcome' }),
      h('pre', { text: prettyJson(r.outcome) }),
    );
    l.detailsBody.scrollTop = 0;
  }
}

function field(label: string, value: string, className = ''): HTMLElement[] {
  return [h('dt', { text: label }), h('dd', { className, text: value })];
}
