import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import WebSocket from 'ws';
import { callTool, connectMcp } from '../helpers/clients';
import { ensureToolImage } from '../helpers/docker';
import { until } from '../helpers/wait';
import { startTestServer, type TestServer } from '../helpers/server';

const TOOLS = '.mcp-workspace/tools';
const FIXTURE = join(__dirname, '..', 'fixtures', 'mcp-stdio-server.js');

/** Retries `check` (200 attempts, 50 ms apart) until it returns true. */
const eventually = (what: string, check: () => boolean | Promise<boolean>): Promise<void> =>
  until(what, check, 200, 50);

/** A manifest declaring the fixture server in `mode` as the MCP server `name`. */
function serverManifest(name: string, mode: string, extra: Record<string, unknown> = {}): unknown {
  return {
    name,
    description: `The fixture MCP server (${mode}).`,
    mcpServer: { command: ['node', 'mcp/server.js', mode], timeoutMs: 5000, ...extra },
  };
}

async function writeManifest(workspace: string, file: string, manifest: unknown): Promise<void> {
  await mkdir(join(workspace, TOOLS), { recursive: true });
  await writeFile(join(workspace, TOOLS, file), JSON.stringify(manifest));
}

/** The first text block of an MCP tool result, parsed as JSON. */
function textOf(result: unknown): any {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return JSON.parse(content[0]!.text!);
}

