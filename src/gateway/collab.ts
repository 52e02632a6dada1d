import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { WorkspaceError, toWorkspaceError, type ErrorCode } from '../protocol/errors';
import type { Principal } from '../protocol/principal';
import { CLOSE_CODES, closeReason, type CollabConnection } from '../core/collab';
import type { OperationDispatcher } from '../core/operations';
import { refuseUpgrade } from './upgrade';

/** Path prefix of the y-websocket endpoint: `/collab/<workspace-relative path>`. */
export const COLLAB_PREFIX = '/collab/';

/** Everything the collaboration adapter needs from the server. */
export interface CollabGatewayDeps {
  dispatcher: OperationDispatcher;
  /** Host, Origin and token checks (header or `token` query parameter). */
  admit: (req: IncomingMessage) => Principal | WorkspaceError;
  /** Largest WebSocket message accepted (the document layer applies its own, smaller caps). */
  maxMessageBytes: number;
}

/** The close code a refusal to open a document ends the connection with. */
const CLOSE_FOR: Partial<Record<ErrorCode, number>> = {
  POLICY_DENIED: CLOSE_CODES.FORBIDDEN,
  PROTECTED_PATH: CLOSE_CODES.FORBIDDEN,
  PATH_OUTSIDE_WORKSPACE: CLOSE_CODES.FORBIDDEN,
  CAPABILITY_NOT_NEGOTIATED: CLOSE_CODES.FORBIDDEN,
  NOT_FOUND: CLOSE_CODES.NOT_FOUND,
  NOT_A_FILE: CLOSE_CODES.NOT_FOUND,
  NOT_A_DIRECTORY: CLOSE_CODES.NOT_FOUND,
  FILE_TOO_LARGE: CLOSE_CODES.TOO_LARGE,
  INVALID_ENCODING: CLOSE_CODES.UNSUPPORTED,
  INVALID_PATH: CLOSE_CODES.BAD_REQUEST,
  INVALID_ARGUMENT: CLOSE_CODES.BAD_REQUEST,
  SESSION_NOT_FOUND: CLOSE_CODES.SESSION_ENDED,
  UNAUTHORIZED: CLOSE_CODES.SESSION_ENDED,
};

/**
 * The workspace path a room names: the URL path after `/collab/`, percent-decoded per segment
 * (the query is dropped). Throws INVALID_PATH for an empty or undecodable room.
 */
export function roomPath(url: string | undefined): string {
  const path = (url ?? '').split('?')[0]!;
  const room = path.startsWith(COLLAB_PREFIX) ? path.slice(COLLAB_PREFIX.length) : '';
  let segments: string[];
  try {
    segments = room.split('/').map((segment) => decodeURIComponent(segment));
  } catch {
    throw new WorkspaceError(
      'INVALID_PATH',
      'The room name is not valid percent-encoding; encode each path segment.',
    );
  }
  if (segments.some((segment) => segment.includes('/'))) {
    throw new WorkspaceError(
      'INVALID_PATH',
      'A path segment of the room name decodes to "/"; name the file by its path.',
    );
  }
  const decoded = segments.join('/');
  if (decoded === '') {
    throw new WorkspaceError('INVALID_PATH', 'Name a workspace file: /collab/<workspace-relative path>.');
  }
  return decoded;
}

function bytesOf(data: RawData): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}

/**
 * y-websocket endpoint at `/collab/<path>`: a stock `WebsocketProvider(serverUrl + '/collab', path,
 * doc, {params: {token}})` speaks the standard sync and awareness protocol with the file's shared
 * document. Admission (Host, Origin, token) happens at the upgrade; the document is opened through
 * the dispatcher (session, policy, audit), and messages that arrive meanwhile wait for it.
 */
export class CollabGateway {
  private readonly wss: WebSocketServer;

  constructor(private readonly deps: CollabGatewayDeps) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxMessageBytes });
  }

  /** Takes an upgrade request under {@link COLLAB_PREFIX} (routed here by the upgrade router). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const admitted = this.deps.admit(req);
    if (admitted instanceof WorkspaceError) return refuseUpgrade(socket, admitted);
    // A bad room is refused after the upgrade, with a close code stock clients do not retry.
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, admitted, req.url));
  }

  /** Closes every connection (documents are written and unloaded by the collaboration hub). */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private serve(ws: WebSocket, principal: Principal, url: string | undefined): void {
    const { dispatcher, maxMessageBytes } = this.deps;
    let connection: CollabConnection | null = null;
    let left = false;
    // Messages that arrive while the document loads are answered once it has (never an empty text).
    const early: Uint8Array[] = [];
    let earlyBytes = 0;
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const bytes = bytesOf(data);
      if (connection) {
        connection.receive(bytes);
        return;
      }
      earlyBytes += bytes.length;
      if (earlyBytes > maxMessageBytes) {
        ws.close(CLOSE_CODES.TOO_LARGE, 'Too much data before the document opened.');
        return;
      }
      early.push(bytes);
    });
    ws.on('close', () => {
      left = true;
      connection?.detach();
    });
    void (async () => {
      const room = roomPath(url);
      const sessionId = await dispatcher.resolveSession(principal, 'collab');
      const opened = await dispatcher.openDocument({ principal, sessionId, transport: 'collab' }, room, {
        send: (message) => {
          if (ws.readyState === ws.OPEN) ws.send(message);
        },
        close: (code, reason) => ws.close(code, reason),
      });
      if (left) {
        opened.detach();
        return;
      }
      connection = opened;
      for (const message of early.splice(0)) opened.receive(message);
    })().catch((err: unknown) => {
      const error = toWorkspaceError(err);
      if (ws.readyState === ws.OPEN) {
        ws.close(
          CLOSE_FOR[error.code] ?? CLOSE_CODES.SERVER_ERROR,
          closeReason(`${error.code}: ${error.message}`),
        );
      }
    });
  }
}
