import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import WebSocket from 'ws';
import type { OutputParsers } from '../../src/core/tools';
import { callTool, connectMcp } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { until } from '../helpers/wait';
import { startTestServer, type TestServer } from '../helpers/server';

const TOOLS = '.mcp-workspace/tools';

/** `echo` with free-form words (no shell anywhere: metacharacters must come out literally). */
const SAY = {
  name: 'say',
  title: 'Say',
  description: 'Prints its words.',
  inputSchema: {
    type: 'object',
    properties: { words: { type: 'array', items: { type: 'string' }, description: 'Words to print.' } },
    required: ['words'],
  },
  argv: ['echo', '{words...}'],
};

/** `cat` of one workspace file, passed after `--`. */
const SHOW = {
  name: 'show',
  description: 'Prints a workspace file.',
  inputSchema: {
    type: 'object',
    properties: {
      file: { type: 'string', format: 'workspace-path' },
      label: { type: 'string', pattern: '^[a-z]+$' },
    },
    required: ['file'],
  },
  argv: ['cat', '{label}', '--', '{file}'],
  annotations: { readOnlyHint: true },
};

/** Retries `check` (100 attempts, 50 ms apart) until it returns true. */
const eventually = (what: string, check: () => boolean | Promise<boolean>): Promise<void> =>
  until(what, check, 100, 50);

async function writeManifest(workspace: string, file: string, manifest: unknown): Promise<void> {
  await mkdir(join(workspace, TOOLS), { recursive: true });
  await writeFile(
    join(workspace, TOOLS, file),
    typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
  );
}

