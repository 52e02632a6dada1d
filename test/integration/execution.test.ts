import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { callTool, connectMcp } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

// Most tests here use shell syntax, which needs `allow exec(*)`; narrow rules are tested in
// exec-security.test.ts.
const EXEC_POLICY = {
  id: 'exec-tests',
  rules: ['allow read(**)', 'allow write(**)', 'deny write(.git/**)', 'allow exec(*)', 'deny exec(rm *)'],
};

/** A policy of narrow exec rules only: commands run as an argv with no shell. */
const NARROW_POLICY = {
  id: 'narrow',
  rules: ['allow read(**)', 'allow write(**)', 'allow exec(echo *)', 'allow exec(cat)'],
};

describe('RunCommand / CancelExecution in the session container (real Docker engine)', function () {
  this.timeout(120_000);
  let t: TestServer;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  beforeEach(async () => {
    t = await startTestServer(
      { defaultImage: TEST_IMAGE, executionLimits: { killGraceMs: 500 } },
      async (ws) => {
        await mkdir(join(ws, 'sub'));
        await writeFile(join(ws, 'sub', 'data.txt'), 'from the workspace\n');
      },
    );
    assert.equal((await t.api('/policies', { method: 'PUT', body: EXEC_POLICY })).status, 200);
  });
  afterEach(async () => {
    await t.close();
  });

  it('denies exec by default, and chained commands unless each is allowed', async () => {
    await t.api('/policies', { method: 'PUT', body: { id: 'default-like', rules: ['allow read(**)'] } });
    const denied = await t.api('/execute', { method: 'POST', body: { command: 'echo hi' } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'POLICY_DENIED');
    await t.api('/policies', { method: 'PUT', body: NARROW_POLICY });
    const chained = await t.api('/execute', { method: 'POST', body: { command: 'echo ok; rm -rf sub' } });
    assert.equal(chained.body.error.code, 'POLICY_DENIED');
    assert.match(chained.body.error.message, /rm -rf sub/);
    const substituted = await t.api('/execute', { method: 'POST', body: { command: 'echo $(rm -rf sub)' } });
    assert.equal(substituted.body.error.code, 'POLICY_DENIED');
    assert.match(substituted.body.error.message, /shell syntax/);
    await t.api('/policies', { method: 'PUT', body: EXEC_POLICY });
    const under = await t.api('/execute', { method: 'POST', body: { command: 'echo ok; rm -rf sub' } });
    assert.equal(under.body.error.code, 'POLICY_DENIED', 'deny rules still see each chained part');
    assert.equal(await readFile(join(t.workspace, 'sub/data.txt'), 'utf8'), 'from the workspace\n');
    await t.server.audit.flush();
    const records = await t.server.audit.query({ op: 'run_command', decision: 'deny' });
    assert.equal(records.records.length, 4, 'every denial is audited');
  });

  it('runs in the workspace folder of the container, with exit codes and separate streams', async () => {
    const res = await t.api('/execute', {
      method: 'POST',
      body: { command: 'pwd; cat sub/data.txt; echo oops >&2; exit 3' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const name = t.workspace.split('/').pop();
    assert.equal(res.body.exitCode, 3);
    assert.equal(res.body.status, 'exited');
    assert.equal(res.body.stdout, `/workspaces/${name}\nfrom the workspace\n`);
    assert.equal(res.body.stderr, 'oops\n');
    assert.deepEqual(res.body.logs, [`/workspaces/${name}`, 'from the workspace', 'oops']);
    assert.equal(res.body.image, TEST_IMAGE);
    const withArgs = await t.api('/execute', {
      method: 'POST',
      body: { command: 'echo', args: ['a b', '$HOME'], cwd: 'sub', env: { GREETING: 'x' } },
    });
    assert.equal(withArgs.body.stdout, 'a b $HOME\n', 'args are not interpreted by a shell');
    const stdin = await t.api('/execute', { method: 'POST', body: { command: 'cat', stdin: 'piped in' } });
    assert.equal(stdin.body.stdout, 'piped in');
    const written = await t.api('/execute', {
      method: 'POST',
      body: { command: 'echo made > sub/made.txt' },
    });
    assert.equal(written.body.exitCode, 0);
    assert.equal(await readFile(join(t.workspace, 'sub/made.txt'), 'utf8'), 'made\n');
    const badCwd = await t.api('/execute', { method: 'POST', body: { command: 'pwd', cwd: '../..' } });
    assert.equal(badCwd.body.error.code, 'PATH_OUTSIDE_WORKSPACE');
  });

  it('streams stdout and stderr in order over NDJSON and SSE', async () => {
    const res = await fetch(`${t.url}/execute`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.token}`,
        'content-type': 'application/json',
        accept: 'application/x-ndjson',
      },
      body: JSON.stringify({ command: 'echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three' }),
    });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const progress = lines.filter((l) => l.type !== 'result' && l.seq === 0);
    assert.ok(
      progress.some((l) => /^\[mcp-workspace\] start: Starting a container from /.test(l.data)),
      'a cold start reports its progress first',
    );
    const output = lines.filter((l) => l.type !== 'result' && l.seq > 0);
    assert.deepEqual(
      output.map((l) => [l.type, l.data]),
      [
        ['stdout', 'one\n'],
        ['stderr', 'two\n'],
        ['stdout', 'three\n'],
      ],
    );
    assert.equal(lines.at(-1).type, 'result');
    assert.equal(lines.at(-1).result.exitCode, 0);

    const sse = await fetch(`${t.url}/execute`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ command: 'echo sse' }),
    });
    const text = await sse.text();
    assert.match(text, /event: stdout\ndata: \{"data":"sse\\n","seq":1\}/);
    assert.match(text, /event: result\n/);
  });

  it('streams progress over MCP and reports the final result', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const progress: string[] = [];
      const result = (await mcp.client.callTool(
        { name: 'run_command', arguments: { command: 'echo a; sleep 0.2; echo b' } },
        undefined,
        { onprogress: (p) => progress.push(String(p.message)) },
      )) as unknown as { structuredContent: { exitCode: number; stdout: string } };
      assert.equal(result.structuredContent.exitCode, 0);
      assert.equal(result.structuredContent.stdout, 'a\nb\n');
      assert.deepEqual(
        progress.filter((p) => !p.startsWith('[mcp-workspace]')),
        ['a\n', 'b\n'],
      );
      const denied = await callTool(mcp.client, 'run_command', { command: 'rm -rf sub' });
      assert.equal(denied.error.code, 'POLICY_DENIED');
    } finally {
      await mcp.close();
    }
  });

  it('cancels the whole process tree within a second, including a child that ignores TERM', async () => {
    const started = await t.api('/execute', {
      method: 'POST',
      body: {
        command: 'sh -c \'trap "" TERM; sleep 30\' & sleep 30 & echo started; wait',
        background: true,
      },
    });
    assert.equal(started.body.status, 'running');
    const id = started.body.executionId;
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const cancel = await t.api(`/executions/${id}/cancel`, { method: 'POST', body: {} });
    assert.equal(cancel.body.success, true);
    assert.ok(performance.now() - t0 < 1000, 'cancel returns within 1 s');
    const done = await t.api(`/executions/${id}?wait=true`);
    assert.equal(done.body.status, 'cancelled');
    assert.equal(done.body.cancelled, true);
    assert.equal(done.body.stdout, 'started\n');
    const ps = await t.api('/execute', { method: 'POST', body: { command: 'ps' } });
    assert.doesNotMatch(ps.body.stdout, /sleep 30/, 'no process of the cancelled tree survives');
    const again = await t.api(`/executions/${id}/cancel`, { method: 'POST', body: {} });
    assert.equal(again.body.success, false);
  });

  it('times out, re-attaches to background executions, and keeps agents apart', async () => {
    const timedOut = await t.api('/execute', {
      method: 'POST',
      body: { command: 'sleep 20', timeoutMs: 300 },
    });
    assert.equal(timedOut.body.status, 'timed_out');
    assert.equal(timedOut.body.timedOut, true);
    assert.ok(timedOut.body.durationMs < 5000);

    const bg = await t.api('/execute', {
      method: 'POST',
      body: { command: 'echo early; sleep 0.5; echo late', background: true },
    });
    const attach = await fetch(`${t.url}/executions/${bg.body.executionId}/stream`, {
      headers: { authorization: `Bearer ${t.token}`, accept: 'application/x-ndjson' },
    });
    const events = (await attach.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      events.filter((e) => e.type === 'stdout').map((e) => e.data),
      ['early\n', 'late\n'],
    );
    assert.equal(events.at(-1).result.status, 'exited');

    const other = await t.api('/tokens', { method: 'POST', body: { name: 'other', role: 'agent' } });
    const foreign = await t.api(`/executions/${bg.body.executionId}`, { token: other.body.token });
    assert.equal(foreign.body.error.code, 'EXECUTION_NOT_FOUND');
    const mine = await t.api('/executions');
    assert.ok(mine.body.executions.length >= 2);

    await t.server.audit.flush();
    const starts = await t.server.audit.query({ op: 'execution_start' });
    const ends = await t.server.audit.query({ op: 'execution_end' });
    assert.ok(starts.records.some((r) => (r.params as { image: string }).image === TEST_IMAGE));
    assert.ok(ends.records.some((r) => r.outcome['status'] === 'timed_out'));
  });

  it('runs commands over the WebSocket stream', async () => {
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const messages: any[] = [];
    const finished = new Promise<void>((resolve) =>
      ws.on('message', (raw) => {
        const message = JSON.parse(raw.toString());
        messages.push(message);
        if (message.id === 'run' && message.type === 'result') resolve();
      }),
    );
    ws.send('not json');
    ws.send(JSON.stringify({ id: 'bad', op: 'frobnicate' }));
    ws.send(JSON.stringify({ id: 'run', op: 'run_command', params: { command: 'echo ws; echo err >&2' } }));
    await finished;
    ws.close();
    assert.equal(messages.find((m) => m.id === null)?.error.code, 'INVALID_ARGUMENT');
    assert.equal(messages.find((m) => m.id === 'bad')?.error.code, 'INVALID_ARGUMENT');
    const run = messages.filter((m) => m.id === 'run');
    assert.deepEqual(
      run.filter((m) => m.type === 'output' && m.seq > 0).map((m) => [m.stream, m.data]),
      [
        ['stdout', 'ws\n'],
        ['stderr', 'err\n'],
      ],
    );
    assert.equal(run.at(-1).result.exitCode, 0);

    const refused = new WebSocket(`${t.url.replace('http', 'ws')}/ws`);
    const status = await new Promise<number>((resolve) =>
      refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    assert.equal(status, 401);
  });

  it('caps a 1 GB output flood, keeps memory bounded and stays responsive', async () => {
    const flood = t.api('/execute', { method: 'POST', body: { command: 'head -c 1000000000 /dev/zero' } });
    const t0 = performance.now();
    const health = await t.api('/list');
    assert.equal(health.status, 200);
    assert.ok(performance.now() - t0 < 2000, 'the server answers during the flood');
    const res = await flood;
    assert.equal(res.status, 200);
    assert.equal(res.body.truncated, true);
    assert.equal(res.body.exitCode, 0);
    assert.ok(res.body.stdout.length <= 10 * 1024 * 1024 + 100, `kept ${res.body.stdout.length} chars`);
  });

  it('builds the devcontainer.json Dockerfile and runs in it; refuses privileged runArgs', async () => {
    await t.close();
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await mkdir(join(ws, '.devcontainer'));
      await writeFile(
        join(ws, '.devcontainer', 'Dockerfile'),
        `FROM ${TEST_IMAGE}\nARG FLAVOUR=plain\nRUN echo "built $FLAVOUR" > /built.txt\n`,
      );
      await writeFile(
        join(ws, '.devcontainer', 'devcontainer.json'),
        '{\n  // JSONC: comments are fine\n  "build": { "dockerfile": "Dockerfile", "args": { "FLAVOUR": "custom" } },\n  "containerEnv": { "STAGE": "dev" },\n}\n',
      );
    });
    await t.api('/policies', { method: 'PUT', body: EXEC_POLICY });
    const res = await t.api('/execute', { method: 'POST', body: { command: 'cat /built.txt; echo $STAGE' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stdout, 'built custom\ndev\n');
    assert.match(res.body.image, /^mcpw-build-[0-9a-f]{16}/);

    await writeFile(
      join(t.workspace, '.devcontainer', 'devcontainer.json'),
      JSON.stringify({ image: TEST_IMAGE, runArgs: ['--privileged'] }),
    );
    // A running session keeps its container (as "Rebuild Container" would be needed in VS Code);
    // a new session resolves the changed configuration.
    const fresh = await t.api('/session/init', { method: 'POST', body: {} });
    const refused = await t.api('/execute', {
      method: 'POST',
      body: { command: 'echo hi' },
      headers: { 'x-mcp-workspace-session': fresh.body.sessionId },
    });
    assert.equal(refused.body.error.code, 'POLICY_DENIED');
    assert.match(refused.body.error.message, /runArgs/);
    assert.match(refused.body.error.message, /allow tool\(devcontainer\.runArgs\)/);
  });

  it('leaves no session container behind when the server is killed with -9: the engine removes it', async function () {
    const stateDir = join(t.stateDir, '..', 'cli-state');
    const policyFile = join(t.stateDir, '..', 'policy.json');
    await writeFile(policyFile, JSON.stringify(EXEC_POLICY));
    const cli = join(__dirname, '../../dist/cli.js');
    const child = spawn(
      process.execPath,
      [cli, 'serve', t.workspace, '--state-dir', stateDir, '--policy', policyFile, '--image', TEST_IMAGE],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const line = await new Promise<string>((ok) =>
      createInterface({ input: child.stdout! }).once('line', ok),
    );
    const ready = JSON.parse(line) as { url: string; tokenFile: string };
    const token = (await readFile(ready.tokenFile, 'utf8')).trim();
    const docker = new Docker();
    const ours = async (): Promise<number> =>
      (await docker.listContainers({ all: true, filters: { label: ['dev.mcp-workspace.state'] } })).filter(
        (c) =>
          c.Labels['dev.mcp-workspace.session'] !== undefined &&
          c.Mounts.some((m) => m.Source === t.workspace),
      ).length;
    const res = await fetch(`${ready.url}/execute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'sleep 600', background: true }),
    });
    assert.equal(res.status, 200);
    assert.equal(await ours(), 1, 'one session container runs a command');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // No server runs any more: only the engine can remove it (stdin closes with the attach
    // connection, the runner ends its commands and exits, AutoRemove deletes the container).
    let left = await ours();
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      left = await ours();
    }
    assert.equal(left, 0, 'the engine removed the container of the killed server');
  });

  it("keeps the server's state dir and the owner's policy file out of the workspace, so commands never see them", async () => {
    await t.close();
    const { mkdir, mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { startWorkspaceServer } = await import('../../src/server');
    const root = await mkdtemp(join(tmpdir(), 'mcpw-mask-'));
    const ws = join(root, 'ws');
    await mkdir(ws);
    await writeFile(join(root, 'policy.json'), JSON.stringify(EXEC_POLICY));
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    await assert.rejects(
      startWorkspaceServer({ workspace: ws, stateDir: join(ws, '.state'), logger: quiet }),
      /inside the workspace/,
    );
    const server = await startWorkspaceServer({
      workspace: ws,
      stateDir: join(root, '.state'),
      policyFile: join(root, 'policy.json'),
      defaultImage: TEST_IMAGE,
      logger: quiet,
    });
    try {
      const run = async (command: string): Promise<any> => {
        const res = await fetch(`${server.url}/execute`, {
          method: 'POST',
          headers: { authorization: `Bearer ${server.ownerToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ command }),
        });
        return res.json();
      };
      const token = await run(`cat ${join(root, '.state', 'owner.token')} ../.state/owner.token; ls -a ..`);
      assert.doesNotMatch(token.stdout, new RegExp(server.ownerToken));
      assert.doesNotMatch(token.stdout, /\.state/);
      await run(`echo '{"id":"x","rules":["allow exec(*)"]}' > ${join(root, 'policy.json')}`);
      const onHost = JSON.parse(await readFile(join(root, 'policy.json'), 'utf8'));
      assert.equal(onHost.id, EXEC_POLICY.id, 'the policy file cannot be rewritten from a command');
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
    t = await startTestServer({ defaultImage: TEST_IMAGE });
  });

  it('says how to start an engine when none answers, and keeps serving files', async () => {
    await t.close();
    const saved = process.env['DOCKER_HOST'];
    process.env['DOCKER_HOST'] = 'unix:///tmp/mcpw-no-such-docker.sock';
    try {
      t = await startTestServer({ defaultImage: TEST_IMAGE });
      await t.api('/policies', { method: 'PUT', body: EXEC_POLICY });
      const res = await t.api('/execute', { method: 'POST', body: { command: 'echo hi' } });
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, 'SANDBOX_UNAVAILABLE');
      assert.match(res.body.error.message, /provision-docker|systemctl|DOCKER_HOST/);
      assert.equal((await t.api('/list')).status, 200, 'the rest of the server keeps working');
    } finally {
      process.env['DOCKER_HOST'] = saved;
    }
  });
});
