import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  compileParser,
  PARSER_LIMITS,
  parseOutput,
  toWorkspacePath,
  type ParserSpec,
  type ToolOutput,
} from '../../src/core/tools/parsers';
import { parsedResultSchema, type Diagnostic } from '../../src/protocol/diagnostics';
import { WorkspaceError } from '../../src/protocol/errors';

/**
 * Output parsers against real tool output: ESLint, tsc, GCC, node --test and mocha are run here on
 * fixture files (this project's own eslint, typescript and mocha, the machine's gcc); pytest and
 * go are not installed on this machine, so their outputs are recorded samples of pytest 8 and go 1.22.
 */

const ROOT = path.resolve(__dirname, '../..');
const bin = {
  eslint: path.join(ROOT, 'node_modules/eslint/bin/eslint.js'),
  tsc: path.join(ROOT, 'node_modules/typescript/bin/tsc'),
  mocha: path.join(ROOT, 'node_modules/mocha/bin/mocha.js'),
};

/** Runs a program in `cwd` and returns its output as the execution layer would (no colour forced). */
function run(program: string, args: string[], cwd: string): ToolOutput {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  delete env['NODE_OPTIONS'];
  const result = spawnSync(program, args, { cwd, encoding: 'utf8', env, timeout: 120_000 });
  if (result.error) throw result.error;
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.status };
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fs.writeFile(path.join(root, name), content);
  }
}

/** The fields a test compares (a whole diagnostic, message included, unless it says otherwise). */
function brief(d: Diagnostic): string {
  return `${d.path}:${d.line}:${d.column} ${d.severity} ${d.code ?? '-'} [${d.source}]`;
}

function expectInvalid(raw: unknown, fragment: RegExp): void {
  assert.throws(
    () => compileParser(raw),
    (err: unknown) =>
      err instanceof WorkspaceError && err.code === 'INVALID_ARGUMENT' && fragment.test(err.message),
  );
}

