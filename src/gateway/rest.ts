import { Router, type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import { WorkspaceError, toWorkspaceError } from '../protocol/errors';
import { OPERATIONS, OPERATION_NAMES, type OperationName } from '../protocol/operations';
import type { ExecutionResult, OutputEvent } from '../core/execution';
import type { McpToolResult, OperationDispatcher } from '../core/operations';
import { principalOf, WWW_AUTHENTICATE } from './auth';

/** Header that selects a REST session created by POST /session/init (else the agent's default one). */
export const SESSION_HEADER = 'x-mcp-workspace-session';

/** Everything the REST adapter needs from the server. */
export interface RestGatewayDeps {
  dispatcher: OperationDispatcher;
  openApi: () => unknown;
}

/** Writes a WorkspaceError as `{error: {code, message, ...}}` with its HTTP status (and Retry-After on 429). */
export function sendError(res: Response, err: unknown): void {
  const error = toWorkspaceError(err);
  if (error.httpStatus === 429) {
    const ms = Number(error.details?.['retryAfterMs'] ?? 1000);
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(ms / 1000))));
  }
  if (error.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
  res.status(error.httpStatus).json({ error: error.toJSON() });
}

/** Express route path for an operation's REST path (`{path}` is a wildcard workspace path). */
export function expressPath(path: string): string {
  return path.replace('/{path}', '{/*path}').replace(/\{(\w+)\}/g, ':$1');
}

// Query strings carry only strings: coerce them by the field's schema type before validation.
function coerceQuery(schema: z.ZodObject, query: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(query)) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    const field = schema.shape[key] as z.ZodType | undefined;
    out[key] = field && typeof value === 'string' ? coerceScalar(field, value) : value;
  }
  return out;
}

function coerceScalar(field: z.ZodType, value: string): unknown {
  let def = field._zod.def as { type: string; innerType?: z.ZodType };
  while ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) {
    def = def.innerType._zod.def as { type: string; innerType?: z.ZodType };
  }
  if (def.type === 'number' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  if (def.type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/**
 * The REST surface: one route per operation, derived from the operation table (the PRD's paths:
 * `/session/init`, `/files/{path}`, ...), plus `/openapi.json` and the live audit stream.
 */
export function createRestRouter(deps: RestGatewayDeps): Router {
  const router = Router();
  const { dispatcher } = deps;
  // The session named by the header (POST /session/init made it), else the agent's default one.
  const contextOf = async (req: Request) => {
    const principal = principalOf(req.auth);
    const sessionId = await dispatcher.resolveSession(
      principal,
      'rest',
      req.header(SESSION_HEADER) || undefined,
    );
    return { principal, sessionId, transport: 'rest' };
  };

  router.get('/openapi.json', (_req, res) => {
    res.json(deps.openApi());
  });

  router.post('/session/init', async (req, res) => {
    try {
      const session = await dispatcher.initSession(principalOf(req.auth), req.body, {
        transport: 'rest',
        ...(req.header('user-agent') ? { clientName: req.header('user-agent') } : {}),
      });
      res.json(dispatcher.sessionReply(session));
    } catch (err) {
      sendError(res, err);
    }
  });

  router.get('/audit/stream', async (req, res) => {
    let close: () => void;
    try {
      close = await dispatcher.openAuditFeed(await contextOf(req), {
        record: (record) => writeSseEvent(res, 'audit', record, record.seq),
        ended: () => res.end(),
      });
    } catch (err) {
      sendError(res, err);
      return;
    }
    writeSseHead(res);
    res.write(': audit stream\n\n');
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    res.on('close', () => {
      clearInterval(keepAlive);
      close();
    });
  });

  // RunCommand streams its output when asked for NDJSON or server-sent events; plain JSON
  // requests fall through to the generic route below and get the final result only.
  router.post('/execute', async (req, res, next) => {
    const stream = outputStream(req, res);
    if (!stream) {
      next();
      return;
    }
    try {
      const ctx = await contextOf(req);
      const result = await dispatcher.run(
        'run_command',
        { ...(req.body as Record<string, unknown>), background: false },
        { ...ctx, onOutput: (event) => stream.output(event) },
      );
      stream.result(result);
    } catch (err) {
      stream.error(err);
    }
  });

  // Typed tools: the body is the tool's arguments; NDJSON or server-sent events stream the output.
  router.post('/tools/:name', async (req, res) => {
    const stream = outputStream(req, res);
    try {
      const ctx = await contextOf(req);
      const name = String(req.params['name']);
      const result = await dispatcher.runTool(name, req.body ?? {}, {
        ...ctx,
        ...(stream ? { onOutput: (event: OutputEvent) => stream.output(event) } : {}),
      });
      if (stream) stream.result(result);
      else res.json(result);
    } catch (err) {
      if (stream) stream.error(err);
      else sendError(res, err);
    }
  });

  // Re-attach to an execution: what it printed so far, then live output, then its result.
  router.get('/executions/:executionId/stream', async (req, res) => {
    const stream = outputStream(req, res) ?? sseStream(res);
    try {
      const detach = await dispatcher.attachExecution(
        String(req.params['executionId']),
        await contextOf(req),
        stream,
      );
      res.on('close', detach);
    } catch (err) {
      stream.error(err);
    }
  });

  for (const name of OPERATION_NAMES) {
    if (name === 'init_session') continue;
    const def = OPERATIONS[name];
    const handler = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        const input = inputFrom(name, req);
        const result = await dispatcher.run(name, input, await contextOf(req));
        res.json(result);
      } catch (err) {
        if (err instanceof SyntaxError) next(err);
        else sendError(res, err);
      }
    };
    router[def.rest.method](expressPath(def.rest.path), handler);
  }
  return router;
}

