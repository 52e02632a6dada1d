import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordination } from '../../src/core/coordination';
import { Presence } from '../../src/core/presence';
import { AuditLog, type AuditRecord } from '../../src/core/audit';
import { ExecutionManager, type SandboxRuntime } from '../../src/core/execution';
import type { Logger } from '../../src/core/log';
import { OperationDispatcher, type CallContext } from '../../src/core/operations';
import { PolicyEngine, PolicyStore } from '../../src/core/policy';
import { ResourceManager } from '../../src/core/resources';
import { RateLimiter, SessionManager } from '../../src/core/session';
import { WorkspaceError } from '../../src/protocol/errors';
import { OWNER, type Principal } from '../../src/protocol/principal';

/** Logged lines, for the INTERNAL checks. */
interface Logged {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** No sandbox in these tests: the dispatcher's own logic is under test, not Docker. */
const NO_SANDBOX: SandboxRuntime = {
  acquire: () => Promise.reject(new WorkspaceError('SANDBOX_UNAVAILABLE', 'no sandbox in unit tests')),
} as unknown as SandboxRuntime;

async function assertCode(promise: Promise<unknown>, code: string): Promise<WorkspaceError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return err instanceof WorkspaceError && err.code === code;
  });
  return caught as WorkspaceError;
}

