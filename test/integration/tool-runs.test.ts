import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { BUILT_IN_PARSERS, type OutputParsers, type ToolRunReport } from '../../src/core/tools';
import { callTool, connectMcp } from '../helpers/clients';
import { ensureToolImage } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * The in-process feed of finished typed-tool runs (what the VS Code Problems panel shows): real
 * tool runs in the typed-tools test image, called by agents over MCP, each reported once with its
 * tool, its caller, its diagnostics on workspace-relative paths and its counts.
 */

const EXAMPLES = resolve(__dirname, '../../examples/tools');

const FIXTURES: Record<string, string> = {
  'eslint.config.mjs':
    "export default [{ files: ['**/*.js'], languageOptions: { sourceType: 'module' }, " +
    "rules: { 'no-unused-vars': 'error', 'no-undef': 'error', eqeqeq: 'warn' } }];\n",
  'broken.config.mjs': 'export default [;\n',
  'lint/a.js': 'const unused = 1;\nexport function f(a) {\n  return a == missing;\n}\n',
  'lint/clean.js': 'export const ok = 1;\n',
};

/** ESLint with a configuration that does not load: no JSON report, so the parser cannot read the run. */
const ESLINT_BROKEN = {
  name: 'eslint_broken',
  description: 'ESLint with a configuration that has a syntax error.',
  inputSchema: {
    type: 'object',
    properties: { paths: { type: 'array', items: { type: 'string', format: 'workspace-path' } } },
    required: ['paths'],
  },
  argv: ['eslint', '--format', 'json', '--config', 'broken.config.mjs', '--', '{paths...}'],
  parser: { type: 'eslint' },
};

/** Prints its words as if they were ESLint's JSON report (output the agent controls). */
const FORGE = {
  name: 'forge',
  description: 'Prints its words, read as an ESLint JSON report.',
  inputSchema: {
    type: 'object',
    properties: { words: { type: 'array', items: { type: 'string' } } },
    required: ['words'],
  },
  argv: ['echo', '{words...}'],
  parser: { type: 'eslint' },
};

/** A tool whose parser (see {@link exploding}) throws. */
const EXPLODE = {
  name: 'explode',
  description: 'Prints a line; its parser fails.',
  inputSchema: { type: 'object', properties: {} },
  argv: ['echo', 'hello'],
  parser: { type: 'gcc' },
};

/** The built-in parsers, except that the gcc parser throws (a parser breaking its contract). */
const exploding: OutputParsers = {
  validate: (spec) => BUILT_IN_PARSERS.validate(spec),
  parse: (spec, output, ctx) => {
    if (spec.type === 'gcc') throw new Error('parser exploded');
    return BUILT_IN_PARSERS.parse(spec, output, ctx);
  },
};

