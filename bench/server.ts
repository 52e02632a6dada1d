import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { percentile } from './stats';

/** The built server (dist/cli.js) running in its own process on a temporary workspace. */
export interface BenchServer {
  url: string;
  mcp: string;
  token: string;
  child: ChildProcess;
  root: string;
  workspace: string;
}

/** Starts dist/cli.js on a fresh workspace holding file-4k.txt and whatever `setup` adds. */
export async function startServer(setup?: (workspace: string) => Promise<void>): Promise<BenchServer> {
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-'));
  const workspace = join(root, 'ws');
  await mkdir(workspace);
  await writeFile(join(workspace, 'file-4k.txt'), 'x'.repeat(4096));
  if (setup) await setup(workspace);
  // The built product, in its own process, as agents meet it.
  const child = spawn(
    process.execPath,
    [resolve(__dirname, '../dist/cli.js'), 'serve', workspace, '--state-dir', join(root, 'state')],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const line = await new Promise<string>((ok, fail) => {
    createInterface({ input: child.stdout! }).once('line', ok);
    child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
  });
  const ready = JSON.parse(line) as { url: string; mcp: string; tokenFile: string };
  const token = (await readFile(ready.tokenFile, 'utf8')).trim();
  return { url: ready.url, mcp: ready.mcp, token, child, root, workspace };
}

async function connect(server: BenchServer): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(server.mcp), {
      requestInit: { headers: { Authorization: `Bearer ${server.token}` } },
    }),
  );
  return client;
}

async function mcpLoad(
  server: BenchServer,
  concurrency: number,
  callsPerWorker: number,
): Promise<{ samples: number[]; callsPerSec: number }> {
  const clients = await Promise.all(Array.from({ length: concurrency }, () => connect(server)));
  const call = (client: Client): Promise<unknown> =>
    client.callTool({ name: 'read_file', arguments: { path: 'file-4k.txt' } });
  for (const client of clients) for (let i = 0; i < 50; i++) await call(client);
  const samples: number[] = [];
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < callsPerWorker; i++) {
        const t0 = performance.now();
        const result = (await call(client)) as { isError?: boolean };
        samples.push(performance.now() - t0);
        if (result.isError) throw new Error('read_file failed during the benchmark');
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  return { samples, callsPerSec: Math.round(samples.length / elapsed) };
}

/**
 * A lean MCP client: JSON-RPC over HTTP/1.1 keep-alive, as a load generator would speak it, so the
 * figures measure the server rather than the SDK client's own parsing and validation.
 */
async function rawMcpLoad(
  server: BenchServer,
  concurrency: number,
  callsPerWorker: number,
): Promise<{ samples: number[]; callsPerSec: number }> {
  const url = new URL(server.mcp);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const post = (body: unknown, session?: string): Promise<{ text: string; session?: string }> =>
    new Promise((ok, fail) => {
      const payload = JSON.stringify(body);
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'content-length': Buffer.byteLength(payload),
            ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => ok({ text, session: res.headers['mcp-session-id'] as string | undefined }));
        },
      );
      req.on('error', fail);
      req.end(payload);
    });
  const sessions = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const init = await post({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw-bench', version: '1' },
        },
      });
      await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, init.session);
      return init.session!;
    }),
  );
  const call = async (session: string, id: number): Promise<void> => {
    const { text } = await post(
      {
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'read_file', arguments: { path: 'file-4k.txt' } },
      },
      session,
    );
    if (!text.includes('"revision"'))
      throw new Error(`read_file failed during the benchmark: ${text.slice(0, 200)}`);
  };
  for (const session of sessions) for (let i = 0; i < 50; i++) await call(session, i);
  const samples: number[] = [];
  const started = performance.now();
  await Promise.all(
    sessions.map(async (session) => {
      for (let i = 0; i < callsPerWorker; i++) {
        const t0 = performance.now();
        await call(session, 100 + i);
        samples.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { samples, callsPerSec: Math.round(samples.length / elapsed) };
}

async function restLoad(server: BenchServer, concurrency: number, perWorker: number): Promise<number> {
  const headers = { authorization: `Bearer ${server.token}` };
  const get = async (): Promise<void> => {
    const res = await fetch(`${server.url}/files/file-4k.txt`, { headers });
    if (res.status !== 200) throw new Error(`GetFile answered ${res.status}`);
    await res.arrayBuffer();
  };
  for (let i = 0; i < 100; i++) await get();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < perWorker; i++) await get();
    }),
  );
  return Math.round((concurrency * perWorker) / ((performance.now() - started) / 1000));
}

/** Stops a server started by {@link startServer} and removes its files. */
export async function stopServer(server: BenchServer): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
  await rm(server.root, { recursive: true, force: true });
}

/** MCP tools/call read_file (4 KiB) latency and throughput, and REST GetFile throughput, against dist/cli.js. */
export async function benchServer(): Promise<Record<string, number>> {
  const server = await startServer();
  try {
    const c1 = await rawMcpLoad(server, 1, 3000);
    const c16 = await rawMcpLoad(server, 16, 300);
    const sdk1 = await mcpLoad(server, 1, 1000);
    const sdk16 = await mcpLoad(server, 16, 100);
    const restReqPerSec = await restLoad(server, 16, 500);
    return {
      mcpReadFileP50MsC1: percentile(c1.samples, 50),
      mcpReadFileP99MsC1: percentile(c1.samples, 99),
      mcpReadFileCallsPerSecC1: c1.callsPerSec,
      mcpReadFileP50MsC16: percentile(c16.samples, 50),
      mcpReadFileP99MsC16: percentile(c16.samples, 99),
      mcpReadFileCallsPerSecC16: c16.callsPerSec,
      sdkClientReadFileP50MsC1: percentile(sdk1.samples, 50),
      sdkClientReadFileCallsPerSecC16: sdk16.callsPerSec,
      restGetFileReqPerSecC16: restReqPerSec,
    };
  } finally {
    await stopServer(server);
  }
}