describe('tool output parsers', function () {
  this.timeout(120_000);
  let ws: string;

  before(async () => {
    ws = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'mcpw-parsers-')));
  });
  after(async () => {
    await fs.rm(ws, { recursive: true, force: true });
  });

  describe('eslint (real runs of this project\'s eslint with "-f json")', () => {
    let output: ToolOutput;
    before(async () => {
      await writeFiles(ws, {
        'eslint.config.mjs':
          "export default [{ files: ['**/*.js'], languageOptions: { sourceType: 'module' }, " +
          "rules: { 'no-unused-vars': 'error', 'no-undef': 'error', eqeqeq: 'warn' } }];\n",
        'lint/a.js': 'const unused = 1;\nexport function f(a) {\n  return a == missing;\n}\n',
        'lint/sub/b.js': 'export const x = (;\n',
        'lint/clean.js': 'export const ok = 1;\n',
      });
      output = run(process.execPath, [bin.eslint, '-f', 'json', '--', 'lint'], ws);
    });

    it('reads every message with its rule, severity and workspace-relative path', () => {
      assert.equal(output.exitCode, 1, output.stderr);
      const result = parseOutput({ type: 'eslint' }, output, { containerWorkspace: ws });
      assert.deepEqual(result.diagnostics.map(brief), [
        'lint/a.js:1:7 error no-unused-vars [eslint]',
        'lint/a.js:3:12 warning eqeqeq [eslint]',
        'lint/a.js:3:15 error no-undef [eslint]',
        'lint/sub/b.js:1:19 error - [eslint]',
      ]);
      assert.equal(result.diagnostics[2]?.message, "'missing' is not defined.");
      assert.match(result.diagnostics[3]?.message ?? '', /^Parsing error: Unexpected token/);
      assert.equal(result.truncated, false);
      assert.equal(result.outsideWorkspace, 0);
      assert.equal(result.tests, undefined);
      parsedResultSchema.parse(result);
    });

    it('drops files outside the workspace, however the path is spelt', () => {
      const hostile = JSON.stringify([
        {
          filePath: '/etc/passwd',
          messages: [{ ruleId: 'x', severity: 2, message: 'm', line: 1, column: 1 }],
        },
        { filePath: `${ws}/../outside.js`, messages: [{ ruleId: 'x', severity: 2, message: 'm', line: 1 }] },
        { filePath: `${ws}-sibling/a.js`, messages: [{ ruleId: 'x', severity: 2, message: 'm' }] },
        { filePath: '../up.js', messages: [{ ruleId: 'x', severity: 2, message: 'm' }] },
        { filePath: `${ws}/ok/../in.js`, messages: [{ ruleId: null, severity: 1, message: 'kept' }] },
      ]);
      const result = parseOutput(
        { type: 'eslint' },
        { stdout: hostile, stderr: '', exitCode: 1 },
        { containerWorkspace: ws },
      );
      assert.deepEqual(result.diagnostics.map(brief), ['in.js:1:1 warning - [eslint]']);
      assert.equal(result.outsideWorkspace, 4);
    });

    it("reports, without throwing, output that is not the JSON formatter's", () => {
      for (const stdout of ['', 'Oops! Something went wrong!', '{"not":"an array"}', '[{"filePath":1}]']) {
        const result = parseOutput(
          { type: 'eslint' },
          { stdout, stderr: 'boom', exitCode: 2 },
          { containerWorkspace: ws },
        );
        assert.deepEqual(result.diagnostics, []);
        assert.ok(result.parseError, `no parseError for ${JSON.stringify(stdout)}`);
      }
    });
  });

  describe("tsc (real runs of this project's typescript)", () => {
    let plain: ToolOutput;
    before(async () => {
      const project = {
        'tsconfig.json': JSON.stringify({
          compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'preserve' },
          include: ['src'],
        }),
        'src/a.ts':
          'const n: number = "x";\n' +
          'export function g(o: { a: { b: number } }): { a: { b: string } } {\n  return o;\n}\n' +
          'export const k = n;\n',
      };
      await writeFiles(path.join(ws, 'ts'), project);
      await writeFiles(path.join(ws, 'ts/pkg'), project);
      plain = run(process.execPath, [bin.tsc, '-p', '.'], path.join(ws, 'ts'));
    });

    const expected = ['ts/src/a.ts:1:7 error TS2322 [tsc]', 'ts/src/a.ts:3:3 error TS2322 [tsc]'];

    it('reads the plain form with message chains', () => {
      assert.equal(plain.exitCode, 2, plain.stdout);
      assert.match(plain.stdout, /^src\/a\.ts\(1,7\): error TS2322/);
      const result = parseOutput({ type: 'tsc' }, plain, { containerWorkspace: ws, cwd: 'ts' });
      assert.deepEqual(result.diagnostics.map(brief), expected);
      assert.equal(result.diagnostics[0]?.message, "Type 'string' is not assignable to type 'number'.");
      assert.equal(
        result.diagnostics[1]?.message,
        "Type '{ a: { b: number; }; }' is not assignable to type '{ a: { b: string; }; }'.\n" +
          "The types of 'a.b' are incompatible between these types.\n" +
          "Type 'number' is not assignable to type 'string'.",
      );
    });

    it('reads the --pretty form (colours, code frames) to the same diagnostics', () => {
      const pretty = run(process.execPath, [bin.tsc, '-p', '.', '--pretty'], path.join(ws, 'ts'));
      assert.ok(pretty.stdout.includes('\u001b['), 'tsc --pretty printed no colours');
      const ctx = { containerWorkspace: ws, cwd: 'ts' };
      assert.deepEqual(parseOutput({ type: 'tsc' }, pretty, ctx), parseOutput({ type: 'tsc' }, plain, ctx));
    });

    it("maps paths relative to the run's working directory", () => {
      const output = run(process.execPath, [bin.tsc, '-p', '.'], path.join(ws, 'ts/pkg'));
      const result = parseOutput({ type: 'tsc' }, output, { containerWorkspace: ws, cwd: 'ts/pkg' });
      assert.deepEqual(
        result.diagnostics.map((d) => d.path),
        ['ts/pkg/src/a.ts', 'ts/pkg/src/a.ts'],
      );
    });

    it('keeps an error that names no file, at the workspace root', () => {
      const output = run(process.execPath, [bin.tsc, '-p', 'missing.json'], path.join(ws, 'ts'));
      assert.notEqual(output.exitCode, 0);
      const result = parseOutput({ type: 'tsc' }, output, { containerWorkspace: ws, cwd: 'ts' });
      assert.deepEqual(result.diagnostics.map(brief), ['.:1:1 error TS5058 [tsc]']);
      assert.match(result.diagnostics[0]?.message ?? '', /missing\.json/);
    });
  });

  describe("gcc (real runs of the machine's compiler)", () => {
    before(async () => {
      await writeFiles(path.join(ws, 'c'), {
        'inc/h.h': 'static int broken(void) { return 1 }\n',
        'm.c': '#include "inc/h.h"\nint main(void) {\n  int unused;\n  return broken();\n}\n',
      });
    });

    it('reads errors and warnings with their -W flag, in headers too', () => {
      const output = run('gcc', ['-Wall', '-c', 'm.c', '-o', '/dev/null'], path.join(ws, 'c'));
      assert.equal(output.exitCode, 1, output.stderr);
      const result = parseOutput({ type: 'gcc' }, output, { containerWorkspace: ws, cwd: 'c' });
      assert.deepEqual(result.diagnostics.map(brief), [
        'c/inc/h.h:1:35 error - [gcc]',
        'c/m.c:3:7 warning -Wunused-variable [gcc]',
      ]);
      assert.match(result.diagnostics[0]?.message ?? '', /^expected .;. before .}. token$/);
      assert.match(result.diagnostics[1]?.message ?? '', /^unused variable .unused.$/);
    });

    it('reads coloured output to the same diagnostics', () => {
      const cwd = path.join(ws, 'c');
      const plain = run('gcc', ['-Wall', '-c', 'm.c', '-o', '/dev/null'], cwd);
      const coloured = run(
        'gcc',
        ['-Wall', '-fdiagnostics-color=always', '-c', 'm.c', '-o', '/dev/null'],
        cwd,
      );
      assert.ok(coloured.stderr.includes('\u001b['));
      const ctx = { containerWorkspace: ws, cwd: 'c' };
      assert.deepEqual(parseOutput({ type: 'gcc' }, coloured, ctx), parseOutput({ type: 'gcc' }, plain, ctx));
    });

    it('gives the last flag of a Clang-style [-Werror,-Wflag] as the code, and notes as info', () => {
      const stderr =
        "src/x.c:2:9: error: unused variable 'y' [-Werror,-Wunused-variable]\n" +
        'src/x.c:1:5: note: previous declaration is here\n' +
        'src/x.c:7: warning: line without a column\n';
      const result = parseOutput(
        { type: 'gcc' },
        { stdout: '', stderr, exitCode: 1 },
        { containerWorkspace: ws },
      );
      assert.deepEqual(result.diagnostics.map(brief), [
        'src/x.c:2:9 error -Wunused-variable [gcc]',
        'src/x.c:1:5 info - [gcc]',
        'src/x.c:7:1 warning - [gcc]',
      ]);
    });
  });

  describe('test runners', () => {
    before(async () => {
      await writeFiles(path.join(ws, 'tests'), {
        'n.test.mjs':
          "import { test } from 'node:test';\nimport assert from 'node:assert';\n" +
          "test('passes', () => {});\ntest('passes too', () => {});\n" +
          "test('fails', () => { assert.equal(1, 2); });\n" +
          "test('skipped', { skip: true }, () => {});\ntest('todo', { todo: true }, () => {});\n",
        'm.test.js':
          "const assert = require('node:assert');\ndescribe('suite', () => {\n" +
          "  it('one', () => {});\n  it('two', () => {});\n" +
          "  it('fails', () => { assert.equal(1, 2); });\n  it('pending');\n});\n",
      });
    });

    it('node --test: TAP and spec reporters give the same counts', () => {
      const cwd = path.join(ws, 'tests');
      for (const reporter of ['tap', 'spec']) {
        const output = run(process.execPath, ['--test', `--test-reporter=${reporter}`, 'n.test.mjs'], cwd);
        assert.equal(output.exitCode, 1, output.stdout);
        const result = parseOutput({ type: 'node-test' }, output, { containerWorkspace: ws });
        assert.deepEqual(result.tests, { passed: 2, failed: 1, skipped: 2 }, reporter);
      }
    });

    it('mocha: the spec reporter summary', () => {
      const output = run(process.execPath, [bin.mocha, '--no-config', 'm.test.js'], path.join(ws, 'tests'));
      assert.equal(output.exitCode, 1, output.stdout);
      const result = parseOutput({ type: 'mocha' }, output, { containerWorkspace: ws });
      assert.deepEqual(result.tests, { passed: 2, failed: 1, skipped: 1 });
    });

    it('pytest (recorded pytest 8 output): the final summary, verbose and -q', () => {
      const verbose = [
        '============================= test session starts ==============================',
        'platform linux -- Python 3.11.2, pytest-8.3.3, pluggy-1.5.0',
        'rootdir: /workspaces/app',
        'collected 8 items',
        '',
        'tests/test_math.py ..F.s.xE                                               [100%]',
        '',
        '==================================== ERRORS ====================================',
        '_________________________ ERROR at setup of test_db __________________________',
        '=================================== FAILURES ===================================',
        '_________________________________ test_divide __________________________________',
        'E       assert 0.5 == 1',
        'tests/test_math.py:9: AssertionError',
        '=========================== short test summary info ============================',
        'FAILED tests/test_math.py::test_divide - assert 0.5 == 1',
        'ERROR tests/test_math.py::test_db',
        '===== 1 failed, 4 passed, 1 skipped, 1 xfailed, 1 warning, 1 error in 0.05s =====',
        '',
      ].join('\n');
      const quiet = '..F.s.xE\n1 failed, 4 passed, 1 skipped, 1 xfailed, 1 warning, 1 error in 0.05s\n';
      for (const stdout of [verbose, quiet]) {
        const result = parseOutput(
          { type: 'pytest' },
          { stdout, stderr: '', exitCode: 1 },
          { containerWorkspace: ws },
        );
        assert.deepEqual(result.tests, { passed: 4, failed: 2, skipped: 2 });
      }
      const none = parseOutput(
        { type: 'pytest' },
        { stdout: 'collected 0 items\n', stderr: '', exitCode: 5 },
        { containerWorkspace: ws },
      );
      assert.equal(none.tests, undefined);
    });

    it('go test (recorded go 1.22 -v output): PASS/FAIL/SKIP lines and packages that did not build', () => {
      const stdout = [
        '=== RUN   TestAdd',
        '--- PASS: TestAdd (0.00s)',
        '=== RUN   TestSub',
        '    math_test.go:14: Sub(3, 1) = 1, want 2',
        '--- FAIL: TestSub (0.00s)',
        '=== RUN   TestTable',
        '=== RUN   TestTable/zero',
        '=== RUN   TestTable/neg',
        '    math_test.go:25: skipping negative case',
        '--- PASS: TestTable (0.00s)',
        '    --- PASS: TestTable/zero (0.00s)',
        '    --- SKIP: TestTable/neg (0.00s)',
        'FAIL',
        'FAIL\texample.com/calc\t0.002s',
        'ok  \texample.com/calc/util\t0.001s',
        '# example.com/calc/broken',
        'broken/b.go:3:1: syntax error: non-declaration statement outside function body',
        'FAIL\texample.com/calc/broken [build failed]',
        'FAIL',
        '',
      ].join('\n');
      const result = parseOutput(
        { type: 'go-test' },
        { stdout, stderr: '', exitCode: 1 },
        { containerWorkspace: ws },
      );
      assert.deepEqual(result.tests, { passed: 3, failed: 2, skipped: 1 });
    });

    it('gives no counts when the output has no summary', () => {
      const output = { stdout: 'npm ERR! missing script: test\n', stderr: '', exitCode: 1 };
      for (const type of ['node-test', 'mocha', 'pytest', 'go-test'] as const) {
        assert.equal(parseOutput({ type }, output, { containerWorkspace: ws }).tests, undefined, type);
      }
    });
  });

  describe('regex (a problem matcher on the linear-time engine)', () => {
    const spec = {
      type: 'regex',
      pattern: String.raw`^([^:\s]+):(\d+)(?::(\d+))?: (\w+)(?: \[([\w-]+)\])?: (.*)$`,
      file: 1,
      line: 2,
      column: 3,
      severity: 4,
      code: 5,
      message: 6,
      defaultSeverity: 'warning',
    };

    it('reads each field by group number, optional groups included', () => {
      const stdout =
        'lib/a.py:3: error: no column here\n' +
        'lib/b.py:4:9: note [W042]: with a code\n' +
        'lib/c.py:5:2: shout: unknown severity word\n' +
        'unrelated line\n';
      const result = compileParser(spec).parse(
        { stdout, stderr: 'lib/d.py:1:1: warn: from stderr\n', exitCode: 1 },
        { containerWorkspace: '/workspaces/app', toolName: 'mylint' },
      );
      assert.deepEqual(
        result.diagnostics.map((d) => `${brief(d)} ${d.message}`),
        [
          'lib/a.py:3:1 error - [mylint] no column here',
          'lib/b.py:4:9 info W042 [mylint] with a code',
          'lib/c.py:5:2 warning - [mylint] unknown severity word',
          'lib/d.py:1:1 warning - [mylint] from stderr',
        ],
      );
    });

    it('reads only the stream it names, and its own source name', () => {
      const parser = compileParser({ ...spec, stream: 'stderr', source: 'pylint' });
      const result = parser.parse(
        { stdout: 'a.py:1:1: error: out\n', stderr: 'b.py:2:2: error: err\n', exitCode: 1 },
        { containerWorkspace: '/workspaces/app', toolName: 'ignored' },
      );
      assert.deepEqual(result.diagnostics.map(brief), ['b.py:2:2 error - [pylint]']);
      parser.dispose();
    });

    it('runs a pattern that is catastrophic for a backtracking engine in linear time', () => {
      const parser = compileParser({ type: 'regex', pattern: '^(a+)+$', file: 1, message: 1 });
      const line = `${'a'.repeat(PARSER_LIMITS.maxLineChars - 1)}b\n`;
      const result = parser.parse(
        { stdout: line.repeat(50), stderr: '', exitCode: 0 },
        { containerWorkspace: '/w' },
      );
      assert.deepEqual(result.diagnostics, []);
      parser.dispose();
    });

    it('refuses bad specifications when the manifest loads, saying what to fix', () => {
      expectInvalid({ type: 'regex', pattern: '(a', file: 1, message: 1 }, /does not compile/);
      expectInvalid({ type: 'regex', pattern: '(?=a)(b)', file: 1, message: 1 }, /look-around/);
      expectInvalid({ type: 'regex', pattern: '(a)\\1', file: 1, message: 1 }, /does not compile/);
      expectInvalid({ type: 'regex', pattern: 'a)|(b', file: 1, message: 1 }, /does not compile/);
      expectInvalid({ type: 'regex', pattern: '(a)', file: 1, message: 2 }, /group 2.*1 capture group/);
      expectInvalid({ type: 'regex', pattern: '(a)', file: 0, message: 1 }, /parser\.file/);
      expectInvalid({ type: 'regex', pattern: 'x'.repeat(501), file: 1, message: 1 }, /parser\.pattern/);
      expectInvalid({ type: 'regex', pattern: '(a)', file: 1 }, /parser\.message/);
      expectInvalid({ type: 'regex', pattern: '(a)', file: 1, message: 1, shell: 'rm' }, /invalid at parser/);
      expectInvalid({ type: 'eslint', format: 'stylish' }, /invalid at parser/);
      expectInvalid({ type: 'junit' }, /"junit" is unknown.*eslint, tsc, gcc, regex/);
      expectInvalid({}, /no "type"/);
      expectInvalid('eslint', /no "type"/);
    });
  });

  describe('bounds', () => {
    const ctx = { containerWorkspace: '/workspaces/app' };

    it('caps the number of diagnostics and says so', () => {
      const stderr = Array.from({ length: 1500 }, (_, i) => `a.c:${i + 1}:1: warning: w${i}`).join('\n');
      const result = parseOutput({ type: 'gcc' }, { stdout: '', stderr, exitCode: 0 }, ctx);
      assert.equal(result.diagnostics.length, PARSER_LIMITS.maxDiagnostics);
      assert.equal(result.diagnostics.at(-1)?.line, PARSER_LIMITS.maxDiagnostics);
      assert.equal(result.truncated, true);
    });

    it('cuts long messages and codes', () => {
      const stderr = `a.c:1:1: error: ${'m'.repeat(5000)} [-W${'x'.repeat(500)}]\n`;
      const [d] = parseOutput({ type: 'gcc' }, { stdout: '', stderr, exitCode: 1 }, ctx).diagnostics;
      assert.equal(d?.message.length, PARSER_LIMITS.maxMessageChars);
      assert.ok(d?.message.endsWith('…'));
      assert.equal(d?.code?.length, PARSER_LIMITS.maxCodeChars);
    });

    it('parses only the first part of a huge output, at a line end', () => {
      const line = 'src/a.ts(1,1): error TS1000: filler message of some length.......................\n';
      const stdout = line.repeat(Math.ceil((PARSER_LIMITS.maxOutputChars * 1.5) / line.length));
      const result = parseOutput({ type: 'tsc' }, { stdout, stderr: '', exitCode: 2 }, ctx);
      assert.equal(result.truncated, true);
      assert.ok(
        result.diagnostics.every((d) => d.message === 'filler message of some length.......................'),
      );
    });

    it('keeps escape sequences and control characters out of paths and messages', () => {
      const stderr = 'a\u001b]8;;file:///etc/passwd\u0007.c:1:1: error: bad\u0008 thing\n';
      const result = parseOutput({ type: 'gcc' }, { stdout: '', stderr, exitCode: 1 }, ctx);
      assert.deepEqual(
        result.diagnostics.map((d) => `${d.path} ${d.message}`),
        ['a.c bad\ufffd thing'],
      );
    });

    it('survives hostile values in ESLint JSON positions', () => {
      const stdout = JSON.stringify([
        {
          filePath: '/workspaces/app/x.js',
          messages: [
            { ruleId: 'r', severity: 2, message: 'm', line: -4, column: 1.5 },
            { ruleId: 'r', severity: 7, message: 'm', line: 1e300, column: 3 },
          ],
        },
      ]);
      const result = parseOutput({ type: 'eslint' }, { stdout, stderr: '', exitCode: 1 }, ctx);
      assert.deepEqual(result.diagnostics.map(brief), [
        'x.js:1:1 error r [eslint]',
        'x.js:1:3 error r [eslint]',
      ]);
    });
  });

  describe('toWorkspacePath', () => {
    const cases: [string, string, string | null][] = [
      ['/workspaces/app/src/a.ts', '.', 'src/a.ts'],
      ['/workspaces/app/', '.', '.'],
      ['/workspaces/app', 'sub', '.'],
      ['/workspaces/app/./src//b.ts', '.', 'src/b.ts'],
      ['/workspaces/app/../other/a.ts', '.', null],
      ['/workspaces/application/a.ts', '.', null],
      ['/etc/passwd', '.', null],
      ['src/a.ts', '.', 'src/a.ts'],
      ['./src/a.ts', 'pkg', 'pkg/src/a.ts'],
      ['../x.ts', 'pkg', 'x.ts'],
      ['../x.ts', '.', null],
      ['../../x.ts', 'pkg', null],
      ['a\u0000b', '.', null],
      ['', '.', null],
    ];
    for (const [reported, cwd, expected] of cases) {
      it(`${JSON.stringify(reported)} from ${cwd} -> ${JSON.stringify(expected)}`, () => {
        assert.equal(toWorkspacePath(reported, { containerWorkspace: '/workspaces/app', cwd }), expected);
      });
    }
  });

  it('every parser type parses empty output to an empty, schema-valid result', () => {
    const specs: ParserSpec[] = [
      { type: 'eslint' },
      { type: 'tsc' },
      { type: 'gcc' },
      { type: 'regex', pattern: '(x)', stream: 'both', file: 1, message: 1, defaultSeverity: 'error' },
      { type: 'node-test' },
      { type: 'mocha' },
      { type: 'pytest' },
      { type: 'go-test' },
    ];
    for (const spec of specs) {
      const result = parseOutput(spec, { stdout: '', stderr: '', exitCode: 0 }, { containerWorkspace: '/w' });
      parsedResultSchema.parse(result);
      assert.deepEqual(result.diagnostics, [], spec.type);
    }
  });
});

describe('scripts/tool-image-files.js (what the tool image copies)', () => {
  it('lists eslint, typescript and, for every listed package, each dependency it needs', () => {
    const out = spawnSync(process.execPath, [path.join(ROOT, 'scripts/tool-image-files.js'), ROOT], {
      encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    const listed = new Map(
      out.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('\t') as [string, string]),
    );
    assert.ok(listed.has('node_modules/eslint') && listed.has('node_modules/typescript'));
    for (const [dir, version] of listed) {
      const manifest = JSON.parse(readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8'));
      assert.equal(manifest.version, version, dir);
      for (const dep of Object.keys(manifest.dependencies ?? {})) {
        const candidates = [];
        for (let at = dir; at !== '.' && at !== ''; at = path.dirname(at)) {
          candidates.push(path.join(at, 'node_modules', dep));
        }
        candidates.push(path.join('node_modules', dep));
        assert.ok(
          candidates.some((c) => listed.has(c)),
          `${dir} needs ${dep}, which the image would lack`,
        );
      }
    }
  });
});
