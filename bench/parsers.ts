import { performance } from 'node:perf_hooks';
import { compileParser, PARSER_LIMITS, type ToolOutput } from '../src/core/tools/parsers';
import { percentile } from './stats';

/**
 * Output parsers run on the event loop after a tool's run: how long one parse of a full-size output
 * (PARSER_LIMITS.maxOutputChars in a stream) blocks it, for output that matches nothing, output
 * where every line is a diagnostic (capped at PARSER_LIMITS.maxDiagnostics), and hostile lines for
 * a regex parser whose pattern backtracks catastrophically in a backtracking engine.
 */

const ROUNDS = 5;

/** `line` repeated to fill one stream up to the parse cap. */
function fill(line: string): string {
  return line.repeat(Math.floor(PARSER_LIMITS.maxOutputChars / line.length));
}

export async function benchParsers(): Promise<Record<string, unknown>> {
  const noise = fill('some ordinary build output line that matches nothing at all, of a typical length\n');
  const cases: [string, unknown, ToolOutput][] = [
    ['tsc_noise', { type: 'tsc' }, { stdout: noise, stderr: '', exitCode: 0 }],
    [
      'tsc_all_diagnostics',
      { type: 'tsc' },
      {
        stdout: fill("src/a.ts(3,7): error TS2322: Type 'string' is not assignable.\n"),
        stderr: '',
        exitCode: 2,
      },
    ],
    [
      'gcc_all_diagnostics',
      { type: 'gcc' },
      {
        stdout: '',
        stderr: fill("a.c:3:9: warning: unused variable 'x' [-Wunused-variable]\n"),
        exitCode: 0,
      },
    ],
    ['mocha_noise_both_streams', { type: 'mocha' }, { stdout: noise, stderr: noise, exitCode: 0 }],
    [
      'regex_hostile_lines',
      { type: 'regex', pattern: '^(a+)+$', file: 1, message: 1 },
      { stdout: fill(`${'a'.repeat(4000)}b\n`), stderr: '', exitCode: 0 },
    ],
    [
      'eslint_json_max',
      { type: 'eslint' },
      {
        stdout: JSON.stringify(
          Array.from({ length: 2000 }, (_, i) => ({
            filePath: `/workspaces/app/src/f${i}.js`,
            messages: [
              { ruleId: 'no-undef', severity: 2, message: "'x' is not defined.", line: 1, column: 1 },
            ],
          })),
        ),
        stderr: '',
        exitCode: 1,
      },
    ],
  ];
  const figures: Record<string, unknown> = {};
  for (const [name, spec, output] of cases) {
    const parser = compileParser(spec);
    const samples: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const started = performance.now();
      parser.parse(output, { containerWorkspace: '/workspaces/app' });
      samples.push(performance.now() - started);
    }
    parser.dispose();
    figures[`${name}_p50_ms`] = percentile(samples, 50);
    figures[`${name}_max_ms`] = percentile(samples, 100);
  }
  return { parsers: { stream_chars: PARSER_LIMITS.maxOutputChars, rounds: ROUNDS, ...figures } };
}
