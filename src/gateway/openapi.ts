import { z } from 'zod';
import { ERROR_CODES } from '../protocol/errors';
import { jsonSchemaOf } from '../protocol/jsonSchema';
import { OPERATIONS, OPERATION_NAMES } from '../protocol/operations';
import { toolResultSchema, type ToolDescription } from '../protocol/tools';

type JsonObject = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  return jsonSchemaOf(schema, io, 'openapi-3.0');
}

/**
 * The OpenAPI 3 document of the REST surface, generated from the same zod schemas that validate
 * requests, so the document and the server can never disagree. `tools` are the typed tools in force
 * (`POST /tools/{name}`, their schemas taken from their manifests).
 */
export function buildOpenApi(version: string, tools: readonly ToolDescription[] = []): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  const errorResponse = { $ref: '#/components/responses/Error' };
  for (const name of OPERATION_NAMES) {
    const def = OPERATIONS[name];
    const pathParams = [...def.rest.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
    const input = jsonSchema(def.input, 'input');
    const properties = (input['properties'] ?? {}) as Record<string, JsonObject>;
    const required = new Set((input['required'] as string[] | undefined) ?? []);
    const parameters: JsonObject[] = pathParams.map((p) => ({
      name: p,
      in: 'path',
      required: true,
      description: p === 'path' ? 'Workspace-relative path; may contain slashes.' : undefined,
      schema: { type: 'string' },
    }));
    const operation: JsonObject = {
      operationId: name,
      summary: def.title,
      description: def.description + (def.ownerOnly ? ' Requires the owner token.' : ''),
      tags: [def.ownerOnly ? 'owner' : 'workspace'],
      responses: {
        '200': {
          description: 'Success',
          content: { 'application/json': { schema: jsonSchema(def.output, 'output') } },
        },
        '400': errorResponse,
        '401': errorResponse,
        '403': errorResponse,
        '404': errorResponse,
        '409': errorResponse,
        ...(def.rateLimit ? { '429': errorResponse } : {}),
      },
    };
    const rest = Object.fromEntries(Object.entries(properties).filter(([k]) => !pathParams.includes(k)));
    if (def.rest.method === 'get' || def.rest.method === 'delete') {
      for (const [key, schema] of Object.entries(rest)) {
        parameters.push({ name: key, in: 'query', required: required.has(key), schema });
      }
    } else if (Object.keys(rest).length > 0 || name === 'init_session') {
      operation['requestBody'] = {
        required: true,
        content: {
          'application/json': {
            schema: {
              ...input,
              properties: rest,
              required: [...required].filter((k) => !pathParams.includes(k)),
            },
          },
        },
      };
    }
    if (parameters.length > 0) operation['parameters'] = parameters;
    (paths[def.rest.path] ??= {})[def.rest.method] = operation;
  }
  const toolResult = jsonSchema(toolResultSchema, 'output');
  for (const tool of tools) {
    paths[`/tools/${tool.name}`] = {
      post: {
        operationId: `tool_${tool.name}`,
        summary: tool.title,
        description: `${tool.description} Typed tool: needs \`allow tool(${tool.name})\`; runs in the session's sandbox.`,
        tags: ['tools'],
        requestBody: { required: true, content: { 'application/json': { schema: tool.inputSchema } } },
        responses: {
          '200': { description: 'Success', content: { 'application/json': { schema: toolResult } } },
          '400': errorResponse,
          '401': errorResponse,
          '403': errorResponse,
          '404': errorResponse,
          '429': errorResponse,
          '503': errorResponse,
        },
      },
    };
  }
  paths['/audit/stream'] = {
    get: {
      operationId: 'stream_audit',
      summary: 'Live audit stream',
      description: 'Server-sent events, one `audit` event per committed record you may see.',
      tags: ['workspace'],
      responses: { '200': { description: 'text/event-stream of audit records' }, '401': errorResponse },
    },
  };
  return {
    openapi: '3.0.3',
    info: {
      title: 'MCP Workspace API',
      version,
      description:
        'REST surface of MCP Workspace. Every request needs `Authorization: Bearer <token>`. Errors are `{error: {code, message}}` with a stable code.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      responses: {
        Error: {
          description: 'An error with a stable code',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: Object.keys(ERROR_CODES) },
                message: { type: 'string' },
              },
            },
          },
        },
      },
    },
  };
}
