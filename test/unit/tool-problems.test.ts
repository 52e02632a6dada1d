import assert from 'node:assert/strict';
import { countSeverities, type ToolRunReport } from '../../src/core/tools';
import {
  clampToDocument,
  isPlainRelativePath,
  problemsOfRun,
  type ProblemEntry,
} from '../../src/extension/toolProblems';
import type { Diagnostic } from '../../src/protocol/diagnostics';

function report(diagnostics: Diagnostic[], over: Partial<ToolRunReport> = {}): ToolRunReport {
  return {
    tool: 'lint',
    principal: { kind: 'agent', name: 'bot', role: 'agent' },
    sessionId: 's1',
    executionId: 'e1',
    status: 'exited',
    exitCode: diagnostics.length > 0 ? 1 : 0,
    diagnostics,
    counts: countSeverities(diagnostics),
    outsideWorkspace: 0,
    truncated: false,
    parsed: true,
    finishedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

function diag(path: string, line: number, column: number, over: Partial<Diagnostic> = {}): Diagnostic {
  return { path, line, column, severity: 'error', message: `at ${path}`, source: 'eslint', ...over };
}

describe('Problems panel mapping of tool runs (pure)', () => {
  it('groups diagnostics by file, 1-based to 0-based, severities mapped, code kept, source = tool name', () => {
    const update = problemsOfRun(
      report([
        diag('src/a.js', 3, 7, { code: 'no-undef' }),
        diag('src/b.js', 1, 1, { severity: 'warning', message: 'w' }),
        diag('src/a.js', 1, 2, { severity: 'info', message: 'i', code: '' }),
      ]),
    );
    assert.equal(update.replace, true);
    assert.deepEqual([...update.files.keys()], ['src/a.js', 'src/b.js']);
    assert.deepEqual(update.files.get('src/a.js'), [
      {
        line: 2,
        character: 6,
        severity: 'error',
        message: 'at src/a.js',
        code: 'no-undef',
        source: 'lint',
      },
      { line: 0, character: 1, severity: 'information', message: 'i', source: 'lint' },
    ]);
    assert.deepEqual(update.files.get('src/b.js'), [
      { line: 0, character: 0, severity: 'warning', message: 'w', source: 'lint' },
    ]);
    assert.equal(
      update.summary,
      'tool lint run by agent bot: exit code 1; 1 error, 1 warning, 1 info in 2 files',
    );
  });

  it('a clean complete run replaces with nothing: it clears the tool’s entries', () => {
    const update = problemsOfRun(report([]));
    assert.equal(update.replace, true);
    assert.equal(update.files.size, 0);
    assert.equal(
      update.summary,
      'tool lint run by agent bot: exit code 0; 0 errors, 0 warnings, 0 info in 0 files',
    );
  });

  it('keeps the last complete run when a run ended early or its output was not understood', () => {
    for (const status of ['timed_out', 'cancelled', 'killed', 'failed'] as const) {
      const update = problemsOfRun(report([], { status, exitCode: null }));
      assert.equal(update.replace, false, status);
      assert.match(update.summary, new RegExp(`ended ${status}.*Problems panel keeps the last complete run`));
    }
    const unreadable = problemsOfRun(
      report([], { exitCode: 2, parseError: 'ESLint printed no JSON report' }),
    );
    assert.equal(unreadable.replace, false);
    assert.match(unreadable.summary, /output not understood: ESLint printed no JSON report/);
    const unparsed = problemsOfRun(report([], { parsed: false }));
    assert.equal(unparsed.replace, false, 'a tool without a parser has no Problems panel entries');
    assert.equal(unparsed.summary, 'tool lint run by agent bot: exit code 0');
  });

  it('shows problems without a file only in the output channel, and drops unusable paths', () => {
    const update = problemsOfRun(
      report(
        [
          diag('.', 1, 1, { message: 'tsconfig.json is invalid', code: 'TS5023' }),
          diag('../etc/passwd', 1, 1),
          diag('/etc/passwd', 1, 1),
          diag('a/./b.js', 1, 1),
          diag('a\\b.js', 1, 1),
          diag('C:/x.js', 1, 1),
          diag('ok.js', 1, 1),
        ],
        { outsideWorkspace: 3, truncated: true },
      ),
    );
    assert.deepEqual(update.unlocated, [
      { severity: 'error', message: 'tsconfig.json is invalid', code: 'TS5023' },
    ]);
    assert.deepEqual([...update.files.keys()], ['ok.js']);
    assert.equal(update.rejected, 5);
    assert.match(update.summary, /1 without a file \(below\)/);
    assert.match(update.summary, /3 on files outside the workspace dropped/);
    assert.match(update.summary, /5 with an unusable path dropped/);
    assert.match(update.summary, /output truncated/);
  });

  it('names the owner, test counts and the exit of the run', () => {
    const update = problemsOfRun(
      report([], {
        principal: { kind: 'owner', name: 'owner', role: 'owner' },
        tests: { passed: 2, failed: 1, skipped: 0 },
        exitCode: 1,
      }),
    );
    assert.match(
      update.summary,
      /^tool lint run by the owner: exit code 1; .*; tests: 2 passed, 1 failed, 0 skipped$/,
    );
  });

  it('accepts only plain workspace-relative paths', () => {
    for (const ok of ['a.js', 'src/a.js', 'x/.hidden/y', '..foo/b', 'a..b'])
      assert.equal(isPlainRelativePath(ok), true, ok);
    for (const bad of ['', '.', '..', '/a', 'a/../b', 'a//b', 'a/', './a', 'a\\b', 'c:x', 'a\nb', 'a\u007fb'])
      assert.equal(isPlainRelativePath(bad), false, JSON.stringify(bad));
  });

  it('clamps a position past the end of the document', () => {
    const doc = { lineCount: 2, lineLength: (n: number) => [5, 0][n]! };
    const at = (line: number, character: number): ProblemEntry => ({
      line,
      character,
      severity: 'error',
      message: 'm',
      source: 'lint',
    });
    assert.deepEqual(clampToDocument(at(0, 3), doc), at(0, 3));
    assert.deepEqual(clampToDocument(at(0, 9), doc), at(0, 5));
    assert.deepEqual(clampToDocument(at(40, 9), doc), at(1, 0));
    assert.deepEqual(clampToDocument(at(3, 0), { lineCount: 0, lineLength: () => 0 }), at(0, 0));
  });
});
