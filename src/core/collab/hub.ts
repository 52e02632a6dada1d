import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import type { Logger } from '../log';
import type { ConfinedPath, ResourceManager } from '../resources';
import { Connection, DISK_ORIGIN, SharedDocument, statSignature, type DocumentHost } from './document';
import {
  CLOSE_CODES,
  DEFAULT_COLLAB_LIMITS,
  type CollabAccess,
  type CollabAuditor,
  type CollabClient,
  type CollabConnection,
  type CollabLimits,
  type CollabPeer,
  type DocumentHolder,
  type OpenDocuments,
} from './types';

/** Collaborators of {@link CollabHub}. */
export interface CollabHubOptions {
  /** The confined file layer every load and write goes through. */
  resources: ResourceManager;
  /** The server's state dir: Yjs states of unloaded documents live in `collab/` below it. */
  stateDir: string;
  limits?: Partial<CollabLimits>;
  /** Receives the batched edits of each client at each write. */
  auditor: CollabAuditor;
  /** A fresh decision whether `peer` may still write `realRel` (asked again at each write). */
  mayWrite: (peer: CollabPeer, realRel: string) => boolean;
  log: Logger;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof WorkspaceError && codes.includes(err.code);
}

/**
 * Shared documents: one Yjs document per open file, keyed by its confined real path (and by file
 * identity, so other spellings of one file share it), loaded through the confined file layer before
 * any client is answered, written back debounced and atomically, checked against the disk for
 * outside changes, and unloaded (its Yjs state kept in the state dir) when nobody holds it.
 */
export class CollabHub implements OpenDocuments {
  readonly limits: CollabLimits;
  private readonly docs = new Map<string, SharedDocument>();
  private readonly loading = new Map<string, Promise<SharedDocument>>();
  private readonly stateRoot: string;
  private poller: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly host: DocumentHost;

  constructor(private readonly options: CollabHubOptions) {
    this.limits = { ...DEFAULT_COLLAB_LIMITS, ...(options.limits ?? {}) };
    this.stateRoot = join(options.stateDir, 'collab');
    this.host = {
      limits: this.limits,
      onChanged: (doc) => this.schedule(doc),
      onEmpty: (doc) => void this.unload(doc),
      log: (level, msg, fields) => options.log[level](msg, fields),
    };
  }

  /** Documents loaded now. */
  get documentCount(): number {
    return this.docs.size;
  }

  /** Loaded documents that are dormant (held only as their encoded state). */
  get dormantCount(): number {
    return [...this.docs.values()].filter((doc) => doc.isDormant).length;
  }

  /** Every client holding a live document now, and when each last changed its text (presence). */
  holders(): DocumentHolder[] {
    const holders: DocumentHolder[] = [];
    for (const doc of this.docs.values()) {
      if (doc.gone || doc.unloading) continue;
      for (const connection of doc.connections) {
        holders.push({
          path: doc.key,
          peer: connection.peer,
          readOnly: connection.readOnly,
          lastEditAt: connection.lastEditAt,
        });
      }
    }
    return holders;
  }

  /**
   * Joins a client to the document of `target` (already resolved and authorised by the caller),
   * loading it first: a client is never answered before the file's text is in the document.
   * Refuses non-files (NOT_A_FILE), missing files (NOT_FOUND), files over the cap (FILE_TOO_LARGE)
   * and binary or non-UTF-8 files (INVALID_ENCODING).
   */
  async open(
    target: ConfinedPath,
    peer: CollabPeer,
    client: CollabClient,
    access: CollabAccess,
  ): Promise<CollabConnection> {
    for (;;) {
      if (this.closed)
        throw new WorkspaceError('INVALID_ARGUMENT', 'The server is stopping; reconnect later.');
      const doc = await this.documentFor(target);
      if (doc.unloading || doc.gone) {
        await doc.unloading;
        continue;
      }
      return doc.connect(peer, client, access);
    }
  }

  /** The path of the Yjs state of a document (a hash of its workspace path). */
  statePath(realRel: string): string {
    return join(this.stateRoot, `${createHash('sha256').update(realRel).digest('hex')}.ystate`);
  }

  async aroundWrite<T>(target: ConfinedPath, write: () => Promise<T>): Promise<T> {
    const doc = this.openDocumentOf(target);
    if (!doc || doc.gone || doc.unloading) return write();
    return this.enqueue(doc, async () => {
      // The write sees the shared text, and the shared text then takes the write as a delta.
      await this.flush(doc);
      const result = await write();
      await this.syncFromDisk(doc, true);
      return result;
    });
  }

