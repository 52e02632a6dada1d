import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RateLimiter,
  SessionManager,
  type SessionEndReason,
  type SessionInfo,
  type SessionManagerOptions,
} from '../../src/core/session';
import { WorkspaceError } from '../../src/protocol/errors';
import { OWNER } from '../../src/protocol/principal';

const posixModes = process.platform !== 'win32';

/** Asserts that `promise` rejects with a WorkspaceError carrying `code`. */
async function assertRejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, `expected WorkspaceError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Permission bits of `path`. */
async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('session: SessionManager', () => {
  let dir: string;
  let stateDir: string;
  let clock: number;
  const managers: SessionManager[] = [];

  /** Creates a manager on the shared state dir with a fake clock; closed after each test. */
  async function create(options: Partial<SessionManagerOptions> = {}): Promise<SessionManager> {
    const manager = await SessionManager.create({ stateDir, now: () => clock, ...options });
    managers.push(manager);
    return manager;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpw-session-'));
    stateDir = join(dir, 'state', 'nested');
    clock = 1_000_000;
  });
  afterEach(async () => {
    for (const manager of managers.splice(0)) manager.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('owner token', () => {
    it('is generated, persisted with mode 0600 and authenticates as the owner', async () => {
      const sessions = await create();
      assert.match(sessions.ownerToken, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(sessions.ownerTokenFile, join(stateDir, 'owner.token'));
      assert.equal(await readFile(sessions.ownerTokenFile, 'utf8'), sessions.ownerToken);
      assert.equal(sessions.authenticate(sessions.ownerToken), OWNER);
      if (posixModes) {
        assert.equal(await modeOf(sessions.ownerTokenFile), 0o600);
        assert.equal(await modeOf(stateDir), 0o700);
      }
    });

    it('is reused on the next start', async () => {
      const first = await create();
      const second = await create();
      assert.equal(second.ownerToken, first.ownerToken);
    });

    it('is regenerated when the stored one is malformed', async () => {
      const first = await create();
      await writeFile(first.ownerTokenFile, 'short');
      const second = await create();
      assert.notEqual(second.ownerToken, 'short');
      assert.match(second.ownerToken, /^[A-Za-z0-9_-]{43}$/);
    });

    it('can be overridden (e.g. from MCP_WORKSPACE_TOKEN) and is then persisted', async () => {
      await create();
      const fixed = 'my-fixed-owner-token-0123456789';
      const sessions = await create({ ownerToken: fixed });
      assert.equal(sessions.ownerToken, fixed);
      assert.equal(await readFile(sessions.ownerTokenFile, 'utf8'), fixed);
      assert.deepEqual(sessions.authenticate(fixed), OWNER);
      const again = await create();
      assert.equal(again.ownerToken, fixed);
    });

    it('rejects an override shorter than 16 characters', async () => {
      await assertRejects(create({ ownerToken: 'too-short' }), 'INVALID_ARGUMENT', /16/);
      await assertRejects(create({ ownerToken: 'has spaces in the token' }), 'INVALID_ARGUMENT');
    });

    it('tightens loose permissions on an existing token file', async function () {
      if (!posixModes) this.skip();
      const first = await create();
      await chmod(first.ownerTokenFile, 0o644);
      await create();
      assert.equal(await modeOf(first.ownerTokenFile), 0o600);
    });
  });

  describe('agent tokens', () => {
    it('mints tokens that authenticate as the named agent or viewer', async () => {
      const sessions = await create();
      const minted = await sessions.mintToken('builder', 'agent');
      assert.equal(minted.name, 'builder');
      assert.equal(minted.role, 'agent');
      assert.match(minted.token, /^mcpw_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(sessions.authenticate(minted.token), {
        kind: 'agent',
        name: 'builder',
        role: 'agent',
      });
      const reader = await sessions.mintToken('reader.1', 'viewer');
      assert.deepEqual(sessions.authenticate(reader.token), {
        kind: 'agent',
        name: 'reader.1',
        role: 'viewer',
      });
      assert.notEqual(reader.token, minted.token);
    });

    it('rejects unknown, empty and missing tokens', async () => {
      const sessions = await create();
      const { token } = await sessions.mintToken('a', 'agent');
      assert.equal(sessions.authenticate(undefined), null);
      assert.equal(sessions.authenticate(''), null);
      assert.equal(sessions.authenticate(token + 'x'), null);
      assert.equal(sessions.authenticate(sessions.ownerToken.slice(1)), null);
      assert.equal(sessions.authenticate('x'.repeat(5000)), null);
    });

    it('persists only hashes, with mode 0600, and reloads them', async () => {
      const sessions = await create();
      clock = Date.UTC(2025, 0, 2, 3, 4, 5);
      const { token } = await sessions.mintToken('builder', 'agent');
      const file = join(stateDir, 'tokens.json');
      const text = await readFile(file, 'utf8');
      assert.ok(!text.includes(token), 'tokens.json must not contain the token');
      assert.ok(!text.includes(token.slice(5)), 'tokens.json must not contain the token body');
      assert.deepEqual(JSON.parse(text), [
        {
          name: 'builder',
          role: 'agent',
          hash: createHash('sha256').update(token).digest('hex'),
          createdAt: '2025-01-02T03:04:05.000Z',
        },
      ]);
      if (posixModes) assert.equal(await modeOf(file), 0o600);

      const reloaded = await create();
      assert.deepEqual(reloaded.authenticate(token), { kind: 'agent', name: 'builder', role: 'agent' });
      assert.deepEqual(reloaded.listTokens(), [
        { name: 'builder', role: 'agent', createdAt: '2025-01-02T03:04:05.000Z' },
      ]);
    });

    it('persists concurrent mints without losing any', async () => {
      const sessions = await create();
      await Promise.all(['a', 'b', 'c', 'd'].map((name) => sessions.mintToken(name, 'agent')));
      const names = (JSON.parse(await readFile(join(stateDir, 'tokens.json'), 'utf8')) as { name: string }[])
        .map((t) => t.name)
        .sort();
      assert.deepEqual(names, ['a', 'b', 'c', 'd']);
    });

    it('rejects invalid, reserved and duplicate names and bad roles', async () => {
      const sessions = await create();
      for (const name of ['', '-lead', '.hidden', 'has space', 'a/b', 'x'.repeat(65), 'ünï']) {
        await assertRejects(sessions.mintToken(name, 'agent'), 'INVALID_ARGUMENT', /Invalid token name/);
      }
      await assertRejects(sessions.mintToken('owner', 'agent'), 'INVALID_ARGUMENT', /reserved/);
      await assertRejects(sessions.mintToken('Owner', 'viewer'), 'INVALID_ARGUMENT', /reserved/);
      await assertRejects(
        sessions.mintToken('ok', 'owner' as unknown as 'agent'),
        'INVALID_ARGUMENT',
        /Invalid role/,
      );
      await sessions.mintToken('x'.repeat(64), 'agent');
      await sessions.mintToken('bob', 'agent');
      await assertRejects(sessions.mintToken('bob', 'viewer'), 'ALREADY_EXISTS', /bob/);
      assert.deepEqual(
        sessions.listTokens().map((t) => t.name),
        ['x'.repeat(64), 'bob'],
      );
    });

    it('reports a corrupt tokens.json', async () => {
      await create();
      await writeFile(join(stateDir, 'tokens.json'), '[{"name": "bob"}]');
      await assertRejects(create(), 'INTERNAL', /tokens\.json is corrupt/);
      await writeFile(join(stateDir, 'tokens.json'), 'not json');
      await assertRejects(create(), 'INTERNAL', /tokens\.json is corrupt/);
    });
  });

  describe('revocation', () => {
    it('stops the token at once, ends its sessions and persists the removal', async () => {
      const sessions = await create();
      const bob = await sessions.mintToken('bob', 'agent');
      const alice = await sessions.mintToken('alice', 'agent');
      const bobPrincipal = sessions.authenticate(bob.token)!;
      const alicePrincipal = sessions.authenticate(alice.token)!;
      const s1 = sessions.initSession(bobPrincipal, undefined, ['read'], { transport: 'mcp' });
      const s2 = sessions.initSession(bobPrincipal, undefined, ['read'], { transport: 'rest' });
      const s3 = sessions.initSession(alicePrincipal, undefined, ['read'], { transport: 'mcp' });
      const ended: Array<[string, SessionEndReason]> = [];
      sessions.onSessionEnded((s, reason) => ended.push([s.sessionId, reason]));

      const revoking = sessions.revokeToken('bob');
      assert.equal(sessions.authenticate(bob.token), null, 'must stop authenticating synchronously');
      assert.deepEqual(ended.map(([id]) => id).sort(), [s1.sessionId, s2.sessionId].sort());
      await revoking;

      assert.ok(ended.every(([, reason]) => reason === 'revoked'));
      assert.equal(sessions.get(s1.sessionId), undefined);
      assert.equal(sessions.get(s2.sessionId), undefined);
      assert.ok(sessions.get(s3.sessionId));
      assert.deepEqual(
        sessions.listTokens().map((t) => t.name),
        ['alice'],
      );
      const reloaded = await create();
      assert.equal(reloaded.authenticate(bob.token), null);
      assert.deepEqual(reloaded.authenticate(alice.token), alicePrincipal);
      assert.throws(
        () => sessions.initSession(bobPrincipal, undefined, [], { transport: 'mcp' }),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'UNAUTHORIZED',
      );
    });

    it('reports an unknown name as NOT_FOUND', async () => {
      const sessions = await create();
      await assertRejects(sessions.revokeToken('ghost'), 'NOT_FOUND', /ghost/);
    });

    it('allows the name to be minted again with a new token', async () => {
      const sessions = await create();
      const first = await sessions.mintToken('bob', 'agent');
      await sessions.revokeToken('bob');
      const second = await sessions.mintToken('bob', 'viewer');
      assert.equal(sessions.authenticate(first.token), null);
      assert.equal(sessions.authenticate(second.token)?.role, 'viewer');
    });
  });

  describe('sessions', () => {
    it('intersects requested capabilities with offered ones in offered order', async () => {
      const sessions = await create();
      const s = sessions.initSession(OWNER, ['write', 'bogus', 'read'], ['read', 'list', 'write'], {
        transport: 'mcp',
        clientName: 'claude',
      });
      assert.deepEqual(s.capabilities, ['read', 'write']);
      assert.equal(s.clientName, 'claude');
      assert.equal(s.transport, 'mcp');
      assert.equal(s.principal, OWNER);
      assert.equal(s.createdAt, clock);
      assert.equal(s.lastActivityAt, clock);
      assert.match(s.sessionId, /^[0-9a-f-]{36}$/);
    });

    it('grants every offered capability when none are requested, and none for an empty request', async () => {
      const sessions = await create();
      const all = sessions.initSession(OWNER, undefined, ['read', 'write'], { transport: 'rest' });
      assert.deepEqual(all.capabilities, ['read', 'write']);
      assert.equal('clientName' in all, false);
      const none = sessions.initSession(OWNER, [], ['read', 'write'], { transport: 'rest' });
      assert.deepEqual(none.capabilities, []);
    });

    it('uses a caller-supplied session id and refuses to reuse a live one', async () => {
      const sessions = await create();
      const s = sessions.initSession(OWNER, undefined, [], { transport: 'mcp', sessionId: 'fixed-id' });
      assert.equal(s.sessionId, 'fixed-id');
      assert.throws(
        () => sessions.initSession(OWNER, undefined, [], { transport: 'mcp', sessionId: 'fixed-id' }),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'ALREADY_EXISTS',
      );
    });

    it('returns copies, lists live sessions and forgets ended ones', async () => {
      const sessions = await create();
      const a = sessions.initSession(OWNER, undefined, ['read'], { transport: 'mcp' });
      const b = sessions.initSession(OWNER, undefined, ['read'], { transport: 'rest' });
      sessions.get(a.sessionId)!.capabilities.push('write');
      assert.deepEqual(sessions.get(a.sessionId)!.capabilities, ['read']);
      assert.deepEqual(
        sessions.list().map((s) => s.sessionId),
        [a.sessionId, b.sessionId],
      );
      const ended: SessionEndReason[] = [];
      sessions.onSessionEnded((_s, reason) => ended.push(reason));
      sessions.end(a.sessionId);
      sessions.end(a.sessionId);
      sessions.end('unknown');
      assert.deepEqual(ended, ['closed']);
      assert.equal(sessions.get(a.sessionId), undefined);
      assert.deepEqual(
        sessions.list().map((s) => s.sessionId),
        [b.sessionId],
      );
    });

    it('ends idle sessions on sweep using the injected clock', async () => {
      const sessions = await create({ idleTimeoutMs: 10_000 });
      const idle = sessions.initSession(OWNER, undefined, [], { transport: 'mcp' });
      const active = sessions.initSession(OWNER, undefined, [], { transport: 'mcp' });
      const ended: Array<[SessionInfo, SessionEndReason]> = [];
      const off = sessions.onSessionEnded((s, reason) => ended.push([s, reason]));

      clock += 6_000;
      sessions.touch(active.sessionId);
      assert.equal(sessions.get(active.sessionId)!.lastActivityAt, clock);
      clock += 4_000;
      sessions.sweep();
      assert.equal(ended.length, 0, 'exactly the timeout is not yet idle');

      clock += 1;
      sessions.sweep();
      assert.deepEqual(
        ended.map(([s, reason]) => [s.sessionId, reason]),
        [[idle.sessionId, 'idle']],
      );
      assert.equal(sessions.get(idle.sessionId), undefined);
      assert.ok(sessions.get(active.sessionId));

      off();
      clock += 10_000;
      sessions.sweep();
      assert.equal(ended.length, 1, 'unsubscribed listener is not called');
      assert.equal(sessions.get(active.sessionId), undefined);
    });

    it('keeps notifying other listeners when one throws', async () => {
      const sessions = await create();
      const s = sessions.initSession(OWNER, undefined, [], { transport: 'mcp' });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      let called = false;
      sessions.onSessionEnded(() => {
        throw new Error('boom');
      });
      sessions.onSessionEnded(() => {
        called = true;
      });
      sessions.end(s.sessionId);
      assert.ok(called);
      await new Promise((resolve) => setImmediate(resolve));
      process.off('warning', onWarning);
      assert.ok(warnings.some((w) => w.includes('boom')));
    });

    it('rejects a non-positive idle timeout', async () => {
      await assertRejects(create({ idleTimeoutMs: 0 }), 'INVALID_ARGUMENT', /idleTimeoutMs/);
    });
  });

  describe('caps per agent token', () => {
    const agent = (name: string) => ({ kind: 'agent' as const, name, role: 'agent' as const });

    it('refuses a session beyond the cap with SESSION_LIMIT while every session is recent', async () => {
      const sessions = await create({ maxSessionsPerAgent: 3, reapIdleAfterMs: 60_000 });
      await sessions.mintToken('a', 'agent');
      await sessions.mintToken('b', 'agent');
      for (let i = 0; i < 3; i++) sessions.initSession(agent('a'), undefined, [], { transport: 'mcp' });
      assert.throws(
        () => sessions.initSession(agent('a'), undefined, [], { transport: 'rest' }),
        (err: unknown) =>
          err instanceof WorkspaceError &&
          err.code === 'SESSION_LIMIT' &&
          /limit is 3/.test(err.message) &&
          err.details?.['retryAfterMs'] === 60_000,
      );
      // Other tokens and the owner are not limited by this token's sessions.
      sessions.initSession(agent('b'), undefined, [], { transport: 'mcp' });
      for (let i = 0; i < 5; i++) sessions.initSession(OWNER, undefined, [], { transport: 'mcp' });
      assert.equal(sessions.list().filter((s) => s.principal.name === 'a').length, 3);
    });

    it('ends the least recently used idle session to admit a new one, never a held one', async () => {
      const sessions = await create({ maxSessionsPerAgent: 3, reapIdleAfterMs: 1_000 });
      await sessions.mintToken('a', 'agent');
      const ended: Array<[string, SessionEndReason]> = [];
      sessions.onSessionEnded((s, reason) => ended.push([s.sessionId, reason]));
      const [first, second, third] = [0, 1, 2].map(() => {
        clock += 10;
        return sessions.initSession(agent('a'), undefined, [], { transport: 'mcp' });
      });
      clock += 2_000;
      const release = sessions.hold(first!.sessionId);
      sessions.touch(third!.sessionId);
      const fourth = sessions.initSession(agent('a'), undefined, [], { transport: 'mcp' });
      assert.deepEqual(ended, [[second!.sessionId, 'limit']], 'the held one and the touched one stay');
      // first is held and third and fourth are recent: nothing is idle now.
      assert.throws(
        () => sessions.initSession(agent('a'), undefined, [], { transport: 'mcp' }),
        /SESSION_LIMIT|none is idle/,
      );
      release();
      clock += 1_000;
      sessions.touch(third!.sessionId);
      sessions.touch(fourth.sessionId);
      sessions.initSession(agent('a'), undefined, [], { transport: 'mcp' });
      assert.deepEqual(ended.at(-1), [first!.sessionId, 'limit'], 'released and quiet: reapable');
    });

    it('keeps held sessions through the idle sweep and counts nested holds', async () => {
      const sessions = await create({ idleTimeoutMs: 1_000 });
      const s = sessions.initSession(OWNER, undefined, [], { transport: 'mcp' });
      const a = sessions.hold(s.sessionId);
      const b = sessions.hold(s.sessionId);
      clock += 5_000;
      sessions.sweep();
      assert.ok(sessions.get(s.sessionId), 'held: not swept');
      a();
      a();
      sessions.sweep();
      assert.ok(sessions.get(s.sessionId), 'a double release does not drop the other hold');
      b();
      assert.equal(sessions.get(s.sessionId)!.lastActivityAt, clock, 'a release counts as activity');
      clock += 1_001;
      sessions.sweep();
      assert.equal(sessions.get(s.sessionId), undefined);
      assert.doesNotThrow(() => sessions.hold('unknown')());
    });

    it('rejects invalid caps', async () => {
      await assertRejects(create({ maxSessionsPerAgent: 0 }), 'INVALID_ARGUMENT', /maxSessionsPerAgent/);
      await assertRejects(create({ maxSessionsPerAgent: 1.5 }), 'INVALID_ARGUMENT', /maxSessionsPerAgent/);
      await assertRejects(create({ reapIdleAfterMs: -1 }), 'INVALID_ARGUMENT', /reapIdleAfterMs/);
    });
  });
});

describe('session: RateLimiter', () => {
  let clock: number;
  const limiter = (capacity: number, refillPerSec: number) =>
    new RateLimiter({ capacity, refillPerSec, now: () => clock });

  beforeEach(() => {
    clock = 5_000;
  });

  it('starts full and drains one token per take', () => {
    const rl = limiter(3, 1);
    assert.deepEqual(rl.take('k'), { ok: true, retryAfterMs: 0 });
    assert.deepEqual(rl.take('k'), { ok: true, retryAfterMs: 0 });
    assert.deepEqual(rl.take('k'), { ok: true, retryAfterMs: 0 });
    assert.deepEqual(rl.take('k'), { ok: false, retryAfterMs: 1000 });
  });

  it('refills continuously up to capacity and computes the wait', () => {
    const rl = limiter(2, 4);
    rl.take('k', 2);
    clock += 100;
    assert.deepEqual(rl.take('k'), { ok: false, retryAfterMs: 150 });
    clock += 150;
    assert.deepEqual(rl.take('k'), { ok: true, retryAfterMs: 0 });
    clock += 60_000;
    assert.equal(rl.take('k', 2).ok, true);
    assert.deepEqual(rl.take('k', 1), { ok: false, retryAfterMs: 250 });
  });

  it('rounds the wait up to whole milliseconds', () => {
    const rl = limiter(1, 3);
    rl.take('k');
    assert.deepEqual(rl.take('k'), { ok: false, retryAfterMs: 334 });
  });

  it('does not deduct on a refused take', () => {
    const rl = limiter(5, 1);
    rl.take('k', 4);
    assert.deepEqual(rl.take('k', 3), { ok: false, retryAfterMs: 2000 });
    assert.equal(rl.take('k', 1).ok, true);
  });

  it('keeps separate buckets per key and forgets them', () => {
    const rl = limiter(1, 1);
    assert.equal(rl.take('a').ok, true);
    assert.equal(rl.take('a').ok, false);
    assert.equal(rl.take('b').ok, true);
    rl.forget('a');
    assert.equal(rl.take('a').ok, true);
  });

  it('rejects invalid options and costs', () => {
    assert.throws(() => limiter(0, 1), WorkspaceError);
    assert.throws(() => limiter(1, 0), WorkspaceError);
    const rl = limiter(2, 1);
    assert.throws(() => rl.take('k', 3), /between 0 and the bucket capacity/);
    assert.throws(() => rl.take('k', -1), WorkspaceError);
    assert.deepEqual(rl.take('k', 0), { ok: true, retryAfterMs: 0 });
  });
});
