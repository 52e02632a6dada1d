import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import Docker from 'dockerode';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { callTool, connectMcp, rawRequest } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

function initBody(id = 1): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'caps', version: '1' } },
  });
}

/** One raw 2025-era initialize: the new session id, or the refusal's status, error text and Retry-After. */
async function initialize(
  t: TestServer,
  token: string,
): Promise<{ status: number; sessionId?: string; message: string; retryAfter?: string }> {
  const res = await rawRequest(t.server.mcpUrl, {
    method: 'POST',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
    body: initBody(),
  });
  const sessionId = res.headers['mcp-session-id'];
  return {
    status: res.status,
    ...(typeof sessionId === 'string' ? { sessionId } : {}),
    message: res.body,
    ...(typeof res.headers['retry-after'] === 'string' ? { retryAfter: res.headers['retry-after'] } : {}),
  };
}

/** A JSON-RPC ping on an open 2025 session: 200 while it lives, 404 once it ended. */
async function ping(t: TestServer, token: string, sessionId: string): Promise<number> {
  const res = await rawRequest(t.server.mcpUrl, {
    method: 'POST',
    headers: {
      ...MCP_HEADERS,
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }),
  });
  return res.status;
}

/** Opens a session's standalone SSE stream (GET /mcp) and resolves once the server answered. */
function openStream(t: TestServer, token: string, sessionId: string): Promise<ClientRequest> {
  const url = new URL(t.server.mcpUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'GET',
        headers: {
          accept: 'text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        },
      },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET /mcp answered ${res.statusCode}`));
        else resolve(req);
      },
    );
    req.on('error', () => undefined);
    req.end();
  });
}

async function mint(t: TestServer, name: string): Promise<string> {
  const minted = await t.api('/tokens', { method: 'POST', body: { name, role: 'agent' } });
  assert.equal(minted.status, 200, JSON.stringify(minted.body));
  return minted.body.token as string;
}

async function sessionsOf(t: TestServer, agent: string): Promise<{ sessionId: string; transport: string }[]> {
  const listed = await t.api('/sessions');
  return (listed.body.sessions as { agent: string; sessionId: string; transport: string }[]).filter(
    (s) => s.agent === agent,
  );
}

describe('Caps per agent token: sessions over every transport and both MCP eras', function () {
  this.timeout(60_000);
  let t: TestServer;

  afterEach(async () => {
    await t.close();
  });

  it('20+ initialize calls from one token stop at the cap with SESSION_LIMIT; other tokens are unaffected', async () => {
    t = await startTestServer();
    const agent = await mint(t, 'greedy');
    // A 2026-07-28 client first: its stateless per-agent state is one of the token's sessions.
    const modern = new ClientV2(
      { name: 'v2-caps', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await modern.connect(
      new TransportV2(new URL(t.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${agent}` } },
      }),
    );
    assert.ok((await modern.listTools()).tools.length > 0);
    const opened: string[] = [];
    const refused: { status: number; message: string; retryAfter?: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const res = await initialize(t, agent);
      if (res.status === 200 && res.sessionId) opened.push(res.sessionId);
      else refused.push(res);
    }
    assert.equal(opened.length, 15, 'the 2026 state and 15 sessions fill the default cap of 16');
    assert.equal(refused.length, 9);
    for (const res of refused) {
      assert.equal(res.status, 429);
      const body = JSON.parse(res.message) as { error: { message: string; data: { code: string } } };
      assert.equal(body.error.data.code, 'SESSION_LIMIT');
      assert.match(body.error.message, /limit is 16.*Reuse an open session, or close one/s);
      assert.ok(Number(res.retryAfter) >= 1, 'Retry-After says when to try again');
    }
    const live = await sessionsOf(t, 'greedy');
    assert.equal(live.length, 16);
    assert.ok(live.some((s) => s.transport === 'mcp-2026'));
    // The open sessions keep working; every transport counts against the same cap.
    assert.equal(await ping(t, agent, opened[0]!), 200);
    const rest = await t.api('/session/init', { method: 'POST', body: {}, token: agent });
    assert.equal(rest.status, 429);
    assert.equal(rest.body.error.code, 'SESSION_LIMIT');
    // Another agent token and the owner have their own room.
    assert.equal((await initialize(t, await mint(t, 'modest'))).status, 200);
    assert.equal((await initialize(t, t.token)).status, 200);
    // Ending one session (DELETE) makes room again.
    const closed = await rawRequest(t.server.mcpUrl, {
      method: 'DELETE',
      headers: {
        authorization: `Bearer ${agent}`,
        'mcp-session-id': opened[0]!,
        'mcp-protocol-version': '2025-11-25',
      },
    });
    assert.equal(closed.status, 200);
    assert.equal((await initialize(t, agent)).status, 200);
    await modern.close();
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true);
  });

  it('a burst of parallel initialize calls never exceeds the cap (30 bursts)', async () => {
    t = await startTestServer({ maxSessionsPerAgent: 4 });
    const agent = await mint(t, 'burst');
    for (let attempt = 0; attempt < 30; attempt++) {
      const results = await Promise.all(Array.from({ length: 8 }, () => initialize(t, agent)));
      const ok = results.filter((r) => r.status === 200);
      assert.ok(ok.length <= 4, `attempt ${attempt}: ${ok.length} sessions opened`);
      assert.ok(
        results.every((r) => r.status === 200 || (r.status === 429 && r.message.includes('SESSION_LIMIT'))),
      );
      assert.ok((await sessionsOf(t, 'burst')).length <= 4);
      // Close what this burst opened, so the next burst races for the room again.
      for (const r of ok) {
        await rawRequest(t.server.mcpUrl, {
          method: 'DELETE',
          headers: {
            authorization: `Bearer ${agent}`,
            'mcp-session-id': r.sessionId!,
            'mcp-protocol-version': '2025-11-25',
          },
        });
      }
    }
  });

  it("reaps the token's least recently used idle session first; busy ones are never reaped", async () => {
    t = await startTestServer({ maxSessionsPerAgent: 4, sessionReapIdleMs: 0 });
    const agent = await mint(t, 'reaper');
    const other = await mint(t, 'bystander');
    const bystander = (await initialize(t, other)).sessionId!;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await initialize(t, agent)).sessionId!);
    // Make the first one the most recently used: the second is now the least recently used.
    assert.equal(await ping(t, agent, ids[0]!), 200);
    const fifth = await initialize(t, agent);
    assert.equal(fifth.status, 200, fifth.message);
    assert.equal(await ping(t, agent, ids[1]!), 404, 'the least recently used idle session was ended');
    for (const id of [ids[0]!, ids[2]!, ids[3]!, fifth.sessionId!])
      assert.equal(await ping(t, agent, id), 200);
    assert.equal((await sessionsOf(t, 'reaper')).length, 4);
    assert.equal(await ping(t, other, bystander), 200, "another token's session is never reaped");
    const ended = await t.api(`/audit?op=init_session&limit=100`);
    assert.ok(ended.status === 200);

    // Every session holds an open stream: none is idle, so the next one is refused.
    const live = [ids[0]!, ids[2]!, ids[3]!, fifth.sessionId!];
    const streams = await Promise.all(live.map((id) => openStream(t, agent, id)));
    const refused = await initialize(t, agent);
    assert.equal(refused.status, 429);
    assert.match(refused.message, /SESSION_LIMIT/);
    for (const id of live) assert.equal(await ping(t, agent, id), 200, 'busy sessions survive');
    // Streams closed: the sessions are idle again and one makes room.
    for (const s of streams) s.destroy();
    let admitted = 0;
    for (let attempt = 0; attempt < 30 && admitted === 0; attempt++) {
      if ((await initialize(t, agent)).status === 200) admitted++;
      else await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(admitted, 1);
    assert.equal((await sessionsOf(t, 'reaper')).length, 4);
  });

  it('a burst of first requests opens one default session per transport, not one per request', async () => {
    t = await startTestServer({ maxSessionsPerAgent: 4 });
    const agent = await mint(t, 'eager');
    const reads = await Promise.all(
      Array.from({ length: 20 }, () => t.api('/capabilities', { token: agent })),
    );
    assert.ok(
      reads.every((r) => r.status === 200),
      JSON.stringify(reads.map((r) => r.body)),
    );
    const live = await sessionsOf(t, 'eager');
    assert.deepEqual(
      live.map((s) => s.transport),
      ['rest'],
    );
  });

  it('shares the rate-limit buckets among all sessions of a token, whatever the transport', async () => {
    t = await startTestServer({ writeRateLimit: { capacity: 6, refillPerSec: 0.01 } });
    const agent = await mint(t, 'writer');
    const s1 = (await t.api('/session/init', { method: 'POST', body: {}, token: agent })).body.sessionId;
    const s2 = (await t.api('/session/init', { method: 'POST', body: {}, token: agent })).body.sessionId;
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    const write = (session: string | undefined, i: number) =>
      t.api(`/files/f${i}.txt`, {
        method: 'PUT',
        token: agent,
        body: { content: `n${i}` },
        ...(session ? { headers: { 'x-mcp-workspace-session': session } } : {}),
      });
    assert.equal((await write(undefined, 1)).status, 200);
    assert.equal((await write(undefined, 2)).status, 200);
    assert.equal((await write(s1, 3)).status, 200);
    assert.equal((await write(s1, 4)).status, 200);
    assert.equal(
      (await callTool(mcp.client, 'write_file', { path: 'f5.txt', content: 'n5' })).revision.length,
      64,
    );
    assert.equal(
      (await callTool(mcp.client, 'write_file', { path: 'f6.txt', content: 'n6' })).revision.length,
      64,
    );
    const limited = await write(s2, 7);
    assert.equal(limited.status, 429, 'a fresh session of the same token starts with an empty bucket');
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    const viaMcp = await callTool(mcp.client, 'write_file', { path: 'f8.txt', content: 'n8' });
    assert.equal(viaMcp.error.code, 'RATE_LIMITED');
    // Ending sessions and opening new ones refills nothing.
    await mcp.close();
    const again = await connectMcp(t.server.mcpUrl, agent);
    assert.equal(
      (await callTool(again.client, 'write_file', { path: 'f9.txt', content: 'n9' })).error.code,
      'RATE_LIMITED',
    );
    await again.close();
    // Another token has its own bucket.
    const other = await mint(t, 'other-writer');
    assert.equal(
      (await t.api('/files/g.txt', { method: 'PUT', token: other, body: { content: 'g' } })).status,
      200,
    );
    for (const i of [7, 8, 9]) {
      await assert.rejects(readFile(join(t.workspace, `f${i}.txt`)), 'a refused write wrote nothing');
    }
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });
});