  checkDisk(): void {
    for (const doc of this.docs.values()) {
      if (doc.gone || doc.unloading || doc.checkQueued) continue;
      doc.checkQueued = true;
      void this.enqueue(doc, () => {
        doc.checkQueued = false;
        return this.syncFromDisk(doc, false);
      });
    }
  }

  /** Writes and unloads every document, ending its connections (the server is stopping). */
  async close(): Promise<void> {
    this.closed = true;
    const pending: Array<Promise<void> | null> = [];
    for (const doc of [...this.docs.values()]) {
      doc.endAll(CLOSE_CODES.GOING_AWAY, 'The server is stopping.');
      pending.push(doc.unloading ?? this.unload(doc));
    }
    await Promise.all(pending);
    this.stopPolling();
  }

  /** The loaded document of a file: by its real path, else by its identity (another spelling). */
  private openDocumentOf(target: ConfinedPath): SharedDocument | undefined {
    const doc = this.docs.get(target.realRel);
    if (doc || !target.stats) return doc;
    const identity = `${target.stats.dev}:${target.stats.ino}`;
    return [...this.docs.values()].find((d) => d.identity === identity && !d.gone);
  }

  private async documentFor(target: ConfinedPath): Promise<SharedDocument> {
    const key = target.realRel;
    const doc = this.openDocumentOf(target);
    if (doc) return doc;
    let loading = this.loading.get(key);
    if (!loading) {
      loading = this.load(target).finally(() => this.loading.delete(key));
      this.loading.set(key, loading);
    }
    return loading;
  }

  private async load(target: ConfinedPath): Promise<SharedDocument> {
    const stats = target.stats;
    if (!stats)
      throw new WorkspaceError('NOT_FOUND', `No such file: ${JSON.stringify(target.rel)}; create it first.`);
    if (!stats.isFile()) {
      throw new WorkspaceError(
        'NOT_A_FILE',
        `${JSON.stringify(target.rel)} is not a regular file; only files are shared.`,
      );
    }
    const cap = this.limits.maxDocumentBytes;
    if (stats.size > cap) {
      throw new WorkspaceError(
        'FILE_TOO_LARGE',
        `${JSON.stringify(target.rel)} is ${stats.size} bytes; files over ${cap} bytes are not shared (use read_file).`,
        { limit: cap },
      );
    }
    const file = await this.options.resources.readFile(target, { encoding: 'utf8' }).catch((err: unknown) => {
      if (isCode(err, 'INVALID_ENCODING')) {
        throw new WorkspaceError(
          'INVALID_ENCODING',
          `${JSON.stringify(target.rel)} is not UTF-8 text; binary files are not shared.`,
        );
      }
      throw err;
    });
    if (file.content.includes('\u0000')) {
      throw new WorkspaceError(
        'INVALID_ENCODING',
        `${JSON.stringify(target.rel)} holds NUL bytes (binary); binary files are not shared.`,
      );
    }
    const state = await readFile(this.statePath(target.realRel)).catch(() => null);
    let doc: SharedDocument;
    try {
      doc = new SharedDocument(target.realRel, file.content, state, file.revision, stats, this.host);
    } catch (err) {
      // A damaged saved state must not keep the file from being shared: start afresh from the disk.
      this.options.log.warn('discarding an unreadable collaboration state', {
        path: target.realRel,
        error: (err as Error).message,
      });
      doc = new SharedDocument(target.realRel, file.content, null, file.revision, stats, this.host);
    }
    this.docs.set(doc.key, doc);
    this.startPolling();
    this.scheduleSleep(doc);
    return doc;
  }

  private enqueue<T>(doc: SharedDocument, task: () => Promise<T>): Promise<T> {
    const run = doc.queue.then(task, task);
    doc.queue = run.catch((err: unknown) =>
      this.options.log.error('shared document task failed', {
        path: doc.key,
        error: (err as Error).message,
      }),
    );
    return run;
  }

