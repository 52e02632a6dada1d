import type { Stats } from 'node:fs';
import { Awareness, removeAwarenessStates } from 'y-protocols/awareness';
import * as Y from 'yjs';
import {
  awarenessProtocol,
  decodeAwarenessUpdate,
  decodeClientMessage,
  encodeAwareness,
  encodeAwarenessUpdate,
  encodePermissionDenied,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
  type AwarenessEntry,
} from './protocol';
import { PAIR_PREFIX } from '../../protocol/pair';
import { encodeSaving } from '../../protocol/saving';
import { mergeText } from './text';
import { mergeInGroups } from './updates';
import {
  CLOSE_CODES,
  type CollabAccess,
  type CollabClient,
  type CollabConnection,
  type CollabLimits,
  type CollabPeer,
} from './types';

/** Origin of changes loaded from the disk (outside changes, agents' writes). */
export const DISK_ORIGIN = Symbol('disk');

/** How long a save announced by a bound editor is expected on disk (ms). */
const SAVE_EXPECTED_MS = 10_000;
/** Saves announced and not yet seen on disk, kept per document. */
const MAX_EXPECTED_SAVES = 16;

/** Whether `peer` edits through an editor that saves files itself: the owner, or a pair guest. */
function savesThroughEditor(peer: CollabPeer): boolean {
  return peer.principal.kind === 'owner' || peer.principal.name.startsWith(PAIR_PREFIX);
}

