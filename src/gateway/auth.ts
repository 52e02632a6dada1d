import type { AuthInfo } from '@modelcontextprotocol/server';
import { WorkspaceError } from '../protocol/errors';
import type { Principal } from '../protocol/principal';

/** Host names a request may address: loopback only (the DNS-rebinding defence). */
const LOOPBACK_HOSTNAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

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
