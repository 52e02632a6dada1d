import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_POLICY } from '../../src/core/policy';
import { callTool, connectMcp } from '../helpers/clients';
import { connectWs } from '../helpers/sockets';
import { eventually } from '../helpers/wait';
import { startTestServer, type TestServer } from '../helpers/server';

describe('Agents working together: join, messages, leases (real server, official SDK clients)', () => {
  let t: TestServer;
  const tokens: Record<string, string> = {};
  let workspaceId: string;

  const as = (agent: string) => ({ token: tokens[agent]! });
  /** POST /leases as `agent`. */
  const acquire = (agent: string, body: Record<string, unknown>) =>
    t.api('/leases', { method: 'POST', body, ...as(agent) });

  beforeEach(async () => {
    t = await startTestServer({ leaseIdleGraceMs: 1000 }, async (ws) => {
      await mkdir(join(ws, 'src'));
      await writeFile(join(ws, 'src', 'a.ts'), 'export const a = 1;\n');
      await mkdir(join(ws, 'docs'));
      await writeFile(join(ws, 'docs', 'x.md'), '# x\n');
      await mkdir(join(ws, '.git'));
      await writeFile(join(ws, '.git', 'config'), '[core]\n');
    });
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const minted = await t.api('/tokens', { method: 'POST', body: { name, role: 'agent' } });
      assert.equal(minted.status, 200, JSON.stringify(minted.body));
      tokens[name] = minted.body.token;
    }
    const caps = await t.api('/capabilities', as('alice'));
    workspaceId = caps.body.workspaceId;
    assert.equal(workspaceId, t.server.workspaceId);
  });
  afterEach(async () => {
    await t.close();
  });

  /** The audit chain still verifies. */
  async function assertAuditVerifies(): Promise<void> {
    const verified = await t.api('/audit/verify');
    assert.equal(verified.status, 200);
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
  }

  async function auditRecords(op: string): Promise<any[]> {
    const page = await t.api(`/audit?op=${op}&limit=100`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    return page.body.records;
  }

  it('refuses to join a workspace id that is not served here', async () => {
    const wrong = await t.api('/workspace/join', {
      method: 'POST',
      body: { workspaceId: 'not-this-one' },
      ...as('bob'),
    });
    assert.equal(wrong.status, 404);
    assert.equal(wrong.body.error.code, 'NOT_FOUND');
    assert.match(wrong.body.error.message, new RegExp(workspaceId));
    const joined = await t.api('/workspace/join', { method: 'POST', body: { workspaceId }, ...as('bob') });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    assert.equal(joined.body.agent, 'bob');
    assert.equal(joined.body.workspaceId, workspaceId);
    assert.deepEqual(
      joined.body.members.map((m: any) => [m.agent, m.transport]),
      [['bob', 'rest']],
    );
    const records = await auditRecords('join_workspace');
    assert.deepEqual(records.map((r) => [r.agent, r.outcome.ok]).sort(), [
      ['bob', false],
      ['bob', true],
    ]);
  });

  it('delivers a broadcast to a 2025 session, a 2026 client, a WebSocket client and the VS Code user', async () => {
    // bob: the official SDK v1 client (protocol 2025-11-25), notified by a log notification.
    const bob = await connectMcp(t.server.mcpUrl, tokens['bob']!);
    const bobNotes: any[] = [];
    bob.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      bobNotes.push(n.params);
    });
    // carol: the SDK v2 client on 2026-07-28, told that her inbox resource was updated.
    const carol = new ClientV2(
      { name: 'carol', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await carol.connect(
      new TransportV2(new URL(t.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${tokens['carol']}` } },
      }),
    );
    const carolUpdates: string[] = [];
    carol.setNotificationHandler('notifications/resources/updated', (n) => {
      carolUpdates.push(n.params.uri);
    });
    // dave: a WebSocket client.
    const dave = await connectWs(t.url, tokens['dave']!);
    const human: any[] = [];
    const stopHuman = t.server.coordination.onMessage((m) => human.push(m));
    try {
      assert.equal((await callTool(bob.client, 'join_workspace', { workspaceId })).workspaceId, workspaceId);
      const carolJoin = (await carol.callTool({ name: 'join_workspace', arguments: { workspaceId } })) as any;
      assert.equal(carolJoin.structuredContent.agent, 'carol');
      const subscription = await carol.listen({ resourceSubscriptions: ['inbox://carol'] });
      const daveJoin = await dave.call('join_workspace', { workspaceId });
      assert.equal(daveJoin.type, 'result', JSON.stringify(daveJoin));
      assert.deepEqual(daveJoin.result.members.map((m: any) => m.agent).sort(), ['bob', 'carol', 'dave']);

      const sent = await t.api('/messages', {
        method: 'POST',
        body: { message: 'I am refactoring src/api; please stay out for ten minutes.' },
        ...as('alice'),
      });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.equal(sent.body.delivered, 4, 'three member sessions and the VS Code user');

      const note = await eventually('the expected event', () =>
        bobNotes.find((n) => n.logger === 'mcp-workspace/message'),
      );
      assert.equal(note.data.message, 'I am refactoring src/api; please stay out for ten minutes.');
      assert.equal(note.data.from, 'alice');
      assert.equal(note.data.id, sent.body.id);

      await eventually('the expected event', () =>
        carolUpdates.includes('inbox://carol') ? true : undefined,
      );
      const inbox = await carol.readResource({ uri: 'inbox://carol' });
      const carolInbox = JSON.parse((inbox.contents[0] as { text: string }).text);
      assert.equal(carolInbox.agent, 'carol');
      assert.deepEqual(
        carolInbox.messages.map((m: any) => [m.id, m.from, m.to]),
        [[sent.body.id, 'alice', null]],
      );
      await subscription.close();

      const event = await eventually('the expected event', () =>
        dave.frames.find((f) => f.type === 'message'),
      );
      assert.equal(event.message.id, sent.body.id);
      assert.equal(event.message.from, 'alice');

      assert.deepEqual(
        human.map((m) => m.id),
        [sent.body.id],
      );

      // To one named agent: only dave's session gets it (and not the VS Code user).
      const direct = await callTool(bob.client, 'broadcast_message', { message: 'dave: ping', to: 'dave' });
      assert.equal(direct.delivered, 1, JSON.stringify(direct));
      const ping = await eventually('the expected event', () =>
        dave.frames.find((f) => f.type === 'message' && f.message.id === direct.id),
      );
      assert.equal(ping.message.to, 'dave');
      assert.equal(human.length, 1);
      const carolLater = await carol.callTool({ name: 'read_inbox', arguments: {} });
      assert.equal(
        (carolLater as any).structuredContent.messages.length,
        1,
        'carol did not get the direct message',
      );

      const unknown = await callTool(bob.client, 'broadcast_message', { message: 'hi', to: 'nobody' });
      assert.equal(unknown.error.code, 'NOT_FOUND');

      // Messages are audited with their text (through the redactor) and their delivery count.
      const records = await auditRecords('broadcast_message');
      const mine = records.find((r) => r.agent === 'alice');
      assert.equal(mine.params.message, 'I am refactoring src/api; please stay out for ten minutes.');
      assert.equal(mine.transport, 'rest');
      assert.ok(records.some((r) => r.agent === 'bob' && r.params.to === 'dave'));
      // Each era and transport joined on the record, and carol's inbox read too.
      assert.deepEqual(
        (await auditRecords('join_workspace')).map((r) => `${r.agent}/${r.transport}/${r.outcome.ok}`).sort(),
        ['bob/mcp/true', 'carol/mcp-2026/true', 'dave/ws/true'],
      );
      assert.ok(
        (await auditRecords('read_inbox')).some((r) => r.agent === 'carol' && r.transport === 'mcp-2026'),
        'the 2026 inbox read is audited',
      );
      await assertAuditVerifies();
    } finally {
      stopHuman();
      dave.close();
      await carol.close();
      await bob.close();
    }
  });

  it('redacts secrets in audited messages and caps message size', async () => {
    await t.api('/workspace/join', { method: 'POST', body: { workspaceId }, ...as('bob') });
    const secret = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
    const sent = await t.api('/messages', {
      method: 'POST',
      body: { message: `use token ${secret}` },
      ...as('alice'),
    });
    assert.equal(sent.status, 200);
    const records = await auditRecords('broadcast_message');
    assert.ok(records.length > 0);
    assert.ok(!JSON.stringify(records).includes(secret), 'the secret reached the audit log');
    const inbox = await t.api('/inbox', as('bob'));
    assert.equal(
      inbox.body.messages[0].message,
      `use token ${secret}`,
      'the recipient gets the text as sent',
    );

    const big = await t.api('/messages', {
      method: 'POST',
      body: { message: '€'.repeat(6000) },
      ...as('alice'),
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'MESSAGE_TOO_LARGE');
  });

  it('lets an agent read and listen to its own inbox only; the owner reads any', async () => {
    for (const agent of ['bob', 'carol']) {
      await t.api('/workspace/join', { method: 'POST', body: { workspaceId }, ...as(agent) });
    }
    const sent = await t.api('/messages', {
      method: 'POST',
      body: { message: 'for carol only', to: 'carol' },
      ...as('alice'),
    });
    assert.equal(sent.body.delivered, 1);

    const snoop = await t.api('/inbox?agent=carol', as('bob'));
    assert.equal(snoop.status, 403);
    assert.equal(snoop.body.error.code, 'OWNER_ONLY');
    assert.ok(!JSON.stringify(snoop.body).includes('for carol only'));

    const bob = await connectMcp(t.server.mcpUrl, tokens['bob']!);
    try {
      await assert.rejects(bob.client.readResource({ uri: 'inbox://carol' }), /OWNER_ONLY|own inbox/);
      const own = await bob.client.readResource({ uri: 'inbox://bob' });
      assert.deepEqual(JSON.parse((own.contents[0] as { text: string }).text).messages, []);
    } finally {
      await bob.close();
    }

    const mallory = new ClientV2(
      { name: 'bob-2026', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await mallory.connect(
      new TransportV2(new URL(t.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${tokens['bob']}` } },
      }),
    );
    try {
      await assert.rejects(
        mallory.listen({ resourceSubscriptions: ['inbox://carol'] }),
        /OWNER_ONLY|own inbox/,
      );
    } finally {
      await mallory.close();
    }

    const owner = await t.api('/inbox?agent=carol');
    assert.equal(owner.status, 200);
    assert.deepEqual(
      owner.body.messages.map((m: any) => m.message),
      ['for carol only'],
    );
    const denied = (await auditRecords('read_inbox')).filter((r) => r.decision === 'deny');
    assert.deepEqual(
      denied.map((r) => [r.agent, r.transport, r.params.agent]).sort(),
      [
        ['bob', 'mcp', 'carol'],
        ['bob', 'mcp-2026', 'carol'],
        ['bob', 'rest', 'carol'],
      ],
      'every refused read or listen is audited',
    );
    await assertAuditVerifies();
  });

  it('warns on writes into another agent’s lease by default, and refuses leases of paths the agent may not write', async () => {
    const lease = await acquire('alice', {
      paths: ['src/**'],
      ttlSeconds: 600,
      reason: 'refactoring the API',
    });
    assert.equal(lease.status, 200, JSON.stringify(lease.body));
    assert.equal(lease.body.holder, 'alice');
    assert.deepEqual(lease.body.paths, ['src/**']);

    const listed = await t.api('/leases', as('bob'));
    assert.deepEqual(
      listed.body.leases.map((l: any) => [l.id, l.holder, l.reason, l.idle]),
      [[lease.body.id, 'alice', 'refactoring the API', false]],
    );

    const write = await t.api('/files/src/a.ts', {
      method: 'PUT',
      body: { content: 'export const a = 2;\n' },
      ...as('bob'),
    });
    assert.equal(write.status, 200, JSON.stringify(write.body));
    assert.equal(write.body.warnings.length, 1);
    assert.match(write.body.warnings[0], /leased by 'alice'/);
    assert.equal(await readFile(join(t.workspace, 'src', 'a.ts'), 'utf8'), 'export const a = 2;\n');

    const own = await t.api('/files/src/a.ts', {
      method: 'PUT',
      body: { content: 'export const a = 3;\n' },
      ...as('alice'),
    });
    assert.equal(own.status, 200);
    assert.equal(own.body.warnings, undefined, 'the holder writes without a warning');
    const outside = await t.api('/files/docs/x.md', {
      method: 'PUT',
      body: { content: '# y\n' },
      ...as('bob'),
    });
    assert.equal(outside.body.warnings, undefined);

    // Deleting the folder above the lease touches it too.
    const mkdir = await t.api('/mkdir', { method: 'POST', body: { path: 'src/new' }, ...as('bob') });
    assert.equal(mkdir.status, 200);
    assert.match(mkdir.body.warnings[0], /alice/);

    const overlapping = await acquire('bob', { paths: ['src/a.ts'], reason: 'fix a typo' });
    assert.equal(overlapping.status, 409);
    assert.equal(overlapping.body.error.code, 'LEASE_CONFLICT');
    assert.equal(overlapping.body.error.holder, 'alice');
    assert.equal(overlapping.body.error.leaseId, lease.body.id);

    for (const [paths, code] of [
      [['.git/**'], 'POLICY_DENIED'],
      [['.vscode/settings.json'], 'POLICY_DENIED'],
      [['../outside/**'], 'INVALID_PATTERN'],
      [['/etc/**'], 'INVALID_PATTERN'],
      [['**/.env*'], 'POLICY_DENIED'],
    ] as const) {
      const refused = await acquire('bob', { paths, reason: 'x' });
      assert.equal(refused.body.error?.code, code, `${paths[0]}: ${JSON.stringify(refused.body)}`);
    }

    const writes = (await auditRecords('write_file')).filter(
      (r) => r.agent === 'bob' && r.params.path === 'src/a.ts',
    );
    assert.equal(writes.length, 1);
    assert.ok(
      writes[0].decisions.some((d: any) => d.action === 'lease-conflict' && d.decision === 'allow'),
      JSON.stringify(writes[0].decisions),
    );
    await assertAuditVerifies();
  });

  it('refuses writes into an exclusive lease with LEASE_CONFLICT under a deny lease-conflict rule', async () => {
    const policy = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'exclusive', rules: [...DEFAULT_POLICY.rules, 'deny lease-conflict(src/**) @agent'] },
    });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));
    const lease = await acquire('alice', {
      paths: ['src/**'],
      ttlSeconds: 600,
      reason: 'refactoring the API',
    });
    const before = await readFile(join(t.workspace, 'src', 'a.ts'), 'utf8');

    const attempts: [string, { method: string; body?: unknown }][] = [
      ['/files/src/a.ts', { method: 'PUT', body: { content: 'clobbered' } }],
      [
        '/edit',
        { method: 'POST', body: { path: 'src/a.ts', edits: [{ oldText: 'a = 1', newText: 'a = 9' }] } },
      ],
      ['/files/src/a.ts', { method: 'DELETE' }],
      ['/move', { method: 'POST', body: { from: 'src/a.ts', to: 'docs/a.ts' } }],
      ['/move', { method: 'POST', body: { from: 'docs/x.md', to: 'src/x.md' } }],
      ['/mkdir', { method: 'POST', body: { path: 'src/sub' } }],
      ['/files/src?recursive=true', { method: 'DELETE' }],
    ];
    for (const [path, init] of attempts) {
      const refused = await t.api(path, { ...init, ...as('bob') });
      assert.equal(refused.status, 409, `${init.method} ${path}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error.code, 'LEASE_CONFLICT');
      assert.equal(refused.body.error.holder, 'alice');
      assert.equal(refused.body.error.leaseId, lease.body.id);
    }
    // Nothing inside the lease changed, and nothing moved out of or into it.
    assert.equal(await readFile(join(t.workspace, 'src', 'a.ts'), 'utf8'), before);
    assert.equal(await readFile(join(t.workspace, 'docs', 'x.md'), 'utf8'), '# x\n');
    await assert.rejects(stat(join(t.workspace, 'src', 'sub')));
    await assert.rejects(stat(join(t.workspace, 'docs', 'a.ts')));

    // The holder still writes; the owner is not matched by `@agent`, so it gets a warning instead.
    assert.equal(
      (await t.api('/files/src/a.ts', { method: 'PUT', body: { content: 'mine\n' }, ...as('alice') })).status,
      200,
    );
    const byOwner = await t.api('/files/src/a.ts', { method: 'PUT', body: { content: 'owner\n' } });
    assert.equal(byOwner.status, 200);
    assert.match(byOwner.body.warnings[0], /alice/);

    // The collaboration endpoint's check: read-only for bob, writable for the holder.
    const bobPrincipal = { kind: 'agent' as const, name: 'bob', role: 'agent' as const };
    assert.equal(t.server.coordination.leaseBlocks(bobPrincipal, 'src/a.ts')?.id, lease.body.id);
    assert.equal(t.server.coordination.leaseBlocks({ ...bobPrincipal, name: 'alice' }, 'src/a.ts'), null);
    assert.equal(t.server.coordination.leaseBlocks(bobPrincipal, 'docs/x.md'), null);

    const refusedRecords = (await auditRecords('write_file')).filter((r) => r.agent === 'bob');
    assert.equal(refusedRecords.length, 1);
    assert.equal(refusedRecords[0].decision, 'deny');
    assert.equal(refusedRecords[0].rule, 'deny lease-conflict(src/**) @agent');
    assert.equal(refusedRecords[0].outcome.code, 'LEASE_CONFLICT');
    await assertAuditVerifies();
  });

  it('expires leases at their TTL, keeps renewed ones, and ends them with their holder’s token', async () => {
    const short = await acquire('alice', { paths: ['docs/**'], ttlSeconds: 1, reason: 'quick' });
    const renewed = await acquire('alice', { paths: ['src/**'], ttlSeconds: 1, reason: 'long' });
    const renewal = await t.api(`/leases/${renewed.body.id}/renew`, {
      method: 'POST',
      body: { ttlSeconds: 600 },
      ...as('alice'),
    });
    assert.equal(renewal.status, 200, JSON.stringify(renewal.body));
    assert.ok(Date.parse(renewal.body.expiresAt) > Date.parse(renewed.body.expiresAt));
    const foreign = await t.api(`/leases/${renewed.body.id}/renew`, {
      method: 'POST',
      body: {},
      ...as('bob'),
    });
    assert.equal(foreign.body.error.code, 'LEASE_CONFLICT');

    await eventually(
      'the short lease to expire',
      async () => {
        const listed = await t.api('/leases', as('bob'));
        const ids = listed.body.leases.map((l: any) => l.id);
        return ids.includes(short.body.id) ? undefined : ids;
      },
      50,
      100,
    ).then((ids) => assert.deepEqual(ids, [renewed.body.id]));
    const expired = await eventually('the expiry to be audited', async () => {
      const records = await auditRecords('lease_expired');
      return records.length > 0 ? records : undefined;
    });
    assert.equal(expired[0].agent, 'alice');
    assert.equal(expired[0].params.leaseId, short.body.id);

    // A write into the expired lease no longer warns.
    const write = await t.api('/files/docs/x.md', {
      method: 'PUT',
      body: { content: '# z\n' },
      ...as('bob'),
    });
    assert.equal(write.body.warnings, undefined);

    const revoked = await t.api('/tokens/alice', { method: 'DELETE' });
    assert.equal(revoked.status, 200);
    const listed = await t.api('/leases', as('bob'));
    assert.deepEqual(listed.body.leases, []);
    const ended = await auditRecords('lease_revoked');
    assert.deepEqual(
      ended.map((r) => r.params.leaseId),
      [renewed.body.id],
    );

    const released = await acquire('bob', { paths: ['docs/x.md'], reason: 'r' });
    assert.equal(
      (await t.api(`/leases/${released.body.id}`, { method: 'DELETE', ...as('carol') })).body.error.code,
      'LEASE_CONFLICT',
    );
    assert.equal(
      (await t.api(`/leases/${released.body.id}`, { method: 'DELETE', ...as('bob') })).status,
      200,
    );
    assert.equal(
      (await t.api(`/leases/${released.body.id}`, { method: 'DELETE', ...as('bob') })).body.error.code,
      'LEASE_NOT_FOUND',
    );
    await assertAuditVerifies();
  });

  it('lets another agent take over a lease only once its holder has gone idle', async () => {
    const held = await acquire('alice', { paths: ['docs/**'], ttlSeconds: 3600, reason: 'writing docs' });
    assert.equal(held.status, 200);
    const early = await acquire('bob', { paths: ['docs/x.md'], reason: 'fix', takeOver: true });
    assert.equal(early.status, 409, 'the holder is still active');
    assert.match(early.body.error.message, /active/);

    // alice stays busy for a while: no takeover while she is active.
    for (let i = 0; i < 5; i++) {
      await sleep(300);
      await t.api('/leases', as('alice'));
      const busy = await acquire('bob', { paths: ['docs/x.md'], reason: 'fix', takeOver: true });
      assert.equal(busy.status, 409);
    }
    // Then she goes quiet and bob takes over within a bounded number of attempts.
    const taken = await eventually(
      'bob to take the idle lease over',
      async () => {
        const attempt = await acquire('bob', { paths: ['docs/x.md'], reason: 'fix', takeOver: true });
        return attempt.status === 200 ? attempt.body : undefined;
      },
      50,
      100,
    );
    assert.equal(taken.holder, 'bob');
    assert.deepEqual(taken.takenOver, [{ id: held.body.id, holder: 'alice' }]);
    const listed = await t.api('/leases', as('carol'));
    assert.deepEqual(
      listed.body.leases.map((l: any) => l.holder),
      ['bob'],
    );
    const records = await auditRecords('lease_taken_over');
    assert.equal(records.length, 1);
    assert.equal(records[0].agent, 'alice');
    assert.equal(records[0].params.takenOverBy, 'bob');
    const acquires = (await auditRecords('acquire_lease')).filter((r) => r.agent === 'bob' && r.outcome.ok);
    assert.equal(acquires.length, 1);
    assert.equal(acquires[0].params.takeOver, true);
    await assertAuditVerifies();
  });

  it('warns on, then (exclusive) refuses, lease conflicts alike over MCP 2025, MCP 2026 and WebSocket, each audited', async () => {
    const lease = await acquire('alice', {
      paths: ['src/**'],
      ttlSeconds: 600,
      reason: 'refactoring the API',
    });
    assert.equal(lease.status, 200, JSON.stringify(lease.body));
    const bob = await connectMcp(t.server.mcpUrl, tokens['bob']!);
    const carol = new ClientV2(
      { name: 'carol', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await carol.connect(
      new TransportV2(new URL(t.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${tokens['carol']}` } },
      }),
    );
    const dave = await connectWs(t.url, tokens['dave']!);
    const carolCall = async (name: string, args: Record<string, unknown>): Promise<any> => {
      const result = (await carol.callTool({ name, arguments: args })) as any;
      return result.isError ? JSON.parse(result.content[0].text) : result.structuredContent;
    };
    const daveCall = async (op: string, params: Record<string, unknown>): Promise<any> => {
      const frame = await dave.call(op, params);
      return frame.type === 'error' ? { error: frame.error } : frame.result;
    };
    const writers: [string, string, (content: string) => Promise<any>][] = [
      ['bob', 'mcp', (content) => callTool(bob.client, 'write_file', { path: 'src/a.ts', content })],
      ['carol', 'mcp-2026', (content) => carolCall('write_file', { path: 'src/a.ts', content })],
      ['dave', 'ws', (content) => daveCall('write_file', { path: 'src/a.ts', content })],
    ];
    try {
      // Default: the write lands, with a warning naming the holder.
      for (const [agent, , write] of writers) {
        const result = await write(`// by ${agent}\n`);
        assert.equal(result.error, undefined, `${agent}: ${JSON.stringify(result)}`);
        assert.equal(result.warnings?.length, 1, `${agent}: ${JSON.stringify(result)}`);
        assert.match(result.warnings[0], /leased by 'alice'/);
        assert.equal(await readFile(join(t.workspace, 'src', 'a.ts'), 'utf8'), `// by ${agent}\n`);
      }
      // Exclusive leases: every transport refuses with the same stable code, and nothing lands.
      const policy = await t.api('/policies', {
        method: 'PUT',
        body: { id: 'exclusive', rules: [...DEFAULT_POLICY.rules, 'deny lease-conflict(src/**) @agent'] },
      });
      assert.equal(policy.status, 200, JSON.stringify(policy.body));
      for (const [agent, , write] of writers) {
        const refused = await write('clobbered\n');
        assert.equal(refused.error?.code, 'LEASE_CONFLICT', `${agent}: ${JSON.stringify(refused)}`);
        assert.equal(refused.error.holder, 'alice');
        assert.equal(refused.error.leaseId, lease.body.id);
      }
      assert.equal(await readFile(join(t.workspace, 'src', 'a.ts'), 'utf8'), '// by dave\n');

      const records = (await auditRecords('write_file')).filter((r) => r.params.path === 'src/a.ts');
      for (const [agent, transport] of writers) {
        const mine = records.filter((r) => r.agent === agent);
        assert.equal(mine.length, 2, `${agent}: ${JSON.stringify(mine)}`);
        assert.ok(
          mine.every((r) => r.transport === transport),
          `${agent} on ${transport}`,
        );
        const warned = mine.find((r) => r.outcome.ok)!;
        assert.equal(warned.decision, 'allow');
        assert.ok(
          warned.decisions.some((d: any) => d.action === 'lease-conflict' && d.decision === 'allow'),
          JSON.stringify(warned.decisions),
        );
        const refused = mine.find((r) => !r.outcome.ok)!;
        assert.equal(refused.decision, 'deny');
        assert.equal(refused.rule, 'deny lease-conflict(src/**) @agent');
        assert.equal(refused.outcome.code, 'LEASE_CONFLICT');
      }
      await assertAuditVerifies();
    } finally {
      dave.close();
      await carol.close();
      await bob.close();
    }
  });

  it('gives one of two agents racing for the same paths the lease, every time', async () => {
    for (let round = 0; round < 30; round++) {
      const body = { paths: [`race/${round}/**`], reason: `round ${round}` };
      const [a, b] = await Promise.all([acquire('alice', body), acquire('bob', body)]);
      const statuses = [a.status, b.status].sort();
      assert.deepEqual(statuses, [200, 409], `round ${round}: ${JSON.stringify([a.body, b.body])}`);
    }
    const listed = await t.api('/leases');
    assert.equal(listed.body.leases.length, 30);
    await assertAuditVerifies();
  });
});
