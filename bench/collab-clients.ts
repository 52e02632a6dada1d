import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { percentile } from './stats';

/**
 * The clients of the collaboration benchmark, in their own process (so the server process's heap and
 * CPU time hold only the server): stock y-websocket providers driven by messages from bench/collab.ts.
 */
interface Setup {
  url: string;
  token: string;
  room: string;
}

const setup = JSON.parse(process.env.MCPW_BENCH_COLLAB ?? '{}') as Setup;
const { url, token } = setup;
/** The file the clients open (set again by `connect`). */
let room = setup.room;

/** Updates the stock clients took in from the server. */
let remoteUpdates = 0;

function client(): { doc: Y.Doc; text: Y.Text; provider: WebsocketProvider } {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`${url}/collab`, room, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  // Each message from the server is one transaction of the client's document.
  doc.on('update', (_update: Uint8Array, origin: unknown) => {
    if (origin === provider) remoteUpdates++;
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
/** The lightweight clients of {@link relay}, connected until `leave`. */
let relayed: WebSocket[] = [];

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

/** The random edits of agent `index`: the same sequence whatever replica makes them. */
function edit(text: Y.Text, index: number, edits: number): void {
  const rnd = random(index + 1);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(rnd() * text.length);
    if (rnd() < 0.3 && at < text.length - 8) text.delete(at, 1 + Math.floor(rnd() * 8));
    else text.insert(at, 'abcdefgh'.slice(0, 1 + Math.floor(rnd() * 8)));
  }
}

/** Connects `agents` stock clients to `file` and waits until every one has synced. */
async function connect(agents: number, file: string): Promise<{ connected: number }> {
  room = file;
  clients = Array.from({ length: agents }, () => client());
  await until(() => clients.every((c) => c.provider.synced));
  return { connected: clients.length };
}

/** CPU time of this process when its clients started their edits. */
let cpuAtStart = process.cpuUsage();

function cpuMs(usage: NodeJS.CpuUsage): number {
  return Math.round((usage.user + usage.system) / 1000);
}

/**
 * The connected clients, agents `first`, `first + 1`, ... of the load, make `edits` random inserts
 * and deletes each (all at once, as y-websocket sends them: one update per edit). Answers with each
 * agent's client id and its clock once done (what the others must reach), and the time spent.
 */
function makeEdits(first: number, edits: number): { finals: Array<[number, number]>; editMs: number } {
  remoteUpdates = 0;
  cpuAtStart = process.cpuUsage();
  const started = performance.now();
  clients.forEach((c, index) => edit(c.text, first + index, edits));
  const editMs = performance.now() - started;
  const finals = clients.map((c): [number, number] => [
    c.doc.clientID,
    Y.getState(c.doc.store, c.doc.clientID),
  ]);
  return { finals, editMs };
}

/**
 * Waits until every client here holds every agent's edits: its state vector has reached each
 * agent's final clock and nothing waits for a missing dependency. Answers with a hash of the text
 * (the coordinator checks that every replica is byte-identical) and the server messages taken in.
 */
async function converge(
  targets: Array<[number, number]>,
): Promise<{ sha256: string; textBytes: number; remoteUpdates: number; cpuMs: number }> {
  const reached = (doc: Y.Doc): boolean =>
    doc.store.pendingStructs === null &&
    doc.store.pendingDs === null &&
    targets.every(([clientId, clock]) => Y.getState(doc.store, clientId) >= clock);
  while (!clients.every((c) => reached(c.doc))) await new Promise((resolve) => setTimeout(resolve, 1));
  const texts = new Set(clients.map((c) => c.text.toString()));
  if (texts.size !== 1) throw new Error('replicas of one process diverged');
  const [text] = texts as Set<string>;
  return {
    sha256: createHash('sha256').update(text!).digest('hex'),
    textBytes: Buffer.byteLength(text!),
    remoteUpdates,
    cpuMs: cpuMs(process.cpuUsage(cpuAtStart)),
  };
}

/** A y-websocket incremental update message (sync, update) carrying `update`. */
function updateMessage(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarUint(encoder, 2);
  encoding.writeVarUint8Array(encoder, update);
  return encoding.toUint8Array(encoder);
}

/** The Yjs update a y-websocket sync message carries (step 2 or update), else null. */
function carriedUpdate(data: Uint8Array): Uint8Array | null {
  const decoder = decoding.createDecoder(data);
  if (decoding.readVarUint(decoder) !== 0) return null;
  return decoding.readVarUint(decoder) === 0 ? null : decoding.readVarUint8Array(decoder);
}

/**
 * The same load as {@link makeEdits}, relayed by the server between lightweight clients, to measure the
 * server apart from the stock clients' own Yjs work in this one thread. Each agent's updates are made
 * beforehand on a replica of the synced document (they are the very messages a stock client sends,
 * one per edit); the clock starts when they are sent, and stops when every client has received every
 * other agent's last update (read from each update's clock ranges, not integrated into a document).
 */
async function relay(
  agents: number,
  edits: number,
): Promise<{ deliverMs: number; framesPerUpdate: number; bytesPerUpdate: number }> {
  const seed = client();
  await until(() => seed.provider.synced);
  const base = Y.encodeStateAsUpdate(seed.doc);
  seed.provider.destroy();
  seed.doc.destroy();
  const outgoing: Uint8Array[][] = [];
  const finals = new Map<number, number>();
  for (let index = 0; index < agents; index++) {
    const doc = new Y.Doc();
    Y.applyUpdate(doc, base);
    const messages: Uint8Array[] = [];
    doc.on('update', (update: Uint8Array) => messages.push(updateMessage(update)));
    edit(doc.getText('content'), index, edits);
    finals.set(doc.clientID, Y.decodeStateVector(Y.encodeStateVector(doc)).get(doc.clientID) ?? 0);
    outgoing.push(messages);
    doc.destroy();
  }
  const ids = [...finals.keys()];
  let frames = 0;
  let bytes = 0;
  const sockets = await Promise.all(
    ids.map(
      (own) =>
        new Promise<{ ws: WebSocket; done: Promise<void> }>((opened, failed) => {
          const ws = new WebSocket(`${url}/collab/${room}?token=${encodeURIComponent(token)}`);
          const seen = new Map<number, number>();
          let missing = ids.length - 1;
          let open = false;
          let delivered: () => void = () => undefined;
          const done = new Promise<void>((resolve) => (delivered = resolve));
          ws.on('error', failed);
          ws.on('message', (data: Buffer) => {
            // The server's first message (its sync step 1) says the document is open.
            if (!open) {
              open = true;
              opened({ ws, done });
              return;
            }
            frames++;
            bytes += data.length;
            const update = carriedUpdate(data);
            if (!update) return;
            for (const [clientId, clock] of Y.parseUpdateMeta(update).to) {
              const target = finals.get(clientId);
              if (target === undefined || clientId === own) continue;
              const before = seen.get(clientId) ?? 0;
              if (before < target && clock >= target) missing--;
              seen.set(clientId, Math.max(before, clock));
            }
            if (missing === 0) delivered();
          });
        }),
    ),
  );
  const started = performance.now();
  sockets.forEach(({ ws }, index) => {
    for (const message of outgoing[index]!) ws.send(message);
  });
  const framesBefore = frames;
  const bytesBefore = bytes;
  await Promise.all(sockets.map(({ done }) => done));
  const deliverMs = performance.now() - started;
  relayed = sockets.map(({ ws }) => ws);
  const updates = agents * edits;
  return {
    deliverMs: Math.round(deliverMs),
    framesPerUpdate: Math.round(((frames - framesBefore) / updates) * 1000) / 1000,
    bytesPerUpdate: Math.round((bytes - bytesBefore) / updates),
  };
}

interface Command {
  cmd: string;
  samples?: number;
  agents?: number;
  first?: number;
  room?: string;
  edits?: number;
  targets?: Array<[number, number]>;
}

process.on('message', (message: Command) => {
  const answer = (value: unknown): void => void process.send!(value);
  void (async () => {
    if (message.cmd === 'latency') answer(await latency(message.samples ?? 200));
    else if (message.cmd === 'connect') answer(await connect(message.agents ?? 20, message.room ?? room));
    else if (message.cmd === 'edit') answer(makeEdits(message.first ?? 0, message.edits ?? 500));
    else if (message.cmd === 'converge') answer(await converge(message.targets ?? []));
    else if (message.cmd === 'relay') answer(await relay(message.agents ?? 20, message.edits ?? 500));
    else if (message.cmd === 'leave') {
      for (const c of clients) {
        c.provider.destroy();
        c.doc.destroy();
      }
      clients = [];
      for (const ws of relayed) ws.close();
      relayed = [];
      answer({ left: true });
    }
  })().catch((err: unknown) => answer({ error: (err as Error).message }));
});
