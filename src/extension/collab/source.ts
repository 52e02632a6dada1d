import * as authProtocol from 'y-protocols/auth';
import type * as decoding from 'lib0/decoding';
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { encodeSaving, MESSAGE_SAVING, readSaving } from '../../protocol/saving';
import type { DocumentSource, SharedDocumentHandle, Unsubscribe } from './types';

/** y-websocket's auth message type (y-protocols/auth: "permission denied"). */
const MESSAGE_AUTH = 2;
/** The server's close code for "you may edit again, reconnect" (see the collab server). */
const CLOSE_RECONNECT = 4100;
/** Connections that end before the first sync (refused upgrade, server gone) before giving up. */
const MAX_FAILED_CONNECTS = 5;
/** Longest a save waits for the server to acknowledge it (ms): a save is never held up for long. */
const SAVE_ACK_MS = 1000;

/** Options of {@link WebsocketDocumentSource}. */
export interface WebsocketSourceOptions {
  /** The collaboration endpoint, `ws://127.0.0.1:PORT/collab`. */
  serverUrl: string;
  /** Bearer token, sent as the `token` query parameter of the upgrade. */
  token: string;
}

/** The room of a workspace path: each segment percent-encoded. */
export function roomOf(relPath: string): string {
  return relPath.split('/').map(encodeURIComponent).join('/');
}

/**
 * Shared documents of an MCP Workspace server over its y-websocket endpoint, with the stock
 * `WebsocketProvider`: read-only comes from the server's "permission denied" message (sent as soon
 * as a read-only replica answers the first sync) and ends with its "reconnect" close.
 */
export class WebsocketDocumentSource implements DocumentSource {
  constructor(private readonly options: WebsocketSourceOptions) {}

  open(relPath: string): SharedDocumentHandle {
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(this.options.serverUrl, roomOf(relPath), doc, {
      params: { token: this.options.token },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    const readOnlyListeners = new Set<(readOnly: boolean, reason: string) => void>();
    const closedListeners = new Set<(reason: string) => void>();
    let readOnly = false;
    let closed: string | null = null;
    const setReadOnly = (value: boolean, reason: string): void => {
      if (value === readOnly) return;
      readOnly = value;
      for (const listener of readOnlyListeners) listener(value, reason);
    };
    provider.messageHandlers[MESSAGE_AUTH] = (_encoder, decoder: decoding.Decoder) => {
      authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => setReadOnly(true, reason));
    };
    // Saves announced and not yet acknowledged, by SHA-256.
    const saving = new Map<string, Set<() => void>>();
    provider.messageHandlers[MESSAGE_SAVING] = (_encoder, decoder: decoding.Decoder) => {
      const sha256 = readSaving(decoder);
      for (const done of saving.get(sha256) ?? []) done();
    };
    const announceSave = (sha256: string): Promise<void> =>
      new Promise<void>((resolve) => {
        const ws = provider.ws;
        if (!provider.synced || !ws || ws.readyState !== ws.OPEN) {
          resolve();
          return;
        }
        const waiting = saving.get(sha256) ?? new Set<() => void>();
        saving.set(sha256, waiting);
        const done = (): void => {
          clearTimeout(timer);
          waiting.delete(done);
          if (waiting.size === 0 && saving.get(sha256) === waiting) saving.delete(sha256);
          resolve();
        };
        const timer = setTimeout(done, SAVE_ACK_MS);
        waiting.add(done);
        ws.send(encodeSaving(sha256));
      });
    let rejectSync: (reason: Error) => void = () => undefined;
    const synced = new Promise<void>((resolve, reject) => {
      rejectSync = reject;
      const onSync = (isSynced: boolean): void => {
        if (!isSynced) return;
        provider.off('sync', onSync);
        resolve();
      };
      provider.on('sync', onSync);
    });
    // Nobody may have awaited it yet when it rejects.
    synced.catch(() => undefined);
    let everSynced = false;
    let failed = 0;
    void synced.then(
      () => (everSynced = true),
      () => undefined,
    );
    provider.on('connection-close', (event) => {
      if (event?.code === CLOSE_RECONNECT) setReadOnly(false, event.reason);
      // An upgrade refused over HTTP (bad token, foreign Origin) is no close code stock clients stop on.
      if (!everSynced && closed === null && ++failed >= MAX_FAILED_CONNECTS) {
        closed = `could not connect to ${this.options.serverUrl} (${event ? `code ${event.code}` : 'no answer'})`;
        provider.disconnect();
        rejectSync(new Error(closed));
        for (const listener of closedListeners) listener(closed);
      }
    });
    provider.on('closed', ({ code, reason }) => {
      closed = `${reason || 'closed by the server'} (${code})`;
      rejectSync(new Error(closed));
      for (const listener of closedListeners) listener(closed);
    });
    const subscribe = <T>(set: Set<T>, listener: T): Unsubscribe => {
      set.add(listener);
      return () => set.delete(listener);
    };
    return {
      doc,
      awareness: provider.awareness,
      synced,
      get readOnly() {
        return readOnly;
      },
      onReadOnlyChange: (listener) => subscribe(readOnlyListeners, listener),
      announceSave,
      onClosed: (listener) => {
        if (closed !== null) listener(closed);
        return subscribe(closedListeners, listener);
      },
      dispose: () => {
        for (const waiting of [...saving.values()]) for (const done of [...waiting]) done();
        readOnlyListeners.clear();
        closedListeners.clear();
        rejectSync(new Error('disposed'));
        provider.destroy();
        doc.destroy();
      },
    };
  }
}