describe('dispatcher: OperationDispatcher', () => {
  let dir: string;
  let workspace: string;
  let sessions: SessionManager;
  let audit: AuditLog;
  let resources: ResourceManager;
  let policy: PolicyEngine;
  let dispatcher: OperationDispatcher;
  let logged: Logged[];
  let agent: Principal;
  let other: Principal;

  const setup = async (rules: string[], writeCapacity = 100): Promise<void> => {
    dir = await mkdtemp(join(tmpdir(), 'mcpw-dispatcher-'));
    workspace = join(dir, 'ws');
    await mkdir(join(workspace, 'src'), { recursive: true });
    await writeFile(join(workspace, 'src', 'a.txt'), 'hello\n');
    await writeFile(join(workspace, 'locked.txt'), 'locked\n');
    sessions = await SessionManager.create({ stateDir: join(dir, 'state') });
    audit = await AuditLog.open({ dir: join(dir, 'state', 'audit'), fsync: false });
    resources = await ResourceManager.create({ root: workspace });
    policy = new PolicyEngine({ id: 'test', rules });
    logged = [];
    const log: Logger = {
      info: (msg, fields) => logged.push({ level: 'info', msg, fields: fields ?? {} }),
      warn: (msg, fields) => logged.push({ level: 'warn', msg, fields: fields ?? {} }),
      error: (msg, fields) => logged.push({ level: 'error', msg, fields: fields ?? {} }),
    };
    const executions = new ExecutionManager(NO_SANDBOX);
    const coordination = new Coordination({ workspaceId: 'w', workspaceName: 'ws', sessions, policy });
    dispatcher = new OperationDispatcher({
      sessions,
      resources,
      policy,
      policyStore: new PolicyStore(join(dir, 'state')),
      audit,
      executions,
      coordination,
      presence: new Presence({ sessions, executions, coordination, policy, audit }),
      limiters: {
        write: new RateLimiter({ capacity: writeCapacity, refillPerSec: 0.001 }),
        exec: new RateLimiter({ capacity: 10, refillPerSec: 1 }),
      },
      log,
    });
    agent = { kind: 'agent', name: (await sessions.mintToken('alice', 'agent')).name, role: 'agent' };
    other = { kind: 'agent', name: (await sessions.mintToken('bob', 'agent')).name, role: 'agent' };
  };

  afterEach(async () => {
    sessions.close();
    await audit.close();
    await resources.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ctxFor = async (principal: Principal): Promise<CallContext> => ({
    principal,
    sessionId: await dispatcher.resolveSession(principal, 'test'),
    transport: 'test',
  });
  const lastRecord = async (op: string): Promise<AuditRecord> => {
    await audit.flush();
    const page = await audit.query({ op, limit: 1 });
    assert.equal(page.records.length, 1, `a ${op} record`);
    return page.records[0]!;
  };

  describe('sessions', () => {
    beforeEach(() => setup(['allow read(**)']));

    it('opens one default session for concurrent first requests of an agent', async () => {
      const ids = await Promise.all(
        Array.from({ length: 10 }, () => dispatcher.resolveSession(agent, 'rest')),
      );
      assert.equal(new Set(ids).size, 1);
      assert.equal(sessions.list().filter((s) => s.principal.name === 'alice').length, 1);
      // Another transport is another default session; a later call reuses the first.
      assert.notEqual(await dispatcher.resolveSession(agent, 'ws'), ids[0]);
      assert.equal(await dispatcher.resolveSession(agent, 'rest'), ids[0]);
    });

    it('refuses a named session that is not the caller’s own', async () => {
      const bobs = await dispatcher.resolveSession(other, 'rest');
      await assertCode(dispatcher.resolveSession(agent, 'rest', bobs), 'SESSION_NOT_FOUND');
      await assertCode(dispatcher.resolveSession(agent, 'rest', 'no-such-session'), 'SESSION_NOT_FOUND');
      assert.equal(await dispatcher.resolveSession(other, 'rest', bobs), bobs);
    });

    it('validates InitSession input the same way for every transport', async () => {
      await assertCode(
        dispatcher.initSession(agent, { tools: 'read_file' }, { transport: 'ws' }),
        'INVALID_ARGUMENT',
      );
      await assertCode(
        dispatcher.initSession(agent, { tools: [1] }, { transport: 'mcp' }),
        'INVALID_ARGUMENT',
      );
      const session = await dispatcher.initSession(
        agent,
        { tools: ['read_file', 'set_policy'] },
        { transport: 'rest' },
      );
      // Owner-only operations are never negotiated by an agent.
      assert.deepEqual(session.capabilities, ['read_file']);
      assert.deepEqual(dispatcher.sessionReply(session), {
        sessionId: session.sessionId,
        capabilities: ['read_file'],
        agent: 'alice',
        role: 'agent',
      });
    });
  });

  describe('run', () => {
    beforeEach(() => setup(['allow read(**)', 'allow write(src/**)', 'allow tool(*)'], 3));

    it('refuses an operation the session did not negotiate, and records the refusal as deny', async () => {
      const session = await dispatcher.initSession(agent, { tools: ['read_file'] }, { transport: 'test' });
      const ctx = { principal: agent, sessionId: session.sessionId, transport: 'test' };
      await assertCode(
        dispatcher.run('write_file', { path: 'src/a.txt', content: 'x' }, ctx),
        'CAPABILITY_NOT_NEGOTIATED',
      );
      const record = await lastRecord('write_file');
      assert.equal(record.decision, 'deny');
      assert.equal(record.outcome['code'], 'CAPABILITY_NOT_NEGOTIATED');
      assert.equal(await readFile(join(workspace, 'src', 'a.txt'), 'utf8'), 'hello\n');
    });

    it('refuses owner-only operations to agents and bad input with INVALID_ARGUMENT', async () => {
      const ctx = await ctxFor(agent);
      await assertCode(dispatcher.run('set_policy', { id: 'x', rules: [] }, ctx), 'OWNER_ONLY');
      const owner = await ctxFor(OWNER);
      await assertCode(dispatcher.run('read_file', { path: 42 }, owner), 'INVALID_ARGUMENT');
      await assertCode(
        dispatcher.run('read_file', { path: 'src/a.txt' }, { ...owner, sessionId: 'gone' }),
        'SESSION_NOT_FOUND',
      );
    });

    it('rate-limits writes per token, across its sessions', async () => {
      const a = await ctxFor(agent);
      const b = {
        ...a,
        sessionId: (await dispatcher.initSession(agent, {}, { transport: 'test' })).sessionId,
      };
      await dispatcher.run('write_file', { path: 'src/1.txt', content: '1' }, a);
      await dispatcher.run('write_file', { path: 'src/2.txt', content: '2' }, b);
      await dispatcher.run('write_file', { path: 'src/3.txt', content: '3' }, a);
      const refused = await assertCode(
        dispatcher.run('write_file', { path: 'src/4.txt', content: '4' }, b),
        'RATE_LIMITED',
      );
      assert.ok(Number(refused.details?.['retryAfterMs']) > 0);
    });

    it('lists every decision of an edit (read, then write) in a version 2 record', async () => {
      const ctx = await ctxFor(agent);
      await dispatcher.run(
        'edit_file',
        { path: 'src/a.txt', edits: [{ oldText: 'hello', newText: 'hi' }] },
        ctx,
      );
      const record = await lastRecord('edit_file');
      assert.equal(record.v, 2);
      assert.deepEqual(
        record.decisions?.map((d) => [d.action, d.target, d.decision, d.rule]),
        [
          ['read', 'src/a.txt', 'allow', 'allow read(**)'],
          ['write', 'src/a.txt', 'allow', 'allow write(src/**)'],
        ],
      );
      assert.equal(record.decision, 'allow');
      assert.equal(record.rule, 'allow write(src/**)');
    });

    it('records the refusing decision after the allowed ones, and leaves the file alone', async () => {
      const ctx = await ctxFor(agent);
      await assertCode(
        dispatcher.run(
          'edit_file',
          { path: 'locked.txt', edits: [{ oldText: 'locked', newText: 'open' }] },
          ctx,
        ),
        'POLICY_DENIED',
      );
      const record = await lastRecord('edit_file');
      assert.deepEqual(
        record.decisions?.map((d) => [d.action, d.decision]),
        [
          ['read', 'allow'],
          ['write', 'deny'],
        ],
      );
      assert.equal(record.decision, 'deny');
      assert.equal(record.rule, null);
      assert.equal(await readFile(join(workspace, 'locked.txt'), 'utf8'), 'locked\n');
    });

    it('lists both ends of a move', async () => {
      const ctx = await ctxFor(agent);
      await dispatcher.run('move_file', { from: 'src/a.txt', to: 'src/b.txt' }, ctx);
      const record = await lastRecord('move_file');
      assert.deepEqual(
        record.decisions?.map((d) => [d.action, d.target, d.decision]),
        [
          ['write', 'src/a.txt', 'allow'],
          ['write', 'src/b.txt', 'allow'],
        ],
      );
    });

    it('answers an unexpected failure with INTERNAL and a correlation id the server log holds with the stack', async () => {
      const ctx = await ctxFor(agent);
      resources.readFile = () => Promise.reject(new TypeError('disk on fire'));
      const error = await assertCode(dispatcher.run('read_file', { path: 'src/a.txt' }, ctx), 'INTERNAL');
      const id = error.details?.['correlationId'];
      assert.match(String(id), /^[0-9a-f-]{36}$/);
      assert.match(error.message, new RegExp(String(id)));
      assert.doesNotMatch(error.message, /disk on fire/, 'the cause stays in the server log');
      const line = logged.find((l) => l.fields['correlationId'] === id);
      assert.ok(line, 'logged under the correlation id');
      assert.equal(line.level, 'error');
      assert.equal(line.fields['sessionId'], ctx.sessionId);
      assert.equal(line.fields['op'], 'read_file');
      assert.match(String(line.fields['stack']), /TypeError: disk on fire/);
      const record = await lastRecord('read_file');
      assert.equal(record.outcome['code'], 'INTERNAL');
    });
  });

  describe('audit visibility', () => {
    beforeEach(() => setup(['allow read(**)', 'allow tool(*)']));

    it('feeds an agent only its own records, and ends the feed with its session', async () => {
      const alice = await ctxFor(agent);
      const bob = await ctxFor(other);
      const seen: AuditRecord[] = [];
      let ended = 0;
      const close = await dispatcher.openAuditFeed(alice, {
        record: (r) => seen.push(r),
        ended: () => ended++,
      });
      await dispatcher.run('read_file', { path: 'src/a.txt' }, bob);
      await dispatcher.run('read_file', { path: 'src/a.txt' }, alice);
      await audit.flush();
      assert.ok(seen.length >= 1);
      assert.ok(
        seen.every((r) => r.agent === 'alice'),
        'no record of another agent',
      );
      sessions.end(alice.sessionId, 'revoked');
      assert.equal(ended, 1);
      close();
    });

    it('lets an agent query only its own records, whatever agent filter it asks for', async () => {
      const alice = await ctxFor(agent);
      const bob = await ctxFor(other);
      await dispatcher.run('read_file', { path: 'src/a.txt' }, bob);
      const page = await dispatcher.run('query_audit', { agent: 'bob', limit: 100 }, alice);
      assert.ok(page.records.every((r) => r.agent === 'alice'));
      const owner = await ctxFor(OWNER);
      const all = await dispatcher.run('query_audit', { agent: 'bob', limit: 100 }, owner);
      assert.ok(all.records.some((r) => r.agent === 'bob'));
    });
  });
});
