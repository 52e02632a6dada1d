import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureToolImage } from '../test/helpers/docker';
import { startInProcessServer } from './inprocess';
import { percentile } from './stats';

const FIXTURE = join(__dirname, '..', 'test', 'fixtures', 'mcp-stdio-server.js');

/**
 * Sandboxed MCP server figures on a real engine (the tool image, which has Node), server in
 * process: the first call of a server's tool in a session (container start, server start,
 * initialize, tools/list, call), then a warm call over REST against a bare run_command of `echo`
 * in the same session (interleaved, p50 of each and of the paired difference).
 */
export async function benchMcpServers(): Promise<Record<string, number>> {
  const image = ensureToolImage();
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-mcp-'));
  const workspace = join(root, 'ws');
  await mkdir(join(workspace, '.mcp-workspace', 'tools'), { recursive: true });
  await mkdir(join(workspace, 'mcp'));
  await copyFile(FIXTURE, join(workspace, 'mcp', 'server.js'));
  await writeFile(
    join(workspace, '.mcp-workspace', 'tools', 'fx.json'),
    JSON.stringify({ name: 'fx', mcpServer: { command: ['node', 'mcp/server.js', 'normal'] } }),
  );
  const { server, post } = await startInProcessServer(root, workspace, image);
  try {
    await server.policy.set({ id: 'bench', rules: ['allow read(**)', 'allow exec(*)', 'allow tool(*)'] });
    await post('/execute', { command: 'echo', args: ['x'] });
    let t0 = performance.now();
    await post('/tools/fx_echo', { text: 'x' });
    const firstCallMs = performance.now() - t0;
    for (let i = 0; i < 5; i++) await post('/tools/fx_echo', { text: 'x' });
    const bare: number[] = [];
    const mcp: number[] = [];
    const diff: number[] = [];
    for (let i = 0; i < 100; i++) {
      t0 = performance.now();
      await post('/execute', { command: 'echo', args: ['x'] });
      bare.push(performance.now() - t0);
      t0 = performance.now();
      await post('/tools/fx_echo', { text: 'x' });
      mcp.push(performance.now() - t0);
      diff.push(mcp[i]! - bare[i]!);
    }
    const round = (n: number): number => Math.round(n * 100) / 100;
    return {
      mcpServerFirstCallMs: round(firstCallMs),
      mcpServerCallP50Ms: round(percentile(mcp, 50)),
      mcpServerCallP95Ms: round(percentile(mcp, 95)),
      bareRunCommandP50Ms: round(percentile(bare, 50)),
      mcpServerCallMinusRunCommandP50Ms: round(percentile(diff, 50)),
    };
  } finally {
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}