describe('Caps per agent token: session containers and concurrent commands (real Docker engine)', function () {
  this.timeout(300_000);
  let t: TestServer;
  let docker: Docker;
  let stateId: string;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
    docker = new Docker();
  });

  beforeEach(async () => {
    t = await startTestServer(
      {
        defaultImage: TEST_IMAGE,
        maxContainersPerAgent: 2,
        executionLimits: { maxConcurrentPerAgent: 3, killGraceMs: 200 },
        execRateLimit: { capacity: 1000, refillPerSec: 1000 },
      },
      async (ws) => {
        await writeFile(join(ws, 'hello.txt'), 'hello\n');
      },
    );
    stateId = createHash('sha256')
      .update(await realpath(t.stateDir))
      .digest('hex')
      .slice(0, 16);
    const policy = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'caps', rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)'] },
    });
    assert.equal(policy.status, 200);
  });
  afterEach(async () => {
    await t.close();
  });

  /** Containers of this server, by session id. */
  const containers = async (): Promise<string[]> =>
    (
      await docker.listContainers({ all: true, filters: { label: [`dev.mcp-workspace.state=${stateId}`] } })
    ).map((c) => c.Labels['dev.mcp-workspace.session'] ?? '');

  const session = async (token: string): Promise<string> =>
    (await t.api('/session/init', { method: 'POST', body: {}, token })).body.sessionId as string;

  const run = (token: string, sessionId: string, body: Record<string, unknown>) =>
    t.api('/execute', { method: 'POST', token, body, headers: { 'x-mcp-workspace-session': sessionId } });

  it('caps the containers of one token, reaping idle ones first, and its concurrent commands', async () => {
    const agent = await mint(t, 'builder');
    const [s1, s2, s3] = [await session(agent), await session(agent), await session(agent)];
    const e1 = await run(agent, s1, { command: 'sleep 60', background: true });
    assert.equal(e1.status, 200, JSON.stringify(e1.body));
    const e2 = await run(agent, s2, { command: 'sleep 60', background: true });
    assert.equal(e2.status, 200, JSON.stringify(e2.body));
    const third = await run(agent, s3, { command: 'echo hi' });
    assert.equal(third.status, 429);
    assert.equal(third.body.error.code, 'SANDBOX_LIMIT');
    assert.match(third.body.error.message, /the limit is 2/);
    assert.deepEqual((await containers()).sort(), [s1, s2].sort());

    // A second command in a session that has a container needs none: the command cap applies.
    const e1b = await run(agent, s1, { command: 'sleep 60', background: true });
    assert.equal(e1b.status, 200);
    const fourth = await run(agent, s2, { command: 'sleep 60', background: true });
    assert.equal(fourth.status, 429);
    assert.equal(fourth.body.error.code, 'RATE_LIMITED');
    assert.match(fourth.body.error.message, /Agent token 'builder' already runs 3 commands/);

    // Another token is not affected by this one's caps.
    const other = await mint(t, 'neighbour');
    const theirs = await run(other, await session(other), { command: 'echo neighbour' });
    assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
    assert.equal(theirs.body.stdout, 'neighbour\n');

    // s1's commands end: its container is idle and makes room for s3's.
    for (const id of [e1.body.executionId, e1b.body.executionId]) {
      await t.api(`/executions/${id}/cancel`, { method: 'POST', body: {}, token: agent });
      assert.equal((await t.api(`/executions/${id}?wait=true`, { token: agent })).body.status, 'cancelled');
    }
    const now = await run(agent, s3, { command: 'echo hi' });
    assert.equal(now.status, 200, JSON.stringify(now.body));
    assert.equal(now.body.stdout, 'hi\n');
    const mine = (await containers()).filter((s) => s === s1 || s === s2 || s === s3);
    assert.deepEqual(mine.sort(), [s2, s3].sort(), "s1's idle container was removed");
    // s1 can still run commands: it gets a container again once there is room.
    await t.api(`/executions/${e2.body.executionId}/cancel`, { method: 'POST', body: {}, token: agent });
    await t.api(`/executions/${e2.body.executionId}?wait=true`, { token: agent });
    const back = await run(agent, s1, { command: 'echo back' });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal((await t.api('/audit/verify')).body.ok, true);
    assert.equal(await readFile(join(t.workspace, 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('counts commands still waiting for their container against the per-token command cap', async () => {
    const agent = await mint(t, 'parallel');
    const [s1, s2] = [await session(agent), await session(agent)];
    // Neither session has a container yet: all six wait for one at the same time.
    const results = await Promise.all(
      [s1, s2, s1, s2, s1, s2].map((s) => run(agent, s, { command: 'sleep 60', background: true })),
    );
    const started = results.filter((r) => r.status === 200);
    assert.equal(started.length, 3, JSON.stringify(results.map((r) => r.body)));
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 429);
      assert.equal(r.body.error.code, 'RATE_LIMITED');
    }
    const listed = await t.api('/executions', { token: agent });
    assert.equal(listed.body.executions.filter((e: { status: string }) => e.status === 'running').length, 3);
    for (const r of started)
      await t.api(`/executions/${r.body.executionId}/cancel`, { method: 'POST', body: {}, token: agent });
  });

  it('never runs more containers than the cap while sessions race for them (30 bursts)', async () => {
    const agent = await mint(t, 'racer');
    const sessions = [await session(agent), await session(agent), await session(agent)];
    let alive = 0;
    let peak = 0;
    const events = (await docker.getEvents({
      filters: {
        type: ['container'],
        event: ['create', 'destroy'],
        label: [`dev.mcp-workspace.state=${stateId}`],
      },
    })) as NodeJS.ReadableStream & { destroy: () => void };
    let buffered = '';
    events.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffered.slice(0, nl)) as { Action: string };
        buffered = buffered.slice(nl + 1);
        if (event.Action === 'create') peak = Math.max(peak, ++alive);
        if (event.Action === 'destroy') alive--;
      }
    });
    try {
      let ran = 0;
      for (let attempt = 0; attempt < 30; attempt++) {
        const results = await Promise.all(sessions.map((s) => run(agent, s, { command: 'echo raced' })));
        for (const res of results) {
          if (res.status === 200) {
            ran++;
            assert.equal(res.body.stdout, 'raced\n');
          } else {
            assert.equal(res.status, 429, JSON.stringify(res.body));
            assert.equal(res.body.error.code, 'SANDBOX_LIMIT');
          }
        }
        assert.ok((await containers()).length <= 2, `attempt ${attempt}`);
      }
      assert.ok(ran >= 30, `commands did run (${ran})`);
      // The engine's own event stream confirms the cap held at every moment.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(peak <= 2, `at most 2 containers existed at once; saw ${peak}`);
      assert.ok(peak >= 1);
    } finally {
      events.destroy();
    }
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });
});