  /**
   * Debounces the write of a changed document: due `flushDelayMs` after its last change, at most
   * `maxFlushDelayMs` after its first unwritten one. One timer per document, re-armed only when it
   * fires early (not cleared and set again for every update of a busy document).
   */
  private schedule(doc: SharedDocument): void {
    if (doc.gone || this.closed) return;
    const now = Date.now();
    doc.lastChangeAt = now;
    if (doc.sleepTimer) clearTimeout(doc.sleepTimer);
    doc.sleepTimer = null;
    if (!doc.firstChangeAt) doc.firstChangeAt = now;
    if (!doc.timer) this.armFlush(doc);
  }

  private armFlush(doc: SharedDocument): void {
    const due = (): number =>
      Math.min(doc.lastChangeAt + this.limits.flushDelayMs, doc.firstChangeAt + this.limits.maxFlushDelayMs);
    doc.timer = setTimeout(
      () => {
        doc.timer = null;
        if (doc.gone || this.closed || !doc.firstChangeAt) return;
        if (Date.now() < due()) this.armFlush(doc);
        else void this.enqueue(doc, () => this.flush(doc));
      },
      Math.max(0, due() - Date.now()),
    );
  }

  /** Writes the shared text to disk if it differs (call inside the document's queue). */
  private async flush(doc: SharedDocument): Promise<void> {
    if (doc.timer) clearTimeout(doc.timer);
    doc.timer = null;
    doc.firstChangeAt = 0;
    if (doc.gone) return;
    doc.settle();
    const batch = doc.takePending();
    if (doc.diskText === null) {
      this.auditBatch(doc, batch);
      return;
    }
    const text = doc.text.toString();
    if (doc.diskText === text) {
      doc.diskText = null;
      this.auditBatch(doc, batch);
      this.scheduleSleep(doc);
      return;
    }
    const bytes = Buffer.byteLength(text);
    if (bytes > this.limits.maxDocumentBytes) {
      doc.endAll(
        CLOSE_CODES.TOO_LARGE,
        `The document is over the cap of ${this.limits.maxDocumentBytes} bytes.`,
      );
      return;
    }
    for (const origin of batch.keys()) {
      if (origin instanceof Connection && !this.options.mayWrite(origin.peer, doc.key)) {
        origin.end(CLOSE_CODES.FORBIDDEN, 'The policy no longer allows you to write this file.');
      }
    }
    const target = this.resolveFile(doc);
    if (!target) return;
    try {
      const written = await this.options.resources.writeFile(target, text, {
        expectedRevision: doc.revision,
      });
      const after = this.restat(doc.key);
      doc.markWritten(text, written.revision, after);
      this.auditBatch(doc, batch, written.revision);
      this.scheduleSleep(doc);
    } catch (err) {
      if (isCode(err, 'REVISION_CONFLICT')) {
        // Changed outside since the last read: take that change in first, then write again.
        for (const [origin, edits] of batch) {
          const current = doc.pending.get(origin);
          if (current) {
            current.updates += edits.updates;
            current.insertedChars += edits.insertedChars;
            current.deletedChars += edits.deletedChars;
          } else doc.pending.set(origin, edits);
        }
        await this.syncFromDisk(doc, true);
        if (doc.dirty) this.schedule(doc);
        return;
      }
      if (isCode(err, 'NOT_FOUND', 'NOT_A_FILE', 'PROTECTED_PATH', 'PATH_OUTSIDE_WORKSPACE')) {
        this.lost(doc, err);
        return;
      }
      this.options.log.error('could not write a shared document', {
        path: doc.key,
        error: (err as Error).message,
      });
      doc.endAll(CLOSE_CODES.SERVER_ERROR, 'The server could not save the document; reconnect to retry.');
    } finally {
      target.close();
    }
  }

  /** Lets a document that stays quiet after its write keep only its encoded state. */
  private scheduleSleep(doc: SharedDocument): void {
    if (doc.sleepTimer || doc.isDormant) return;
    doc.sleepTimer = setTimeout(() => {
      doc.sleepTimer = null;
      void this.enqueue(doc, async () => {
        if (!doc.gone && !doc.unloading && !doc.timer) doc.sleep();
      });
    }, this.limits.dormantAfterMs);
    doc.sleepTimer.unref();
  }

  private restat(key: string): import('node:fs').Stats | undefined {
    try {
      const target = this.options.resources.resolve(key, { followFinal: true });
      const stats = target.stats;
      target.close();
      return stats;
    } catch {
      return undefined;
    }
  }

