/**
 * Owner actions taken from the VS Code UI go through the operation runner like every other
 * operation (issue 9, class 11): the extension's runOwnerOperation against a real server, a real
 * MCP SDK client as the agent and a real Docker engine for the execution it cancels. Each action
 * lands in the audit log with the owner as actor and `vscode` as transport; the server's start and
 * stop are recorded too; the log still verifies after the server stopped.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_FILE, verifyAuditLog, type AuditRecord } from '../../src/core/audit';
import { runOwnerOperation, VSCODE_TRANSPORT } from '../../src/extension/ownerActions';
import { callTool, connectMcp } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

describe('owner actions from the VS Code UI are audited through the runner', function () {
  this.timeout(120_000);
  let t: TestServer;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  beforeEach(async () => {
    t = await startTestServer({
      defaultImage: TEST_IMAGE,
      executionLimits: { killGraceMs: 500 },
      startedFrom: VSCODE_TRANSPORT,
      allowedOrigins: ['http://localhost:6274'],
    });
  });
  afterEach(async () => {
    await t.close();
  });

  const records = async (op: string): Promise<AuditRecord[]> => {
    await t.server.audit.flush();
    return (await t.server.audit.query({ op, limit: 1000 })).records;
  };
  const auditText = async (): Promise<string> => {
    await t.server.audit.flush();
    return readFile(join(t.stateDir, 'audit', AUDIT_FILE), 'utf8');
  };
  const ownerRecord = (record: AuditRecord | undefined): void => {
    assert.ok(record, 'an audit record exists');
    assert.equal(record.agent, 'owner');
    assert.equal(record.role, 'owner');
    assert.equal(record.transport, VSCODE_TRANSPORT);
    assert.equal(record.decision, 'allow');
    assert.equal(record.outcome.ok, true, JSON.stringify(record.outcome));
  };

  it('records the server start with the security settings in force', async () => {
    const [start] = await records('server_start');
    ownerRecord(start);
    assert.equal(start!.sessionId, null);
    const params = start!.params as Record<string, unknown>;
    assert.equal(params['url'], t.url);
    assert.deepEqual(params['allowedOrigins'], ['http://localhost:6274']);
    assert.equal(params['policyId'], 'default');
    assert.equal(params['defaultImage'], TEST_IMAGE);
  });

  it('creates and revokes a token as the owner; the secret never reaches the log', async () => {
    const created = await runOwnerOperation(t.server, 'create_token', { name: 'ui-agent', role: 'agent' });
    assert.equal(created.name, 'ui-agent');
    const agent = await connectMcp(t.server.mcpUrl, created.token);
    try {
      assert.ok(await callTool(agent.client, 'list_capabilities'));
    } finally {
      await agent.close();
    }
    const [create] = await records('create_token');
    ownerRecord(create);
    assert.deepEqual(create!.params, { name: 'ui-agent', role: 'agent' });
    // The owner's own short session is opened and audited as a vscode session too.
    const init = (await records('init_session')).find((r) => r.sessionId === create!.sessionId);
    assert.equal(init?.agent, 'owner');
    assert.equal(init?.transport, VSCODE_TRANSPORT);
    assert.equal(t.server.sessions.get(create!.sessionId!), undefined, 'the owner session was closed');

    await runOwnerOperation(t.server, 'revoke_token', { name: 'ui-agent' });
    ownerRecord((await records('revoke_token'))[0]);
    const refused = await fetch(`${t.url}/files/.`, {
      headers: { authorization: `Bearer ${created.token}` },
    });
    assert.equal(refused.status, 401, 'the revoked token no longer works');
    assert.ok(!(await auditText()).includes(created.token), 'the token secret is not in the audit log');
  });

  it('revokes one session of an agent: that session ends, its token still works', async () => {
    const { token } = await runOwnerOperation(t.server, 'create_token', {
      name: 'busy-agent',
      role: 'agent',
    });
    const first = await connectMcp(t.server.mcpUrl, token);
    const second = await connectMcp(t.server.mcpUrl, token);
    try {
      const sessionId = first.transport.sessionId!;
      assert.ok(t.server.sessions.get(sessionId), 'the MCP session is open');
      const result = await runOwnerOperation(t.server, 'revoke_session', { sessionId });
      assert.equal(result.success, true);
      assert.equal(t.server.sessions.get(sessionId), undefined);
      await assert.rejects(callTool(first.client, 'list_capabilities'), 'the revoked session is gone');
      assert.ok(await callTool(second.client, 'list_capabilities'), 'the other session goes on');
      const [revoke] = await records('revoke_session');
      ownerRecord(revoke);
      assert.deepEqual(revoke!.params, { sessionId });

      const again = await runOwnerOperation(t.server, 'revoke_session', { sessionId }).catch(
        (e: unknown) => e,
      );
      assert.equal((again as { code?: string }).code, 'SESSION_NOT_FOUND');
      const failed = (await records('revoke_session'))[0];
      assert.equal(failed?.outcome.ok, false, 'a failed owner action is audited too');
    } finally {
      await first.close().catch(() => undefined);
      await second.close();
    }
  });

  it('never lets an agent revoke a session, over REST or by naming the operation', async () => {
    const { token } = await runOwnerOperation(t.server, 'create_token', { name: 'rogue', role: 'agent' });
    const victim = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const victimSession = victim.transport.sessionId!;
      const denied = await t.api(`/sessions/${encodeURIComponent(victimSession)}`, {
        method: 'DELETE',
        token,
      });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'OWNER_ONLY');
      const rogue = await connectMcp(t.server.mcpUrl, token);
      try {
        const tools = await rogue.client.listTools();
        assert.ok(!tools.tools.some((tool) => tool.name === 'revoke_session'), 'not an MCP tool');
      } finally {
        await rogue.close();
      }
      assert.ok(t.server.sessions.get(victimSession), 'the session is still open');
      const [record] = await records('revoke_session');
      assert.equal(record?.agent, 'rogue');
      assert.equal(record?.decision, 'deny');
      // The owner can over REST, audited as REST.
      const ok = await t.api(`/sessions/${encodeURIComponent(victimSession)}`, { method: 'DELETE' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(t.server.sessions.get(victimSession), undefined);
      assert.equal((await records('revoke_session'))[0]?.transport, 'rest');
    } finally {
      await victim.close().catch(() => undefined);
    }
  });

  it("cancels an agent's running command as the owner", async () => {
    await runOwnerOperation(t.server, 'set_policy', {
      id: 'sleepy',
      rules: ['allow read(**)', 'allow exec(sleep *)'],
    });
    ownerRecord((await records('set_policy'))[0]);
    const { token } = await runOwnerOperation(t.server, 'create_token', { name: 'sleeper', role: 'agent' });
    const agent = await connectMcp(t.server.mcpUrl, token);
    try {
      const started = await callTool(agent.client, 'run_command', { command: 'sleep 60', background: true });
      assert.equal(started.status, 'running', JSON.stringify(started));
      const cancelled = await runOwnerOperation(t.server, 'cancel_execution', {
        executionId: started.executionId,
      });
      assert.equal(cancelled.success, true);
      const done = await callTool(agent.client, 'get_execution', {
        executionId: started.executionId,
        wait: true,
      });
      assert.equal(done.status, 'cancelled', JSON.stringify(done));
      const [cancel] = await records('cancel_execution');
      ownerRecord(cancel);
      assert.deepEqual(cancel!.params, { executionId: started.executionId });
    } finally {
      await agent.close();
    }
  });

  it('records the server stop with its reason, and the log verifies', async () => {
    await runOwnerOperation(t.server, 'create_token', { name: 'someone', role: 'viewer' });
    await t.server.close('stop command');
    const lines = (await readFile(join(t.stateDir, 'audit', AUDIT_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditRecord);
    const last = lines[lines.length - 1]!;
    assert.equal(last.op, 'server_stop');
    assert.equal(last.agent, 'owner');
    assert.equal(last.transport, VSCODE_TRANSPORT);
    assert.deepEqual(last.params, { url: t.url, reason: 'stop command' });
    assert.equal(lines[0]!.op, 'server_start');
    const verified = await verifyAuditLog(join(t.stateDir, 'audit'));
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(verified.records, lines.length);
  });
});
