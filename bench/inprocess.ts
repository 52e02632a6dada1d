import { join } from 'node:path';
import { startWorkspaceServer } from '../src/server';

/** A server running in the bench's own process, quiet, with the owner's REST calls at hand. */
export interface InProcessServer {
  server: Awaited<ReturnType<typeof startWorkspaceServer>>;
  /** POSTs `body` as the owner; throws unless the answer is 200. */
  post(path: string, body: unknown): Promise<void>;
}

/**
 * Starts a server on `workspace` (state under `root`) with `image` as the default image and an exec
 * rate limit the bench never meets, logging nothing.
 */
export async function startInProcessServer(
  root: string,
  workspace: string,
  image: string,
): Promise<InProcessServer> {
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const server = await startWorkspaceServer({
    workspace,
    stateDir: join(root, 'state'),
    defaultImage: image,
    logger: quiet,
    execRateLimit: { capacity: 10_000, refillPerSec: 10_000 },
  });
  const post = async (path: string, body: unknown): Promise<void> => {
    const res = await fetch(server.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  };
  return { server, post };
}
