import type { Principal } from '../../protocol/principal';
import type { ConfinedPath } from '../resources';

/** Caps and timings of shared documents. */
export interface CollabLimits {
  /** Quiet time after the last change before a document is written to disk (ms). */
  flushDelayMs: number;
  /** Longest a changed document waits for its write while edits keep coming (ms). */
  maxFlushDelayMs: number;
  /** Largest single Yjs update a client may send (bytes). */
  maxUpdateBytes: number;
  /** Largest file that is shared, and largest a shared document may grow to (bytes). */
  maxDocumentBytes: number;
  /** Largest awareness message a client may send (bytes). */
  maxAwarenessBytes: number;
  /** Awareness client ids one connection may announce. */
  maxAwarenessClients: number;
  /** How often open files are checked for changes made outside the server (ms). */
  diskPollMs: number;
  /** A document quiet this long after its last write keeps only its encoded state (ms). */
  dormantAfterMs: number;
}

/** Defaults of {@link CollabLimits}. */
export const DEFAULT_COLLAB_LIMITS: CollabLimits = Object.freeze({
  flushDelayMs: 300,
  maxFlushDelayMs: 2000,
  maxUpdateBytes: 2 * 1024 * 1024,
  maxDocumentBytes: 4 * 1024 * 1024,
  maxAwarenessBytes: 64 * 1024,
  maxAwarenessClients: 8,
  diskPollMs: 250,
  dormantAfterMs: 5000,
});

/**
 * WebSocket close codes a collaboration connection ends with. The 44xx ones are permanent (stock
 * y-websocket clients stop reconnecting, as for an HTTP 4xx); 4100, 4500 and 1001 are transient.
 */
export const CLOSE_CODES = Object.freeze({
  /** The room name is not a valid workspace path, or a message could not be decoded. */
  BAD_REQUEST: 4400,
  /** The session ended: token revoked, session revoked or expired. */
  SESSION_ENDED: 4401,
  /** The policy does not (or no longer) allow reading this file, or it is protected. */
  FORBIDDEN: 4403,
  /** The file does not exist, or it was deleted or moved while open. */
  NOT_FOUND: 4404,
  /** The file, the document or an update is over its size cap. */
  TOO_LARGE: 4413,
  /** The file is binary or not UTF-8 text. */
  UNSUPPORTED: 4415,
  /**
   * The connection may write again (a lease ended, the policy changed): it reconnects (stock
   * clients do so by themselves) and then sends the edits it kept while it was read-only.
   */
  RECONNECT: 4100,
  /** The server could not save the document; reconnecting may work. */
  SERVER_ERROR: 4500,
  /** The server is stopping. */
  GOING_AWAY: 1001,
});

/** Who is on the other end of a collaboration connection. */
export interface CollabPeer {
  principal: Principal;
  sessionId: string;
}

/** The transport side of one connection: binary y-websocket messages out, and closing. */
export interface CollabClient {
  send(message: Uint8Array): void;
  /** Closes the connection; `reason` is short (at most 123 bytes of UTF-8). */
  close(code: number, reason: string): void;
}

/** What was written to disk for one client in one flush: the unit of the `collab_edit` audit record. */
export interface EditBatch {
  /** Workspace-relative path of the file. */
  path: string;
  /** Yjs updates of this client that changed the document since the previous flush. */
  updates: number;
  /** UTF-16 code units this client inserted. */
  insertedChars: number;
  /** UTF-16 code units this client deleted. */
  deletedChars: number;
  /** Revision of the file after the flush. */
  revision: string;
}

/** Receives what must be audited outside an operation call: batched edits per client. */
export interface CollabAuditor {
  edit(peer: CollabPeer, batch: EditBatch): void;
}

/** How a connection may use its document, decided by the caller (policy, role). */
export interface CollabAccess {
  /** Updates from this connection are dropped (it is told once). */
  readOnly: boolean;
  /** Why, told to the client with the standard permission-denied message. */
  readOnlyReason?: string;
}

/** One client's connection to one shared document. */
export interface CollabConnection {
  /** Workspace-relative path of the document's file. */
  readonly path: string;
  /** Revision of the file when the connection opened. */
  readonly revision: string;
  readonly readOnly: boolean;
  /** Handles one binary message from the client. */
  receive(message: Uint8Array): void;
  /**
   * Changes the access after a policy or lease change: a downgrade tells the client once; an
   * upgrade makes it reconnect ({@link CLOSE_CODES.RECONNECT}), since the server dropped updates
   * the client's later ones build on.
   */
  setAccess(access: CollabAccess): void;
  /** Ends the connection with a code and reason sent to the client. */
  end(code: number, reason: string): void;
  /** The transport closed: leave the document (it is written and unloaded when nobody holds it). */
  detach(): void;
}

/**
 * What the file operations need from shared documents: a write or edit to a file that is open as a
 * shared document runs with the document written first (so the operation sees the shared text) and
 * is loaded into the document as a delta right after (so concurrent typing survives).
 */
export interface OpenDocuments {
  /** Runs `write` (which changes the file `target` on disk) coordinated with its open document. */
  aroundWrite<T>(target: ConfinedPath, write: () => Promise<T>): Promise<T>;
  /** Checks open documents against the disk now (after a command ended, for example). */
  checkDisk(): void;
}

/** One client holding one shared document, as presence shows it. */
export interface DocumentHolder {
  /** Workspace-relative real path of the document's file. */
  path: string;
  peer: CollabPeer;
  readOnly: boolean;
  /** When this client last changed the text (epoch ms), or null if it never did. */
  lastEditAt: number | null;
}
