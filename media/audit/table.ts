/// <reference lib="dom" />
/**
 * The virtualised table body: a pool of row elements, each positioned at its row and refilled only
 * when the record it shows changes.
 */
import {
  type RowStore,
  decisionLabel,
  decisionTitle,
  describeTarget,
  formatDuration,
  formatLocalTime,
  formatOutcome,
} from '../../src/extension/webview/model';
import { h } from './dom';
import { COLUMNS, ROW_HEIGHT } from './layout';

/** The id of the selected row's element, for `aria-activedescendant`. */
export const SELECTED_ROW_ID = 'audit-selected-row';

interface RowView {
  el: HTMLDivElement;
  cells: HTMLDivElement[];
  badge: HTMLSpanElement;
  outcome: HTMLSpanElement;
  /** What the row shows now: `seq`, or -seq while its record is still loading. */
  shown: number;
}

/** The rendered rows of the table body. */
export class TableRows {
  private readonly pool: RowView[] = [];

  constructor(private readonly tbody: HTMLElement) {}

  /** Shows rows `[start, end)` of `store`, marking the row of `selectedSeq`; hides the spare elements. */
  render(store: RowStore, start: number, end: number, selectedSeq: number | null): void {
    while (this.pool.length < end - start) this.pool.push(this.createRow());
    for (let k = 0; k < this.pool.length; k++) {
      const view = this.pool[k];
      const index = start + k;
      if (index < end) {
        view.el.hidden = false;
        fillRow(view, store, index, selectedSeq);
      } else if (!view.el.hidden) {
        view.el.hidden = true;
        view.shown = 0;
        view.el.classList.remove('selected');
        if (view.el.id) view.el.removeAttribute('id');
      }
    }
  }

  /** Whether the selected row is among the rendered ones. */
  get showsSelected(): boolean {
    return this.pool.some((v) => !v.el.hidden && v.el.id === SELECTED_ROW_ID);
  }

  private createRow(): RowView {
    const cells = COLUMNS.map((_, i) => h('div', { className: `cell c${i}`, attrs: { role: 'gridcell' } }));
    const badge = h('span', { className: 'badge' });
    const outcome = h('span', { className: 'outcome' });
    cells[4].append(badge);
    cells[5].append(outcome);
    const el = h('div', { className: 'row', attrs: { role: 'row' } }, ...cells);
    this.tbody.append(el);
    return { el, cells, badge, outcome, shown: 0 };
  }
}

function fillRow(view: RowView, store: RowStore, index: number, selectedSeq: number | null): void {
  const seq = store.seqAt(index);
  const r = store.get(index);
  const shown = r ? seq : -seq;
  view.el.dataset.index = String(index);
  view.el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
  view.el.setAttribute('aria-rowindex', String(index + 2));
  const selected = seq === selectedSeq;
  view.el.classList.toggle('selected', selected);
  view.el.setAttribute('aria-selected', String(selected));
  if (selected) view.el.id = SELECTED_ROW_ID;
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
