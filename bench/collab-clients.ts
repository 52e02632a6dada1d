import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { percentile } from './stats';

/**
 * The clients of the collaboration benchmark, in their own thread (so the server thread's heap holds
 * only the server): stock y-websocket providers driven by messages from bench/collab.ts.
 */
interface Setup {
  url: string;
  token: string;
  room: string;
}

const { url, token, room } = workerData as Setup;

function client(): { doc: Y.Doc; text: Y.Text; provider: WebsocketProvider } {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${url}/collab`, room, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  return { doc, text: doc.getText('content'), provider };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

let clients: ReturnType<typeof client>[] = [];

/** Agent -> agent propagation: one client types, another sees it; `samples` round trips. */
async function latency(samples: number): Promise<{ p50: number; p99: number; samples: number }> {
  const a = client();
  const b = client();
  await until(() => a.provider.synced && b.provider.synced);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const length = b.text.length;
    const started = performance.now();
    a.text.insert(Math.floor(a.text.length / 2), 'x');
    await until(() => b.text.length > length);
    times.push(performance.now() - started);
  }
  for (const c of [a, b]) {
    c.provider.destroy();
    c.doc.destroy();
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), samples };
}

/** `agents` clients make `edits` random inserts and deletes each at once; time until all converge. */
async function load(agents: number, edits: number): Promise<{ convergeMs: number; textBytes: number }> {
  clients = Array.from({ length: agents }, () => client());
  await until(() => clients.every((c) => c.provider.synced));
  const started = performance.now();
  clients.forEach((c, index) => {
    const rnd = random(index + 1);
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(rnd() * c.text.length);
      if (rnd() < 0.3 && at < c.text.length - 8) c.text.delete(at, 1 + Math.floor(rnd() * 8));
      else c.text.insert(at, 'abcdefgh'.slice(0, 1 + Math.floor(rnd() * 8)));
    }
  });
  const converged = (): boolean => {
    const first = clients[0]!.text;
    return (
      clients.every((c) => c.text.length === first.length) &&
      new Set(clients.map((c) => c.text.toString())).size === 1
    );
  };
  while (!converged()) await new Promise((resolve) => setTimeout(resolve, 2));
  const convergeMs = performance.now() - started;
  return { convergeMs: Math.round(convergeMs), textBytes: Buffer.byteLength(clients[0]!.text.toString()) };
}

parentPort!.on('message', (message: { cmd: string; samples?: number; agents?: number; edits?: number }) => {
  void (async () => {
    if (message.cmd === 'latency') parentPort!.postMessage(await latency(message.samples ?? 200));
    else if (message.cmd === 'load')
      parentPort!.postMessage(await load(message.agents ?? 20, message.edits ?? 500));
    else if (message.cmd === 'leave') {
      for (const c of clients) {
        c.provider.destroy();
        c.doc.destroy();
      }
      clients = [];
      parentPort!.postMessage({ left: true });
    }
  })();
});
