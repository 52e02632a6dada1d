import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/server';

/** The server scenarios of the official suite that apply to any MCP server. */
const SCENARIOS = [
  'server-initialize',
  'ping',
  'logging-set-level',
  'tools-list',
  'resources-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];

/**
 * Runs scripts/provision-e2e.sh (idempotent: a cached install is reused) and returns the wrapper
 * that runs `@modelcontextprotocol/conformance` under the private Node 22.
 */
async function provisionConformance(): Promise<string> {
  const script = resolve(__dirname, '../../scripts/provision-e2e.sh');
  const out = await new Promise<string>((done, fail) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done(text) : fail(new Error(`provision-e2e.sh exited ${code}:\n${text}`)),
    );
  });
  const bin = /^CONFORMANCE=(.+)$/m.exec(out)?.[1]?.trim();
  if (!bin) throw new Error(`provision-e2e.sh printed no CONFORMANCE= line:\n${out}`);
  return bin;
}

/**
 * A loopback proxy in front of the server that adds the bearer token (the suite sends none) and
 * passes every other header through unchanged, Host and Origin included: the server judges them
 * exactly as the suite sent them.
 */
async function startTokenProxy(target: URL, token: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, authorization: `Bearer ${token}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server };
}

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

describe('MCP conformance: the official suite against the real server (through a token-adding proxy)', function () {
  this.timeout(300_000);
  let bin: string;
  let t: TestServer;
  let proxy: { url: string; server: Server };
  let out: string;

  before(async function () {
    this.timeout(900_000);
    bin = await provisionConformance();
  });
  beforeEach(async () => {
    t = await startTestServer({}, async () => undefined);
    const minted = await t.api('/tokens', { method: 'POST', body: { name: 'conformance', role: 'agent' } });
    proxy = await startTokenProxy(new URL(t.url), minted.body.token);
    out = await mkdtemp(join(tmpdir(), 'mcpw-conformance-'));
  });
  afterEach(async () => {
    proxy.server.closeAllConnections();
    await new Promise<void>((done) => proxy.server.close(() => done()));
    await t.close();
    await rm(out, { recursive: true, force: true });
  });

  for (const scenario of SCENARIOS) {
    it(`passes ${scenario}`, async () => {
      const dir = join(out, scenario);
      const run = await promisify(execFile)(
        bin,
        ['server', '--url', `${proxy.url}/mcp`, '--scenario', scenario, '-o', dir],
        { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root' } },
      ).catch((err: { stdout?: string; stderr?: string; code?: number }) => ({
        stdout: err.stdout ?? '',
        stderr: `${err.stderr ?? ''} (exit ${err.code})`,
      }));
      const checks = await readChecks(dir);
      assert.ok(checks.length > 0, `no checks were recorded:\n${run.stdout}\n${run.stderr}`);
      const failed = checks.filter((c) => c.status !== 'SUCCESS' && c.status !== 'INFO');
      assert.deepEqual(
        failed.map((c) => `${c.id}: ${c.status} ${c.errorMessage ?? ''}`),
        [],
        `${run.stdout}\n${run.stderr}`,
      );
    });
  }

  it('still requires the bearer token: the suite without the proxy is refused', async () => {
    const dir = join(out, 'no-token');
    await promisify(execFile)(bin, ['server', '--url', t.server.mcpUrl, '--scenario', 'ping', '-o', dir], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root' },
    }).catch(() => undefined);
    const checks = await readChecks(dir);
    assert.ok(checks.length > 0);
    assert.ok(
      checks.every((c) => c.status !== 'SUCCESS'),
      JSON.stringify(checks),
    );
  });
});

/** Every check the suite wrote under `dir` (one checks.json per scenario run). */
async function readChecks(dir: string): Promise<Check[]> {
  const found: Check[] = [];
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.name.endsWith('.json')) {
        const value = JSON.parse(await readFile(full, 'utf8')) as unknown;
        if (Array.isArray(value))
          found.push(...(value as Check[]).filter((c) => c && typeof c.status === 'string'));
      }
    }
  };
  await walk(dir);
  return found;
}
