/**
 * The few Engine API calls a server makes at start (ping, list and remove orphaned containers),
 * over plain node:http, so the full client (dockerode and its dependencies, ~20 MB of memory) is
 * loaded only when a session first runs a command. Private to the Docker runtime.
 */
import { request } from 'node:http';
import { WorkspaceError } from '../../../protocol/errors';

/** Where the engine listens: a unix socket or a local TCP port. */
export type EngineAddress = { socketPath: string } | { host: string; port: number; protocol: 'http' };

/** Parses `unix:///path` or `tcp://host:port` (the workspace is bind-mounted, so the engine is local). */
export function parseEngineAddress(address: string): EngineAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Docker host ${address} is not a URL like unix:///var/run/docker.sock.`,
    );
  }
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' };
  }
  throw new WorkspaceError(
    'INVALID_ARGUMENT',
    `Docker host ${address}: use unix:///path/to/docker.sock or tcp://127.0.0.1:PORT (a local engine: the workspace is bind-mounted).`,
  );
}

/** One Engine API request; resolves with the status and body text, rejects on connection errors. */
export function engineRequest(
  address: EngineAddress,
  method: 'GET' | 'DELETE',
  path: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...('socketPath' in address
          ? { socketPath: address.socketPath }
          : { host: address.host, port: address.port }),
        method,
        path,
        headers: { host: 'docker' },
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
