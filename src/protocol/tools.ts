import { z } from 'zod';
import { diagnosticSchema, testCountsSchema, type Diagnostic } from './diagnostics';
import { schemas } from './operations';

export type { Diagnostic };

/**
 * The wire shapes of typed tools (manifest tools and detected tools): what a call returns on every
 * transport. Their inputs are each tool's own JSON Schema, taken from its manifest.
 */

/** The result of a typed tool call: the execution, plus what its output parser found. */
export const toolResultSchema = schemas.executionResult.extend({
  tool: z.string().describe('The tool that ran.'),
  diagnostics: z
    .array(diagnosticSchema)
    .describe('What the output parser found; empty when the manifest names no parser.'),
  tests: testCountsSchema.optional().describe('Passed/failed/skipped counts, when the output shows them.'),
});

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
