import { z } from 'zod';

/**
 * The structured result of a typed tool's output: diagnostics (linters, compilers) and test counts
 * (test runners). Tool result schemas embed {@link parsedResultSchema}; the output parsers in
 * src/core/tools/parsers/ produce values of it.
 */

/** How serious a diagnostic is (the three levels VS Code's Problems panel shows). */
export const diagnosticSeveritySchema = z.enum(['error', 'warning', 'info']);

/** One problem a tool reported, located in a workspace file. */
export const diagnosticSchema = z.object({
  path: z
    .string()
    .describe(
      'Workspace-relative path (posix separators) of the file; "." when the tool named no file ' +
        '(for example a compiler configuration error).',
    ),
  line: z.number().int().min(1).describe('1-based line (1 when the tool gave none).'),
  column: z.number().int().min(1).describe('1-based column (1 when the tool gave none).'),
  severity: diagnosticSeveritySchema,
  code: z.string().optional().describe('The tool\'s rule or error code, e.g. "no-unused-vars", "TS2322".'),
  message: z.string().describe('What the tool said, cut to a bounded length.'),
  source: z.string().describe('Which tool or parser produced it, e.g. "eslint", "tsc".'),
});

/** Test counts of a test runner's run, where its output tells them. */
export const testCountsSchema = z.object({
  passed: z.number().int().min(0),
  failed: z.number().int().min(0),
  skipped: z.number().int().min(0),
});

/** What an output parser found in a tool's output. */
export const parsedResultSchema = z.object({
  diagnostics: z.array(diagnosticSchema),
  tests: testCountsSchema
    .optional()
    .describe('Passed/failed/skipped counts; absent when the output held no summary the parser knows.'),
  truncated: z
    .boolean()
    .describe('Part of the output was not parsed (size cap) or diagnostics beyond the cap were dropped.'),
  outsideWorkspace: z
    .number()
    .int()
    .min(0)
    .describe('Diagnostics dropped because their file is not inside the workspace.'),
  parseError: z
    .string()
    .optional()
    .describe('Why the output could not be read as the parser expected (the raw output is still returned).'),
});

/** Severity of a diagnostic. */
export type DiagnosticSeverity = z.output<typeof diagnosticSeveritySchema>;
/** One located problem. */
export type Diagnostic = z.output<typeof diagnosticSchema>;
/** Test counts of a run. */
export type TestCounts = z.output<typeof testCountsSchema>;
/** The result of parsing a tool's output. */
export type ParsedResult = z.output<typeof parsedResultSchema>;