describe('Sandboxed MCP servers: manifest-declared stdio servers run in the session sandbox (real server, real Docker)', function () {
  this.timeout(180_000);
  let image: string;
  let t: TestServer;
  let agent: string;
  const hostFile = { path: '' };

  before(function () {
    this.timeout(900_000);
    image = ensureToolImage();
  });

  /** Log lines with their fields (the test server's own logger keeps messages only). */
  let logs: string[] = [];

  async function start(manifests: Record<string, unknown>): Promise<void> {
    logs = [];
    const keep = (msg: string, fields?: Record<string, unknown>): void =>
      void logs.push(`${msg} ${JSON.stringify(fields ?? {})}`);
    t = await startTestServer(
      { defaultImage: image, logger: { info: keep, warn: keep, error: keep } },
      async (ws) => {
        await mkdir(join(ws, 'mcp'));
        await copyFile(FIXTURE, join(ws, 'mcp', 'server.js'));
        for (const [file, manifest] of Object.entries(manifests)) await writeManifest(ws, file, manifest);
        // A file on the host, outside the workspace: the server in the sandbox must not see it.
        hostFile.path = join(dirname(ws), 'host-only.txt');
        await writeFile(hostFile.path, 'host only\n');
      },
    );
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'mcp-user', role: 'agent' } })).body
      .token;
  }

  const setRules = (...rules: string[]): Promise<void> => t.setRules('mcp', ...rules);

  afterEach(async () => {
    if (t) await t.closeVerified();
  });

  it('offers NAME_TOOL (never read-only) to SDK clients of both eras, runs it in the container, and audits it', async () => {
    await start({ 'fx.json': serverManifest('fx', 'normal', { env: { HOST_FILE: '' } }) });
    // The manifest names a host path for the server to look for (set after the workspace exists).
    await writeManifest(
      t.workspace,
      'fx.json',
      serverManifest('fx', 'normal', { env: { HOST_FILE: hostFile.path } }),
    );
    await eventually('the server manifest loaded', () =>
      t.server.tools.mcpServers().some((s) => s.env['HOST_FILE'] === hostFile.path),
    );
    await setRules('allow read(**)', 'allow tool(fx_*)');

    const v1 = await connectMcp(t.server.mcpUrl, agent);
    try {
      const listed = (await v1.client.listTools()).tools;
      const echo = listed.find((tool) => tool.name === 'fx_echo');
      assert.ok(echo, `fx_echo is listed: ${listed.map((tool) => tool.name).join(', ')}`);
      assert.equal(
        echo.annotations?.readOnlyHint,
        false,
        'never advertised read-only (the server said it was)',
      );
      assert.equal(echo.annotations?.destructiveHint, true);
      assert.equal(echo.annotations?.openWorldHint, false, 'no network rule: not open-world');
      assert.deepEqual(echo.inputSchema.required, ['text'], 'the input schema is passed through');
      for (const name of ['fx_hang', 'fx_ask', 'fx_flood', 'fx_fail']) {
        assert.ok(
          listed.some((tool) => tool.name === name),
          `${name} is listed`,
        );
      }

      const result = await v1.client.callTool({ name: 'fx_echo', arguments: { text: 'hello' } });
      const seen = textOf(result);
      assert.equal(seen.echo, 'hello');
      assert.equal(seen.sawHostFile, false, 'the server cannot see a host file outside the workspace');
      assert.notEqual(seen.hostname, hostname(), 'it does not run on the host');
      const containers = execFileSync('docker', ['ps', '--no-trunc', '--format', '{{.ID}}'], {
        encoding: 'utf8',
      });
      assert.ok(
        containers.split('\n').some((id) => id.startsWith(seen.hostname)),
        `its hostname ${seen.hostname} is a running container's id`,
      );

      // The server's own failure is passed back as a tool error with its content.
      const failed = (await v1.client.callTool({ name: 'fx_fail', arguments: {} })) as {
        isError?: boolean;
        content: { text: string }[];
      };
      assert.equal(failed.isError, true);
      assert.equal(failed.content[0]!.text, 'it failed on purpose');

      // list_capabilities names the server's tools offered in this session.
      const capabilities = await callTool(v1.client, 'list_capabilities');
      assert.ok(capabilities.tools.includes('fx_echo'), 'list_capabilities names fx_echo');

      // A server-to-client request (sampling) is refused, not forwarded to anyone.
      const asked = textOf(await v1.client.callTool({ name: 'fx_ask', arguments: {} }));
      assert.equal(asked.error?.code, -32601, `sampling is refused: ${JSON.stringify(asked)}`);
    } finally {
      await v1.close();
    }

    const v2 = new ClientV2(
      { name: 'v2-mcp', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await v2.connect(
      new TransportV2(new URL(t.server.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${agent}` } },
      }),
    );
    try {
      const echo = (await v2.listTools()).tools.find((tool) => tool.name === 'fx_echo');
      assert.ok(echo, 'the 2026-07-28 client lists fx_echo');
      assert.equal(echo.annotations?.readOnlyHint, false);
      const seen = textOf(await v2.callTool({ name: 'fx_echo', arguments: { text: 'v2' } }));
      assert.equal(seen.echo, 'v2');
      assert.equal(seen.sawHostFile, false);
    } finally {
      await v2.close();
    }

    // REST reaches the same tool by name.
    const rest = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'rest' }, token: agent });
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    assert.equal(JSON.parse(rest.body.content[0].text).echo, 'rest');

    // ...and so does the WebSocket, by the tool's name as op.
    const ws = new WebSocket(t.url.replace('http', 'ws') + '/ws', {
      headers: { authorization: `Bearer ${agent}` },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: any[] = [];
    ws.on('message', (raw) => replies.push(JSON.parse(raw.toString())));
    ws.send(JSON.stringify({ id: 1, op: 'fx_echo', params: { text: 'ws' } }));
    await eventually('the WebSocket result', () => replies.some((r) => r.id === 1 && r.type !== 'output'));
    ws.close();
    const wsReply = replies.find((r) => r.id === 1);
    assert.equal(wsReply.type, 'result', JSON.stringify(wsReply));
    assert.equal(JSON.parse(wsReply.result.content[0].text).echo, 'ws');

    await t.server.audit.flush();
    const runs = (await t.server.audit.query({ op: 'run_tool', limit: 50 })).records;
    const echoRun = runs.find(
      (r) =>
        (r.params as { tool?: string }).tool === 'fx_echo' &&
        JSON.stringify((r.params as { arguments?: unknown }).arguments) === JSON.stringify({ text: 'rest' }),
    );
    assert.ok(echoRun, 'calls are audited as run_tool with their arguments');
    assert.equal(echoRun.rule, 'allow tool(fx_*)');
    const starts = (await t.server.audit.query({ op: 'execution_start', limit: 50 })).records;
    assert.ok(
      starts.some((r) => (r.params as { command?: string; args?: string[] }).args?.includes('mcp/server.js')),
      'the server process start is audited like a command',
    );
    const listings = (await t.server.audit.query({ op: 'list_mcp_tools', limit: 50 })).records;
    assert.ok(listings.length >= 1, 'starting a server to list its tools is audited');
  });

  it('is POLICY_DENIED without allow tool(NAME_*), and nothing starts', async () => {
    await start({ 'fx.json': serverManifest('fx', 'normal') });
    await setRules('allow read(**)', 'allow tool(other_*)');
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      const names = (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(!names.some((name) => name.startsWith('fx_')), `no fx_ tool is offered: ${names.join(', ')}`);
      await assert.rejects(
        callTool(mcp.client, 'fx_echo', { text: 'no' }),
        /fx_echo not found/,
        'an unoffered tool is unknown to the MCP session',
      );
    } finally {
      await mcp.close();
    }
    const rest = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'no' }, token: agent });
    assert.equal(rest.status, 403, JSON.stringify(rest.body));
    assert.equal(rest.body.error.code, 'POLICY_DENIED');
    await t.server.audit.flush();
    const starts = (await t.server.audit.query({ op: 'execution_start', limit: 50 })).records;
    assert.equal(starts.length, 0, 'no server process was started');
    const denied = (await t.server.audit.query({ op: 'run_tool', limit: 10 })).records;
    assert.ok(
      denied.some((r) => r.decision === 'deny'),
      'the refusal is audited',
    );

    // A rule naming one tool grants that tool only.
    await setRules('allow read(**)', 'allow tool(fx_echo)');
    const named = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'one' }, token: agent });
    assert.equal(named.status, 200, JSON.stringify(named.body));
    const other = await t.api('/tools/fx_fail', { method: 'POST', body: {}, token: agent });
    assert.equal(other.body.error?.code, 'POLICY_DENIED');
  });

  it('never offers, starts or runs them for a pair guest, whatever allow tool rules exist', async () => {
    await start({ 'fx.json': serverManifest('fx', 'normal') });
    await setRules('allow read(**)', 'allow write(**)', 'allow tool(*)', 'allow tool(fx_*)', 'allow exec(*)');
    const link = await t.api('/pair-links', { method: 'POST', body: { mode: 'read-write', name: 'pat' } });
    assert.equal(link.status, 200, JSON.stringify(link.body));
    const guest: string = link.body.token;
    const mcp = await connectMcp(t.server.mcpUrl, guest);
    try {
      const names = (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(!names.some((name) => name.startsWith('fx_')), `no fx_ tool is offered: ${names.join(', ')}`);
      await assert.rejects(callTool(mcp.client, 'fx_echo', { text: 'guest' }), /fx_echo not found/);
    } finally {
      await mcp.close();
    }
    const rest = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'guest' }, token: guest });
    assert.equal(rest.status, 403, JSON.stringify(rest.body));
    assert.equal(rest.body.error.code, 'CAPABILITY_NOT_NEGOTIATED');
    await t.server.audit.flush();
    const starts = (await t.server.audit.query({ op: 'execution_start', limit: 50 })).records;
    assert.equal(starts.length, 0, 'no server process was started for the guest');
    // The same rules let an ordinary agent reach it: the refusal is the scope, not the policy.
    const ok = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'agent' }, token: agent });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('times out a server that never answers with a clear error while /health stays responsive', async () => {
    await start({
      'fx.json': serverManifest('fx', 'normal', { timeoutMs: 2000 }),
      'mute.json': serverManifest('mute', 'silent', { timeoutMs: 1500 }),
    });
    await setRules('allow read(**)', 'allow tool(fx_*)', 'allow tool(mute_*)');
    let healthy = 0;
    let hanging = true;
    const poll = (async () => {
      while (hanging) {
        const res = await fetch(`${t.url}/health`);
        if (res.status === 200) healthy++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      const hung = await t.api('/tools/fx_hang', { method: 'POST', body: {}, token: agent });
      assert.equal(hung.body.error?.code, 'TOOL_TIMEOUT', JSON.stringify(hung.body));
      assert.match(hung.body.error.message, /did not answer a call of hang within 2000 ms/);
      const healthyDuringHang = healthy;
      assert.ok(healthyDuringHang > 0, '/health answered while the call hung');

      // A server that never completes initialize: TOOL_UNAVAILABLE naming the program and the image.
      const mute = await t.api('/tools/mute_x', { method: 'POST', body: {}, token: agent });
      assert.equal(mute.body.error?.code, 'TOOL_UNAVAILABLE', JSON.stringify(mute.body));
      assert.match(mute.body.error.message, /initialize handshake within 1500 ms/);
      assert.equal(mute.body.error.program, 'node');
      assert.equal(mute.body.error.image, image);

      // The timed-out server was stopped; the next call starts it again and works.
      const again = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'again' }, token: agent });
      assert.equal(again.status, 200, JSON.stringify(again.body));

      // Listing with a mute server still answers, without its tools.
      const mcp = await connectMcp(t.server.mcpUrl, agent);
      try {
        const names = (await mcp.client.listTools()).tools.map((tool) => tool.name);
        assert.ok(names.includes('fx_echo'));
        assert.ok(!names.some((name) => name.startsWith('mute_')));
      } finally {
        await mcp.close();
      }
    } finally {
      hanging = false;
      await poll;
    }
  });

  it('stops a server that floods notifications, caps a hostile tool list, and names a missing program', async () => {
    await start({
      'fx.json': serverManifest('fx', 'normal'),
      'many.json': serverManifest('many', 'many'),
      'gone.json': { name: 'gone', mcpServer: { command: ['no-such-program'] } },
    });
    await setRules('allow read(**)', 'allow tool(fx_*)', 'allow tool(many_*)', 'allow tool(gone_*)');
    const flood = await t.api('/tools/fx_flood', { method: 'POST', body: {}, token: agent });
    assert.equal(flood.status, 200, JSON.stringify(flood.body));
    await eventually('the flooding server is stopped', () =>
      logs.some(
        (line) => line.includes('sandboxed MCP server stopped') && line.includes('sent more than 200'),
      ),
    );
    assert.equal((await fetch(`${t.url}/health`)).status, 200);
    const after = await t.api('/tools/fx_echo', { method: 'POST', body: { text: 'still' }, token: agent });
    assert.equal(after.status, 200, 'the next call starts it again');
    const big = await t.api('/tools/fx_big', { method: 'POST', body: {}, token: agent });
    assert.equal(big.body.error?.code, 'MESSAGE_TOO_LARGE', 'a result over 1 MiB is refused');

    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      const names = (await mcp.client.listTools()).tools
        .map((tool) => tool.name)
        .filter((n) => n.startsWith('many_'));
      assert.equal(names.length, 128, 'at most 128 tools of one server');
      assert.ok(!names.includes('many_deep'), 'a schema nested too deep is skipped');
      assert.ok(names.every((name) => /^[A-Za-z0-9_-]{1,64}$/.test(name)));
      assert.ok(logs.some((line) => line.includes('tools not offered') && line.includes('deeper than')));
    } finally {
      await mcp.close();
    }

    const gone = await t.api('/tools/gone_x', { method: 'POST', body: {}, token: agent });
    assert.equal(gone.body.error?.code, 'TOOL_UNAVAILABLE', JSON.stringify(gone.body));
    assert.equal(gone.body.error.program, 'no-such-program');
    assert.equal(gone.body.error.image, image);
  });

  it('follows manifest changes: list_changed to a 2025 session, tools gone with the manifest, server stopped', async () => {
    await start({ 'fx.json': serverManifest('fx', 'normal') });
    await setRules('allow read(**)', 'allow tool(fx_*)', 'allow tool(fy_*)');
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    let notified = 0;
    mcp.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      notified++;
    });
    try {
      const names = async (): Promise<string[]> =>
        (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok((await names()).includes('fx_echo'));
      await callTool(mcp.client, 'fx_echo', { text: 'x' });
      notified = 0;
      await rm(join(t.workspace, TOOLS, 'fx.json'));
      await writeManifest(t.workspace, 'fy.json', serverManifest('fy', 'normal'));
      await eventually('a list_changed notification', () => notified > 0);
      await eventually('fy_echo replaces fx_echo', async () => {
        const now = await names();
        return now.includes('fy_echo') && !now.some((name) => name.startsWith('fx_'));
      });
      await t.server.audit.flush();
      await eventually('the retired server ended', async () => {
        await t.server.audit.flush();
        const ends = (await t.server.audit.query({ op: 'execution_end', limit: 50 })).records;
        return ends.length >= 1;
      });
    } finally {
      await mcp.close();
    }
  });
});

describe('Sandboxed MCP servers: idle stop', function () {
  this.timeout(180_000);
  let t: TestServer | undefined;

  afterEach(async () => {
    if (t) {
      assert.equal((await t.server.audit.verify()).ok, true, 'the audit log still verifies');
      await t.close();
    }
  });

  it('stops an idle server and starts it again on the next call, its tools still listed meanwhile', async () => {
    const image = ensureToolImage();
    t = await startTestServer({ defaultImage: image, mcpServerLimits: { idleMs: 300 } }, async (ws) => {
      await mkdir(join(ws, 'mcp'));
      await copyFile(FIXTURE, join(ws, 'mcp', 'server.js'));
      await writeManifest(ws, 'fx.json', serverManifest('fx', 'normal'));
    });
    const server = t;
    const agent = (await server.api('/tokens', { method: 'POST', body: { name: 'idler', role: 'agent' } }))
      .body.token;
    await server.api('/policies', {
      method: 'PUT',
      body: { id: 'idle', rules: ['allow read(**)', 'allow tool(fx_*)'] },
    });
    const first = await server.api('/tools/fx_echo', { method: 'POST', body: { text: '1' }, token: agent });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const ends = async (): Promise<number> => {
      await server.server.audit.flush();
      return (await server.server.audit.query({ op: 'execution_end', limit: 50 })).records.length;
    };
    await eventually('the idle server stopped', async () => (await ends()) === 1);
    const mcp = await connectMcp(server.server.mcpUrl, agent);
    try {
      const names = (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(names.includes('fx_echo'), 'its tools stay listed while it is stopped');
      const second = textOf(await mcp.client.callTool({ name: 'fx_echo', arguments: { text: '2' } }));
      assert.equal(second.echo, '2', 'the next call starts it again');
    } finally {
      await mcp.close();
    }
    await server.server.audit.flush();
    const starts = (await server.server.audit.query({ op: 'execution_start', limit: 50 })).records;
    assert.equal(starts.length, 2, 'one start per use after an idle stop');
  });
});
