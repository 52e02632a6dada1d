import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { compileParser } from '../../src/core/tools/parsers';
import { parsedResultSchema, type Diagnostic, type ParsedResult } from '../../src/protocol/diagnostics';
import { callTool, connectMcp } from '../helpers/clients';
import { ensureToolImage } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * The example manifests, installed in the workspace's `.mcp-workspace/tools/` and called as typed
 * tools over MCP, run inside the typed-tools test image (Node 22 + ESLint + tsc + npm, built without
 * a registry); the server's built-in parsers turn their output into diagnostics with
 * workspace-relative paths. The same output parsed here directly must give the same diagnostics.
 */

const EXAMPLES = resolve(__dirname, '../../examples/tools');

interface ExampleManifest {
  name: string;
  argv: string[];
  cwd: string;
  timeoutMs: number;
  env: Record<string, string>;
  parser: unknown;
}

const FIXTURES: Record<string, string> = {
  'eslint.config.mjs':
    "export default [{ files: ['**/*.js'], languageOptions: { sourceType: 'module' }, " +
    "rules: { 'no-unused-vars': 'error', 'no-undef': 'error', eqeqeq: 'warn' } }];\n",
  'lint/a.js': 'const unused = 1;\nexport function f(a) {\n  return a == missing;\n}\n',
  'lint/sub/b.js': 'export const x = (;\n',
  'lint/clean.js': 'export const ok = 1;\n',
  'tsconfig.json': JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'preserve', types: [] },
    include: ['src'],
  }),
  'src/a.ts': 'const n: number = "x";\nexport const k = n;\n',
  'src/deep/b.ts': 'export function g(s: string): number {\n  return s;\n}\n',
  'package.json': JSON.stringify({
    name: 'fixture',
    version: '1.0.0',
    private: true,
    scripts: { test: 'node --test' },
  }),
  'test/n.test.mjs':
    "import { test } from 'node:test';\nimport assert from 'node:assert';\n" +
    "test('passes', () => {});\ntest('passes too', () => {});\n" +
    "test('fails', () => { assert.equal(1, 2); });\ntest('skipped', { skip: true }, () => {});\n",
};

/** Every file under `dir` with the sha256 of its bytes, sorted (to prove nothing was changed). */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    out.push(
      `${file.slice(dir.length)} ${createHash('sha256')
        .update(await readFile(file))
        .digest('hex')}`,
    );
  }
  return out.sort();
}

function brief(d: Diagnostic): string {
  return `${d.path}:${d.line}:${d.column} ${d.severity} ${d.code ?? '-'} ${d.message}`;
}

