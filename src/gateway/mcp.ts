import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import {
  McpServer,
  ResourceTemplate,
  createMcpHandler,
  fromJsonSchema,
  isInitializeRequest,
  isLegacyRequest,
  type CallToolResult,
  type JsonSchemaType,
  type JsonSchemaValidator,
  type jsonSchemaValidator,
  type McpRequestContext,
  type ServerContext,
  type StandardSchemaWithJSON,
} from '@modelcontextprotocol/server';
import type { NodeMcpRequestHandler, NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { toWorkspaceError } from '../protocol/errors';
import { jsonSchemaOf } from '../protocol/jsonSchema';
import { MCP_TOOL_NAMES, OPERATIONS, type OperationName } from '../protocol/operations';
import { toolResultSchema } from '../protocol/tools';
import type { Principal } from '../protocol/principal';
import { principalOf } from './auth';
import type { OutputEvent } from '../core/execution';
import type { McpToolResult, OperationDispatcher } from '../core/operations';
import type { UpstreamTool } from '../core/mcpservers';
import type { RegisteredTool } from '../core/tools';
import type { SessionManager } from '../core/session';

/** Key under `capabilities.experimental` where a client may declare the tools it wants. */
export const CLIENT_TOOLS_EXTENSION = 'mcp-workspace';

const FILE_URI_PREFIX = 'workspace://files/';
const AUDIT_TAIL_URI = 'audit://tail';
const INBOX_URI_PREFIX = 'inbox://';

/**
 * Logger of the `notifications/message` (logging) notification that carries a broadcast message to
 * a 2025-era session: stock clients surface log notifications; `data` is the message object.
 */
export const MESSAGE_LOGGER = 'mcp-workspace/message';

/** The SDK's Node adapters and the 2026-07-28 handler wrapped by them, loaded together. */
interface NodeAdapters {
  adapters: typeof import('@modelcontextprotocol/node');
  modern: NodeMcpRequestHandler;
}

/** Everything the MCP adapter needs from the server. */
export interface McpGatewayDeps {
  dispatcher: OperationDispatcher;
  /** Session lifetimes: requests in flight hold their session; ended sessions close their transport. */
  sessions: SessionManager;
  serverName: string;
  serverVersion: string;
  maxRequestBodySize: number;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

// Input validation happens once, in the OperationDispatcher, so every transport reports bad input with the
// same stable code (INVALID_ARGUMENT). The SDK still advertises the exact JSON Schema of each tool.
const passThrough: jsonSchemaValidator = {
  getValidator:
    <T>(): JsonSchemaValidator<T> =>
    (input) => ({ valid: true, data: input as T, errorMessage: undefined }),
};
const toolSchemas = new Map<
  OperationName,
  { input: StandardSchemaWithJSON; output: StandardSchemaWithJSON }
>();
function schemasFor(name: OperationName): { input: StandardSchemaWithJSON; output: StandardSchemaWithJSON } {
  let cached = toolSchemas.get(name);
  if (!cached) {
    const def = OPERATIONS[name];
    const input = toolSchema(def.input, 'input');
    const output = toolSchema(def.output, 'output');
    cached = { input: fromJsonSchema(input, passThrough), output: fromJsonSchema(output, passThrough) };
    toolSchemas.set(name, cached);
  }
  return cached;
}

let typedOutput: StandardSchemaWithJSON | null = null;
/** The output schema every typed tool shares (the execution result plus diagnostics). */
function typedToolOutput(): StandardSchemaWithJSON {
  return (typedOutput ??= fromJsonSchema(toolSchema(toolResultSchema, 'output'), passThrough));
}

/** A tool's JSON Schema as clients validate it: draft-07, no `$schema` URL. */
function toolSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchemaType {
  return jsonSchemaOf(schema, io, 'draft-7') as JsonSchemaType;
}

function toolError(err: unknown): CallToolResult {
  const error = toWorkspaceError(err);
  return {
    isError: true,
    content: [{ type: 'text', text: JSON.stringify({ error: error.toJSON() }) }],
  };
}

/**
 * The MCP Streamable HTTP adapter at `/mcp`: 2025-era clients (2025-06-18, 2025-11-25) get one
 * sessionful transport and McpServer per InitSession; 2026-07-28 clients are served statelessly by
 * the SDK's `createMcpHandler`, keyed on the authenticated agent.
 */
export class McpGateway {
  private readonly legacy = new Map<
    string,
    { transport: NodeStreamableHTTPServerTransport; principal: string; syncTools: () => void }
  >();
  private readonly modern;
  // The Node adapters pull in undici (and compile its WASM parser) when loaded: an idle server
  // without MCP clients never pays for them.
  private node: Promise<NodeAdapters> | null = null;
  private readonly unsubscribeAudit: () => void;
  private readonly unsubscribeInbox: () => void;
  private readonly unsubscribeSessions: () => void;
  private readonly unsubscribeTools: () => void;

  constructor(private readonly deps: McpGatewayDeps) {
    this.modern = createMcpHandler((ctx) => this.modernServer(ctx), {
      legacy: 'reject',
      maxRequestBodySize: deps.maxRequestBodySize,
      onerror: (error) => deps.log('warn', 'mcp request failed', { error: error.message }),
    });
    // 2026-07-28 clients that listen for updates of the audit tail are told when it grows.
    this.unsubscribeAudit = deps.dispatcher.onAuditCommitted(() =>
      this.modern.notify.resourceUpdated(AUDIT_TAIL_URI),
    );
    // 2026-07-28 clients learn of a message by an update of their inbox resource, then read it.
    this.unsubscribeInbox = deps.dispatcher.onInboxUpdated((agent) =>
      this.modern.notify.resourceUpdated(INBOX_URI_PREFIX + encodeURIComponent(agent)),
    );
    // ...and listeners of the tool list when typed tools change (each request builds a fresh list).
    this.unsubscribeTools = deps.dispatcher.onToolsChanged(() => this.modern.notify.toolsChanged());
    this.unsubscribeSessions = deps.sessions.onSessionEnded((session) => {
      const entry = this.legacy.get(session.sessionId);
      if (entry) {
        this.legacy.delete(session.sessionId);
        void entry.transport.close();
      }
    });
  }

  /** Number of open 2025-era MCP sessions. */
  get openSessions(): number {
    return this.legacy.size;
  }

  /** Express handler for every method on `/mcp` (after auth). */
  handle = async (req: Request, res: Response): Promise<void> => {
    const principal = principalOf(req.auth);
    const sessionId = req.header('mcp-session-id');
    // A known 2025 session id settles the era without classifying the request (the hot path).
    const entry = sessionId ? this.legacy.get(sessionId) : undefined;
    if (entry && entry.principal === principal.name) {
      // A request or stream in flight keeps its session busy (never ended to admit another).
      res.on('close', this.deps.sessions.hold(sessionId!));
      if (asksForTools(req.body)) {
        // Sandboxed MCP servers are started on first use: their tools are listed before the answer.
        await this.deps.dispatcher.discoverMcpTools({ principal, sessionId: sessionId!, transport: 'mcp' });
        entry.syncTools();
      }
      await entry.transport.handleRequest(req, res, req.body);
      return;
    }
    const maxRequestBodySize = this.deps.maxRequestBodySize;
    const node = await this.adapters();
    const probe = await node.adapters.toWebRequest(req, req.body, { maxRequestBodySize });
    if (!(await isLegacyRequest(probe, req.body, { maxRequestBodySize }))) {
      // The agent's stateless session is opened here, so a refusal reaches the client as such.
      let modernSession: string;
      try {
        modernSession = await this.deps.dispatcher.resolveSession(principal, 'mcp-2026');
      } catch (err) {
        refuseRequest(res, req.body, err);
        return;
      }
      // Listening to an inbox is reading it: authorised and audited as read_inbox (own inbox only).
      try {
        for (const agent of listenedInboxes(req.body)) {
          await this.deps.dispatcher.run(
            'read_inbox',
            { agent },
            { principal, sessionId: modernSession, transport: 'mcp-2026' },
          );
        }
      } catch (err) {
        refuseRequest(res, req.body, err);
        return;
      }
      res.on('close', this.deps.sessions.hold(modernSession));
      if (asksForTools(req.body)) {
        await this.deps.dispatcher.discoverMcpTools({
          principal,
          sessionId: modernSession,
          transport: 'mcp-2026',
        });
      }
      await node.modern(req, res, req.body);
      return;
    }
    if (sessionId) {
      res.status(404).json(jsonRpcError(-32001, 'Session not found: it ended or belongs to another token.'));
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
      res
        .status(400)
        .json(jsonRpcError(-32000, 'Bad Request: send initialize first, or pass Mcp-Session-Id.'));
      return;
    }
    const params = req.body.params;
    const experimental = params.capabilities.experimental?.[CLIENT_TOOLS_EXTENSION] as
      { tools?: unknown } | undefined;
    let session: Awaited<ReturnType<OperationDispatcher['initSession']>>;
    try {
      const input = experimental?.tools !== undefined ? { tools: experimental.tools } : {};
      session = await this.deps.dispatcher.initSession(principal, input, {
        transport: 'mcp',
        clientName: params.clientInfo.name,
        sessionId: randomUUID(),
      });
    } catch (err) {
      refuseRequest(res, req.body, err);
      return;
    }
    res.on('close', this.deps.sessions.hold(session.sessionId));
    const transport = new node.adapters.NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => session.sessionId,
      onsessionclosed: (id) => this.deps.sessions.end(id, 'closed'),
    });
    const { server, syncTools } = this.buildServer(
      principal,
      () => session.sessionId,
      session.capabilities,
      'mcp',
    );
    // Typed tools follow their manifests (and the policy) while the session is open: the SDK sends
    // notifications/tools/list_changed for each registration change.
    const stopToolSync = this.deps.dispatcher.onToolsChanged(() => {
      try {
        syncTools();
      } catch (err) {
        // Never fail a policy change or a reload for one session's tool list.
        this.deps.log('error', 'could not update the tools of an MCP session', {
          sessionId: session.sessionId,
          error: (err as Error).message,
        });
      }
    });
    // Once this session joins the workspace, broadcast messages reach it as log notifications.
    const detachDeliveries = this.deps.dispatcher.attachDeliveries(session.sessionId, (message) => {
      server
        .sendLoggingMessage({ level: 'notice', logger: MESSAGE_LOGGER, data: message })
        .catch(() => undefined);
    });
    transport.onclose = () => {
      stopToolSync();
      detachDeliveries();
      if (this.legacy.delete(session.sessionId)) this.deps.sessions.end(session.sessionId, 'closed');
    };
    this.legacy.set(session.sessionId, { transport, principal: principal.name, syncTools });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  };

  private adapters(): Promise<NodeAdapters> {
    return (this.node ??= import('@modelcontextprotocol/node').then((adapters) => ({
      adapters,
      modern: adapters.toNodeHandler(this.modern, { maxRequestBodySize: this.deps.maxRequestBodySize }),
    })));
  }

  /** Closes every MCP session and the stateless handler. */
  async close(): Promise<void> {
    this.unsubscribeAudit();
    this.unsubscribeInbox();
    this.unsubscribeSessions();
    this.unsubscribeTools();
    const transports = [...this.legacy.values()].map((e) => e.transport);
    this.legacy.clear();
    await Promise.allSettled(transports.map((t) => t.close()));
    await this.modern.close();
  }

  private async modernServer(ctx: McpRequestContext): Promise<McpServer> {
    const principal = principalOf(ctx.authInfo);
    const sessionId = await this.deps.dispatcher.resolveSession(principal, 'mcp-2026');
    const capabilities = this.deps.sessions.get(sessionId)?.capabilities ?? [];
    return this.buildServer(principal, () => sessionId, capabilities, 'mcp-2026').server;
  }

  private buildServer(
    principal: Principal,
    sessionId: () => string,
    capabilities: string[],
    transport: string,
  ): { server: McpServer; syncTools: () => void } {
    const { dispatcher } = this.deps;
    const server = new McpServer(
      { name: this.deps.serverName, version: this.deps.serverVersion },
      {
        capabilities: {
          tools: {},
          logging: {},
          // 2026-07-28 clients subscribe to resource updates (inbox://AGENT, audit://tail) over
          // subscriptions/listen, which honours them only when `subscribe` is advertised; 2025
          // sessions get messages as log notifications and have no resources/subscribe handler.
          resources: { subscribe: transport === 'mcp-2026', listChanged: false },
        },
        instructions:
          'Workspace files under a deny-by-default policy; every call is audited. Call list_capabilities to see your tools, get_policies for the rules; read_file returns a revision to pass as expectedRevision when writing.',
      },
    );
    const call = async (
      name: OperationName,
      args: unknown,
      onOutput?: (event: OutputEvent) => void,
    ): Promise<unknown> =>
      dispatcher.run(name, args, {
        principal,
        sessionId: sessionId(),
        transport,
        ...(onOutput ? { onOutput } : {}),
      });

    for (const name of MCP_TOOL_NAMES) {
      if (name !== 'list_capabilities' && !capabilities.includes(name)) continue;
      const def = OPERATIONS[name];
      const schemas = schemasFor(name);
      server.registerTool(
        name,
        {
          title: def.title,
          description: def.description,
          inputSchema: schemas.input,
          outputSchema: schemas.output,
          annotations: { title: def.title, ...def.annotations },
        },
        async (args: unknown, ctx: ServerContext): Promise<CallToolResult> => {
          try {
            const result = (await call(name, args, streamOutput(ctx))) as Record<string, unknown>;
            return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
          } catch (err) {
            return toolError(err);
          }
        },
      );
    }

    // Typed tools offered to this principal now, re-registered when their manifest changes.
    const typed = new Map<string, { version: string; handle: { remove(): void } }>();
    // A tool is registered again when its manifest or its annotations for this caller change.
    const versionOf = (tool: RegisteredTool): string =>
      `${tool.digest}:${JSON.stringify(dispatcher.toolAnnotations(principal, tool))}`;
    const syncTools = (): void => {
      const offered = new Map(dispatcher.offeredTools(principal).map((tool) => [tool.name, tool]));
      for (const [name, entry] of typed) {
        const now = offered.get(name);
        if (now && versionOf(now) === entry.version) continue;
        entry.handle.remove();
        typed.delete(name);
      }
      for (const tool of offered.values()) {
        if (typed.has(tool.name)) continue;
        const handle = server.registerTool(
          tool.name,
          {
            title: tool.title,
            description: tool.description,
            inputSchema: fromJsonSchema(tool.inputSchema as JsonSchemaType, passThrough),
            outputSchema: typedToolOutput(),
            annotations: { title: tool.title, ...dispatcher.toolAnnotations(principal, tool) },
          },
          async (args: unknown, ctx: ServerContext): Promise<CallToolResult> => {
            try {
              const result = await dispatcher.runTool(tool.name, args, {
                principal,
                sessionId: sessionId(),
                transport,
                onOutput: streamOutput(ctx),
              });
              return {
                content: [{ type: 'text', text: JSON.stringify(result) }],
                structuredContent: result as unknown as Record<string, unknown>,
              };
            } catch (err) {
              return toolError(err);
            }
          },
        );
        typed.set(tool.name, { version: versionOf(tool), handle });
      }
      syncMcpTools();
    };
    // Tools of sandboxed MCP servers listed in this session (never read-only; results passed through).
    const upstream = new Map<string, { version: string; handle: { remove(): void } }>();
    const syncMcpTools = (): void => {
      const annotations = dispatcher.mcpToolAnnotations(principal);
      const offered = new Map(
        dispatcher.offeredMcpTools(principal, sessionId()).map((tool) => [tool.name, tool]),
      );
      const versionOfMcp = (tool: UpstreamTool): string => JSON.stringify([tool, annotations]);
      for (const [name, entry] of upstream) {
        const now = offered.get(name);
        if (now && versionOfMcp(now) === entry.version) continue;
        entry.handle.remove();
        upstream.delete(name);
      }
      for (const tool of offered.values()) {
        if (upstream.has(tool.name) || typed.has(tool.name)) continue;
        const handle = server.registerTool(
          tool.name,
          {
            title: tool.title,
            description: tool.description,
            inputSchema: fromJsonSchema(tool.inputSchema as JsonSchemaType, passThrough),
            annotations: { title: tool.title, ...annotations },
          },
          async (args: unknown): Promise<CallToolResult> => {
            try {
              const result = (await dispatcher.runTool(tool.name, args, {
                principal,
                sessionId: sessionId(),
                transport,
              })) as McpToolResult;
              return {
                content: result.content,
                ...(result.structuredContent ? { structuredContent: result.structuredContent } : {}),
                ...(result.isError ? { isError: true } : {}),
              };
            } catch (err) {
              return toolError(err);
            }
          },
        );
        upstream.set(tool.name, { version: versionOfMcp(tool), handle });
      }
    };
    syncTools();

    if (capabilities.includes('read_file')) {
      server.registerResource(
        'workspace-file',
        new ResourceTemplate(`${FILE_URI_PREFIX}{+path}`, {
          list: async () => {
            try {
              const listing = (await call('list_files', { path: '.', depth: 3 })) as {
                entries: { path: string; name: string; type: string }[];
              };
              return {
                resources: listing.entries
                  .filter((e) => e.type === 'file')
                  .slice(0, 500)
                  .map((e) => ({ uri: FILE_URI_PREFIX + encodeURI(e.path), name: e.path })),
              };
            } catch {
              return { resources: [] };
            }
          },
        }),
        { title: 'Workspace file', description: 'A file of the workspace, read under the policy.' },
        async (uri) => {
          const path = decodeURIComponent(uri.href.slice(FILE_URI_PREFIX.length));
          const file = (await call('read_file', { path })) as { content: string; encoding: string };
          return {
            contents: [
              file.encoding === 'base64'
                ? { uri: uri.href, blob: file.content, mimeType: 'application/octet-stream' }
                : { uri: uri.href, text: file.content, mimeType: 'text/plain' },
            ],
          };
        },
      );
    }
    if (capabilities.includes('read_inbox')) {
      const own = INBOX_URI_PREFIX + encodeURIComponent(principal.name);
      server.registerResource(
        'inbox',
        new ResourceTemplate(`${INBOX_URI_PREFIX}{agent}`, {
          list: async () => ({ resources: [{ uri: own, name: `Inbox of ${principal.name}` }] }),
        }),
        {
          title: 'Inbox',
          description:
            'Messages sent to you with broadcast_message (newest 100); updated when one arrives. Agents read only their own.',
          mimeType: 'application/json',
        },
        async (uri) => {
          const agent = decodeURIComponent(uri.href.slice(INBOX_URI_PREFIX.length));
          const inbox = await call('read_inbox', { agent });
          return { contents: [{ uri: uri.href, text: JSON.stringify(inbox), mimeType: 'application/json' }] };
        },
      );
    }
    if (capabilities.includes('query_audit')) {
      server.registerResource(
        'audit-tail',
        AUDIT_TAIL_URI,
        {
          title: 'Audit log tail',
          description: 'The newest 100 audit records you may see (the owner sees all), newest first.',
          mimeType: 'application/json',
        },
        async (uri) => {
          const page = await call('query_audit', { limit: 100 });
          return { contents: [{ uri: uri.href, text: JSON.stringify(page), mimeType: 'application/json' }] };
        },
      );
    }
    return { server, syncTools };
  }
}

