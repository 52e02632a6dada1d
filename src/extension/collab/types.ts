import type { Awareness } from 'y-protocols/awareness';
import type * as Y from 'yjs';

/** Stops a listener. */
export type Unsubscribe = () => void;

/**
 * One open shared document, as a {@link DocumentSource} hands it out. Its shared text is
 * `doc.getText('content')`; its presence is `awareness` (the server stamps `user` on every state).
 */
export interface SharedDocumentHandle {
  /** The replica: edits go in and come out here. */
  readonly doc: Y.Doc;
  /** Presence of everyone on the document (cursors as Yjs relative positions under `cursor`). */
  readonly awareness: Awareness;
  /**
   * Resolves once the replica holds the server's text (first sync done); rejects with the reason
   * when the document cannot be opened (refused, missing, too large, not text).
   */
  readonly synced: Promise<void>;
  /** Whether the server drops this replica's edits (viewer, protected path, exclusive lease). */
  readonly readOnly: boolean;
  /** Calls `listener` when {@link readOnly} changes, with the server's reason. */
  onReadOnlyChange(listener: (readOnly: boolean, reason: string) => void): Unsubscribe;
  /**
   * Tells the server that this replica's editor is about to write the file itself, with bytes of
   * this SHA-256, so the server takes that content as an earlier state of the shared text rather
   * than a change from outside. Resolves once the server holds it, or after a short wait.
   */
  announceSave(sha256: string): Promise<void>;
  /** Calls `listener` once when the server ends the document for good (deleted, forbidden, revoked). */
  onClosed(listener: (reason: string) => void): Unsubscribe;
  /** Leaves the document and frees the replica. */
  dispose(): void;
}

/**
 * Where shared documents come from: the extension's own server for the workspace folders, or a
 * pair session's host for a guest. Transport-agnostic: the editor binding only needs this.
 */
export interface DocumentSource {
  /** Opens the shared document of the workspace-relative path `relPath` (`/`-separated). */
  open(relPath: string): SharedDocumentHandle;
}

/** A cursor or selection in awareness: `Y.relativePositionToJSON` of anchor and head. */
export interface AwarenessCursor {
  anchor: unknown;
  head: unknown;
}