describe('output parsers on real tool runs in the tool image (real server, run_command over MCP)', function () {
  this.timeout(300_000);
  let image: string;
  let t: TestServer;
  let mcp: Awaited<ReturnType<typeof connectMcp>>;
  let containerWorkspace: string;
  let before_: string[];
  const outside = { path: '', content: 'outside the workspace\n' };

  before(async function () {
    this.timeout(900_000);
    image = ensureToolImage();
    t = await startTestServer({ defaultImage: image }, async (ws) => {
      for (const [name, content] of Object.entries(FIXTURES)) {
        await mkdir(dirname(join(ws, name)), { recursive: true });
        await writeFile(join(ws, name), content);
      }
      // The owner installs the examples as the README says: copied into the protected folder.
      await mkdir(join(ws, '.mcp-workspace', 'tools'), { recursive: true });
      for (const example of ['eslint.json', 'tsc.json', 'npm-test.json']) {
        await writeFile(
          join(ws, '.mcp-workspace', 'tools', example),
          await readFile(join(EXAMPLES, example)),
        );
      }
      outside.path = join(dirname(ws), 'outside.txt');
      await writeFile(outside.path, outside.content);
    });
    const names = await Promise.all(
      ['eslint.json', 'tsc.json', 'npm-test.json'].map(
        async (file) => (JSON.parse(await readFile(join(EXAMPLES, file), 'utf8')) as ExampleManifest).name,
      ),
    );
    const policy = {
      id: 'tool-parsers',
      rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)', ...names.map((n) => `allow tool(${n})`)],
    };
    assert.equal((await t.api('/policies', { method: 'PUT', body: policy })).status, 200);
    mcp = await connectMcp(`${t.url}/mcp`, t.token);
    const pwd = await callTool(mcp.client, 'run_command', { command: 'pwd', args: [] });
    assert.equal(pwd.exitCode, 0, JSON.stringify(pwd));
    containerWorkspace = String(pwd.stdout).trim();
    assert.match(containerWorkspace, /^\/workspaces\/[^/]+$/);
    assert.equal(pwd.image, image);
    before_ = await snapshot(t.workspace);
  });

  after(async () => {
    await mcp?.close();
    await t?.close();
  });

  /**
   * Calls an example manifest as a typed tool over MCP, and parses its raw output here too: the
   * diagnostics and test counts the server returned must be exactly those.
   */
  async function runExample(
    file: string,
    args: Record<string, string[]> = {},
  ): Promise<{ run: any; parsed: ParsedResult }> {
    const manifest = JSON.parse(await readFile(join(EXAMPLES, file), 'utf8')) as ExampleManifest;
    const run = await callTool(mcp.client, manifest.name, args);
    assert.equal(run.status, 'exited', JSON.stringify(run));
    assert.equal(run.truncated, false);
    assert.equal(run.tool, manifest.name);
    const parsed = compileParser(manifest.parser).parse(
      { stdout: run.stdout, stderr: run.stderr, exitCode: run.exitCode },
      { containerWorkspace, cwd: manifest.cwd, toolName: manifest.name },
    );
    parsedResultSchema.parse(parsed);
    assert.deepEqual(run.diagnostics, parsed.diagnostics, 'the server parsed the run the same way');
    assert.deepEqual(run.tests, parsed.tests);
    return { run, parsed };
  }

  it('eslint.json: ESLint in the container, its JSON to diagnostics with workspace-relative paths', async () => {
    const { run, parsed } = await runExample('eslint.json', { paths: ['lint'] });
    assert.equal(run.exitCode, 1, run.stderr);
    assert.ok(
      run.stdout.includes(`"filePath":"${containerWorkspace}/lint/a.js"`),
      'ESLint printed container paths',
    );
    assert.deepEqual(parsed.diagnostics.map(brief), [
      "lint/a.js:1:7 error no-unused-vars 'unused' is assigned a value but never used.",
      "lint/a.js:3:12 warning eqeqeq Expected '===' and instead saw '=='.",
      "lint/a.js:3:15 error no-undef 'missing' is not defined.",
      'lint/sub/b.js:1:19 error - Parsing error: Unexpected token ;',
    ]);
    assert.ok(parsed.diagnostics.every((d) => d.source === 'eslint'));
    assert.equal(parsed.outsideWorkspace, 0);
    assert.equal(parsed.truncated, false);
  });

  it('tsc.json: the TypeScript compiler in the container to diagnostics', async () => {
    const { run, parsed } = await runExample('tsc.json');
    assert.equal(run.exitCode, 2, run.stdout + run.stderr);
    assert.deepEqual(parsed.diagnostics.map(brief), [
      "src/a.ts:1:7 error TS2322 Type 'string' is not assignable to type 'number'.",
      "src/deep/b.ts:2:3 error TS2322 Type 'string' is not assignable to type 'number'.",
    ]);
    assert.ok(parsed.diagnostics.every((d) => d.source === 'tsc'));
  });

  it('npm-test.json: npm test (node --test) in the container to test counts', async () => {
    const { run, parsed } = await runExample('npm-test.json');
    assert.equal(run.exitCode, 1, run.stdout + run.stderr);
    assert.deepEqual(parsed.tests, { passed: 2, failed: 1, skipped: 1 });
    assert.deepEqual(parsed.diagnostics, []);
  });

  it('drops paths a tool prints outside the workspace (output the agent controls)', async () => {
    // What a hostile ESLint plugin or test could print: files outside the workspace folder.
    const forged = JSON.stringify([
      {
        filePath: '/etc/passwd',
        messages: [{ ruleId: 'x', severity: 2, message: 'forged', line: 1, column: 1 }],
      },
      {
        filePath: `${containerWorkspace}/../other/a.js`,
        messages: [{ ruleId: 'x', severity: 2, message: 'forged' }],
      },
      {
        filePath: `${containerWorkspace}/lint/a.js`,
        messages: [{ ruleId: 'y', severity: 1, message: 'kept' }],
      },
    ]);
    const eslint = await callTool(mcp.client, 'run_command', { command: 'echo', args: [forged] });
    const parsed = compileParser({ type: 'eslint' }).parse(
      { stdout: eslint.stdout, stderr: eslint.stderr, exitCode: eslint.exitCode },
      { containerWorkspace },
    );
    assert.deepEqual(parsed.diagnostics.map(brief), ['lint/a.js:1:1 warning y kept']);
    assert.equal(parsed.outsideWorkspace, 2);
    const tsc = await callTool(mcp.client, 'run_command', {
      command: 'echo',
      args: ['../../../etc/shadow(1,1): error TS1005: forged\nsrc/a.ts(2,1): error TS1005: kept'],
      cwd: 'src',
    });
    const tscParsed = compileParser({ type: 'tsc' }).parse(
      { stdout: tsc.stdout, stderr: tsc.stderr, exitCode: tsc.exitCode },
      { containerWorkspace, cwd: 'src' },
    );
    assert.deepEqual(tscParsed.diagnostics.map(brief), ['src/src/a.ts:2:1 error TS1005 kept']);
    assert.equal(tscParsed.outsideWorkspace, 1);
  });

  it('left the workspace and everything outside it as they were, and the audit log verifies', async () => {
    assert.deepEqual(await snapshot(t.workspace), before_);
    assert.equal(await readFile(outside.path, 'utf8'), outside.content);
    await t.server.audit.flush();
    const tools = await t.server.audit.query({ op: 'run_tool' });
    assert.equal(tools.records.length, 3, `audited ${tools.records.length} typed tool calls`);
    const runs = await t.server.audit.query({ op: 'run_command' });
    assert.ok(runs.records.length >= 3, `audited ${runs.records.length} run_command calls`);
    assert.equal((await t.api('/audit/verify')).body.ok, true);
  });
});
