import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WorkspaceError } from '../protocol/errors';
import { WWW_AUTHENTICATE } from './auth';

/** One WebSocket endpoint: which request paths it takes, and how. */
export interface UpgradeRoute {
  /** Whether the route takes this path (the request URL without its query). */
  matches(path: string): boolean;
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * The server's one `upgrade` listener: each WebSocket upgrade goes to the first route whose path
 * matches (`/ws`, `/collab/<path>`), and anything else is refused with 404.
 */
export function routeUpgrades(server: Server, routes: readonly UpgradeRoute[]): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Only the path decides; the query (which may carry a token) is never logged or echoed.
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes.find((r) => r.matches(path));
    if (!route) {
      refuseUpgrade(
        socket,
        new WorkspaceError('NOT_FOUND', 'WebSocket endpoints are /ws and /collab/<workspace path>.'),
      );
      return;
    }
    route.handle(req, socket, head);
  });
}

/** Answers an upgrade request with the HTTP error of `error` and closes the socket. */
export function refuseUpgrade(socket: Duplex, error: WorkspaceError): void {
  const body = JSON.stringify({ error: error.toJSON() });
  const status = error.httpStatus;
  const reason =
    status === 401
      ? 'Unauthorized'
      : status === 404
        ? 'Not Found'
        : status === 400
          ? 'Bad Request'
          : 'Forbidden';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n` +
      (status === 401 ? `WWW-Authenticate: ${WWW_AUTHENTICATE}\r\n` : '') +
      `\r\n${body}`,
  );
}
