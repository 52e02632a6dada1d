import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
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

/** Runs `work` and returns its result with the CPU time (user + system) this server process spent meanwhile. */
async function busy<T>(work: () => Promise<T>): Promise<T & { serverCpuMs: number }> {
  const before = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(before);
  return { ...result, serverCpuMs: Math.round((used.user + used.system) / 1000) };
}

/**
 * Live co-editing figures (issue 11): agent -> agent update propagation p50/p99 on loopback, time
 * for 20 agents x 500 random edits each to converge on a 1 MiB file, the server's memory for that
 * open document relative to its text, and the memory once every client has left. The server runs in
 * this process and the clients in others, so the heap and CPU figures are the server's.
 *
 * The load runs twice. Relayed between lightweight clients (each agent's updates made beforehand;
 * delivery read from the clock ranges of what arrives, nothing integrated), it measures the server's
 * side: time until every client has every other agent's updates, the server's CPU time (robust on a
 * shared machine), the frames and bytes a client receives per update, and the memory figures: once
 * the load has settled (written, then quiet long enough to be held as its encoded state, the 20
 * clients still connected), and right after the load (1 s on, live Yjs structures). Then 20 stock
 * y-websocket clients measure convergence end to end, spread over one client process per core
 * (`MCPW_COLLAB_PROCESSES` overrides it): the clock runs from the order to edit until every replica
 * holds every agent's edits, and the replicas' texts must then be identical. That time holds the
 * clients' own Yjs work too (10,000 edits made, then each replica integrating the 9,500 of the
 * others), so the clients' and the server's CPU time are reported beside it. Memory is measured
 * after a warm-up of both loads on another file, so code compiled on first use is not counted as
 * the document's.
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
  await writeFile(join(workspace, 'relay.ts'), await readFile(join(workspace, 'big.ts')));
  await writeFile(join(workspace, 'warm.ts'), line.repeat(1024));
  await writeFile(join(workspace, 'small.txt'), 'hello\n');
  const server = await startWorkspaceServer({
    workspace,
    stateDir: join(root, 'state'),
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const spawnClients = (room: string): ChildProcess =>
    // The clients run in a process of their own, so this process's CPU time and heap are the server's.
    fork(resolve(__dirname, 'collab-clients.ts'), [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        MCPW_BENCH_COLLAB: JSON.stringify({ url: server.url, token: server.ownerToken, room }),
      },
    });
  const ask = <T>(clients: ChildProcess, message: Record<string, unknown>): Promise<T> =>
    new Promise((ok, fail) => {
      clients.once('message', (answer) => ok(answer as T));
      clients.once('error', fail);
      clients.send(message);
    });
  const stop = async (clients: ChildProcess): Promise<void> => {
    const exited = new Promise((r) => clients.once('exit', r));
    clients.kill();
    await exited;
  };
  /**
   * End to end: `agents` stock y-websocket clients on `room`, spread over the client processes
   * `children` (real agents each run in a process of their own), each making `edits` random edits at
   * once. The clock runs from the moment every process is told to edit until the last one reports
   * that its replicas hold every agent's edits; the replicas' texts must then be byte-identical.
   */
  const endToEnd = async (
    children: ChildProcess[],
    room: string,
    agents: number,
    edits: number,
  ): Promise<{
    convergeMs: number;
    clientEditMs: number;
    clientCpuMs: number;
    framesPerUpdate: number;
    textBytes: number;
  }> => {
    const first = (index: number): number => Math.floor((agents * index) / children.length);
    await Promise.all(
      children.map((child, index) =>
        ask(child, { cmd: 'connect', room, agents: first(index + 1) - first(index) }),
      ),
    );
    const started = performance.now();
    const made = await Promise.all(
      children.map((child, index) =>
        ask<{ finals: Array<[number, number]>; editMs: number }>(child, {
          cmd: 'edit',
          first: first(index),
          edits,
        }),
      ),
    );
    const targets = made.flatMap((m) => m.finals);
    const reports = await Promise.all(
      children.map((child) =>
        ask<{ sha256: string; textBytes: number; remoteUpdates: number; cpuMs: number }>(child, {
          cmd: 'converge',
          targets,
        }),
      ),
    );
    const convergeMs = performance.now() - started;
    if (new Set(reports.map((r) => r.sha256)).size !== 1) throw new Error('the replicas did not converge');
    await Promise.all(children.map((child) => ask(child, { cmd: 'leave' })));
    const received = reports.reduce((sum, r) => sum + r.remoteUpdates, 0);
    return {
      convergeMs: Math.round(convergeMs),
      clientEditMs: Math.round(Math.max(...made.map((m) => m.editMs))),
      clientCpuMs: reports.reduce((sum, r) => sum + r.cpuMs, 0),
      framesPerUpdate: Math.round((received / (agents * edits)) * 1000) / 1000,
      textBytes: reports[0]!.textBytes,
    };
  };
  const idleUntilUnloaded = async (): Promise<void> => {
    while (server.collab.documentCount > 0) await new Promise((r) => setTimeout(r, 20));
  };
  try {
    const small = spawnClients('small.txt');
    const latency = await ask<{ p50: number; p99: number; samples: number }>(small, {
      cmd: 'latency',
      samples: 300,
    });
    await stop(small);
    await idleUntilUnloaded();

    const edits = Number(process.env.MCPW_COLLAB_EDITS ?? 500);
    // One client process per core by default: the clients' Yjs work runs in parallel, as on agents' own machines.
    const processes = Number(process.env.MCPW_COLLAB_PROCESSES ?? Math.min(20, cpus().length));
    const idleCold = heapMiB();
    const agentProcesses = Array.from({ length: processes }, () => spawnClients('warm.ts'));
    await endToEnd(agentProcesses, 'warm.ts', 20, 100);
    await idleUntilUnloaded();
    const warm = spawnClients('warm.ts');
    await ask(warm, { cmd: 'relay', agents: 20, edits: 100 });
    while (server.collab.dormantCount === 0) await new Promise((r) => setTimeout(r, 50));
    await ask(warm, { cmd: 'leave' });
    await idleUntilUnloaded();
    await stop(warm);

    const idleBefore = heapMiB();
    // The server's side: the load relayed between lightweight clients, which then stay connected.
    const lite = spawnClients('relay.ts');
    const relay = await busy(() =>
      ask<{ deliverMs: number; framesPerUpdate: number; bytesPerUpdate: number }>(lite, {
        cmd: 'relay',
        agents: 20,
        edits,
      }),
    );
    // Measured once the debounced write has settled (the document is clean again), and only as the
    // live figure if the document has not gone dormant meanwhile (a slow, shared machine).
    await new Promise((r) => setTimeout(r, 1000));
    const measuredLive = server.collab.dormantCount === 0;
    const loaded = heapMiB();
    // Then once the document has been quiet long enough to keep only its encoded state.
    while (server.collab.dormantCount === 0) await new Promise((r) => setTimeout(r, 50));
    const quiet = heapMiB();
    await ask(lite, { cmd: 'leave' });
    await idleUntilUnloaded();
    await stop(lite);
    const idleAfter = heapMiB();

    // End to end: 20 stock y-websocket clients, in processes of their own.
    const load = await busy(() => endToEnd(agentProcesses, 'big.ts', 20, edits));
    await idleUntilUnloaded();
    await Promise.all(agentProcesses.map((child) => stop(child)));

    const perDocMiB = loaded - idleBefore;
    const perQuietDocMiB = quiet - idleBefore;
    return {
      collab: {
        propagationP50Ms: latency.p50,
        propagationP99Ms: latency.p99,
        propagationSamples: latency.samples,
        converge20x500Ms: load.convergeMs,
        convergeClientProcesses: processes,
        converge20x500ClientEditMs: load.clientEditMs,
        converge20x500ServerCpuMs: load.serverCpuMs,
        converge20x500ClientCpuMs: load.clientCpuMs,
        convergeFramesPerUpdate: load.framesPerUpdate,
        relay20x500DeliverMs: relay.deliverMs,
        relay20x500ServerCpuMs: relay.serverCpuMs,
        relayFramesPerUpdate: relay.framesPerUpdate,
        relayBytesPerUpdate: relay.bytesPerUpdate,
        textBytes: load.textBytes,
        memoryPerDocumentSettledMiB: Math.round(perQuietDocMiB * 100) / 100,
        memoryPerDocumentSettledVsText:
          Math.round(((perQuietDocMiB * 1024 * 1024) / load.textBytes) * 100) / 100,
        memoryPerDocumentRightAfterLoadMiB: Math.round(perDocMiB * 100) / 100,
        memoryPerDocumentRightAfterLoadVsText:
          Math.round(((perDocMiB * 1024 * 1024) / load.textBytes) * 100) / 100,
        memoryRightAfterLoadMeasuredLive: measuredLive,
        memoryIdleColdMiB: Math.round(idleCold * 100) / 100,
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
