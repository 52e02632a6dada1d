import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { OPERATIONS, OPERATION_NAMES } from '../../src/protocol/operations';
import { startTestServer, type TestServer } from '../helpers/server';

const INIT_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'origin', version: '1' } },
});

/** Every HTTP endpoint: each operation's REST route, the OpenAPI document, SSE, MCP and /health. */
function endpoints(): { method: string; path: string }[] {
  return [
    ...OPERATION_NAMES.map((name) => ({
      method: OPERATIONS[name].rest.method.toUpperCase(),
      path: OPERATIONS[name].rest.path.replace('{path}', 'hello.txt').replace('{name}', 'someone'),
    })),
    { method: 'GET', path: '/openapi.json' },
    { method: 'GET', path: '/audit/stream' },
    { method: 'POST', path: '/mcp' },
    { method: 'GET', path: '/mcp' },
    { method: 'DELETE', path: '/mcp' },
    { method: 'GET', path: '/health' },
  ];
}

/** Sends a request and resolves with its status and error code as soon as the head arrives (SSE never ends). */
function probe(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; code: string | undefined }> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, method, path, headers }, (res) => {
      const status = res.statusCode ?? 0;
      if ((res.headers['content-type'] ?? '').includes('text/event-stream')) {
        res.destroy();
        resolve({ status, code: undefined });
        return;
      }
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status, code });
      });
    });
    req.on('error', reject);
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      req.setHeader('content-type', 'application/json');
      req.write(path === '/mcp' ? INIT_BODY : '{}');
    }
    req.end();
  });
}

/** Opens a WebSocket to /ws with the given headers: 'open' or the HTTP status of the refusal. */
function wsAttempt(url: string, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });
}

describe('Origins as the MCP specification says, on every endpoint (MCP, REST, WebSocket, SSE)', function () {
  this.timeout(60_000);
  let t: TestServer;
  let port: number;

  beforeEach(async () => {
    t = await startTestServer({}, async (ws) => {
      await writeFile(join(ws, 'hello.txt'), 'hello\n');
    });
    port = t.server.port;
  });
  afterEach(async () => {
    await t.close();
  });

  const loopback = (p: number): string[] => [
    `http://localhost:${p}`,
    `http://127.0.0.1:${p}`,
    `http://[::1]:${p}`,
  ];

  it("accepts this server's own loopback origins, with the token still required", async () => {
    // A real call from the server's own origin works end to end (before the sweep below, which deletes it).
    const read = await probe(t.url, 'GET', '/files/hello.txt', {
      origin: `http://localhost:${port}`,
      host: `localhost:${port}`,
      authorization: `Bearer ${t.token}`,
    });
    assert.equal(read.status, 200);
    for (const { method, path } of endpoints()) {
      for (const origin of loopback(port)) {
        const withToken = await probe(t.url, method, path, {
          origin,
          authorization: `Bearer ${t.token}`,
          accept: 'application/json, text/event-stream',
        });
        assert.notEqual(withToken.status, 403, `${method} ${path} Origin ${origin}: ${withToken.code}`);
        assert.notEqual(withToken.status, 401, `${method} ${path} Origin ${origin}`);
        if (path === '/health') continue;
        const without = await probe(t.url, method, path, { origin, accept: 'application/json' });
        assert.equal(without.status, 401, `${method} ${path} Origin ${origin} without a token`);
        assert.equal(without.code, 'UNAUTHORIZED');
      }
    }
  });

  it('refuses foreign origins and other loopback ports with 403 FORBIDDEN_ORIGIN, even with a token', async () => {
    const foreign = [
      'http://evil.example.com',
      `http://evil.example.com:${port}`,
      `http://localhost:${port + 1}`,
      `http://127.0.0.1:${port === 1 ? 2 : port - 1}`,
      `https://localhost:${port}`,
      `http://127.0.0.1.evil.example.com:${port}`,
      `http://localhost.evil.example.com:${port}`,
      `http://[::2]:${port}`,
      `http://0.0.0.0:${port}`,
      `http://localhost:${port}/`,
      `http://user@localhost:${port}`,
      'null',
      'file://',
      '',
    ];
    for (const { method, path } of endpoints()) {
      for (const origin of foreign) {
        const res = await probe(t.url, method, path, { origin, authorization: `Bearer ${t.token}` });
        assert.equal(res.status, 403, `${method} ${path} Origin ${JSON.stringify(origin)}`);
        assert.equal(res.code, 'FORBIDDEN_ORIGIN');
      }
    }
    assert.equal(await readFile(join(t.workspace, 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('judges the Origin against the port the request addressed: a rebinding Host is refused first', async () => {
    // A page of evil.example.com rebound to 127.0.0.1 sends Host evil.example.com:PORT.
    const rebound = await probe(t.url, 'GET', '/files/hello.txt', {
      host: `evil.example.com:${port}`,
      origin: `http://evil.example.com:${port}`,
      authorization: `Bearer ${t.token}`,
    });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.code, 'FORBIDDEN_HOST');
    // Behind a loopback proxy on another port, the proxy's own origin is the page's origin.
    const proxied = await probe(t.url, 'GET', '/files/hello.txt', {
      host: '127.0.0.1:18080',
      origin: 'http://127.0.0.1:18080',
      authorization: `Bearer ${t.token}`,
    });
    assert.equal(proxied.status, 200);
    const mismatched = await probe(t.url, 'GET', '/files/hello.txt', {
      host: '127.0.0.1:18080',
      origin: 'http://127.0.0.1:18081',
      authorization: `Bearer ${t.token}`,
    });
    assert.equal(mismatched.status, 403);
  });

  it('applies the same rules to WebSocket upgrades', async () => {
    for (const origin of loopback(port)) {
      assert.equal(await wsAttempt(t.url, { origin, authorization: `Bearer ${t.token}` }), 'open', origin);
      assert.equal(await wsAttempt(t.url, { origin }), 401, `${origin} without a token`);
    }
    for (const origin of ['http://evil.example.com', `http://localhost:${port + 1}`, 'null']) {
      assert.equal(await wsAttempt(t.url, { origin, authorization: `Bearer ${t.token}` }), 403, origin);
    }
  });

  it('still accepts an origin the owner listed, and nothing else', async () => {
    await t.close();
    t = await startTestServer({ allowedOrigins: ['vscode-webview://trusted'] });
    const listed = await probe(t.url, 'GET', '/health', { origin: 'vscode-webview://trusted' });
    assert.equal(listed.status, 200);
    const other = await probe(t.url, 'GET', '/health', { origin: 'vscode-webview://other' });
    assert.equal(other.status, 403);
  });
});
