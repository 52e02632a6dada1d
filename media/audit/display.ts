/**
 * What the audit webview shows, derived from its state: the texts of the empty table, the footer, the
 * "new records" chip, the live toggle and the verification status, and the operation filter's
 * choices. Pure, like state.ts; view.ts puts them into the DOM.
 */
import { hasFilters } from '../../src/extension/webview/model';
import { MAX_HELD, type AuditViewState, type VerifyState } from './state';

/** The operation names for the filter list: sorted, with the filtered one first when it is unknown. */
export function operationChoices(state: AuditViewState): string[] {
  const names = [...state.operations].sort();
  const op = state.filters.op;
  if (op && !state.operations.has(op)) names.unshift(op);
  return names;
}

/** The message over an empty table (empty title: the table has rows, or nothing to say). */
export function emptyMessage(state: AuditViewState): { title: string; detail: string } {
  const count = state.store.length;
  if (state.running === false) {
    return { title: 'Server stopped', detail: 'Start the MCP Workspace server to see its audit log.' };
  }
  if (state.running === null || (state.replacing && count === 0)) return { title: 'Loading…', detail: '' };
  if (count === 0) {
    return hasFilters(state.filters)
      ? { title: 'No records match', detail: 'Change or clear the filters.' }
      : { title: 'No audit records yet', detail: 'Agent actions appear here as they happen.' };
  }
  return { title: '', detail: '' };
}

/** The "N new" chip shown while paused; hidden when nothing is held. */
export function newRecordsChip(state: AuditViewState): { hidden: boolean; text: string } {
  const n = state.held.length;
  return {
    hidden: !(state.paused && (n > 0 || state.heldOverflow)),
    text: state.heldOverflow ? `${MAX_HELD.toLocaleString()}+ new · reload` : `${n.toLocaleString()} new`,
  };
}

/** The live/paused toggle's label and hover text. */
export function liveToggle(paused: boolean): { text: string; title: string } {
  return paused
    ? { text: '❚❚ Paused', title: 'Paused: new records are held back. Click to go live.' }
    : { text: '● Live', title: 'Live: new records appear on top. Click to pause.' };
}

/** The verification status next to the button; `tone` is a CSS class (`ok`, `bad`) or empty. */
export function verifyStatus(verify: VerifyState): { text: string; tone: '' | 'ok' | 'bad'; title: string } {
  if (verify.kind === 'pending') return { text: 'Verifying…', tone: '', title: '' };
  if (verify.kind === 'idle') return { text: '', tone: '', title: '' };
  const result = verify.result;
  if (result.ok) {
    return {
      text: `✓ Intact · ${result.records.toLocaleString()} records`,
      tone: 'ok',
      title: `Chain head ${result.head}`,
    };
  }
  return {
    text: `✗ Tampered at #${result.badSeq}: ${result.reason}`,
    tone: 'bad',
    title: `Tampered at #${result.badSeq}: ${result.reason}\n${result.records.toLocaleString()} records before it are intact.`,
  };
}

/** The footer: the row count (`+` while older pages remain) and the loading / end-of-log state. */
export function footerText(state: AuditViewState): { count: string; state: string } {
  const count = state.store.length;
  let countText = '';
  if (state.running === true) {
    const more = state.nextBefore !== null ? '+' : '';
    countText = `${count.toLocaleString()}${more} record${count === 1 && !more ? '' : 's'}${
      hasFilters(state.filters) ? ' matching' : ''
    }`;
  }
  let stateText = '';
  if (state.loading) stateText = 'Loading…';
  else if (state.running === true && state.nextBefore === null && count > 0) stateText = 'End of log';
  return { count: countText, state: stateText };
}
