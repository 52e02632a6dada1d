import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime, type RunnerProcess } from '../src/core/execution';
import { percentile } from './stats';

const IMAGE = 'mcpw-test-busybox:1';
const PINGS = 200;
const PINGS_UNDER_LOAD = 20;

/** Waits for a runner process to exit, discarding its output. */
async function finish(proc: RunnerProcess): Promise<void> {
  proc.on('stdout', () => undefined);
  proc.on('stderr', () => undefined);
  await proc.exited;
}

/**
 * Round trip to the in-container runner of a session container (DockerRuntime directly, no
 * server): idle, and while a fork bomb hits the container's pids limit.
 */
export async function benchRuntime(): Promise<Record<string, number>> {
  const workspace = await realpath(await mkdtemp(join(tmpdir(), 'mcpw-bench-runtime-')));
  const runtime = new DockerRuntime({
    workspace,
    stateId: `bench-${process.pid}`,
    defaultImage: IMAGE,
    permissions: { allows: () => false },
    limits: { pidsLimit: 64 },
  });
  try {
    const sandbox = await runtime.acquire({
      sessionId: 'bench',
      agent: 'bench',
      readOnly: false,
      network: false,
    });
    for (let i = 0; i < 20; i++) await sandbox.ping();
    const idle: number[] = [];
    for (let i = 0; i < PINGS; i++) idle.push(await sandbox.ping());
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
    const bomb = finish(
      sandbox.exec({
        argv: ['/bin/sh', '-c', 'for i in $(seq 1 300); do sleep 3 & done; wait'],
        cwd: '/',
        env,
        outputCapBytes: 1024 * 1024,
      }),
    );
    await new Promise((r) => setTimeout(r, 500));
    const loaded: number[] = [];
    for (let i = 0; i < PINGS_UNDER_LOAD; i++) loaded.push(await sandbox.ping());
    await bomb;
    return {
      runnerPingP50Ms: percentile(idle, 50),
      runnerPingP99Ms: percentile(idle, 99),
      runnerPingDuringForkBombP50Ms: percentile(loaded, 50),
      runnerPingDuringForkBombMaxMs: percentile(loaded, 100),
    };
  } finally {
    await runtime.close();
    await rm(workspace, { recursive: true, force: true });
  }
}
