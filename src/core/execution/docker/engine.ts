/**
 * The connection to one Docker engine. The few Engine API calls a server makes at start (ping,
 * list and remove orphaned containers) go over plain node:http, so the full client (dockerode and
 * its dependencies, ~20 MB of memory) is loaded only when a session first runs a command. Private
 * to the Docker runtime.
 */
import { request } from 'node:http';
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import { reason } from './images';
import { withTimeout } from './sandbox';

const ENGINE_PING_TIMEOUT_MS = 5000;
const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

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

/** One Docker engine: its address, a cached ping, and the dockerode client loaded on first use. */
export class EngineConnection {
  /** The address as configured (option, DOCKER_HOST or the default socket), for messages. */
  readonly label: string;
  readonly address: EngineAddress;
  private clientPromise: Promise<Docker> | null = null;
  private ready: Promise<void> | null = null;

  /** @throws WorkspaceError INVALID_ARGUMENT when the address is not a unix or tcp URL. */
  constructor(dockerHost: string | undefined) {
    this.label = dockerHost || process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
    this.address = parseEngineAddress(this.label);
  }

  /** The dockerode client, loaded on first use (an idle server never needs it). */
  client(): Promise<Docker> {
    return (this.clientPromise ??= import('dockerode').then(
      ({ default: DockerClient }) => new DockerClient(this.address),
    ));
  }

  /** One Engine API request over plain node:http (see {@link engineRequest}). */
  request(
    method: 'GET' | 'DELETE',
    path: string,
    timeoutMs: number,
  ): Promise<{ status: number; body: string }> {
    return engineRequest(this.address, method, path, timeoutMs);
  }

  /**
   * Pings the engine. Success is cached; a failure is re-checked on the next call.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE saying how to start an engine.
   */
  async ensure(): Promise<void> {
    let ready = this.ready;
    if (!ready) {
      const attempt = withTimeout(
        this.request('GET', '/_ping', ENGINE_PING_TIMEOUT_MS),
        ENGINE_PING_TIMEOUT_MS,
        () => new Error(`no answer within ${ENGINE_PING_TIMEOUT_MS} ms`),
      ).then(({ status }) => {
        if (status !== 200) throw new Error(`the engine answered ${status} to a ping`);
      });
      this.ready = ready = attempt;
      attempt.catch(() => {
        if (this.ready === attempt) this.ready = null;
      });
    }
    try {
      await ready;
    } catch (error) {
      throw new WorkspaceError(
        'SANDBOX_UNAVAILABLE',
        `No Docker engine answers at ${this.label} (${reason(error)}). Start one (e.g. ` +
          '`sudo systemctl start docker`), or run `bash scripts/provision-docker.sh` from the MCP Workspace ' +
          'repository and set DOCKER_HOST to the address it prints (unix:///tmp/mcpw-docker.sock).',
        { dockerHost: this.label },
      );
    }
  }
}