function inputFrom(name: OperationName, req: Request): Record<string, unknown> {
  const def = OPERATIONS[name];
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(req.params)) {
    params[key] = Array.isArray(value) ? value.join('/') : value;
  }
  if (def.rest.path.includes('{path}') && params['path'] === undefined) params['path'] = '.';
  const query = coerceQuery(def.input, req.query as Record<string, unknown>);
  const body =
    def.rest.method === 'get' || def.rest.method === 'delete' || req.body === undefined
      ? {}
      : (req.body as Record<string, unknown>);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new WorkspaceError('INVALID_ARGUMENT', 'The request body must be a JSON object.');
  }
  return { ...query, ...body, ...params };
}

/** Writes a command's output as it comes, then its result (or an error), in one wire format. */
interface OutputStream {
  output(event: OutputEvent): void;
  /** The final result: a command's, a typed tool's, or a sandboxed MCP server tool's. */
  result(result: ExecutionResult | McpToolResult): void;
  error(err: unknown): void;
}

/** The stream format the client asked for in `Accept`: NDJSON or server-sent events, else none. */
function outputStream(req: Request, res: Response): OutputStream | null {
  const accept = req.header('accept') ?? '';
  if (accept.includes('application/x-ndjson')) return ndjsonStream(res);
  if (accept.includes('text/event-stream')) return sseStream(res);
  return null;
}

function ndjsonStream(res: Response): OutputStream {
  const write = (line: unknown): void => {
    if (!res.headersSent)
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
    res.write(JSON.stringify(line) + '\n');
  };
  return {
    output: (event) => write({ type: event.stream, data: event.data, seq: event.seq }),
    result: (result) => {
      write({ type: 'result', result });
      res.end();
    },
    error: (err) => {
      if (!res.headersSent) return sendError(res, err);
      write({ type: 'error', error: toWorkspaceError(err).toJSON() });
      res.end();
    },
  };
}

/** Starts a server-sent events response (once). */
function writeSseHead(res: Response): void {
  if (!res.headersSent)
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
}

/** Writes one server-sent event, starting the response if needed. */
function writeSseEvent(res: Response, event: string, data: unknown, id?: number): void {
  writeSseHead(res);
  res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function sseStream(res: Response): OutputStream {
  const write = (event: string, data: unknown): void => writeSseEvent(res, event, data);
  return {
    output: (event) => write(event.stream, { data: event.data, seq: event.seq }),
    result: (result) => {
      write('result', result);
      res.end();
    },
    error: (err) => {
      if (!res.headersSent) return sendError(res, err);
      write('error', toWorkspaceError(err).toJSON());
      res.end();
    },
  };
}