/** What identifies the file's content on disk without reading it. */
export function statSignature(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/** Changes one client made since the last flush (UTF-16 code units, as Yjs counts them). */
interface PendingEdits {
  updates: number;
  insertedChars: number;
  deletedChars: number;
}

/** What a document needs from its hub: limits, writing and leaving. */
export interface DocumentHost {
  limits: CollabLimits;
  /** Schedules the document's write (debounced by the hub's document). */
  onChanged(doc: SharedDocument): void;
  /** The last connection left. */
  onEmpty(doc: SharedDocument): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
}

/**
 * One open file as a Yjs document (`getText('content')`), the connections holding it, their
 * server-stamped presence, and what is known of the file on disk (revision, stat signature, and
 * the text last written or read when it differs from the shared text).
 */
export class SharedDocument {
  /** The live Yjs document; null while the document is dormant (see {@link SharedDocument.sleep}). */
  private live: { doc: Y.Doc; text: Y.Text } | null;
  /** The encoded state of a dormant document. */
  private dormant: Uint8Array | null = null;
  /** Presence, on a document of its own (only its client id and clock are used). */
  readonly awareness = new Awareness(new Y.Doc());
  readonly connections = new Set<Connection>();
  /** Revision of the file on disk as last written or read. */
  revision: string;
  /** Stat signature of the file after the last write or read. */
  signature: string;
  /** Identity (dev:ino) of the file after the last write or read, so spellings share one document. */
  identity: string;
  /**
   * The text on disk when it differs from the shared text (unsaved shared edits): the base of the
   * three-way merge of outside changes. Null when the shared text is what is on disk.
   */
  diskText: string | null = null;
  /** The file was deleted or moved: nothing is written any more. */
  gone = false;
  /** Edits per client since the last flush, for the audit. */
  readonly pending = new Map<unknown, PendingEdits>();
  /** Serialises writes, disk checks and agents' writes of this document. */
  queue: Promise<unknown> = Promise.resolve();
  /** When the first change not yet written was made (ms since the epoch; 0: none). */
  firstChangeAt = 0;
  /** When the last change was made (ms since the epoch). */
  lastChangeAt = 0;
  timer: NodeJS.Timeout | null = null;
  /** SHA-256 of file contents bound editors announced they are saving, with when each expires. */
  private readonly expectedSaves = new Map<string, number>();
  /** Pending {@link SharedDocument.sleep} of a quiet document. */
  sleepTimer: NodeJS.Timeout | null = null;
  /** A disk check is queued: the poller does not queue another. */
  checkQueued = false;
  /** Set while the document is being written and unloaded. */
  unloading: Promise<void> | null = null;
  /** Origin and state vector before the latest transaction (what a failed update is diffed from). */
  private before: { origin: unknown; state: Map<number, number> } | null = null;
  /** Clients' updates received in this turn of the event loop, applied at its end per client. */
  private inbox: Array<{ update: Uint8Array; origin: Connection }> = [];
  /** Bytes in {@link SharedDocument.inbox}: the text grows by at most that much once it is applied. */
  private inboxBytes = 0;
  /** Updates applied in this turn of the event loop, sent to the other connections as one message. */
  private outbox: Array<{ update: Uint8Array; origin: unknown }> = [];
  /** A {@link SharedDocument.turn} is scheduled. */
  private turnScheduled = false;
  /** Client updates in the transaction being applied by {@link SharedDocument.applyBatch}. */
  private batch: { origin: Connection; updates: number } | null = null;

  constructor(
    /** Workspace-relative real path of the file: the document's key. */
    readonly key: string,
    content: string,
    state: Uint8Array | null,
    revision: string,
    stats: Stats,
    private readonly host: DocumentHost,
  ) {
    this.revision = revision;
    this.signature = statSignature(stats);
    this.identity = `${stats.dev}:${stats.ino}`;
    this.awareness.setLocalState(null);
    const doc = new Y.Doc({ gc: true });
    this.live = { doc, text: doc.getText('content') };
    if (state) Y.applyUpdate(doc, state, DISK_ORIGIN);
    const restored = this.text.toString();
    // The saved Yjs state keeps offline clients' history; the disk decides the content.
    if (restored !== content) mergeText(this.text, restored, content, DISK_ORIGIN);
    this.bind();
    this.awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        const changed = [...added, ...updated, ...removed];
        const message = encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed));
        for (const connection of this.connections) {
          if (connection !== origin) connection.client.send(message);
        }
      },
    );
  }

  /** The live Yjs document, holding every update received so far (woken first if it is dormant). */
  get doc(): Y.Doc {
    this.settle();
    return this.wake().doc;
  }

  /** The shared text, `getText('content')`, with every update received so far (woken if dormant). */
  get text(): Y.Text {
    this.settle();
    return this.wake().text;
  }

  /** An upper bound of the shared text's length once the updates received so far are applied. */
  get lengthBound(): number {
    return this.wake().text.length + this.inboxBytes;
  }

  /** Whether the document is held only in its encoded form. */
  get isDormant(): boolean {
    return this.live === null;
  }

  /**
   * Keeps only the encoded state of a quiet document: a live Yjs document costs several times its
   * text after many small edits, its encoded state about its text. Readers are still answered (sync
   * replies are computed from the encoded state); the first change wakes it.
   */
  sleep(): void {
    if (!this.live || this.diskText !== null || this.outbox.length > 0 || this.inbox.length > 0) return;
    this.dormant = Y.encodeStateAsUpdate(this.live.doc);
    this.live.doc.destroy();
    this.live = null;
    this.before = null;
  }

  private wake(): { doc: Y.Doc; text: Y.Text } {
    if (this.live) return this.live;
    const doc = new Y.Doc({ gc: true });
    Y.applyUpdate(doc, this.dormant!, DISK_ORIGIN);
    this.dormant = null;
    this.live = { doc, text: doc.getText('content') };
    this.bind();
    return this.live;
  }

  /** The whole state, encoded (what is saved in the state dir), with every update received so far. */
  encodeState(): Uint8Array {
    this.settle();
    return this.live ? Y.encodeStateAsUpdate(this.live.doc) : this.dormant!;
  }

  /** Sync step 1 of the server: its state vector. */
  syncStep1(): Uint8Array {
    return encodeSyncStep1(
      this.live ? Y.encodeStateVector(this.live.doc) : Y.encodeStateVectorFromUpdate(this.dormant!),
    );
  }

  /** Sync step 2 for a client: what it lacks, given its state vector. */
  syncStep2(stateVector: Uint8Array): Uint8Array {
    return encodeSyncStep2(
      this.live
        ? Y.encodeStateAsUpdate(this.live.doc, stateVector)
        : Y.diffUpdate(this.dormant!, stateVector),
    );
  }

  /**
   * Listens to the document: the changes to write and the edits to audit. There is deliberately no
   * `update` listener on the hot path: with one, Yjs encodes every transaction into a fresh update,
   * while a client's update is already encoded (it is forwarded as received, see
   * {@link SharedDocument.forward}). The server's own changes are captured in {@link local}.
   */
  private bind(): void {
    const { doc, text } = this.live!;
    doc.on('beforeTransaction', (tr: Y.Transaction) => {
      this.before = { origin: tr.origin, state: tr.beforeState };
      if (this.diskText === null) this.diskText = text.toString();
    });
    // Counted from the transaction's clocks and delete set: O(clients), never a walk of the text.
    doc.on('afterTransaction', (tr: Y.Transaction) => {
      if (tr.origin === DISK_ORIGIN) return;
      let inserted = 0;
      for (const [client, after] of tr.afterState) inserted += after - (tr.beforeState.get(client) ?? 0);
      let deleted = 0;
      for (const items of tr.deleteSet.clients.values()) for (const item of items) deleted += item.len;
      if (inserted === 0 && deleted === 0) return;
      let edits = this.pending.get(tr.origin);
      if (!edits) {
        edits = { updates: 0, insertedChars: 0, deletedChars: 0 };
        this.pending.set(tr.origin, edits);
      }
      const batch = this.batch;
      edits.updates += batch && batch.origin === tr.origin ? batch.updates : 1;
      edits.insertedChars += inserted;
      edits.deletedChars += deleted;
      // Only an update that changed the text counts as editing (not a cursor move or a resend).
      if (tr.origin instanceof Connection) tr.origin.lastEditAt = Date.now();
      this.host.onChanged(this);
    });
  }

  /**
   * Queues an update for the other connections; the queue goes out once per turn of the event loop
   * ({@link SharedDocument.sendOutbox}). A client's update is forwarded as it arrived once the
   * document has taken it: Yjs skips what a replica already holds and keeps what it cannot place
   * yet until its dependencies arrive, exactly as the server's document does.
   */
  forward(update: Uint8Array, origin: unknown): void {
    this.outbox.push({ update, origin });
    this.scheduleTurn();
  }

  /**
   * Takes a client's update: it is applied at the end of this turn of the event loop together with
   * the client's other updates of the turn (one Yjs transaction per client and turn, not one per
   * keystroke), then forwarded to the other connections. Anything that reads the document first
   * applies what was received ({@link SharedDocument.doc}).
   */
  apply(update: Uint8Array, origin: Connection): void {
    this.inbox.push({ update, origin });
    this.inboxBytes += update.length;
    this.scheduleTurn();
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.turn());
  }

  /** The end of a turn: the updates received are applied, then what changed is sent. */
  private turn(): void {
    this.turnScheduled = false;
    this.settle();
    this.sendOutbox();
  }

  /**
   * Applies the clients' updates received so far, each client's in one transaction: done at the end
   * of each turn, and before anything reads, writes or saves the document.
   */
  settle(): void {
    if (this.inbox.length === 0) return;
    const inbox = this.inbox;
    this.inbox = [];
    this.inboxBytes = 0;
    const byOrigin = new Map<Connection, Uint8Array[]>();
    for (const { update, origin } of inbox) {
      const list = byOrigin.get(origin);
      if (list) list.push(update);
      else byOrigin.set(origin, [update]);
    }
    for (const [origin, updates] of byOrigin) {
      let merged: Uint8Array | null = null;
      try {
        merged = updates.length === 1 ? updates[0]! : mergeInGroups(updates);
      } catch {
        // One of them is malformed: they are taken one by one, up to the bad one.
      }
      const taken = merged
        ? this.applyBatch(merged, origin, updates.length)
        : this.applyEach(updates, origin);
      if (!taken) origin.end(CLOSE_CODES.BAD_REQUEST, 'Malformed Yjs update; use a y-protocols client.');
    }
  }

  /** Applies updates one at a time, stopping at the first that fails; whether all were taken. */
  private applyEach(updates: Uint8Array[], origin: Connection): boolean {
    return updates.every((update) => this.applyBatch(update, origin, 1));
  }

  /**
   * Applies a client's (merged) update and forwards it to the other connections; whether it was
   * taken. A malformed update may fail after part of it was taken: that part still reaches the others.
   */
  private applyBatch(update: Uint8Array, origin: Connection, count: number): boolean {
    const { doc } = this.wake();
    this.batch = { origin, updates: count };
    try {
      Y.applyUpdate(doc, update, origin);
    } catch {
      const before = this.before;
      if (before?.origin === origin) {
        this.forward(Y.encodeStateAsUpdate(doc, Y.encodeStateVector(before.state)), origin);
      }
      return false;
    } finally {
      this.batch = null;
    }
    this.forward(update, origin);
    return true;
  }

  /** Runs a change of the server's own (`DISK_ORIGIN`), sending the update it makes to every client. */
  private local(change: () => void): void {
    const doc = this.doc;
    const capture = (update: Uint8Array): void => this.forward(update, DISK_ORIGIN);
    doc.on('update', capture);
    try {
      change();
    } finally {
      doc.off('update', capture);
    }
  }

  /**
   * An editor bound to this document is about to write the file with these bytes (`sha256`): that
   * content is an earlier state of the shared text when it shows up on disk (see
   * {@link SharedDocument.loadFromDisk}). Kept for {@link SAVE_EXPECTED_MS}, at most
   * {@link MAX_EXPECTED_SAVES} at once.
   */
  expectSave(sha256: string): void {
    const now = Date.now();
    for (const [hash, until] of this.expectedSaves) if (until < now) this.expectedSaves.delete(hash);
    this.expectedSaves.delete(sha256);
    if (this.expectedSaves.size >= MAX_EXPECTED_SAVES) {
      this.expectedSaves.delete(this.expectedSaves.keys().next().value!);
    }
    this.expectedSaves.set(sha256, now + SAVE_EXPECTED_MS);
  }

  /** Whether `revision` (the SHA-256 of the file) was announced by a bound editor; forgets it. */
  private takeExpectedSave(revision: string): boolean {
    const until = this.expectedSaves.get(revision);
    this.expectedSaves.delete(revision);
    return until !== undefined && until >= Date.now();
  }

  /**
   * Loads the file's text as it is now on disk: a minimal delta merged with unsaved shared edits.
   * Two kinds of content are not changes from outside: the shared text itself, and what a bound
   * editor announced it was saving (an earlier state of the shared text: merging it in again would
   * duplicate the typing since). Both are taken as written; the shared text is then written over an
   * earlier state.
   */
  loadFromDisk(content: string, revision: string, stats: Stats): void {
    // Updates received first are the shared side of the merge: their base is the disk text before them.
    this.settle();
    if (content === this.text.toString() || this.takeExpectedSave(revision)) {
      this.markWritten(content, revision, stats);
      if (this.diskText !== null) this.host.onChanged(this);
      return;
    }
    const base = this.diskText ?? this.text.toString();
    this.local(() => mergeText(this.text, base, content, DISK_ORIGIN));
    this.revision = revision;
    this.signature = statSignature(stats);
    this.identity = `${stats.dev}:${stats.ino}`;
    this.diskText = this.text.toString() === content ? null : content;
    if (this.diskText !== null) this.host.onChanged(this);
  }

  /** Records that `written` is now on disk at `revision`. */
  markWritten(written: string, revision: string, stats: Stats | undefined): void {
    this.revision = revision;
    if (stats) {
      this.signature = statSignature(stats);
      this.identity = `${stats.dev}:${stats.ino}`;
    }
    this.diskText = this.text.toString() === written ? null : written;
  }

  /**
   * Sends the updates of this turn: each origin's updates merged once into one message, and each
   * connection gets the messages of the other origins (never its own changes back). Under load that
   * is one frame per writer per turn instead of one per keystroke.
   */
  private sendOutbox(): void {
    if (this.outbox.length === 0) return;
    const outbox = this.outbox;
    this.outbox = [];
    if (outbox.length === 0 || this.connections.size === 0) return;
    const byOrigin = new Map<unknown, Uint8Array[]>();
    for (const { update, origin } of outbox) {
      const list = byOrigin.get(origin);
      if (list) list.push(update);
      else byOrigin.set(origin, [update]);
    }
    const messages = [...byOrigin].map(([origin, updates]) => ({
      origin,
      message: encodeUpdate(mergeInGroups(updates)),
    }));
    for (const connection of this.connections) {
      for (const { origin, message } of messages) {
        if (origin !== connection) connection.client.send(message);
      }
    }
  }

  /** Whether the shared text differs from the disk. */
  get dirty(): boolean {
    return this.diskText !== null || this.inbox.length > 0;
  }

  /** Adds a connection: the server's state vector and everyone's presence go out first. */
  connect(peer: CollabPeer, client: CollabClient, access: CollabAccess): Connection {
    const connection = new Connection(this, peer, client, access, this.host);
    this.connections.add(connection);
    client.send(this.syncStep1());
    const states = this.awareness.getStates();
    if (states.size > 0) {
      client.send(
        encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...states.keys()])),
      );
    }
    return connection;
  }

  /** Ends every connection with the same code and reason. */
  endAll(code: number, reason: string): void {
    for (const connection of [...this.connections]) connection.end(code, reason);
  }

  /** Takes the edits recorded since the last flush. */
  takePending(): Map<unknown, PendingEdits> {
    const taken = new Map(this.pending);
    this.pending.clear();
    return taken;
  }

  /** Frees the Yjs document and presence. */
  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.timer = null;
    this.sleepTimer = null;
    this.awareness.destroy();
    this.awareness.doc.destroy();
    this.live?.doc.destroy();
    this.live = null;
    this.dormant = null;
    this.before = null;
    this.inbox = [];
    this.inboxBytes = 0;
  }
}

