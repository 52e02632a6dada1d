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

/** The principal the auth middleware attached to an authenticated request. */
export function principalOf(auth: AuthInfo | undefined): Principal {
  const principal = auth?.extra?.['principal'] as Principal | undefined;
  if (!principal) throw new WorkspaceError('UNAUTHORIZED', 'Missing bearer token.');
  return principal;
}
