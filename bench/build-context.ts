import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { underProbe } from './search';
import { startServer, stopServer } from './server';

const IMAGE = 'mcpw-test-busybox:1';
const FILES = 200;
const FILE_BYTES = 1024 * 1024;

/**
 * /health latency while dist/cli.js walks, packs and streams a 200 MiB devcontainer build context
 * (200 files of 1 MiB) to the engine (DOCKER_HOST), and how long that first command took.
 */
export async function benchBuildContext(): Promise<Record<string, number>> {
  const server = await startServer(async (ws) => {
    const content = randomBytes(FILE_BYTES);
    await mkdir(join(ws, 'big'));
    for (let i = 0; i < FILES; i++) {
      content.writeUInt32BE(i, 0);
      await writeFile(join(ws, 'big', `f${i}.bin`), content);
    }
    await mkdir(join(ws, '.devcontainer'));
    // A fresh tag each run: the build really happens (no cached image answers).
    await writeFile(
      join(ws, '.devcontainer', 'Dockerfile'),
      `FROM ${IMAGE}\nLABEL bench=${randomBytes(8).toString('hex')}\n`,
    );
    await writeFile(
      join(ws, '.devcontainer', 'devcontainer.json'),
      JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '..' } }),
    );
  });
  try {
    const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
    const policy = await fetch(`${server.url}/policies`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ id: 'bench', rules: ['allow read(**)', 'allow exec(*)'] }),
    });
    if (policy.status !== 200) throw new Error(`setting the policy failed: ${await policy.text()}`);
    const figures = await underProbe(server, async () => {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/execute`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ command: 'true', args: [] }),
      });
      const result = (await res.json()) as { exitCode?: number };
      if (result.exitCode !== 0) throw new Error(`the build command failed: ${JSON.stringify(result)}`);
      return performance.now() - t0;
    });
    return {
      buildContext200MiBFirstCommandMs: Math.round(figures.load),
      buildContextHealthP50Ms: figures.healthP50Ms,
      buildContextHealthP99Ms: figures.healthP99Ms,
      buildContextHealthMaxMs: figures.healthMaxMs,
      buildContextHealthSamples: figures.healthSamples,
    };
  } finally {
    await stopServer(server);
  }
}