/**
 * Streams a command's output to the calling client as it is produced: progress notifications
 * (with the output in `message`) when the client sent a progress token, log notifications
 * (`logger` "stdout" or "stderr") otherwise.
 */
function streamOutput(ctx: ServerContext): (event: OutputEvent) => void {
  const progressToken = ctx.mcpReq._meta?.progressToken;
  let bytes = 0;
  return (event) => {
    bytes += Buffer.byteLength(event.data);
    const sent =
      progressToken !== undefined
        ? ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken, progress: bytes, message: event.data },
          })
        : ctx.mcpReq.log(event.stream === 'stderr' ? 'warning' : 'info', event.data, event.stream);
    sent.catch(() => undefined);
  };
}

/**
 * Answers a request the server refuses before any MCP server handles it (SESSION_LIMIT, ...): the
 * error's HTTP status (with Retry-After on 429) and a JSON-RPC error carrying the stable code.
 */
function refuseRequest(res: Response, body: unknown, err: unknown): void {
  const error = toWorkspaceError(err);
  const id = (body as { id?: unknown } | undefined)?.id;
  if (error.httpStatus === 429) {
    const ms = Number(error.details?.['retryAfterMs'] ?? 1000);
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(ms / 1000))));
  }
  res.status(error.httpStatus).json({
    jsonrpc: '2.0',
    error: { code: -32000, message: `${error.code}: ${error.message}`, data: error.toJSON() },
    id: typeof id === 'string' || typeof id === 'number' ? id : null,
  });
}

