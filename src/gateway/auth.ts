import type { IncomingMessage } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { WorkspaceError } from '../protocol/errors';
import type { Principal } from '../protocol/principal';

/** Addresses the server may bind: loopback only. */
export const LOOPBACK_BIND_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '::1'];

/** Host names a request may address (URL form of {@link LOOPBACK_BIND_HOSTS}): the DNS-rebinding defence. */
const LOOPBACK_HOSTNAMES = new Set(LOOPBACK_BIND_HOSTS.map((h) => (h.includes(':') ? `[${h}]` : h)));

/** Whether a `Host` header names a loopback address (any port). */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const match = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host.trim().toLowerCase());
  return match !== null && LOOPBACK_HOSTNAMES.has(match[1]!);
}

/** The port a `Host` header addresses (80 when it names none), or null when it has no valid one. */
function hostPort(host: string): number | null {
  const match = /^(?:\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.trim());
  if (!match) return null;
  const port = match[1] === undefined ? 80 : Number(match[1]);
  return port <= 65535 ? port : null;
}

/**
 * Whether a browser `Origin` may call the server. Allowed: an origin the owner listed exactly, or
 * a loopback page of this very server (`http://localhost:PORT`, `http://127.0.0.1:PORT`,
 * `http://[::1]:PORT`) where PORT is the port the request addressed (its loopback `Host` header)
 * or the port the server listens on. A page on another loopback port is another web origin (any
 * local web app) and stays refused, as does every foreign origin. No `Origin` means no browser.
 */
export function isAllowedOrigin(
  origin: string | undefined,
  request: { host: string | undefined; serverPort: number; allowed: ReadonlySet<string> },
): boolean {
  if (origin === undefined) return true;
  if (request.allowed.has(origin)) return true;
  if (!request.host || !isLoopbackHost(request.host)) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  // An Origin is scheme://host[:port] and nothing else; anything more is not a browser's.
  if (url.protocol !== 'http:' || url.origin !== origin.toLowerCase() || url.username || url.password) {
    return false;
  }
  if (!LOOPBACK_HOSTNAMES.has(url.hostname)) return false;
  const port = url.port === '' ? 80 : Number(url.port);
  return port === hostPort(request.host) || port === request.serverPort;
}

/** The principal the auth middleware attached to an authenticated request. */
export function principalOf(auth: AuthInfo | undefined): Principal {
  const principal = auth?.extra?.['principal'] as Principal | undefined;
  if (!principal) throw new WorkspaceError('UNAUTHORIZED', 'Missing bearer token.');
  return principal;
}

/** The `WWW-Authenticate` challenge sent with every 401. */
export const WWW_AUTHENTICATE = 'Bearer realm="mcp-workspace"';

/** What {@link createAdmission} needs: token lookup, the owner's origins, the port, a log. */
export interface AdmissionOptions {
  /** The principal of a bearer token, or null when it is unknown or revoked. */
  authenticate: (token: string) => Principal | null;
  /** Origins the owner allowed besides this server's own loopback pages. */
  allowedOrigins: ReadonlySet<string>;
  /** The port the server listens on (known once it listens). */
  serverPort: () => number;
  /** Logs a failed authentication (never the token). */
  onRefused: (fields: Record<string, unknown>) => void;
}

/** A request admitted by {@link Admission.admit}: who it is and the token it used. */
export interface Admitted {
  principal: Principal;
  token: string;
}

/** The one place a request or upgrade is admitted: Host, Origin, then the bearer token. */
export interface Admission {
  /** Host and Origin checks (the DNS-rebinding and cross-site defence); null when they pass. */
  checkHostAndOrigin(req: IncomingMessage): WorkspaceError | null;
  /** The bearer token's principal, or UNAUTHORIZED. */
  authenticate(req: IncomingMessage): Admitted | WorkspaceError;
  /** Both, in order: what every endpoint but `/health` requires. */
  admit(req: IncomingMessage): Admitted | WorkspaceError;
  /**
   * Like {@link Admission.admit}, but without an Authorization header the token may come from the
   * `token` query parameter (browser WebSocket clients such as y-websocket cannot set headers).
   * The query is never logged.
   */
  admitWithQueryToken(req: IncomingMessage): Admitted | WorkspaceError;
}

/** The `token` query parameter of a request URL, if any (the URL itself is never logged). */
function queryToken(url: string | undefined): string | null {
  const query = url?.split('?')[1];
  if (query === undefined) return null;
  const token = new URLSearchParams(query).get('token');
  return token === null || token === '' ? null : token;
}

/** Builds the server's {@link Admission}, shared by HTTP requests and WebSocket upgrades. */
export function createAdmission(options: AdmissionOptions): Admission {
  const checkHostAndOrigin = (req: IncomingMessage): WorkspaceError | null => {
    // DNS-rebinding defence: only loopback Host names, on every endpoint.
    if (!isLoopbackHost(req.headers.host)) {
      return new WorkspaceError('FORBIDDEN_HOST', 'Host header must name a loopback address.');
    }
    // Browsers: this server's own loopback pages and the owner's allowed origins, nothing else.
    const origin = req.headers.origin;
    const request = {
      host: req.headers.host,
      serverPort: options.serverPort(),
      allowed: options.allowedOrigins,
    };
    if (!isAllowedOrigin(origin, request)) {
      return new WorkspaceError(
        'FORBIDDEN_ORIGIN',
        `Origin ${origin} is not allowed; add it to the allowed origins.`,
      );
    }
    return null;
  };
  const authenticate = (req: IncomingMessage): Admitted | WorkspaceError => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const principal = match ? options.authenticate(match[1]!) : null;
    if (principal) return { principal, token: match![1]! };
    options.onRefused({ path: req.url?.split('?')[0], method: req.method, hadToken: Boolean(match) });
    return new WorkspaceError(
      'UNAUTHORIZED',
      match
        ? 'Unknown or revoked token.'
        : 'Send Authorization: Bearer <token> (the owner token or an agent token).',
    );
  };
  const authenticateQuery = (req: IncomingMessage): Admitted | WorkspaceError => {
    if (req.headers.authorization !== undefined) return authenticate(req);
    const token = queryToken(req.url);
    const principal = token ? options.authenticate(token) : null;
    if (principal && token) return { principal, token };
    options.onRefused({ path: req.url?.split('?')[0], method: req.method, hadToken: token !== null });
    return new WorkspaceError(
      'UNAUTHORIZED',
      token
        ? 'Unknown or revoked token.'
        : 'Pass the token as the `token` query parameter or as Authorization: Bearer <token>.',
    );
  };
  return {
    checkHostAndOrigin,
    authenticate,
    admit: (req) => checkHostAndOrigin(req) ?? authenticate(req),
    admitWithQueryToken: (req) => checkHostAndOrigin(req) ?? authenticateQuery(req),
  };
}
