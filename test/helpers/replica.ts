import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

/** A stock y-websocket client (no BroadcastChannel: every byte goes through the server). */
export interface Replica {
  doc: Y.Doc;
  text: Y.Text;
  provider: WebsocketProvider;
  /** Close events the server sent (code and reason). */
  closes: Array<{ code: number; reason: string }>;
  /** Permission-denied reasons the server sent (the standard y-protocols auth message). */
  denied: string[];
}

/** A stock y-websocket client of `room` on the server at `url` (http address), quiet about refusals. */
export function replica(url: string, room: string, token: string, connect = true): Replica {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${url}/collab`, room, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
    connect,
  });
  const closes: Replica['closes'] = [];
  const denied: string[] = [];
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason });
  });
  // The stock client logs permission-denied through this handler (message type 2).
  const original = provider.messageHandlers[2]!;
  provider.messageHandlers[2] = (encoder, decoder, p, emitSynced, type) => {
    const bytes = decoder.arr.subarray(decoder.pos);
    denied.push(Buffer.from(bytes).toString('utf8'));
    const warn = console.warn;
    console.warn = () => undefined;
    try {
      original(encoder, decoder, p, emitSynced, type);
    } finally {
      console.warn = warn;
    }
  };
  return { doc, text: doc.getText('content'), provider, closes, denied };
}

/** Disconnects and frees replicas. */
export function destroy(...replicas: Replica[]): void {
  for (const r of replicas) {
    r.provider.destroy();
    r.doc.destroy();
  }
}