/** Cuts a close reason to the 123 bytes a WebSocket close frame allows. */
export function closeReason(reason: string): string {
  let cut = reason;
  while (Buffer.byteLength(cut) > 123) cut = cut.slice(0, -1);
  return cut;
}

/** One client's connection to a {@link SharedDocument}. */
export class Connection implements CollabConnection {
  /** Awareness client ids this connection announced (removed when it leaves). */
  private readonly clientIds = new Set<number>();
  private access: CollabAccess;
  private toldReadOnly = false;
  private ended = false;
  /** When this connection last changed the document (epoch ms), or null if it never did. */
  lastEditAt: number | null = null;

  constructor(
    private readonly document: SharedDocument,
    readonly peer: CollabPeer,
    readonly client: CollabClient,
    access: CollabAccess,
    private readonly host: DocumentHost,
  ) {
    this.access = access;
  }

  get path(): string {
    return this.document.key;
  }

  get revision(): string {
    return this.document.revision;
  }

  get readOnly(): boolean {
    return this.access.readOnly;
  }

  receive(message: Uint8Array): void {
    if (this.ended) return;
    try {
      const decoded = decodeClientMessage(message);
      switch (decoded.type) {
        case 'sync': {
          const { sync } = decoded;
          if (sync.kind === 'step1') {
            this.client.send(this.document.syncStep2(sync.stateVector));
          } else {
            this.applyUpdate(sync.update);
          }
          return;
        }
        case 'awareness':
          this.applyAwareness(decoded.update);
          return;
        case 'saving':
          // Only a person's editor saves a file it is bound to: the owner's, or a pair guest's.
          if (!this.access.readOnly && savesThroughEditor(this.peer))
            this.document.expectSave(decoded.sha256);
          this.client.send(encodeSaving(decoded.sha256));
          return;
        case 'query-awareness': {
          const states = this.document.awareness.getStates();
          this.client.send(
            encodeAwareness(
              awarenessProtocol.encodeAwarenessUpdate(this.document.awareness, [...states.keys()]),
            ),
          );
          return;
        }
        default:
          return;
      }
    } catch {
      this.end(CLOSE_CODES.BAD_REQUEST, 'Malformed y-websocket message; use a y-protocols client.');
    }
  }

