import type { ParsedResult } from '../../../protocol/diagnostics';
import { LinePattern, ResultBuilder, capped, outputLines, severityOf, type ToolOutput } from './common';
import { parseEslint, parseGcc, parseTsc } from './compilers';
import { parseGoTest, parseMocha, parseNodeTest, parsePytest } from './runners';
import { validateParserSpec, type ParserSpec, type RegexParserSpec } from './spec';

export { PARSER_LIMITS, type ToolOutput } from './common';
export { toWorkspacePath } from './paths';
export {
  MAX_REGEX_PATTERN_CHARS,
  PARSER_TYPES,
  parserSpecSchema,
  validateParserSpec,
  type ParserSpec,
  type ParserType,
  type RegexParserSpec,
} from './spec';

/** Where the tool ran, as the parsers need it to map the paths it printed. */
export interface ParseContext {
  /** Absolute POSIX path of the workspace folder in the container, e.g. `/workspaces/app`. */
  containerWorkspace: string;
  /** Workspace-relative POSIX working directory of the run (relative paths are resolved from it); default ".". */
  cwd?: string;
  /** Name shown as the source of regex-parser diagnostics when the spec names none (the tool's name). */
  toolName?: string;
}

/** An output parser compiled from a {@link ParserSpec}: reusable for every run of a tool. */
export interface OutputParser {
  /** The validated specification. */
  readonly spec: ParserSpec;
  /** Turns one run's output into diagnostics and test counts (never throws on hostile output). */
  parse(output: ToolOutput, ctx: ParseContext): ParsedResult;
  /** Releases the regex engine memory a regex parser holds (a no-op for the other types). */
  dispose(): void;
}

type Parse = (output: ToolOutput, into: ResultBuilder) => void;

const BUILT_IN: Record<Exclude<ParserSpec['type'], 'regex'>, { parse: Parse; source: string }> = {
  eslint: { parse: parseEslint, source: 'eslint' },
  tsc: { parse: parseTsc, source: 'tsc' },
  gcc: { parse: parseGcc, source: 'gcc' },
  'node-test': { parse: parseNodeTest, source: 'node-test' },
  mocha: { parse: parseMocha, source: 'mocha' },
  pytest: { parse: parsePytest, source: 'pytest' },
  'go-test': { parse: parseGoTest, source: 'go-test' },
};

/**
 * Validates a manifest's `parser` value and compiles it (a regex pattern is compiled by the
 * linear-time engine here, so a bad one is reported when the manifest loads, not when the tool
 * runs). Throws INVALID_ARGUMENT with a message naming the field to fix.
 */
export function compileParser(raw: unknown): OutputParser {
  const spec = validateParserSpec(raw);
  if (spec.type === 'regex') return compileRegexParser(spec);
  const { parse, source } = BUILT_IN[spec.type];
  return {
    spec,
    parse: (output, ctx) => run(parse, output, ctx, source),
    dispose: () => undefined,
  };
}

/**
 * Parses one run's output with `spec` (compiling it for this call): the entry point the tool
 * dispatcher calls after a manifest tool's run. Prefer {@link compileParser} once per manifest.
 */
export function parseOutput(spec: ParserSpec, output: ToolOutput, ctx: ParseContext): ParsedResult {
  const parser = compileParser(spec);
  try {
    return parser.parse(output, ctx);
  } finally {
    parser.dispose();
  }
}

function run(parse: Parse, output: ToolOutput, ctx: ParseContext, source: string): ParsedResult {
  const into = new ResultBuilder({ containerWorkspace: ctx.containerWorkspace, cwd: ctx.cwd ?? '.' }, source);
  parse(output, into);
  return into.result();
}

function compileRegexParser(spec: RegexParserSpec): OutputParser {
  const fields = [spec.file, spec.line, spec.column, spec.severity, spec.code, spec.message];
  const groups = fields.filter((g): g is number => g !== undefined);
  const pattern = new LinePattern(spec.pattern, groups);
  /** The value of `group` in a match (values come in the order of `groups`). */
  const valueOf = (found: string[], group: number | undefined): string | undefined =>
    group === undefined ? undefined : found[groups.indexOf(group)];
  const parse: Parse = (output, into) => {
    const streams = spec.stream === 'both' ? [output.stdout, output.stderr] : [output[spec.stream]];
    for (const stream of streams) {
      const { text, cut } = capped(stream);
      if (cut) into.markTruncated();
      for (const line of outputLines(text)) {
        const found = pattern.match(line);
        if (found === null) continue;
        if (!into.accepting) {
          into.markTruncated();
          return;
        }
        const file = valueOf(found, spec.file) ?? '';
        into.add({
          file: file === '' ? null : file,
          line: valueOf(found, spec.line),
          column: valueOf(found, spec.column),
          severity: severityOf(valueOf(found, spec.severity) ?? '') ?? spec.defaultSeverity,
          code: valueOf(found, spec.code),
          message: valueOf(found, spec.message) ?? '',
        });
      }
    }
  };
  return {
    spec,
    parse: (output, ctx) => run(parse, output, ctx, spec.source ?? ctx.toolName ?? 'regex'),
    dispose: () => pattern.free(),
  };
}
