import WebSocket from 'ws';
import { until } from './wait';

/** The HTTP status of a WebSocket upgrade to `url` with raw `headers` (101 when accepted). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', () => undefined);
  });
}

/** A client of the server's `/ws` endpoint. */
export interface WsClient {
  ws: WebSocket;
  /** Every frame received, parsed, in order. */
  frames: any[];
  /** Sends `{id, op, params}` and resolves with its `result` or `error` frame. */
  call(op: string, params: unknown): Promise<any>;
  /** The close code the connection ended with, or null while it is open. */
  closed(): number | null;
  close(): void;
}

/** Connects to `/ws` of the server at `url` (its http:// address) with `token`. */
export async function connectWs(url: string, token: string): Promise<WsClient> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: any[] = [];
  let closed: number | null = null;
  ws.on('message', (raw) => frames.push(JSON.parse(raw.toString())));
  ws.on('close', (code) => (closed = code));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let next = 1;
  const call = async (op: string, params: unknown): Promise<any> => {
    const id = next++;
    ws.send(JSON.stringify({ id, op, params }));
    let reply: any;
    await until(`a reply to ${op}`, () => {
      reply = frames.find((f) => f.id === id && (f.type === 'result' || f.type === 'error'));
      return reply !== undefined;
    });
    return reply;
  };
  return { ws, frames, call, closed: () => closed, close: () => ws.close() };
}
