import { z } from 'zod';
import { schemas } from './operations';

/**
 * The wire shapes of typed tools (manifest tools and detected tools): what a call returns on every
 * transport. Their inputs are each tool's own JSON Schema, taken from its manifest.
 */

/** One finding of an output parser, with a workspace-relative path. */
export const diagnosticSchema = z.object({
  path: z.string().describe('Workspace-relative path (posix separators).'),
  line: z.number().int().min(1).describe('1-based line (1 when the tool gave none).'),
  column: z.number().int().min(1).describe('1-based column (1 when the tool gave none).'),
  severity: z.enum(['error', 'warning', 'info']),
  code: z.string().optional().describe("The tool's rule or error code."),
  message: z.string(),
  source: z.string().describe('The tool that reported it.'),
});

/** Test counts a parser read from a test runner's output. */
export const testCountsSchema = z.object({
  passed: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
});

/** The result of a typed tool call: the execution, plus what its output parser found. */
export const toolResultSchema = schemas.executionResult.extend({
  tool: z.string().describe('The tool that ran.'),
  diagnostics: z
    .array(diagnosticSchema)
    .describe('What the output parser found; empty when the manifest names no parser.'),
  tests: testCountsSchema.optional().describe('Passed/failed/skipped counts, when the output shows them.'),
});

/** A diagnostic as returned to clients. */
export type Diagnostic = z.output<typeof diagnosticSchema>;
/** The result of a typed tool call. */
export type ToolResult = z.output<typeof toolResultSchema>;

/** The WebSocket and REST envelope of a typed tool call by name: `{name, arguments}`. */
export const toolCallSchema = z.object({
  name: z.string().min(1).max(64),
  arguments: z.record(z.string(), z.unknown()).optional(),
});

/** Annotations of a typed tool (never read-only unless the manifest says so and it is safe). */
export interface ToolAnnotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** What transports need to expose a typed tool: its name, description, input schema and annotations. */
export interface ToolDescription {
  name: string;
  title: string;
  description: string;
  /** JSON Schema (draft-07 subset) of the arguments. */
  inputSchema: Record<string, unknown>;
  annotations: ToolAnnotations;
}