  setAccess(access: CollabAccess): void {
    const before = this.access;
    this.access = access;
    if (access.readOnly && !before.readOnly) {
      this.toldReadOnly = false;
      this.tellReadOnly();
    } else if (!access.readOnly && before.readOnly) {
      // Updates it sent while read-only were dropped, and its later ones build on them: a fresh
      // sync (the client reconnects by itself) sends everything it kept.
      this.end(CLOSE_CODES.RECONNECT, 'You may edit again; reconnecting to send your changes.');
    }
  }

  end(code: number, reason: string): void {
    if (this.ended) return;
    this.client.close(code, closeReason(reason));
    this.detach();
  }

  detach(): void {
    if (this.ended) return;
    this.ended = true;
    this.document.connections.delete(this);
    if (this.clientIds.size > 0) removeAwarenessStates(this.document.awareness, [...this.clientIds], this);
    if (this.document.connections.size === 0) this.host.onEmpty(this.document);
  }

  private tellReadOnly(): void {
    if (this.toldReadOnly) return;
    this.toldReadOnly = true;
    this.client.send(
      encodePermissionDenied(
        `read-only: ${this.access.readOnlyReason ?? 'you may not write this file'}; your edits are not saved or shared.`,
      ),
    );
  }

  private applyUpdate(update: Uint8Array): void {
    if (this.access.readOnly) {
      this.tellReadOnly();
      return;
    }
    // The empty update a client answers sync step 1 with changes nothing (and wakes nothing).
    if (update.length === 2 && update[0] === 0 && update[1] === 0) return;
    const { maxUpdateBytes, maxDocumentBytes } = this.host.limits;
    if (update.length > maxUpdateBytes) {
      this.end(
        CLOSE_CODES.TOO_LARGE,
        `Update of ${update.length} bytes is over the cap of ${maxUpdateBytes}.`,
      );
      return;
    }
    // A text grows by at most the bytes of the update that carries it.
    if (this.document.lengthBound + update.length > maxDocumentBytes) {
      const current = Buffer.byteLength(this.document.text.toString());
      if (current + update.length > maxDocumentBytes) {
        this.end(CLOSE_CODES.TOO_LARGE, `The document would grow over the cap of ${maxDocumentBytes} bytes.`);
        return;
      }
    }
    this.document.apply(update, this);
  }

