import { z } from 'zod';

/** Where a JSON Schema is used: MCP tool schemas (draft-07, what clients validate) or OpenAPI 3.0. */
export type JsonSchemaTarget = 'draft-7' | 'openapi-3.0';

/**
 * The JSON Schema of a protocol schema for one side of an operation (`input` as callers send it,
 * `output` as the server answers), without a `$schema` URL: VS Code drops every tool whose schema
 * names a meta-schema it cannot load (such as draft 2020-12 offline), and OpenAPI documents carry none.
 * The one emitter for every surface, so MCP and OpenAPI describe the same shapes.
 */
export function jsonSchemaOf(
  schema: z.ZodType,
  io: 'input' | 'output',
  target: JsonSchemaTarget,
): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, target }) as Record<string, unknown>;
  delete json['$schema'];
  return json;
}