  private auditBatch(
    doc: SharedDocument,
    batch: Map<unknown, { updates: number; insertedChars: number; deletedChars: number }>,
    revision = doc.revision,
  ): void {
    for (const [origin, edits] of batch) {
      if (!(origin instanceof Connection)) continue;
      this.options.auditor.edit(origin.peer, { path: doc.key, ...edits, revision });
    }
  }

  /** Loads an outside change of the file into the document (call inside the document's queue). */
  private async syncFromDisk(doc: SharedDocument, force: boolean): Promise<void> {
    if (doc.gone) return;
    const target = this.resolveFile(doc);
    if (!target) return;
    try {
      const stats = target.stats!;
      if (!force && statSignature(stats) === doc.signature) return;
      if (stats.size > this.limits.maxDocumentBytes) {
        doc.gone = true;
        doc.endAll(
          CLOSE_CODES.TOO_LARGE,
          `The file grew over the cap of ${this.limits.maxDocumentBytes} bytes.`,
        );
        return;
      }
      const file = await this.options.resources.readFile(target, { encoding: 'utf8' });
      if (file.content.includes('\u0000')) {
        doc.gone = true;
        doc.endAll(CLOSE_CODES.UNSUPPORTED, 'The file became binary; binary files are not shared.');
        return;
      }
      if (file.revision === doc.revision) {
        doc.signature = statSignature(stats);
        doc.identity = `${stats.dev}:${stats.ino}`;
        return;
      }
      doc.loadFromDisk(file.content, file.revision, stats);
    } catch (err) {
      if (isCode(err, 'INVALID_ENCODING')) {
        doc.gone = true;
        doc.endAll(CLOSE_CODES.UNSUPPORTED, 'The file is no longer UTF-8 text; its document is closed.');
        return;
      }
      this.lost(doc, err);
    } finally {
      target.close();
    }
  }

  /**
   * The document's file, resolved once through the confined layer, or null when it is gone (moved,
   * deleted, no longer a file): then the document is closed and nothing is held. The caller closes
   * the returned resolution.
   */
  private resolveFile(doc: SharedDocument): ConfinedPath | null {
    let target: ConfinedPath;
    try {
      target = this.options.resources.resolve(doc.key, { followFinal: true });
    } catch (err) {
      this.lost(doc, err);
      return null;
    }
    if (target.realRel !== doc.key || !target.stats?.isFile()) {
      target.close();
      this.gone(doc, 'The file was moved or deleted; its document is closed.');
      return null;
    }
    return target;
  }

  private lost(doc: SharedDocument, err: unknown): void {
    if (isCode(err, 'NOT_FOUND', 'NOT_A_FILE', 'NOT_A_DIRECTORY')) {
      this.gone(doc, 'The file was moved or deleted; its document is closed.');
    } else if (isCode(err, 'PROTECTED_PATH', 'PATH_OUTSIDE_WORKSPACE')) {
      this.gone(doc, 'The file is no longer reachable in the workspace; its document is closed.');
    } else {
      this.options.log.error('could not check a shared document', {
        path: doc.key,
        error: (err as Error).message,
      });
    }
  }

  private gone(doc: SharedDocument, reason: string): void {
    doc.gone = true;
    doc.endAll(CLOSE_CODES.NOT_FOUND, reason);
  }

  /** Writes a document nobody holds, keeps its Yjs state, and frees it. */
  private unload(doc: SharedDocument): Promise<void> {
    if (doc.unloading) return doc.unloading;
    doc.unloading = this.enqueue(doc, async () => {
      await this.flush(doc);
      await this.persist(doc);
    })
      .catch(() => undefined)
      .finally(() => {
        doc.destroy();
        if (this.docs.get(doc.key) === doc) this.docs.delete(doc.key);
        if (this.docs.size === 0) this.stopPolling();
      });
    return doc.unloading;
  }

  /** Saves the Yjs state atomically (temp file + rename) in the state dir. */
  private async persist(doc: SharedDocument): Promise<void> {
    const path = this.statePath(doc.key);
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(this.stateRoot, { recursive: true, mode: 0o700 });
      await writeFile(temp, doc.encodeState(), { mode: 0o600 });
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      this.options.log.warn('could not save a collaboration state', {
        path: doc.key,
        error: (err as Error).message,
      });
    }
  }

  private startPolling(): void {
    if (this.poller || this.closed) return;
    this.poller = setInterval(() => this.checkDisk(), this.limits.diskPollMs);
    this.poller.unref();
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }
}

export { DISK_ORIGIN };