describe('Typed tools: manifests become operations run in the sandbox (real server, real Docker)', function () {
  this.timeout(120_000);
  let t: TestServer;
  let agent: string;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<void> {
    t = await startTestServer({ defaultImage: TEST_IMAGE, ...options }, async (ws) => {
      await mkdir(join(ws, 'sub'));
      await writeFile(join(ws, 'sub', 'data.txt'), 'from the workspace\n');
      await writeManifest(ws, 'say.json', SAY);
      await writeManifest(ws, 'show.json', SHOW);
    });
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'tooler', role: 'agent' } })).body.token;
  }

  const setRules = (...rules: string[]): Promise<void> => t.setRules('tools', ...rules);

  afterEach(async () => {
    if (t) await t.closeVerified();
  });

  it('reports each broken manifest without taking the others down, and exposes good ones everywhere', async () => {
    await start();
    const broken: Record<string, unknown> = {
      'not-json.json': '{"name": "x",',
      'unknown-field.json': { ...SAY, name: 'extra', shell: true },
      'bad-schema.json': {
        ...SAY,
        name: 'badschema',
        inputSchema: { type: 'object', properties: { a: { type: 'object' } } },
      },
      'spliced.json': { ...SAY, name: 'spliced', argv: ['echo', '--msg={words...}'] },
      'path-first.json': { ...SHOW, name: 'pathfirst', argv: ['cat', '{file}', '--', '{label}'] },
      'builtin.json': { ...SAY, name: 'read_file' },
      'parser.json': { ...SAY, name: 'parsed', parser: { type: 'nonesuch' } },
      'bad-pattern.json': {
        ...SHOW,
        name: 'badpattern',
        inputSchema: {
          type: 'object',
          properties: {
            file: { type: 'string', format: 'workspace-path' },
            label: { type: 'string', pattern: '(a)\\1' },
          },
        },
      },
      'zz-dup.json': { ...SAY, description: 'A second say.' },
    };
    for (const [file, manifest] of Object.entries(broken)) await writeManifest(t.workspace, file, manifest);
    await eventually('every broken manifest reported', () => t.server.tools.problems.length === 9);
    const problems = Object.fromEntries(
      t.server.tools.problems.map((p) => [p.source.split('/').pop(), p.message]),
    );
    assert.match(problems['not-json.json']!, /not valid JSON/);
    assert.match(problems['unknown-field.json']!, /shell/);
    assert.match(problems['bad-schema.json']!, /type/);
    assert.match(problems['spliced.json']!, /whole argv items/);
    assert.match(problems['path-first.json']!, /before a "--"/);
    assert.match(problems['builtin.json']!, /built-in operation/);
    assert.match(problems['parser.json']!, /"nonesuch" is unknown/);
    assert.match(problems['bad-pattern.json']!, /linear-time/);
    assert.match(problems['zz-dup.json']!, /already taken/);
    assert.deepEqual(
      t.server.tools.list().map((tool) => tool.name),
      ['say', 'show'],
      'the good manifests stay loaded',
    );
    await t.server.audit.flush();
    const records = (await t.server.audit.query({ op: 'tools_changed', limit: 50 })).records;
    assert.ok(
      records.some((r) => JSON.stringify(r.params).includes('parser.json')),
      'broken manifests are recorded in the audit log',
    );
    assert.ok(t.logs.includes('tool manifest not loaded'), 'and in the server log');

    // OpenAPI lists each tool with the schema from its manifest.
    const openApi = (await t.api('/openapi.json')).body;
    const say = openApi.paths['/tools/say'].post;
    assert.deepEqual(say.requestBody.content['application/json'].schema.required, ['words']);
    assert.ok(openApi.paths['/tools/show'], 'show is documented');
    assert.equal(openApi.paths['/tools/badschema'], undefined);
  });

  it('passes shell metacharacters as literal argv items (busybox echo in the container)', async () => {
    await start();
    await setRules('allow read(**)', 'allow tool(say)');
    const words = [';', '$(id)', '`id`', '&&', 'rm', '-rf', '/', '|', '>', 'pwned', "'quoted'", '$HOME'];
    const refused = await t.api('/tools/say', { method: 'POST', body: { words }, token: agent });
    assert.equal(refused.status, 400, 'a word starting with "-" is refused');
    assert.equal(refused.body.error.code, 'INVALID_ARGUMENT');
    assert.match(refused.body.error.message, /starts with "-"/);
    const literal = words.filter((w) => w !== '-rf');
    const res = await t.api('/tools/say', { method: 'POST', body: { words: literal }, token: agent });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stdout, literal.join(' ') + '\n');
    assert.equal(res.body.exitCode, 0);
    assert.equal(res.body.tool, 'say');
    assert.deepEqual(res.body.diagnostics, []);
    assert.equal(await lstat(join(t.workspace, 'pwned')).catch(() => null), null, 'no redirection happened');

    // The same tool over WebSocket (op "tool" and the tool's own name) and MCP.
    const ws = new WebSocket(t.url.replace('http', 'ws') + '/ws', {
      headers: { authorization: `Bearer ${agent}` },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: any[] = [];
    ws.on('message', (raw) => replies.push(JSON.parse(raw.toString())));
    ws.send(JSON.stringify({ id: 1, op: 'tool', params: { name: 'say', arguments: { words: ['a;b'] } } }));
    ws.send(JSON.stringify({ id: 2, op: 'say', params: { words: ['$(id)'] } }));
    await eventually('both WebSocket results', () => replies.filter((r) => r.type === 'result').length === 2);
    ws.close();
    assert.equal(replies.find((r) => r.id === 1 && r.type === 'result').result.stdout, 'a;b\n');
    assert.equal(replies.find((r) => r.id === 2 && r.type === 'result').result.stdout, '$(id)\n');
    assert.ok(
      replies.some((r) => r.id === 1 && r.type === 'output'),
      'output streamed',
    );
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      const result = await callTool(mcp.client, 'say', { words: ['`id`'] });
      assert.equal(result.stdout, '`id`\n');
    } finally {
      await mcp.close();
    }
    await t.server.audit.flush();
    const runs = (await t.server.audit.query({ op: 'run_tool', limit: 20 })).records;
    assert.ok(
      runs.some(
        (r) => JSON.stringify(r.params) === JSON.stringify({ arguments: { words: ['$(id)'] }, tool: 'say' }),
      ),
      'calls are audited with their arguments',
    );
    assert.ok(runs.every((r) => r.transport !== undefined));
    const starts = (await t.server.audit.query({ op: 'execution_start', limit: 20 })).records;
    assert.ok(starts.some((r) => (r.params as { shell: boolean }).shell === false));
  });

  it('refuses a tool without `allow tool(NAME)`, exec rules grant nothing, tool(*) grants manifest tools', async () => {
    await start();
    await setRules('allow read(**)', 'allow write(**)', 'allow exec(*)', 'allow tool(show)');
    const denied = await t.api('/tools/say', { method: 'POST', body: { words: ['hi'] }, token: agent });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'POLICY_DENIED');
    assert.match(denied.body.error.message, /tool\(say\)/);
    const caps = (await t.api('/capabilities', { token: agent })).body.tools as string[];
    assert.ok(caps.includes('show') && !caps.includes('say'), 'list_capabilities names only granted tools');
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      const listed = (await mcp.client.listTools()).tools;
      assert.ok(!listed.some((tool) => tool.name === 'say'));
      const show = listed.find((tool) => tool.name === 'show');
      assert.ok(show, 'a granted tool is listed');
      assert.equal(show.annotations?.readOnlyHint, false, 'never read-only for a caller who may write');
      assert.deepEqual(show.inputSchema.required, ['file']);
    } finally {
      await mcp.close();
    }
    await t.server.audit.flush();
    const refusals = (await t.server.audit.query({ op: 'run_tool', decision: 'deny' })).records;
    assert.equal(refusals.length, 1, 'the refusal is audited');
    assert.equal(refusals[0]!.rule, null);
    await setRules('allow read(**)', 'allow tool(*)');
    const wildcard = await t.api('/tools/say', { method: 'POST', body: { words: ['hi'] }, token: agent });
    assert.equal(wildcard.status, 200, JSON.stringify(wildcard.body));
    const mcp2 = await connectMcp(t.server.mcpUrl, agent);
    try {
      const show = (await mcp2.client.listTools()).tools.find((tool) => tool.name === 'show');
      assert.equal(
        show?.annotations?.readOnlyHint,
        true,
        'read-only: the manifest says so and the caller cannot write',
      );
    } finally {
      await mcp2.close();
    }
  });

  it('refuses option and path injection: -rf, ../etc/passwd, a symlink out of the workspace', async () => {
    await start();
    await setRules('allow read(**)', 'allow tool(show)');
    await symlink('/etc', join(t.workspace, 'etc-link'));
    await writeFile(join(t.workspace, '-rf'), 'a file named like an option\n');
    const call = (args: unknown) => t.api('/tools/show', { method: 'POST', body: args, token: agent });
    const ok = await call({ file: 'sub/data.txt' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.stdout, 'from the workspace\n');
    const dashed = await call({ file: '-rf' });
    assert.equal(dashed.status, 200, 'a path goes after "--", so it is never an option');
    assert.equal(dashed.body.stdout, 'a file named like an option\n');
    for (const [args, code] of [
      [{ file: '../etc/passwd' }, 'PATH_OUTSIDE_WORKSPACE'],
      [{ file: '/etc/passwd' }, 'PATH_OUTSIDE_WORKSPACE'],
      [{ file: 'etc-link/passwd' }, 'PATH_OUTSIDE_WORKSPACE'],
      [{ file: 'sub/data.txt', label: '-n' }, 'INVALID_ARGUMENT'],
      [{ file: 'sub/data.txt', label: 'UPPER' }, 'INVALID_ARGUMENT'],
      [{ file: 'sub/data.txt', extra: 1 }, 'INVALID_ARGUMENT'],
      [{ file: 7 }, 'INVALID_ARGUMENT'],
      [{}, 'INVALID_ARGUMENT'],
    ] as const) {
      const res = await call(args);
      assert.equal(res.body.error?.code, code, `${JSON.stringify(args)}: ${JSON.stringify(res.body)}`);
    }
    await t.server.audit.flush();
    const starts = (await t.server.audit.query({ op: 'execution_start', limit: 50 })).records;
    assert.equal(starts.length, 2, 'nothing refused ever reached the container');
  });

  it('answers TOOL_UNAVAILABLE naming the program and the image', async () => {
    await start();
    await writeManifest(t.workspace, 'lint.json', {
      name: 'lint',
      description: 'ESLint on some paths.',
      inputSchema: {
        type: 'object',
        properties: { paths: { type: 'array', items: { type: 'string', format: 'workspace-path' } } },
      },
      argv: ['eslint', '--format', 'json', '--', '{paths...}'],
    });
    await eventually('lint loaded', () => t.server.tools.get('lint') !== undefined);
    await setRules('allow read(**)', 'allow tool(lint)');
    const res = await t.api('/tools/lint', { method: 'POST', body: { paths: ['sub'] }, token: agent });
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'TOOL_UNAVAILABLE');
    assert.equal(res.body.error.program, 'eslint');
    assert.equal(res.body.error.image, TEST_IMAGE);
    assert.match(res.body.error.message, /eslint.*mcpw-test-busybox:1/);
  });

  it('lets no agent write a manifest, through the file tools or run_command', async () => {
    await start();
    await setRules('allow read(**)', 'allow write(**)', 'allow exec(*)', 'allow tool(*)');
    const evil = { ...SAY, name: 'evil' };
    const write = await t.api(`/files/${TOOLS}/evil.json`, {
      method: 'PUT',
      body: { content: JSON.stringify(evil) },
      token: agent,
    });
    assert.equal(write.status, 403, JSON.stringify(write.body));
    const move = await t.api('/move', {
      method: 'POST',
      body: { from: 'sub/data.txt', to: `${TOOLS}/evil.json` },
      token: agent,
    });
    assert.equal(move.status, 403);
    const del = await t.api(`/files/${TOOLS}/say.json`, { method: 'DELETE', token: agent });
    assert.equal(del.status, 403);
    const run = await t.api('/execute', {
      method: 'POST',
      body: {
        command: `echo '${JSON.stringify(evil)}' > ${TOOLS}/evil.json; rm -f ${TOOLS}/say.json; mv .mcp-workspace m2; echo done`,
      },
      token: agent,
    });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.match(run.body.stderr, /Read-only file system|Resource busy|Permission denied/);
    assert.deepEqual((await readdir(join(t.workspace, TOOLS))).sort(), ['say.json', 'show.json']);
    assert.equal(t.server.tools.get('evil'), undefined);
    assert.ok(t.server.tools.get('say'), 'the manifests are untouched');
  });

  it('keeps a missing manifest folder unwritable from the container too', async () => {
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await writeFile(join(ws, 'a.txt'), 'a\n');
    });
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'tooler', role: 'agent' } })).body.token;
    await setRules('allow read(**)', 'allow write(**)', 'allow exec(*)');
    const run = await t.api('/execute', {
      method: 'POST',
      body: {
        command: `mkdir -p ${TOOLS} && echo '${JSON.stringify({ ...SAY, name: 'evil' })}' > ${TOOLS}/evil.json; echo rc=$?`,
      },
      token: agent,
    });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(t.server.tools.get('evil'), undefined);
    const found = await lstat(join(t.workspace, TOOLS, 'evil.json')).catch(() => null);
    assert.equal(found, null, 'no manifest appeared on the host');
  });

  it('hot-reloads for a 2025-era session: notifications/tools/list_changed, then tools/list shows the change', async () => {
    await start();
    await setRules('allow read(**)', 'allow tool(*)');
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    let notified = 0;
    mcp.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      notified++;
    });
    try {
      const names = async () => (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok((await names()).includes('say'));
      await writeManifest(t.workspace, 'greet.json', { ...SAY, name: 'greet', description: 'Greets.' });
      await eventually('a list_changed notification', () => notified > 0);
      await eventually('greet listed', async () => (await names()).includes('greet'));
      const result = await callTool(mcp.client, 'greet', { words: ['hello'] });
      assert.equal(result.stdout, 'hello\n');
      notified = 0;
      await writeManifest(t.workspace, 'greet.json', { ...SAY, name: 'greet', description: 'Greets again.' });
      await eventually('a second notification', () => notified > 0);
      await eventually('the new description', async () =>
        (await mcp.client.listTools()).tools.some((tool) => tool.description === 'Greets again.'),
      );
      notified = 0;
      await rm(join(t.workspace, TOOLS, 'greet.json'));
      await eventually('a third notification', () => notified > 0);
      await eventually('greet gone', async () => !(await names()).includes('greet'));
      // A broken change to one manifest leaves the others in place.
      await writeManifest(t.workspace, 'say.json', '{broken');
      await eventually('say reported', () =>
        t.server.tools.problems.some((p) => p.source.endsWith('say.json')),
      );
      assert.ok((await names()).includes('show'));
      assert.ok(!(await names()).includes('say'));
    } finally {
      await mcp.close();
    }
  });

  it('hot-reloads for a 2026-07-28 client (SDK v2): the list-changed notification', async () => {
    await start();
    await setRules('allow read(**)', 'allow tool(*)');
    const seen: string[][] = [];
    const client = new ClientV2(
      { name: 'v2-tools', version: '1.0.0' },
      {
        versionNegotiation: { mode: { pin: '2026-07-28' } },
        listChanged: {
          tools: { onChanged: (_error, tools) => void (tools && seen.push(tools.map((tool) => tool.name))) },
        },
      },
    );
    const transport = new TransportV2(new URL(t.server.mcpUrl), {
      requestInit: { headers: { Authorization: `Bearer ${agent}` } },
    });
    await client.connect(transport);
    try {
      assert.ok((await client.listTools()).tools.some((tool) => tool.name === 'say'));
      // The listen stream opens in the background: change again until the client has heard one
      // (the client debounces notifications, so each change gets a second to arrive).
      for (let attempt = 0; attempt < 30 && !seen.some((names) => names.includes('greet')); attempt++) {
        await writeManifest(t.workspace, 'greet.json', {
          ...SAY,
          name: 'greet',
          description: `Greets (${attempt}).`,
        });
        for (let wait = 0; wait < 20 && !seen.some((names) => names.includes('greet')); wait++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.ok(
        seen.some((names) => names.includes('greet')),
        'the 2026 client heard of greet',
      );
      const result = (await client.callTool({ name: 'greet', arguments: { words: ['v2'] } })) as {
        structuredContent: { stdout: string };
      };
      assert.equal(result.structuredContent.stdout, 'v2\n');
    } finally {
      await client.close();
    }
  });

  it('offers detected tools only on opt-in, never through allow tool(*)', async () => {
    t = await startTestServer({ defaultImage: TEST_IMAGE, detectTools: true }, async (ws) => {
      await writeFile(
        join(ws, 'package.json'),
        JSON.stringify({ scripts: { build: 'tsc', 'odd:name': 'x' } }),
      );
      await writeFile(join(ws, 'Makefile'), 'all: build\n\techo hi\nbuild:\n\techo b\nX := 1\n');
      await writeFile(join(ws, 'go.mod'), 'module x\n');
    });
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'tooler', role: 'agent' } })).body.token;
    assert.deepEqual(
      t.server.tools.list().map((tool) => tool.name),
      ['go_test', 'make_all', 'make_build', 'npm_run_build'],
    );
    await setRules('allow read(**)', 'allow tool(*)');
    const denied = await t.api('/tools/npm_run_build', { method: 'POST', body: {}, token: agent });
    assert.equal(denied.status, 403);
    assert.match(denied.body.error.message, /allow tool\(npm_run_build\)/);
    const caps = (await t.api('/capabilities', { token: agent })).body.tools as string[];
    assert.ok(!caps.includes('npm_run_build'));
    await setRules('allow read(**)', 'allow tool(npm_run_build)');
    const granted = await t.api('/tools/npm_run_build', { method: 'POST', body: {}, token: agent });
    assert.equal(granted.body.error?.code, 'TOOL_UNAVAILABLE', 'granted, and busybox has no npm');
    // A new script appears without a restart.
    await writeFile(
      join(t.workspace, 'package.json'),
      JSON.stringify({ scripts: { build: 'tsc', test: 'x' } }),
    );
    await eventually('npm_run_test detected', () => t.server.tools.get('npm_run_test') !== undefined);

    // Without the opt-in nothing is detected.
    await t.close();
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await writeFile(join(ws, 'package.json'), JSON.stringify({ scripts: { build: 'tsc' } }));
    });
    assert.deepEqual(t.server.tools.list(), []);
  });

  it('takes manifests from the owner settings too (the VS Code machine setting)', async () => {
    t = await startTestServer({
      defaultImage: TEST_IMAGE,
      tools: [{ ...SAY, name: 'from_settings' }, { name: 'bad' }],
    });
    assert.ok(t.server.tools.get('from_settings'));
    assert.deepEqual(
      t.server.tools.problems.map((p) => p.source),
      ['settings[1]'],
    );
    await t.server.tools.setSettingsManifests([]);
    assert.equal(t.server.tools.get('from_settings'), undefined);
    // The manifest folder may appear after the start: it is watched from the workspace root.
    await writeManifest(t.workspace, 'late.json', { ...SAY, name: 'late' });
    await eventually('a manifest in a new folder', () => t.server.tools.get('late') !== undefined);
    await rm(join(t.workspace, '.mcp-workspace'), { recursive: true });
    await eventually('the folder removed', () => t.server.tools.get('late') === undefined);
    await writeManifest(t.workspace, 'again.json', { ...SAY, name: 'again' });
    await eventually('a folder created again', () => t.server.tools.get('again') !== undefined);
  });

  it('validates parser specs at load and returns what the output parsers found, with the run context', async () => {
    const contexts: unknown[] = [];
    // A minimal parser set for the wiring: `lines` turns "PATH:LINE:MESSAGE" lines into diagnostics.
    const outputParsers: OutputParsers = {
      validate: (spec) => {
        if (spec.type !== 'lines') throw new Error(`unknown parser type "${spec.type}"`);
      },
      parse: (_spec, output, ctx) => {
        contexts.push(ctx);
        const diagnostics = output.stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [path = '', at = '1', message = ''] = line.split(':');
            return {
              path,
              line: Number(at),
              column: 1,
              severity: 'error' as const,
              message,
              source: ctx.toolName,
            };
          });
        return { diagnostics, tests: { passed: 1, failed: diagnostics.length, skipped: 0 } };
      },
    };
    t = await startTestServer({ defaultImage: TEST_IMAGE, outputParsers }, async (ws) => {
      await mkdir(join(ws, 'sub'));
      await writeManifest(ws, 'report.json', {
        ...SAY,
        name: 'report',
        cwd: 'sub',
        parser: { type: 'lines' },
      });
      await writeManifest(ws, 'other.json', { ...SAY, name: 'other', parser: { type: 'nope' } });
    });
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'tooler', role: 'agent' } })).body.token;
    assert.deepEqual(
      t.server.tools.problems.map((p) => [p.source, p.message]),
      [['.mcp-workspace/tools/other.json', 'its parser cannot be used: unknown parser type "nope"']],
    );
    await setRules('allow read(**)', 'allow tool(report)');
    const res = await t.api('/tools/report', {
      method: 'POST',
      body: { words: ['a.ts:3:bad'] },
      token: agent,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.diagnostics, [
      { path: 'a.ts', line: 3, column: 1, severity: 'error', message: 'bad', source: 'report' },
    ]);
    assert.deepEqual(res.body.tests, { passed: 1, failed: 1, skipped: 0 });
    const name = t.workspace.split('/').pop();
    assert.deepEqual(contexts, [
      { containerWorkspace: `/workspaces/${name}`, cwd: 'sub', toolName: 'report' },
    ]);
  });
});
