import { z } from 'zod';
import { diagnosticSeveritySchema } from '../../../protocol/diagnostics';
import { WorkspaceError } from '../../../protocol/errors';

/** Longest `pattern` a regex parser may declare (compiling a pattern runs on the event loop). */
export const MAX_REGEX_PATTERN_CHARS = 500;

/** A capture group index of a regex parser's pattern (1 is the first group). */
const group = z.number().int().min(1).max(99);

/** Which output stream a line-based parser reads. */
const stream = z
  .enum(['stdout', 'stderr', 'both'])
  .default('both')
  .describe('Which stream to read (both: stdout, then stderr).');

/**
 * A generic problem matcher, like VS Code's: a line pattern in the Rust regex syntax (run by the
 * linear-time engine, never by JavaScript's backtracking RegExp) and the group index of each field.
 */
const regexSpec = z.strictObject({
  type: z.literal('regex'),
  pattern: z.string().min(1).max(MAX_REGEX_PATTERN_CHARS).describe('Rust regex syntax, matched per line.'),
  stream,
  file: group.describe('Group holding the file path.'),
  line: group.optional().describe('Group holding the 1-based line.'),
  column: group.optional().describe('Group holding the 1-based column.'),
  severity: group.optional().describe('Group holding the severity word (error, warning, info, note, ...).'),
  code: group.optional().describe('Group holding the rule or error code.'),
  message: group.describe('Group holding the message.'),
  defaultSeverity: diagnosticSeveritySchema
    .default('error')
    .describe('Severity when the pattern has no severity group or its word is unknown.'),
  source: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe(
      'Name shown as the diagnostics\' source (default: the tool name given by the caller, or "regex").',
    ),
});

/**
 * The `parser` field of a tool manifest: which output parser turns the tool's output into
 * diagnostics or test counts. Validated (and a regex pattern compiled) when the manifest loads.
 */
export const parserSpecSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('eslint') }).describe('ESLint run with `-f json` (stdout).'),
  z.strictObject({ type: z.literal('tsc') }).describe('The TypeScript compiler, plain or --pretty output.'),
  z
    .strictObject({ type: z.literal('gcc') })
    .describe('GCC or Clang diagnostics (`file:line:col: severity: msg`).'),
  regexSpec,
  z.strictObject({ type: z.literal('node-test') }).describe('The summary of `node --test` (TAP or spec).'),
  z.strictObject({ type: z.literal('mocha') }).describe("Mocha's spec reporter summary."),
  z.strictObject({ type: z.literal('pytest') }).describe("pytest's final summary line."),
  z.strictObject({ type: z.literal('go-test') }).describe('`go test` (use -v for per-test PASS/SKIP lines).'),
]);

/** A validated output parser specification. */
export type ParserSpec = z.output<typeof parserSpecSchema>;
/** The regex variant of {@link ParserSpec}. */
export type RegexParserSpec = Extract<ParserSpec, { type: 'regex' }>;
/** The parser types a manifest may name. */
export type ParserType = ParserSpec['type'];

/** Every parser type, in the order the docs list them. */
export const PARSER_TYPES: readonly ParserType[] = parserSpecSchema.options.map((o) => o.shape.type.value);

/**
 * Validates a manifest's `parser` value (hostile input), throwing INVALID_ARGUMENT with a message
 * that names the offending field and the accepted parser types.
 */
export function validateParserSpec(raw: unknown): ParserSpec {
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || !(PARSER_TYPES as readonly string[]).includes(type)) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The output parser ${typeof type === 'string' ? JSON.stringify(type.slice(0, 64)) : '(no "type")'} is unknown: ` +
        `set "parser": {"type": ...} to one of ${PARSER_TYPES.join(', ')}.`,
      { field: 'parser.type', accepted: [...PARSER_TYPES] },
    );
  }
  const result = parserSpecSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = ['parser', ...(issue?.path ?? []).map(String)].join('.');
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The output parser "${type}" is invalid at ${field}: ${issue?.message ?? 'unexpected value'}. ` +
        'Fix the manifest\'s "parser" object (see examples/tools/README.md).',
      { field },
    );
  }
  return result.data;
}
