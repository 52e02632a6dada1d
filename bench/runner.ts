import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { RunnerClient, runnerBinaryPath } from '../src/core/execution/runner';
import { percentile } from './stats';

const SPAWNS = 500;
const WARMUP = 50;
const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

/**
 * Measures the warm command round trip through a host-side mcpw-runner (no Docker): {@link SPAWNS}
 * sequential spawns of `true`, timed from the SPAWN request to the resolved EXIT, after a warm-up.
 * Needs dist/mcpw-runner (`node scripts/build-runner.js`).
 */
export async function benchRunner(): Promise<{ runnerSpawnP50Ms: number; runnerSpawnP99Ms: number }> {
  const child = spawn(runnerBinaryPath(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const runnerExited = new Promise((resolve) => child.once('exit', resolve));
  const client = new RunnerClient(child.stdin, child.stdout);
  try {
    const times: number[] = [];
    for (let i = 0; i < WARMUP + SPAWNS; i++) {
      const start = performance.now();
      const exit = await client.spawn({ argv: ['true'], cwd: '/', env: ENV }).exited;
      const elapsed = performance.now() - start;
      if (exit.exitCode !== 0) throw new Error(`runner bench: true exited with ${JSON.stringify(exit)}`);
      if (i >= WARMUP) times.push(elapsed);
    }
    return { runnerSpawnP50Ms: percentile(times, 50), runnerSpawnP99Ms: percentile(times, 99) };
  } finally {
    client.close();
    await runnerExited;
  }
}
