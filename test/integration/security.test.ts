import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OPERATIONS, OPERATION_NAMES } from '../../src/protocol/operations';
import { callTool, connectMcp, rawRequest } from '../helpers/clients';
import { startTestServer, type TestServer } from '../helpers/server';

const INIT_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

function routes(): { method: string; path: string }[] {
  const list = OPERATION_NAMES.map((name) => ({
    method: OPERATIONS[name].rest.method.toUpperCase(),
    path: OPERATIONS[name].rest.path.replace('{path}', 'hello.txt').replace('{name}', 'someone'),
  }));
  return [
    ...list,
    { method: 'GET', path: '/openapi.json' },
    { method: 'GET', path: '/audit/stream' },
    { method: 'POST', path: '/mcp' },
    { method: 'GET', path: '/mcp' },
    { method: 'DELETE', path: '/mcp' },
  ];
}

describe('Security: tokens, Host and Origin on every endpoint', () => {
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer({ allowedOrigins: ['vscode-webview://trusted'] }, async (ws) => {
      await writeFile(join(ws, 'hello.txt'), 'hello\n');
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('refuses every route without a token, with a wrong token and with a malformed header', async () => {
    for (const { method, path } of routes()) {
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      for (const auth of [
        undefined,
        'Bearer wrong-token-value',
        'Basic dXNlcjpwYXNz',
        `Bearer ${t.token}x`,
      ]) {
        const res = await rawRequest(t.url, {
          method,
          path,
          headers: auth ? { ...headers, authorization: auth } : headers,
          ...(method === 'GET' || method === 'DELETE' ? {} : { body: path === '/mcp' ? INIT_BODY : '{}' }),
        });
        assert.equal(res.status, 401, `${method} ${path} with ${auth ?? 'no auth'}`);
        assert.equal(JSON.parse(res.body).error.code, 'UNAUTHORIZED');
        assert.match(String(res.headers['www-authenticate']), /^Bearer/);
      }
    }
    assert.equal(await readFile(join(t.workspace, 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('refuses a Host that is not loopback (DNS rebinding) on every endpoint', async () => {
    for (const { method, path } of [...routes(), { method: 'GET', path: '/health' }]) {
      for (const host of ['evil.example.com', 'evil.example.com:80', '10.0.0.1']) {
        const res = await rawRequest(t.url, {
          method,
          path,
          headers: { host, authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
        });
        assert.equal(res.status, 403, `${method} ${path} Host ${host}`);
        assert.equal(JSON.parse(res.body).error.code, 'FORBIDDEN_HOST');
      }
    }
    const ok = await rawRequest(t.url, {
      path: '/files/hello.txt',
      headers: { host: `localhost:${t.server.port}`, authorization: `Bearer ${t.token}` },
    });
    assert.equal(ok.status, 200);
  });

  it('refuses a browser Origin that is not allowed, and accepts an allowed one', async () => {
    for (const { method, path } of routes()) {
      for (const origin of ['http://evil.example.com', 'http://localhost:6274', 'null']) {
        const res = await rawRequest(t.url, {
          method,
          path,
          headers: { origin, authorization: `Bearer ${t.token}` },
        });
        assert.equal(res.status, 403, `${method} ${path} Origin ${origin}`);
        assert.equal(JSON.parse(res.body).error.code, 'FORBIDDEN_ORIGIN');
      }
    }
    const ok = await rawRequest(t.url, {
      path: '/files/hello.txt',
      headers: { origin: 'vscode-webview://trusted', authorization: `Bearer ${t.token}` },
    });
    assert.equal(ok.status, 200);
  });

  it('refuses to bind anything but loopback', async () => {
    const { startWorkspaceServer } = await import('../../src/server');
    await assert.rejects(
      startWorkspaceServer({ workspace: t.workspace, host: '0.0.0.0', stateDir: t.stateDir }),
      /loopback only/,
    );
  });

  it('keeps policy, tokens and audit owner-only; agents cannot change their own policy', async () => {
    const minted = await t.api('/tokens', { method: 'POST', body: { name: 'agent-1', role: 'agent' } });
    const agent = minted.body.token as string;
    assert.match(agent, /^mcpw_/);
    for (const [path, method, body] of [
      ['/policies', 'PUT', { id: 'mine', rules: ['allow exec(*)'] }],
      ['/tokens', 'POST', { name: 'sneaky', role: 'agent' }],
      ['/tokens', 'GET', undefined],
      ['/tokens/agent-1', 'DELETE', undefined],
      ['/sessions', 'GET', undefined],
      ['/audit/verify', 'GET', undefined],
    ] as const) {
      const res = await t.api(path, { method, token: agent, ...(body ? { body } : {}) });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error.code, 'OWNER_ONLY');
    }
    const policies = await t.api('/policies', { token: agent });
    assert.equal(policies.body.policies[0].id, 'default');

    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      await assert.rejects(mcp.client.callTool({ name: 'set_policy', arguments: { id: 'x', rules: [] } }));
      const explained = await callTool(mcp.client, 'explain_policy', { action: 'exec', target: 'npm test' });
      assert.equal(explained.allowed, false);
      assert.equal(explained.rule, null);
      const other = await callTool(mcp.client, 'explain_policy', { action: 'read', target: 'a', agent: 'x' });
      assert.equal(other.error.code, 'OWNER_ONLY');
    } finally {
      await mcp.close();
    }
  });

  it('refuses a state dir or policy file inside the workspace, and protects the policy file by identity', async () => {
    await t.close();
    const { mkdtemp, mkdir, link, rename, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const root = await mkdtemp(join(tmpdir(), 'mcpw-policy-'));
    const ws = join(root, 'ws');
    await mkdir(join(ws, 'team'), { recursive: true });
    await writeFile(
      join(root, 'policy.json'),
      JSON.stringify({ id: 'team', rules: ['allow read(**)', 'allow write(**)'] }),
    );
    await writeFile(join(ws, 'policy.json'), '{}');
    const { startWorkspaceServer } = await import('../../src/server');
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const refused = async (options: { stateDir: string; policyFile?: string }, what: RegExp) =>
      assert.rejects(startWorkspaceServer({ workspace: ws, logger: quiet, ...options }), (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT');
        assert.match((err as Error).message, what);
        return true;
      });
    await refused({ stateDir: join(ws, '.state') }, /state dir .* inside the workspace/);
    await refused({ stateDir: join(ws, 'team', 'new', 'state') }, /inside the workspace/);
    await refused(
      { stateDir: join(root, '.state'), policyFile: join(ws, 'policy.json') },
      /policy file .* inside/,
    );
    await refused({ stateDir: join(root, '.state'), policyFile: 'policy.json' }, /relative path/);
    // The owner's file, hard-linked into the workspace and then moved by an agent, is still the
    // owner's file: it is recognised by (dev, ino), not by name.
    await rm(join(ws, 'policy.json'));
    await link(join(root, 'policy.json'), join(ws, 'team', 'policy.json'));
    const server = await startWorkspaceServer({
      workspace: ws,
      stateDir: join(root, '.state'),
      policyFile: join(root, 'policy.json'),
      logger: quiet,
    });
    try {
      await rename(join(ws, 'team'), join(ws, 'renamed'));
      const headers = { authorization: `Bearer ${server.ownerToken}`, 'content-type': 'application/json' };
      const write = await fetch(`${server.url}/files/renamed/policy.json`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ content: '{"id":"x","rules":["allow exec(*)"]}' }),
      });
      assert.equal(((await write.json()) as { error: { code: string } }).error.code, 'PROTECTED_PATH');
      const read = await fetch(`${server.url}/files/renamed/policy.json`, { headers });
      assert.equal(((await read.json()) as { error: { code: string } }).error.code, 'PROTECTED_PATH');
      const policies = await fetch(`${server.url}/policies`, { headers });
      assert.equal(((await policies.json()) as { policies: { id: string }[] }).policies[0]!.id, 'team');
      assert.match(await readFile(join(root, 'policy.json'), 'utf8'), /"team"/);
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
    t = await startTestServer();
  });

  it('lets the owner change the policy, which applies at once and persists', async () => {
    const set = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'strict', rules: ['allow read(**)', 'deny read(hello.txt) @agent:reader'] },
    });
    assert.equal(set.status, 200);
    const reader = await t.api('/tokens', { method: 'POST', body: { name: 'reader', role: 'agent' } });
    const denied = await t.api('/files/hello.txt', { token: reader.body.token });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'POLICY_DENIED');
    assert.equal(denied.body.error.rule, 'deny read(hello.txt) @agent:reader');
    const write = await t.api('/files/new.txt', { method: 'PUT', body: { content: 'x' } });
    assert.equal(write.body.error.code, 'POLICY_DENIED', 'no write rule any more: deny by default');
    const invalid = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'bad', rules: ['permit everything'] },
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error.code, 'INVALID_POLICY');
    assert.equal(
      (await t.api('/policies')).body.policies[0].id,
      'strict',
      'an invalid policy changes nothing',
    );
    const stored = JSON.parse(await readFile(join(t.stateDir, 'policy.json'), 'utf8'));
    assert.equal(stored.id, 'strict');
  });

  it('ends idle sessions', async () => {
    await t.close();
    t = await startTestServer({ idleTimeoutMs: 200 });
    const init = await t.api('/session/init', { method: 'POST', body: {} });
    const headers = { 'x-mcp-workspace-session': init.body.sessionId };
    assert.equal((await t.api('/capabilities', { headers })).status, 200);
    await new Promise((r) => setTimeout(r, 600));
    const expired = await t.api('/capabilities', { headers });
    assert.equal(expired.status, 404);
    assert.equal(expired.body.error.code, 'SESSION_NOT_FOUND');
  });
});