/** Every file under `dir` with the sha256 of its bytes, sorted. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const hash = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    out.push(`${file.slice(dir.length)} ${hash}`);
  }
  return out.sort();
}

function brief(d: ToolRunReport['diagnostics'][number]): string {
  return `${d.path}:${d.line}:${d.column} ${d.severity} ${d.code ?? '-'}`;
}

describe('tool run reports: each finished typed-tool run is reported in process (real server, tool image)', function () {
  this.timeout(300_000);
  let t: TestServer;
  const reports: ToolRunReport[] = [];
  let stop: () => void;
  let before_: string[];
  let outside: string;
  const agents: Record<string, string> = {};
  /** Server log lines with their fields (the helper's own log keeps only the messages). */
  const logged: string[] = [];
  const keep =
    (level: string) =>
    (msg: string, fields?: Record<string, unknown>): void =>
      void logged.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);

  before(async function () {
    this.timeout(900_000);
    const image = ensureToolImage();
    t = await startTestServer(
      {
        defaultImage: image,
        outputParsers: exploding,
        logger: { info: keep('info'), warn: keep('warn'), error: keep('error') },
      },
      async (ws) => {
        for (const [name, content] of Object.entries(FIXTURES)) {
          await mkdir(dirname(join(ws, name)), { recursive: true });
          await writeFile(join(ws, name), content);
        }
        const tools = join(ws, '.mcp-workspace', 'tools');
        await mkdir(tools, { recursive: true });
        await writeFile(join(tools, 'eslint.json'), await readFile(join(EXAMPLES, 'eslint.json')));
        await writeFile(join(tools, 'eslint_broken.json'), JSON.stringify(ESLINT_BROKEN));
        await writeFile(join(tools, 'forge.json'), JSON.stringify(FORGE));
        await writeFile(join(tools, 'explode.json'), JSON.stringify(EXPLODE));
        outside = join(dirname(ws), 'outside.js');
        await writeFile(outside, 'const outside = 1;\n');
      },
    );
    assert.deepEqual(t.server.tools.problems, [], 'every manifest loaded');
    const policy = {
      id: 'tool-runs',
      rules: ['allow read(**)', 'allow tool(*)'],
    };
    assert.equal((await t.api('/policies', { method: 'PUT', body: policy })).status, 200);
    for (const name of ['linter-a', 'linter-b']) {
      const res = await t.api('/tokens', { method: 'POST', body: { name, role: 'agent' } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      agents[name] = res.body.token;
    }
    stop = t.server.toolRuns.onRun((report) => reports.push(report));
    before_ = await snapshot(t.workspace);
  });

  after(async () => {
    stop?.();
    await t?.close();
  });

  /** Calls `tool` as `agent` over MCP and returns its result and the one report it caused. */
  async function run(
    agent: string,
    tool: string,
    args: Record<string, unknown>,
  ): Promise<{ result: any; report: ToolRunReport }> {
    const mcp = await connectMcp(`${t.url}/mcp`, agents[agent]!);
    try {
      const seen = reports.length;
      const result = await callTool(mcp.client, tool, args);
      // The report is emitted before the reply is sent: no waiting.
      const mine = reports.slice(seen).filter((r) => r.executionId === result.executionId);
      assert.equal(mine.length, 1, `one report for the run: ${JSON.stringify(result)}`);
      return { result, report: mine[0]! };
    } finally {
      await mcp.close();
    }
  }

  it('reports a real ESLint run: tool, caller, workspace-relative diagnostics, counts, status', async () => {
    const { result, report } = await run('linter-a', 'eslint', { paths: ['lint'] });
    assert.equal(result.exitCode, 1, result.stderr);
    assert.equal(report.tool, 'eslint');
    assert.deepEqual(report.principal, { kind: 'agent', name: 'linter-a', role: 'agent' });
    assert.equal(report.status, 'exited');
    assert.equal(report.exitCode, 1);
    assert.equal(report.parsed, true);
    assert.deepEqual(report.diagnostics.map(brief), [
      'lint/a.js:1:7 error no-unused-vars',
      'lint/a.js:3:12 warning eqeqeq',
      'lint/a.js:3:15 error no-undef',
    ]);
    assert.deepEqual(report.diagnostics, result.diagnostics, 'the caller got the same diagnostics');
    assert.deepEqual(report.counts, { error: 2, warning: 1, info: 0 });
    assert.equal(report.outsideWorkspace, 0);
    assert.equal(report.truncated, false);
    assert.equal(report.parseError, undefined);
  });

  it('reports a clean run with no diagnostics (what clears the Problems panel)', async () => {
    const { report } = await run('linter-b', 'eslint', { paths: ['lint/clean.js'] });
    assert.equal(report.principal.name, 'linter-b');
    assert.equal(report.status, 'exited');
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.diagnostics, []);
    assert.deepEqual(report.counts, { error: 0, warning: 0, info: 0 });
    assert.equal(report.parseError, undefined);
  });

  it('keeps concurrent runs of two agents apart (each report names its caller and its files)', async () => {
    const [a, b] = await Promise.all([
      run('linter-a', 'eslint', { paths: ['lint/a.js'] }),
      run('linter-b', 'eslint', { paths: ['lint/clean.js'] }),
    ]);
    assert.equal(a.report.principal.name, 'linter-a');
    assert.deepEqual(a.report.counts, { error: 2, warning: 1, info: 0 });
    assert.ok(a.report.diagnostics.every((d) => d.path === 'lint/a.js'));
    assert.equal(b.report.principal.name, 'linter-b');
    assert.deepEqual(b.report.diagnostics, []);
    assert.notEqual(a.report.sessionId, b.report.sessionId);
  });

  it('reports a run the parser cannot read (ESLint config error) with parseError, not as clean', async () => {
    const { result, report } = await run('linter-a', 'eslint_broken', { paths: ['lint'] });
    assert.equal(result.exitCode, 2, result.stdout + result.stderr);
    assert.match(report.parseError ?? '', /no JSON report/);
    assert.deepEqual(report.diagnostics, []);
    assert.equal(report.status, 'exited');
  });

  it('survives a parser that throws: the run still returns, reported with the failure', async () => {
    const { result, report } = await run('linter-a', 'explode', {});
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, 'hello\n');
    assert.deepEqual(result.diagnostics, []);
    assert.match(report.parseError ?? '', /gcc output parser failed: Internal server error/);
    assert.ok(
      logged.some((line) => line.startsWith('error unexpected error') && line.includes('parser exploded')),
      'the cause is in the server log',
    );
    // The server still runs tools afterwards.
    const again = await run('linter-b', 'eslint', { paths: ['lint/clean.js'] });
    assert.equal(again.report.status, 'exited');
  });

  it('drops files outside the workspace from the report and counts them (output the agent controls)', async () => {
    const forged = JSON.stringify([
      { filePath: '/etc/passwd', messages: [{ ruleId: 'x', severity: 2, message: 'forged', line: 1 }] },
      { filePath: '../outside.js', messages: [{ ruleId: 'x', severity: 2, message: 'forged', line: 1 }] },
      { filePath: 'lint/a.js', messages: [{ ruleId: 'y', severity: 1, message: 'kept', line: 2 }] },
    ]);
    const { report } = await run('linter-b', 'forge', { words: [forged] });
    assert.deepEqual(report.diagnostics.map(brief), ['lint/a.js:2:1 warning y']);
    assert.equal(report.outsideWorkspace, 2);
    assert.deepEqual(report.counts, { error: 0, warning: 1, info: 0 });
  });

  it('stops reporting to a listener that unsubscribed, and one throwing listener harms no run', async () => {
    const seen: string[] = [];
    const off = t.server.toolRuns.onRun((r) => seen.push(r.executionId));
    const offThrowing = t.server.toolRuns.onRun(() => {
      throw new Error('listener broke');
    });
    try {
      const first = await run('linter-a', 'eslint', { paths: ['lint/clean.js'] });
      assert.deepEqual(seen, [first.result.executionId]);
      assert.ok(
        logged.some((line) => line.includes('a tool run listener failed') && line.includes('listener broke')),
      );
    } finally {
      off();
      offThrowing();
    }
    await run('linter-a', 'eslint', { paths: ['lint/clean.js'] });
    assert.equal(seen.length, 1, 'no report after unsubscribing');
  });

  it('left the workspace and the file outside it as they were, and the audit log verifies', async () => {
    assert.deepEqual(await snapshot(t.workspace), before_);
    assert.equal(await readFile(outside, 'utf8'), 'const outside = 1;\n');
    await t.server.audit.flush();
    const runs = await t.server.audit.query({ op: 'run_tool' });
    assert.equal(
      runs.records.length,
      reports.length,
      'one run_tool record per report (every run was reported)',
    );
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });
});
