import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePairLink, PAIR_OPERATIONS } from '../../src/protocol/pair';
import { callTool, connectMcp } from '../helpers/clients';
import { until } from '../helpers/wait';
import { destroy, replica } from '../helpers/replica';
import { connectWs, upgradeStatus } from '../helpers/sockets';
import { startTestServer, type TestServer } from '../helpers/server';

/** Every file of the workspace with its content, to prove a refused write changed nothing. */
async function snapshot(t: TestServer, files: string[]): Promise<string[]> {
  return Promise.all(files.map((f) => readFile(join(t.workspace, f), 'utf8')));
}

describe('pair sessions: scoped, expiring pair tokens (real server, stock clients)', function () {
  this.timeout(60_000);
  let t: TestServer;
  const files = ['shared.txt', 'notes.md'];

  beforeEach(async () => {
    t = await startTestServer(
      {
        collab: { flushDelayMs: 50, maxFlushDelayMs: 200, diskPollMs: 50 },
        // A typed tool and rules that would let any agent run anything: a pair guest still may not.
        tools: [
          {
            name: 'say',
            description: 'Prints its words.',
            inputSchema: {
              type: 'object',
              properties: { words: { type: 'array', items: { type: 'string' } } },
            },
            argv: ['echo', '{words...}'],
          },
        ],
      },
      async (ws) => {
        await writeFile(join(ws, 'shared.txt'), 'hello\n');
        await writeFile(join(ws, 'notes.md'), '# notes\n');
      },
    );
    const policy = await t.api('/policies', {
      method: 'PUT',
      body: {
        id: 'open',
        rules: [
          'allow read(**)',
          'allow write(**)',
          'deny write(**) @viewer',
          'allow exec(*)',
          'allow tool(*)',
        ],
      },
    });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));
  });

  afterEach(async () => {
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true, 'the audit log must still verify');
    await t.close();
  });

  async function createLink(body: Record<string, unknown>): Promise<any> {
    const res = await t.api('/pair-links', { method: 'POST', body });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  }

  it('mints a pair link for the owner only, with its expiry persisted and the token shown once', async () => {
    const link = await createLink({ mode: 'read-write', name: 'alice', ttlSeconds: 600 });
    assert.equal(link.id, 'pair:alice');
    const parsed = parsePairLink(link.link);
    assert.ok(typeof parsed !== 'string', String(parsed));
    assert.equal(parsed.host, '127.0.0.1');
    assert.equal(parsed.port, t.server.port);
    assert.equal(parsed.token, link.token);
    assert.equal(parsed.mode, 'read-write');
    assert.match(link.link, /^vscode:\/\/mcp-workspace\.mcp-workspace\/join\?/);
    const expires = Date.parse(link.expiresAt);
    assert.ok(expires > Date.now() + 500_000 && expires <= Date.now() + 600_000, link.expiresAt);

    const listed = await t.api('/tokens');
    const entry = listed.body.tokens.find((x: any) => x.name === 'pair:alice');
    assert.equal(entry.role, 'agent');
    assert.equal(entry.expiresAt, link.expiresAt);
    const stored = await readFile(join(t.stateDir, 'tokens.json'), 'utf8');
    assert.ok(!stored.includes(link.token), 'tokens.json must not hold the token');
    const record = JSON.parse(stored).find((x: any) => x.name === 'pair:alice');
    assert.equal(record.expiresAt, link.expiresAt);
    assert.deepEqual(record.scope, [...PAIR_OPERATIONS]);

    // Agents (a pair guest included) cannot mint links; the owner cannot smuggle pair: names past it.
    const agent = await t.api('/tokens', { method: 'POST', body: { name: 'bob', role: 'agent' } });
    const refused = await t.api('/pair-links', {
      method: 'POST',
      body: { mode: 'read-write' },
      token: agent.body.token,
    });
    assert.equal(refused.status, 403);
    const guestTry = await t.api('/pair-links', {
      method: 'POST',
      body: { mode: 'read-write' },
      token: link.token,
    });
    assert.equal(guestTry.status, 403);
    const smuggled = await t.api('/tokens', {
      method: 'POST',
      body: { name: 'pair:mallory', role: 'agent' },
    });
    assert.equal(smuggled.status, 400);
    assert.equal(smuggled.body.error.code, 'INVALID_ARGUMENT');
    const tooLong = await t.api('/pair-links', {
      method: 'POST',
      body: { mode: 'read-only', ttlSeconds: 86_401 },
    });
    assert.equal(tooLong.status, 400);
    const defaulted = await createLink({ mode: 'read-only' });
    assert.match(defaulted.id, /^pair:guest-[0-9a-f]{4}$/);
    const lifetime = Date.parse(defaulted.expiresAt) - Date.now();
    assert.ok(lifetime > 3_500_000 && lifetime <= 3_600_000, `default lifetime ${lifetime}`);

    const audit = await t.api('/audit?op=create_pair_link');
    assert.equal(audit.body.records.filter((r: any) => r.outcome.ok).length, 2);
    assert.ok(!JSON.stringify(audit.body).includes(link.token), 'the audit must not hold the token');
  });

  it('a read-write guest edits files and co-edits, but runs no command or tool whatever allow exec(*) says', async () => {
    const { token } = await createLink({ mode: 'read-write', name: 'alice' });
    const as = { token };
    const caps = await t.api('/capabilities', as);
    assert.equal(caps.status, 200);
    assert.deepEqual([...caps.body.tools].sort(), [...PAIR_OPERATIONS].sort());

    const write = await t.api('/files/notes.md', { method: 'PUT', body: { content: '# by alice\n' }, ...as });
    assert.equal(write.status, 200, JSON.stringify(write.body));
    assert.equal(await readFile(join(t.workspace, 'notes.md'), 'utf8'), '# by alice\n');

    const before = await snapshot(t, files);
    const exec = await t.api('/execute', { method: 'POST', body: { command: 'touch pwned' }, ...as });
    assert.equal(exec.status, 403);
    assert.equal(exec.body.error.code, 'CAPABILITY_NOT_NEGOTIATED');
    const init = await t.api('/session/init', {
      method: 'POST',
      body: { tools: ['run_command', 'set_policy'] },
      ...as,
    });
    assert.deepEqual(init.body.capabilities, []);

    const mcp = await connectMcp(`${t.url}/mcp`, token);
    try {
      const listed = await mcp.client.listTools();
      const names = listed.tools.map((tool) => tool.name);
      assert.ok(!names.includes('run_command'), names.join());
      assert.ok(!names.includes('say'), 'a typed tool must not be offered to a pair guest');
      assert.ok(names.includes('write_file'));
      for (const [name, args] of [
        ['run_command', { command: 'touch pwned' }],
        ['say', { words: ['hi'] }],
      ] as const) {
        const outcome = await callTool(mcp.client, name, args).then(
          (result) => (result?.error ? 'refused' : 'ran'),
          () => 'refused',
        );
        assert.equal(outcome, 'refused', `${name} must be refused to a pair guest`);
      }
    } finally {
      await mcp.close();
    }
    const ws = await connectWs(t.url, token);
    const viaWs = await ws.call('tool', { name: 'say', arguments: { words: ['hi'] } });
    assert.equal(viaWs.type, 'error');
    assert.equal(viaWs.error.code, 'CAPABILITY_NOT_NEGOTIATED');
    const runViaWs = await ws.call('run_command', { command: 'touch pwned' });
    assert.equal(runViaWs.error.code, 'CAPABILITY_NOT_NEGOTIATED');
    ws.ws.close();
    assert.deepEqual(await snapshot(t, files), before);
    assert.equal(t.server.executions.list({ kind: 'owner', name: 'owner', role: 'owner' }).length, 0);

    // Live co-editing with the owner: both edits land in the shared text and on disk.
    const guest = replica(t.url, 'shared.txt', token);
    const owner = replica(t.url, 'shared.txt', t.token);
    try {
      await until('both replicas to sync', () => guest.provider.synced && owner.provider.synced);
      guest.text.insert(0, 'guest ');
      owner.text.insert(owner.text.length, 'owner\n');
      await until(
        'convergence',
        () => guest.text.toString() === owner.text.toString() && guest.text.length > 12,
      );
      await until(
        'the disk to follow',
        async () => (await readFile(join(t.workspace, 'shared.txt'), 'utf8')) === owner.text.toString(),
      );
      assert.equal(owner.text.toString(), 'guest hello\nowner\n');
    } finally {
      destroy(guest, owner);
    }
    const denied = await t.api('/audit?agent=pair:alice&decision=deny');
    assert.ok(
      denied.body.records.some((r: any) => r.op === 'run_command'),
      'refusals are audited',
    );
    const edits = await t.api('/audit?agent=pair:alice&op=collab_edit');
    assert.ok(edits.body.records.length > 0, 'the guest’s live edits are audited');
  });

  it('a @pair:NAME rule selects that one guest, never an agent of the same name or another guest', async () => {
    const policy = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'open', rules: ['allow read(**)', 'allow write(**)', 'deny write(notes.md) @pair:alice'] },
    });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));
    const alice = (await createLink({ mode: 'read-write', name: 'alice' })).token;
    const bob = (await createLink({ mode: 'read-write', name: 'bob' })).token;
    const agent = (await t.api('/tokens', { method: 'POST', body: { name: 'alice', role: 'agent' } })).body
      .token;
    const put = (token: string, content: string): Promise<any> =>
      t.api('/files/notes.md', { method: 'PUT', body: { content }, token });
    const refused = await put(alice, 'by the guest alice\n');
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'POLICY_DENIED');
    assert.match(refused.body.error.message, /deny write\(notes\.md\) @pair:alice/);
    assert.equal((await put(bob, 'by the guest bob\n')).status, 200);
    assert.equal((await put(agent, 'by the agent alice\n')).status, 200);
    assert.equal(await readFile(join(t.workspace, 'notes.md'), 'utf8'), 'by the agent alice\n');
    // An agent's rule never reaches the guest of the same name.
    await t.api('/policies', {
      method: 'PUT',
      body: { id: 'open', rules: ['allow read(**)', 'allow write(**)', 'deny write(notes.md) @agent:alice'] },
    });
    assert.equal((await put(alice, 'the guest again\n')).status, 200);
    assert.equal((await put(agent, 'the agent again\n')).status, 403);
  });

  it('a read-only guest reads but cannot write over REST, MCP or a shared document', async () => {
    const { token } = await createLink({ mode: 'read-only', name: 'ro' });
    const before = await snapshot(t, files);
    const read = await t.api('/files/shared.txt', { token });
    assert.equal(read.status, 200);
    assert.equal(read.body.content, 'hello\n');
    const write = await t.api('/files/shared.txt', { method: 'PUT', body: { content: 'x' }, token });
    assert.equal(write.status, 403);
    const del = await t.api('/files/notes.md', { method: 'DELETE', token });
    assert.equal(del.status, 403);
    const mcp = await connectMcp(`${t.url}/mcp`, token);
    try {
      const names = (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(!names.includes('write_file') && !names.includes('run_command'), names.join());
    } finally {
      await mcp.close();
    }
    const guest = replica(t.url, 'shared.txt', token);
    const owner = replica(t.url, 'shared.txt', t.token);
    try {
      await until('both replicas to sync', () => guest.provider.synced && owner.provider.synced);
      guest.text.insert(0, 'NOPE ');
      owner.text.insert(owner.text.length, 'owner\n');
      await until('the owner’s edit to reach the guest', () => guest.text.toString().includes('owner'));
      await until('the owner’s edit on disk', async () =>
        (await readFile(join(t.workspace, 'shared.txt'), 'utf8')).includes('owner'),
      );
      assert.equal(owner.text.toString(), 'hello\nowner\n');
      assert.ok(!(await readFile(join(t.workspace, 'shared.txt'), 'utf8')).includes('NOPE'));
    } finally {
      destroy(guest, owner);
    }
    assert.equal(await readFile(join(t.workspace, 'notes.md'), 'utf8'), before[1]);
  });

  it('at expiry every transport refuses the token and open collab sockets close at once (4401)', async () => {
    const { token, id } = await createLink({ mode: 'read-write', name: 'brief', ttlSeconds: 2 });
    const ws = await connectWs(t.url, token);
    const mcp = await connectMcp(`${t.url}/mcp`, token);
    const guest = replica(t.url, 'shared.txt', token);
    try {
      await until('the guest to sync', () => guest.provider.synced);
      assert.equal((await t.api('/files/shared.txt', { token })).status, 200);
      assert.equal((await ws.call('read_file', { path: 'notes.md' })).type, 'result');
      // Bounded wait for the expiry; it is asserted by what happens, not by how long it took.
      await until('the collab socket to be closed', () => guest.closes.length > 0, 800);
      assert.equal(guest.closes[0]?.code, 4401);
      await until('the /ws socket to be closed', () => ws.closed() !== null);
      const rest = await t.api('/files/shared.txt', { token });
      assert.equal(rest.status, 401);
      const mcpCall = await mcp.client.callTool({ name: 'read_file', arguments: { path: 'notes.md' } }).then(
        () => 'answered',
        () => 'refused',
      );
      assert.equal(mcpCall, 'refused');
      await assert.rejects(connectMcp(`${t.url}/mcp`, token));
      const wsBase = t.url.replace('http', 'ws');
      assert.equal(await upgradeStatus(`${wsBase}/ws`, { authorization: `Bearer ${token}` }), 401);
      assert.equal(
        await upgradeStatus(`${wsBase}/collab/shared.txt?token=${encodeURIComponent(token)}`),
        401,
      );
      // 4401 tells the stock client not to retry; a deliberate reconnect is refused at the upgrade.
      guest.text.insert(0, 'late ');
      assert.equal(guest.provider.shouldConnect, false);
      guest.provider.connect();
      await until('the reconnect to be refused', () => guest.closes.length >= 2);
      assert.ok(!guest.provider.wsconnected);
    } finally {
      destroy(guest);
      ws.ws.close();
      await mcp.close().catch(() => undefined);
    }
    assert.ok(!(await readFile(join(t.workspace, 'shared.txt'), 'utf8')).includes('late'));
    const tokens = await t.api('/tokens');
    assert.ok(!tokens.body.tokens.some((x: any) => x.name === id), 'an expired token is gone');
    assert.ok(!(await readFile(join(t.stateDir, 'tokens.json'), 'utf8')).includes(id));
    const expired = await t.api(`/audit?op=token_expired&agent=${encodeURIComponent(id)}`);
    assert.equal(expired.body.records.length, 1);
    const closed = await t.api(`/audit?op=collab_close&agent=${encodeURIComponent(id)}`);
    assert.ok(closed.body.records.some((r: any) => r.outcome.code === 4401));
  });

  it('revoking a pair link closes its collab sockets at once (4401) and refuses the token', async () => {
    const { token, id } = await createLink({ mode: 'read-write', name: 'gone' });
    const guest = replica(t.url, 'shared.txt', token);
    const other = replica(t.url, 'notes.md', token);
    try {
      await until('the guest to sync', () => guest.provider.synced && other.provider.synced);
      const revoked = await t.api(`/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      await until('both sockets to be closed', () => guest.closes.length > 0 && other.closes.length > 0);
      assert.equal(guest.closes[0]?.code, 4401);
      assert.equal(other.closes[0]?.code, 4401);
      assert.equal((await t.api('/files/shared.txt', { token })).status, 401);
      const wsBase = t.url.replace('http', 'ws');
      assert.equal(
        await upgradeStatus(`${wsBase}/collab/shared.txt?token=${encodeURIComponent(token)}`),
        401,
      );
    } finally {
      destroy(guest, other);
    }
    const audit = await t.api('/audit?op=revoke_token');
    assert.ok(audit.body.records.some((r: any) => r.params.name === id));
  });
});
