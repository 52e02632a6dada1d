import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startWorkspaceServer } from '../src/server';

const TEXT_BYTES = 1024 * 1024;

/** A full garbage collection (enabled at run time, so the bench needs no node flag). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

/** The server thread's JavaScript heap plus its external memory (Buffers), in MiB. */
function heapMiB(): number {
  collect();
  const usage = process.memoryUsage();
  return (usage.heapUsed + usage.external) / (1024 * 1024);
}

/**
 * Live co-editing figures (issue 11): agent -> agent update propagation p50/p99 on loopback, time
 * for 20 agents x 500 random edits each to converge on a 1 MiB file, the server's memory for that
 * open document relative to its text (live right after the load, then once quiet and dormant, all
 * 20 clients still connected), and the memory once every client has left. The server runs
 * in this thread and the stock y-websocket clients in a worker, so the heap figures are the server's.
 */
export async function benchCollab(): Promise<Record<string, unknown>> {
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-collab-'));
  const workspace = join(root, 'ws');
  await mkdir(workspace);
  const line = 'const value = computeSomethingUseful(input, options); // 64 bytes\n';
  await writeFile(
    join(workspace, 'big.ts'),
    line.repeat(Math.ceil(TEXT_BYTES / line.length)).slice(0, TEXT_BYTES),
  );
  await writeFile(join(workspace, 'small.txt'), 'hello\n');
  const server = await startWorkspaceServer({
    workspace,
    stateDir: join(root, 'state'),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const spawnClients = (room: string): Worker =>
    // The worker loads the TypeScript clients through tsx's require hook, like this thread.
    new Worker(
      `require('tsx/cjs/api').register(); require(${JSON.stringify(resolve(__dirname, 'collab-clients.ts'))});`,
      { eval: true, workerData: { url: server.url, token: server.ownerToken, room } },
    );
  const ask = <T>(worker: Worker, message: Record<string, unknown>): Promise<T> =>
    new Promise((ok, fail) => {
      worker.once('message', ok);
      worker.once('error', fail);
      worker.postMessage(message);
    });
  const idleUntilUnloaded = async (): Promise<void> => {
    while (server.collab.documentCount > 0) await new Promise((r) => setTimeout(r, 20));
  };
  try {
    const small = spawnClients('small.txt');
    const latency = await ask<{ p50: number; p99: number; samples: number }>(small, {
      cmd: 'latency',
      samples: 300,
    });
    await small.terminate();
    await idleUntilUnloaded();

    const idleBefore = heapMiB();
    const big = spawnClients('big.ts');
    const load = await ask<{ convergeMs: number; textBytes: number }>(big, {
      cmd: 'load',
      agents: 20,
      edits: Number(process.env.MCPW_COLLAB_EDITS ?? 500),
    });
    // Measured once the debounced write has settled (the document is clean again).
    await new Promise((r) => setTimeout(r, 1000));
    const loaded = heapMiB();
    // Then once the document has been quiet long enough to keep only its encoded state.
    while (server.collab.dormantCount === 0) await new Promise((r) => setTimeout(r, 50));
    const quiet = heapMiB();
    await ask(big, { cmd: 'leave' });
    await idleUntilUnloaded();
    await big.terminate();
    const idleAfter = heapMiB();
    const perDocMiB = loaded - idleBefore;
    const perQuietDocMiB = quiet - idleBefore;
    return {
      collab: {
        propagationP50Ms: latency.p50,
        propagationP99Ms: latency.p99,
        propagationSamples: latency.samples,
        converge20x500Ms: load.convergeMs,
        textBytes: load.textBytes,
        memoryPerDocumentMiB: Math.round(perDocMiB * 100) / 100,
        memoryPerDocumentVsText: Math.round(((perDocMiB * 1024 * 1024) / load.textBytes) * 100) / 100,
        memoryPerQuietDocumentMiB: Math.round(perQuietDocMiB * 100) / 100,
        memoryPerQuietDocumentVsText:
          Math.round(((perQuietDocMiB * 1024 * 1024) / load.textBytes) * 100) / 100,
        memoryIdleBeforeMiB: Math.round(idleBefore * 100) / 100,
        memoryIdleAfterMiB: Math.round(idleAfter * 100) / 100,
        documentsAfter: server.collab.documentCount,
      },
    };
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}