/**
 * The agents whose inbox (`inbox://AGENT`) a 2026-07-28 `subscriptions/listen` asks to follow: the
 * listen route does not authorise resources by itself, so the gateway has each one decided first.
 */
function listenedInboxes(body: unknown): string[] {
  const agents: string[] = [];
  for (const message of Array.isArray(body) ? body : [body]) {
    const request = message as {
      method?: unknown;
      params?: { notifications?: { resourceSubscriptions?: unknown } };
    } | null;
    if (request?.method !== 'subscriptions/listen') continue;
    const uris = request.params?.notifications?.resourceSubscriptions;
    if (!Array.isArray(uris)) continue;
    for (const uri of uris) {
      if (typeof uri === 'string' && uri.startsWith(INBOX_URI_PREFIX)) {
        const raw = uri.slice(INBOX_URI_PREFIX.length);
        let agent = raw;
        try {
          agent = decodeURIComponent(raw);
        } catch {
          // Not percent-encoded validly: decided as written (it names no agent's inbox).
        }
        if (!agents.includes(agent)) agents.push(agent);
      }
    }
  }
  return agents;
}

/** Whether a request (or batch) lists or calls tools: sandboxed MCP servers are listed first. */
function asksForTools(body: unknown): boolean {
  return (Array.isArray(body) ? body : [body]).some((message) => {
    const method = (message as { method?: unknown } | null)?.method;
    return method === 'tools/list' || method === 'tools/call';
  });
}

function jsonRpcError(code: number, message: string): unknown {
  return { jsonrpc: '2.0', error: { code, message }, id: null };
}
