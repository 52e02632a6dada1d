/// <reference lib="dom" />
/**
 * The audit-log webview's entry: wires the VS Code webview API, the state (state.ts), the view
 * (layout.ts, view.ts, table.ts) and the DOM events (events.ts). Bundled by esbuild to media/audit.js
 * (IIFE, browser). Records hold agent-controlled strings: they only ever reach the DOM as textContent.
 */
import type { HostMessage, WebviewMessage } from '../../src/extension/webview/protocol';
import { wireEvents } from './events';
import { createLayout } from './layout';
import { AuditViewState, restoreState, type PersistedState } from './state';
import { AuditView } from './view';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: PersistedState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const layout = createLayout(document.getElementById('app') ?? document.body);
const state = new AuditViewState(
  {
    post: (message) => vscode.postMessage(message),
    persist: (saved) => vscode.setState(saved),
    changed: () => view.scheduleRender(),
    scrollToTop: () => view.scrollToTop(),
    rowsInserted: (rows) => view.keepRowsStill(rows),
  },
  restoreState(vscode.getState()),
);
const view = new AuditView(layout, state);
wireEvents(layout, state, view);

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const msg = event.data;
  switch (msg?.type) {
    case 'status':
      state.onStatus(msg);
      break;
    case 'records':
      state.onRecords(msg);
      break;
    case 'appended':
      state.onAppended(msg);
      break;
    case 'verified':
      state.onVerified(msg.result);
      view.renderToolbar();
      break;
    case 'error':
      state.onError(msg.message, msg.requestId);
      break;
  }
});

layout.agentInput.value = state.filters.agent ?? '';
layout.searchInput.value = state.filters.text ?? '';
layout.decisionSelect.value = state.filters.decision ?? '';
view.render();
vscode.postMessage({ type: 'ready' });
