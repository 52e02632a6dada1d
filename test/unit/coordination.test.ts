import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordination } from '../../src/core/coordination';
import { compileLeaseGlob, covers, overlaps, touches } from '../../src/core/coordination/globs';
import { DEFAULT_POLICY, PolicyEngine } from '../../src/core/policy';
import { SessionManager } from '../../src/core/session';
import type { Principal } from '../../src/protocol/principal';

describe('coordination: lease globs', () => {
  const g = compileLeaseGlob;

  it('covers a path, or anything inside a leased folder', () => {
    assert.ok(covers(g('src/**'), 'src/a.ts'));
    assert.ok(covers(g('src/**'), 'src'));
    assert.ok(covers(g('src'), 'src/deep/a.ts'), 'a leased folder covers its contents');
    assert.ok(covers(g('src/*'), 'src/dir/a.ts'));
    assert.ok(!covers(g('src/*.ts'), 'src/a.md'));
    assert.ok(!covers(g('src/**'), 'srcx/a.ts'));
    assert.ok(covers(g('**/*.ts'), 'a/b/c.ts'));
  });

  it('touches the folders above a lease (deleting or moving them changes it)', () => {
    assert.ok(touches(g('src/api/**'), 'src'));
    assert.ok(touches(g('src/api/**'), ''), 'the workspace root is above everything');
    assert.ok(!touches(g('src/api/**'), 'docs'));
    assert.ok(!touches(g('src/api/**'), 'src/other.ts'));
  });

  it('judges overlap exactly for plain paths and conservatively for two globs', () => {
    assert.ok(overlaps(g('src/**'), g('src/a.ts')));
    assert.ok(overlaps(g('src'), g('src/a.ts')));
    assert.ok(overlaps(g('src/a.ts'), g('src/a.ts')));
    assert.ok(!overlaps(g('src/a.ts'), g('src/b.ts')));
    assert.ok(!overlaps(g('src/*.ts'), g('src/b.md')));
    assert.ok(overlaps(g('src/**/*.ts'), g('src/deep')), 'a deep glob may match inside a leased folder');
    assert.ok(!overlaps(g('docs/**'), g('src/**')));
    assert.ok(overlaps(g('**/*.ts'), g('src/a/**')));
  });

  it('refuses globs that are empty, absolute or leave the workspace', () => {
    for (const bad of ['', '.', '/etc/**', '../x/**', 'a/../../b', 'src/{a']) {
      assert.throws(
        () => g(bad),
        (err: { code?: string }) => err.code === 'INVALID_PATTERN',
        bad,
      );
    }
  });
});

describe('coordination: leases and messages', () => {
  let dir: string;
  let sessions: SessionManager;
  let now: number;
  let coordination: Coordination;
  const alice: Principal = { kind: 'agent', name: 'alice', role: 'agent' };
  const bob: Principal = { kind: 'agent', name: 'bob', role: 'agent' };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpw-coord-'));
    sessions = await SessionManager.create({ stateDir: dir });
    await sessions.mintToken('alice', 'agent');
    await sessions.mintToken('bob', 'agent');
    now = 1_000_000;
    coordination = new Coordination({
      workspaceId: 'w1',
      workspaceName: 'demo',
      sessions,
      policy: new PolicyEngine({
        id: 'p',
        rules: [...DEFAULT_POLICY.rules, 'deny lease-conflict(src/**) @agent:bob'],
      }),
      leaseIdleGraceMs: 60_000,
      now: () => now,
    });
  });
  afterEach(async () => {
    coordination.close();
    sessions.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('marks a holder idle only after the grace period without activity, then allows takeover', () => {
    const { lease } = coordination.acquire(alice, { paths: ['src/**'], ttlMs: 3_600_000, reason: 'r' });
    now += 59_000;
    assert.equal(coordination.isIdle(lease), false);
    assert.throws(
      () => coordination.acquire(bob, { paths: ['src/a.ts'], ttlMs: 1000, reason: 'x', takeOver: true }),
      (err: { code?: string }) => err.code === 'LEASE_CONFLICT',
    );
    now += 1_000;
    assert.equal(coordination.isIdle(lease), true);
    const events: string[] = [];
    coordination.onLeaseEvent((e) => events.push(`${e.kind}:${e.lease.holder}:${e.by}`));
    const taken = coordination.acquire(bob, {
      paths: ['src/a.ts'],
      ttlMs: 1000,
      reason: 'x',
      takeOver: true,
    });
    assert.deepEqual(
      taken.takenOver.map((l) => l.id),
      [lease.id],
    );
    assert.deepEqual(events, ['lease_taken_over:alice:bob']);
  });

  it('expires leases lazily at their TTL and reports each expiry once', () => {
    const events: string[] = [];
    coordination.onLeaseEvent((e) => events.push(e.kind));
    coordination.acquire(alice, { paths: ['docs/**'], ttlMs: 1000, reason: 'r' });
    now += 999;
    assert.equal(coordination.list().length, 1);
    now += 1;
    assert.equal(coordination.list().length, 0);
    assert.equal(coordination.list().length, 0);
    assert.deepEqual(events, ['lease_expired']);
  });

  it('blocks only the principals an exclusive rule names, and never the holder', () => {
    const { lease } = coordination.acquire(alice, { paths: ['src/**'], ttlMs: 60_000, reason: 'r' });
    assert.equal(coordination.leaseBlocks(bob, 'src/a.ts')?.id, lease.id);
    assert.equal(coordination.leaseBlocks(alice, 'src/a.ts'), null);
    assert.equal(coordination.leaseBlocks({ kind: 'agent', name: 'carol', role: 'agent' }, 'src/a.ts'), null);
    assert.equal(coordination.leaseBlocks(bob, 'docs/a.md'), null);
  });

  it('delivers to every recipient even when one of them fails', () => {
    const session = sessions.initSession(bob, undefined, ['join_workspace'], { transport: 'ws' });
    coordination.join(session, 'w1');
    coordination.attachDeliveries(session.sessionId, () => {
      throw new Error('socket gone');
    });
    const human: string[] = [];
    coordination.onMessage(() => {
      throw new Error('window closed');
    });
    coordination.onMessage((m) => human.push(m.message));
    const sent = coordination.broadcast(alice, 'other', 'hello');
    assert.equal(sent.delivered, 2);
    assert.deepEqual(human, ['hello']);
    assert.deepEqual(
      coordination.inbox(bob, 'bob').map((m) => m.message),
      ['hello'],
    );
  });

  it('keeps a bounded inbox per agent and pages it after a message id', () => {
    const session = sessions.initSession(bob, undefined, ['join_workspace'], { transport: 'rest' });
    coordination.join(session, 'w1');
    const ids: string[] = [];
    for (let i = 0; i < 105; i++) ids.push(coordination.broadcast(alice, 'other', `m${i}`).id);
    const inbox = coordination.inbox(bob, 'bob');
    assert.equal(inbox.length, 100);
    assert.equal(inbox[0]!.message, 'm5');
    assert.deepEqual(
      coordination.inbox(bob, 'bob', ids[103]).map((m) => m.message),
      ['m104'],
    );
    assert.throws(
      () => coordination.inbox(alice, 'bob'),
      (err: { code?: string }) => err.code === 'OWNER_ONLY',
    );
  });
});
