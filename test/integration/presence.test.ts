import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callTool, connectMcp } from '../helpers/clients';
import { ensureDocker, TEST_IMAGE } from '../helpers/docker';
import { destroy, replica, type Replica } from '../helpers/replica';
import { connectWs } from '../helpers/sockets';
import { eventually } from '../helpers/wait';
import { startTestServer, type TestServer } from '../helpers/server';

const RULES = [
  'allow read(**)',
  'allow write(**)',
  'deny write(.git/**)',
  'allow exec(*)',
  // bob may not read secret/, viewers may not read private/.
  'deny read(secret/**) @agent:bob',
  'deny read(private/**) @viewer',
  'deny write(**) @viewer',
];

describe('Presence: who works on what (list_presence on REST, MCP and WebSocket, filtered per reader)', function () {
  this.timeout(120_000);
  let t: TestServer;
  const tokens: Record<string, string> = {};

  const as = (agent: string) => ({ token: tokens[agent]! });

  beforeEach(async () => {
    t = await startTestServer(
      { collab: { flushDelayMs: 50, maxFlushDelayMs: 200, diskPollMs: 50 } },
      async (ws) => {
        await mkdir(join(ws, 'src'));
        await writeFile(join(ws, 'src', 'a.ts'), 'export const a = 1;\n');
        await mkdir(join(ws, 'secret'));
        await writeFile(join(ws, 'secret', 'plan.md'), 'the plan\n');
        await writeFile(join(ws, 'secret', 'keys.txt'), 'k\n');
        await mkdir(join(ws, 'private'));
        await writeFile(join(ws, 'private', 'diary.md'), 'dear diary\n');
      },
    );
    const policy = await t.api('/policies', { method: 'PUT', body: { id: 'presence', rules: RULES } });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));
    for (const [name, role] of [
      ['alice', 'agent'],
      ['bob', 'agent'],
      ['vic', 'viewer'],
    ] as const) {
      const minted = await t.api('/tokens', { method: 'POST', body: { name, role } });
      assert.equal(minted.status, 200, JSON.stringify(minted.body));
      tokens[name] = minted.body.token;
    }
  });
  afterEach(async () => {
    await t.close();
  });

  async function assertAuditVerifies(): Promise<void> {
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
  }

  const entryOf = (view: any, agent: string): any => view.agents.find((a: any) => a.agent === agent);

  it('shows open files, the last file, editing and leases; a reader never sees a file it may not read', async () => {
    const workspaceId = (await t.api('/capabilities', as('alice'))).body.workspaceId;
    assert.equal(
      (await t.api('/workspace/join', { method: 'POST', body: { workspaceId }, ...as('alice') })).status,
      200,
    );
    const docs = ['secret/plan.md', 'src/a.ts', 'private/diary.md'].map((room) =>
      replica(t.url, room, tokens['alice']!),
    );
    const [plan, source] = docs as [Replica, Replica, Replica];
    const bob = await connectMcp(t.server.mcpUrl, tokens['bob']!);
    const vic = await connectWs(t.url, tokens['vic']!);
    try {
      await eventually('alice to hold three documents', async () => {
        const view = (await t.api('/presence')).body;
        return entryOf(view, 'alice')?.openFiles.length === 3 ? true : undefined;
      });
      const leased = await t.api('/leases', {
        method: 'POST',
        body: { paths: ['src/**', 'secret/**'], ttlSeconds: 600, reason: 'refactoring' },
        ...as('alice'),
      });
      assert.equal(leased.status, 200, JSON.stringify(leased.body));
      const hidden = await t.api('/leases', {
        method: 'POST',
        body: { paths: ['secret/plan.md'], ttlSeconds: 600, reason: 'planning' },
        ...as('alice'),
      });
      assert.equal(hidden.status, 200, JSON.stringify(hidden.body));
      const write = await t.api('/files/secret/keys.txt', {
        method: 'PUT',
        body: { content: 'k2\n' },
        ...as('alice'),
      });
      assert.equal(write.status, 200, JSON.stringify(write.body));
      source.text.insert(0, '// touched\n');
      // The two documents are separate connections: keep typing in the plan so that it is the
      // latest edit whatever order the server got them in (and however slow the machine is).
      let step = 0;
      const typeInPlan = (): void => plan.text.insert(0, `step ${step++}\n`);

      // The owner sees everything: files, the last write, the edit, the lease and session ids.
      const owner = await eventually('the owner to see alice editing the plan', async () => {
        typeInPlan();
        const view = (await t.api('/presence')).body;
        const alice = entryOf(view, 'alice');
        return alice?.activity.state === 'editing' && alice.activity.path === 'secret/plan.md'
          ? view
          : undefined;
      });
      const aliceForOwner = entryOf(owner, 'alice');
      assert.equal(aliceForOwner.role, 'agent');
      assert.equal(aliceForOwner.joined, true);
      assert.deepEqual(
        aliceForOwner.openFiles.map((f: any) => f.path),
        ['private/diary.md', 'secret/plan.md', 'src/a.ts'],
      );
      assert.deepEqual(
        aliceForOwner.lastFile && [aliceForOwner.lastFile.path, aliceForOwner.lastFile.action],
        ['secret/keys.txt', 'write'],
      );
      assert.deepEqual(aliceForOwner.sessions.map((s: any) => s.transport).sort(), ['collab', 'rest']);
      assert.ok(aliceForOwner.sessions.every((s: any) => typeof s.sessionId === 'string'));
      assert.deepEqual(
        owner.leases.map((l: any) => [l.holder, l.paths, l.reason]),
        [
          ['alice', ['src/**', 'secret/**'], 'refactoring'],
          ['alice', ['secret/plan.md'], 'planning'],
        ],
      );

      // bob (MCP) may not read secret/: he sees the file he may read, the lease on src/** only,
      // that alice is editing (not where), and no session ids.
      const bobView = await eventually('bob to see alice editing', async () => {
        typeInPlan();
        const view = await callTool(bob.client, 'list_presence');
        return entryOf(view, 'alice')?.activity.state === 'editing' ? view : undefined;
      });
      const aliceForBob = entryOf(bobView, 'alice');
      assert.deepEqual(
        aliceForBob.openFiles.map((f: any) => f.path),
        ['private/diary.md', 'src/a.ts'],
      );
      assert.equal(aliceForBob.lastFile, null);
      assert.equal(aliceForBob.activity.state, 'editing');
      assert.equal(aliceForBob.activity.path, undefined);
      assert.deepEqual(
        bobView.leases.map((l: any) => l.paths),
        [['src/**']],
      );
      assert.ok(aliceForBob.sessions.every((s: any) => s.sessionId === undefined));
      assert.ok(!JSON.stringify(bobView).includes('secret'), JSON.stringify(bobView));
      assert.ok(entryOf(bobView, 'bob'), 'bob sees himself');
      // list_leases follows the same rule.
      const bobLeases = await callTool(bob.client, 'list_leases');
      assert.deepEqual(
        bobLeases.leases.map((l: any) => [l.holder, l.paths]),
        [['alice', ['src/**']]],
      );
      assert.equal((await t.api('/leases')).body.leases.length, 2, 'the owner lists both');

      // vic (viewer, WebSocket) may read secret/ but not private/.
      const vicReply = await vic.call('list_presence', {});
      assert.equal(vicReply.type, 'result', JSON.stringify(vicReply));
      const aliceForVic = entryOf(vicReply.result, 'alice');
      assert.deepEqual(
        aliceForVic.openFiles.map((f: any) => f.path),
        ['secret/plan.md', 'src/a.ts'],
      );
      assert.equal(aliceForVic.lastFile.path, 'secret/keys.txt');
      assert.ok(!JSON.stringify(vicReply.result).includes('private'), JSON.stringify(vicReply.result));

      // Once the edit window has passed, alice is idle again.
      await eventually('alice to go idle', async () => {
        const alice = entryOf((await t.api('/presence')).body, 'alice');
        return alice?.activity.state === 'idle' ? true : undefined;
      });

      // list_presence is a read-only tool, and every call is audited with its transport.
      const tools = await bob.client.listTools();
      const tool = tools.tools.find((x) => x.name === 'list_presence');
      assert.equal(tool?.annotations?.readOnlyHint, true);
      const records = (await t.api('/audit?op=list_presence&limit=100')).body.records as any[];
      assert.deepEqual([...new Set(records.map((r) => `${r.agent}/${r.transport}`))].sort(), [
        'bob/mcp',
        'owner/rest',
        'vic/ws',
      ]);
      // Presence only reads: the files are as alice left them, and bob read none of them.
      assert.equal(await readFile(join(t.workspace, 'secret', 'keys.txt'), 'utf8'), 'k2\n');
      assert.equal(await readFile(join(t.workspace, 'private', 'diary.md'), 'utf8'), 'dear diary\n');
      const bobReads = ((await t.api('/audit?agent=bob&limit=1000')).body.records as any[]).filter(
        (r) => !['list_presence', 'list_leases', 'init_session'].includes(r.op),
      );
      assert.deepEqual(
        bobReads.map((r) => r.op),
        [],
      );
      await assertAuditVerifies();
    } finally {
      destroy(...docs);
      vic.close();
      await bob.close();
    }
  });

  it('never shows a hidden file while an agent keeps touching files (30 racing rounds)', async () => {
    let shownSource = 0;
    for (let round = 0; round < 30; round++) {
      const hiddenPath = `secret/r${round}.txt`;
      const shownPath = `src/r${round}.txt`;
      const [, , view] = await Promise.all([
        t.api(`/files/${shownPath}`, { method: 'PUT', body: { content: `${round}\n` }, ...as('alice') }),
        t.api(`/files/${hiddenPath}`, { method: 'PUT', body: { content: `${round}\n` }, ...as('alice') }),
        t.api('/presence', as('bob')),
      ]);
      assert.equal(view.status, 200, JSON.stringify(view.body));
      assert.ok(
        !JSON.stringify(view.body).includes('secret'),
        `round ${round}: ${JSON.stringify(view.body)}`,
      );
      const after = (await t.api('/presence', as('bob'))).body;
      assert.ok(!JSON.stringify(after).includes('secret'), `round ${round}: ${JSON.stringify(after)}`);
      if (entryOf(after, 'alice')?.lastFile?.path === shownPath) shownSource++;
      // The owner sees the hidden file whenever it was the last one touched.
      const owner = entryOf((await t.api('/presence')).body, 'alice');
      assert.ok([hiddenPath, shownPath].includes(owner.lastFile.path), JSON.stringify(owner));
    }
    assert.ok(shownSource > 0, 'bob saw alice’s readable files at least once');
    await assertAuditVerifies();
  });

  it('tells listeners of changes and shows a running command (its arguments to the owner only)', async function () {
    ensureDocker();
    await t.close();
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await mkdir(join(ws, 'secret'));
      await writeFile(join(ws, 'secret', 'keys.txt'), 'k\n');
    });
    await t.api('/policies', { method: 'PUT', body: { id: 'presence', rules: RULES } });
    for (const name of ['alice', 'bob']) {
      tokens[name] = (await t.api('/tokens', { method: 'POST', body: { name, role: 'agent' } })).body.token;
    }
    let changes = 0;
    const stop = t.server.presence.onChange(() => changes++);
    try {
      const started = await t.api('/execute', {
        method: 'POST',
        body: { command: 'sleep 30 && cat secret/keys.txt', background: true },
        ...as('alice'),
      });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const executionId = started.body.executionId;
      const owner = await eventually('the owner to see the command', () => {
        const alice = entryOf(t.server.presence.view(), 'alice');
        return alice?.activity.state === 'running' ? alice : undefined;
      });
      assert.equal(owner.activity.executionId, executionId);
      assert.equal(owner.activity.command, 'sleep 30 && cat secret/keys.txt');
      assert.deepEqual(
        owner.running.map((r: any) => r.executionId),
        [executionId],
      );
      await eventually('a change event', () => (changes > 0 ? true : undefined));

      const bobView = (await t.api('/presence', as('bob'))).body;
      assert.equal(entryOf(bobView, 'alice').activity.command, 'sleep …');
      assert.equal(entryOf(bobView, 'alice').activity.executionId, executionId);
      assert.ok(!JSON.stringify(bobView).includes('secret'), JSON.stringify(bobView));

      const seen = changes;
      const cancelled = await t.api(`/executions/${executionId}/cancel`, { method: 'POST', ...as('alice') });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      await eventually('alice to be idle after the cancel', () => {
        const alice = entryOf(t.server.presence.view(), 'alice');
        return alice?.activity.state === 'idle' && alice.running.length === 0 ? true : undefined;
      });
      await eventually('a change event for the end', () => (changes > seen ? true : undefined));
      await assertAuditVerifies();
    } finally {
      stop();
    }
  });
});
