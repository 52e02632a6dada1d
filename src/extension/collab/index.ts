/**
 * Live co-editing in VS Code (issue 11): every shown text editor of the workspace bound to its
 * shared Yjs document, remote cursors as decorations, undo of the user's own edits only.
 *
 * The binding is transport-agnostic: a {@link DocumentSource} opens shared documents by
 * workspace-relative path ({@link WebsocketDocumentSource} for an MCP Workspace server's
 * y-websocket endpoint), and {@link LiveEditing.register} says which editor URIs a source serves.
 * A pair-session guest registers its own source and URI mapping on the same {@link LiveEditing}.
 */
export {
  LiveEditing,
  LIVE_EDITING_COMMANDS,
  LIVE_EDITING_CONTEXT,
  type LiveEditingSource,
} from './liveEditing';
export { WebsocketDocumentSource, roomOf, type WebsocketSourceOptions } from './source';
export type { AwarenessCursor, DocumentSource, SharedDocumentHandle, Unsubscribe } from './types';