  private applyAwareness(update: Uint8Array): void {
    const { maxAwarenessBytes, maxAwarenessClients } = this.host.limits;
    if (update.length > maxAwarenessBytes) {
      this.end(CLOSE_CODES.TOO_LARGE, `Awareness update over the cap of ${maxAwarenessBytes} bytes.`);
      return;
    }
    const others = new Set<number>();
    for (const connection of this.document.connections) {
      if (connection !== this) for (const id of connection.clientIds) others.add(id);
    }
    const accepted: AwarenessEntry[] = [];
    for (const entry of decodeAwarenessUpdate(update)) {
      // A client speaks only for its own ids: another connection's presence cannot be forged or removed.
      if (others.has(entry.clientId)) continue;
      if (!this.clientIds.has(entry.clientId)) {
        if (this.clientIds.size >= maxAwarenessClients) continue;
        this.clientIds.add(entry.clientId);
      }
      const { principal } = this.peer;
      accepted.push({
        ...entry,
        // Who is there comes from the token, never from the client.
        state:
          entry.state === null
            ? null
            : {
                ...entry.state,
                user: { name: principal.name, role: principal.role, readOnly: this.access.readOnly },
              },
      });
    }
    if (accepted.length > 0) {
      awarenessProtocol.applyAwarenessUpdate(this.document.awareness, encodeAwarenessUpdate(accepted), this);
    }
  }
}
