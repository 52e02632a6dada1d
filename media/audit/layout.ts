/// <reference lib="dom" />
/**
 * The audit webview's DOM: toolbar, error banner, virtualised table, details pane and footer, built
 * once. The view fills it from the state; events.ts listens on it.
 */
import { h, option } from './dom';

/** Must match `.row { height }` (`--audit-row-height`) in audit.css. */
export const ROW_HEIGHT = 22;
/** The table's columns, in order. */
export const COLUMNS = ['Time', 'Agent', 'Operation', 'Target', 'Decision', 'Outcome', 'Duration'];

/** Every element the view fills or events.ts listens on. */
export interface Layout {
  agentInput: HTMLInputElement;
  agentList: HTMLDataListElement;
  opSelect: HTMLSelectElement;
  decisionSelect: HTMLSelectElement;
  searchInput: HTMLInputElement;
  sessionChip: HTMLButtonElement;
  sessionChipText: HTMLSpanElement;
  liveButton: HTMLButtonElement;
  verifyButton: HTMLButtonElement;
  verifyStatus: HTMLSpanElement;
  banner: HTMLDivElement;
  bannerText: HTMLSpanElement;
  bannerRetry: HTMLButtonElement;
  bannerClose: HTMLButtonElement;
  viewport: HTMLDivElement;
  header: HTMLDivElement;
  tbody: HTMLDivElement;
  emptyState: HTMLDivElement;
  newChip: HTMLButtonElement;
  details: HTMLElement;
  detailsTitle: HTMLSpanElement;
  detailsClose: HTMLButtonElement;
  detailsBody: HTMLDivElement;
  footerCount: HTMLSpanElement;
  footerState: HTMLSpanElement;
}

/** Builds the webview's DOM into `app` (replacing what it holds). */
export function createLayout(app: HTMLElement): Layout {
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

  return {
    agentInput,
    agentList,
    opSelect,
    decisionSelect,
    searchInput,
    sessionChip,
    sessionChipText,
    liveButton,
    verifyButton,
    verifyStatus,
    banner,
    bannerText,
    bannerRetry,
    bannerClose,
    viewport,
    header,
    tbody,
    emptyState,
    newChip,
    details,
    detailsTitle,
    detailsClose,
    detailsBody,
    footerCount,
    footerState,
  };
}
