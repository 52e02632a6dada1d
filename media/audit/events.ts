/// <reference lib="dom" />
/**
 * The audit webview's DOM events: the user's clicks, keys and typing become transitions of the state,
 * and scrolling or resizing re-renders.
 */
import { debounce } from './dom';
import type { Layout } from './layout';
import { filtersFromInputs, keyTarget, type AuditViewState } from './state';
import type { AuditView } from './view';

/** Typing in the agent or search box applies the filters once the user pauses this long. */
const SEARCH_DEBOUNCE_MS = 300;

/** Connects the layout's elements (and the document's Escape key) to `state` and `view`. */
export function wireEvents(l: Layout, state: AuditViewState, view: AuditView): void {
  const focusTable = (): void => l.viewport.focus({ preventScroll: true });

  l.tbody.addEventListener('click', (event) => {
    const row = (event.target as HTMLElement).closest<HTMLElement>('.row');
    if (!row?.dataset.index) return;
    state.select(Number(row.dataset.index));
    state.openSelected();
    focusTable();
  });

  l.viewport.addEventListener('scroll', () => view.scheduleRender(), { passive: true });
  new ResizeObserver(() => view.scheduleRender()).observe(l.viewport);

  l.viewport.addEventListener('keydown', (event) => {
    const target = keyTarget(event.key, {
      current: state.selectedIndex(),
      firstVisible: view.firstVisibleRow(),
      pageRows: view.pageRows(),
      count: state.store.length,
    });
    if (target === null) return;
    event.preventDefault();
    if (target === 'open') {
      state.openSelected();
      return;
    }
    const selected = state.select(target);
    if (selected >= 0) view.reveal(selected);
  });

  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.details !== null) {
      state.closeDetails();
      focusTable();
      event.preventDefault();
    }
  });

  l.detailsClose.addEventListener('click', () => {
    state.closeDetails();
    focusTable();
  });

  const readFilters = () =>
    filtersFromInputs(
      {
        agent: l.agentInput.value,
        op: l.opSelect.value,
        decision: l.decisionSelect.value,
        text: l.searchInput.value,
      },
      state.filters.sessionId,
    );
  const applyTyped = debounce(() => state.setFilters(readFilters()), SEARCH_DEBOUNCE_MS);
  for (const input of [l.agentInput, l.searchInput]) {
    input.addEventListener('input', applyTyped);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') applyTyped.flush();
    });
    input.addEventListener('change', () => applyTyped.flush());
  }
  l.opSelect.addEventListener('change', () => state.setFilters(readFilters()));
  l.decisionSelect.addEventListener('change', () => state.setFilters(readFilters()));

  l.liveButton.addEventListener('click', () => state.togglePaused());
  l.newChip.addEventListener('click', () => state.showHeld());
  l.sessionChip.addEventListener('click', () => state.clearSession());

  l.verifyButton.addEventListener('click', () => {
    if (state.startVerify()) view.renderToolbar();
  });

  l.bannerRetry.addEventListener('click', () => state.retryBanner());
  l.bannerClose.addEventListener('click', () => state.dismissBanner());
}
