import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { WorkspaceError } from '../../protocol/errors';
import {
  NEGOTIABLE_OPERATIONS,
  OPERATIONS,
  type OperationInput,
  type OperationName,
  type OperationOutput,
} from '../../protocol/operations';
import { OWNER, type Principal } from '../../protocol/principal';
import type { AuditDecision, AuditRecord } from '../audit';
import {
  CLOSE_CODES,
  type CollabAccess,
  type CollabClient,
  type CollabConnection,
  type CollabPeer,
  type EditBatch,
} from '../collab';
import type { LeaseEvent, MessageSink } from '../coordination';
import type { Execution, ExecutionResult, OutputEvent } from '../execution';
import { unexpectedError } from '../log';
import type { PolicyAction } from '../policy';
import type { SessionInfo, TokenInfo } from '../session';
import type { ToolAnnotations, ToolResult } from '../../protocol/tools';
import type { UpstreamTool } from '../mcpservers';
import type { RegisteredMcpServer, RegisteredTool } from '../tools';
import { createHandlers } from './handlers';
import { authorizePath } from './handlers/paths';
import {
  mayReachServer,
  mcpToolAnnotations,
  offeredMcpTools,
  sandboxLauncher,
  type McpToolResult,
} from './handlers/mcpservers';
import { offeredTools, toolAnnotations, toolRunner, type ToolRunner } from './handlers/tools';
import type {
  Authorize,
  CallContext,
  Decide,
  DispatcherDeps,
  Handler,
  HandlerContext,
  Handlers,
} from './types';
import { maySeeAuditRecord } from './visibility';

/** Audit operations of the server's own lifecycle (and its tool set), recorded with the owner as actor. */
export type ServerEvent = 'server_start' | 'server_stop' | 'tools_changed';

/** Where InitSession came from: its transport, the client's name, and a session id the transport chose. */
export interface InitMeta {
  transport: string;
  clientName?: string;
  sessionId?: string;
}

/** What an attached execution stream receives: live output, then the result (once). */
export interface ExecutionSink {
  output(event: OutputEvent): void;
  result(result: ExecutionResult): void;
}

/** What a live audit feed receives: each record the caller may see, and the end of its session. */
export interface AuditFeedSink {
  record(record: AuditRecord): void;
  /** The feed's session ended (revoked, idle, server stopping): close the stream. */
  ended(): void;
}

/** Operations that change who holds which lease (and so who may edit a shared document). */
const LEASE_OPERATIONS: ReadonlySet<string> = new Set(['acquire_lease', 'renew_lease', 'release_lease']);

/** How long a tools/list waits for sandboxed MCP servers starting for it (later ones notify). */
const MCP_LIST_WAIT_MS = 10_000;

/** Failures that are refusals: recorded as `deny`. */
const REFUSALS = new Set(['POLICY_DENIED', 'OWNER_ONLY', 'CAPABILITY_NOT_NEGOTIATED', 'SESSION_NOT_FOUND']);

/** A decision with how it was asked: `authorize` decisions summarise the record, `decide` ones only list. */
interface Made extends AuditDecision {
  summarises: boolean;
}

/** The rate-limit bucket of a caller: one per bearer token, whatever the session. */
function rateKey(principal: Principal): string {
  return `${principal.kind}:${principal.name}`;
}

/**
 * What every tool call (typed tool or sandboxed MCP server tool) shares: audited as `run_tool` with
 * `params`, on the exec rate limit; tools come and go with their manifests, so the policy grants
 * them, not InitSession.
 */
function toolCallStep(name: string, params: Record<string, unknown>) {
  return {
    op: 'run_tool',
    target: name,
    ownerOnly: false,
    capability: null,
    rateLimit: 'exec' as const,
    readOnly: false,
    params,
  };
}

/** A scoped token (a pair guest) never runs a tool, whatever `allow tool` rules exist. */
function refuseScoped(principal: Principal): void {
  if (principal.scope !== undefined) {
    throw new WorkspaceError(
      'CAPABILITY_NOT_NEGOTIATED',
      `Tools are outside this token's scope (${principal.name} may use file operations only).`,
    );
  }
}

/**
 * The one place every operation flows through, whatever the transport (MCP, REST, WebSocket, the
 * VS Code UI): session resolution, capability checks, schema validation, owner-only and rate limits,
 * policy decisions, the service call, and one audit record listing every decision made and the
 * outcome. Long-lived streams (execution attach, the audit feed) are opened here too.
 */
export class OperationDispatcher {
  private readonly handlers: Handlers<OperationName>;
  private readonly runToolHandler: ToolRunner;
  private readonly defaults = new Map<string, string>();
  // Concurrent first requests of one agent share one opening: a burst opens one session, not many.
  private readonly opening = new Map<string, Promise<string>>();
  /** Re-decide the access of each open shared document (after a lease changed). */
  private readonly documentAccessChecks = new Set<() => void>();
  private readonly auditExecutionHook: (execution: Execution, ctx: CallContext, shell: boolean) => void;

  constructor(private readonly deps: DispatcherDeps) {
    const auditExecution = (execution: Execution, ctx: CallContext, shell: boolean): void =>
      this.auditExecution(execution, ctx, shell);
    this.auditExecutionHook = auditExecution;
    const { mcpServers, tools, sessions } = deps;
    if (mcpServers) {
      // A changed or removed manifest stops its servers; an ended session stops its own.
      tools?.onChange(() => mcpServers.retire(tools.mcpServers()));
      sessions.onSessionEnded((session) => mcpServers.endSession(session.sessionId));
    }
    this.handlers = createHandlers(deps, auditExecution);
    this.runToolHandler = toolRunner(deps, auditExecution);
    // Leases that end without their holder asking (expiry, revoked token, takeover) are audited too.
    deps.coordination.onLeaseEvent((event) => {
      void this.recordLeaseEvent(event);
      this.recheckDocuments();
    });
    // A pair link that runs out is audited under its guest, like a revoke is under the owner.
    deps.sessions.onTokenExpired((token) => void this.recordTokenExpired(token));
  }

  /** An exclusive lease makes shared documents read-only for the others: decide again. */
  private recheckDocuments(): void {
    for (const check of [...this.documentAccessChecks]) check();
  }

  /**
   * Where a member session's broadcast messages go (an MCP notification, a WebSocket event): only
   * sessions that joined the workspace receive them. Returns the detach function.
   */
  attachDeliveries(sessionId: string, sink: MessageSink): () => void {
    return this.deps.coordination.attachDeliveries(sessionId, sink);
  }

  /** Calls `listener` with the agent's name whenever a message lands in its inbox (`inbox://AGENT`). */
  onInboxUpdated(listener: (agent: string) => void): () => void {
    return this.deps.coordination.onInboxUpdated(listener);
  }

  /** Operations a principal may negotiate: role limits, then any `deny tool(NAME)` rule. */
  offeredFor(principal: Principal): OperationName[] {
    return NEGOTIABLE_OPERATIONS.filter((name) => {
      const def = OPERATIONS[name];
      if (def.ownerOnly && principal.kind !== 'owner') return false;
      // A scoped token (a pair guest) never gets more than its scope, whatever the policy allows.
      if (principal.scope !== undefined && !principal.scope.includes(name)) return false;
      if (principal.role === 'viewer' && !def.annotations.readOnlyHint) return false;
      const decision = this.deps.policy.decide(principal, 'tool', name);
      return decision.allowed || decision.rule === null;
    });
  }

  /**
   * InitSession: validates the raw request (`{tools?: string[]}`), negotiates the session's tools
   * and opens it, audited like any operation. Every transport passes its wire input here unchanged.
   */
  async initSession(principal: Principal, rawInput: unknown, meta: InitMeta): Promise<SessionInfo> {
    const parsed = OPERATIONS.init_session.input.safeParse(rawInput ?? {});
    if (!parsed.success) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Invalid arguments for init_session (expected {"tools": ["read_file", ...]}): ${z.prettifyError(parsed.error)}`,
      );
    }
    const requested = parsed.data.tools;
    const started = performance.now();
    const session = this.deps.sessions.initSession(principal, requested, this.offeredFor(principal), meta);
    await this.deps.audit.append({
      sessionId: session.sessionId,
      agent: principal.name,
      role: principal.role,
      transport: meta.transport,
      op: 'init_session',
      params: { tools: requested ?? null, clientName: meta.clientName ?? null },
      decision: 'allow',
      rule: null,
      outcome: { ok: true, capabilities: session.capabilities.length },
      durationMs: performance.now() - started,
    });
    return session;
  }

  /** The InitSession reply every transport sends: the session, its tools and who it belongs to. */
  sessionReply(session: SessionInfo): OperationOutput<'init_session'> {
    return {
      sessionId: session.sessionId,
      capabilities: session.capabilities,
      agent: session.principal.name,
      role: session.principal.role,
    };
  }

  /**
   * The session a request runs in: the one it names (which must be open and the caller's own), else
   * the caller's default session on that transport, opened on first use.
   */
  async resolveSession(principal: Principal, transport: string, requested?: string): Promise<string> {
    if (requested !== undefined) {
      const session = this.deps.sessions.get(requested);
      if (!session || session.principal.name !== principal.name) {
        throw new WorkspaceError(
          'SESSION_NOT_FOUND',
          'Unknown or ended session; open a new one with InitSession.',
        );
      }
      return requested;
    }
    const key = `${principal.name}\u0000${transport}`;
    const existing = this.defaults.get(key);
    if (existing && this.deps.sessions.get(existing)) return existing;
    let pending = this.opening.get(key);
    if (!pending) {
      pending = this.initSession(principal, undefined, { transport })
        .then((session) => {
          this.defaults.set(key, session.sessionId);
          return session.sessionId;
        })
        .finally(() => this.opening.delete(key));
      this.opening.set(key, pending);
    }
    return pending;
  }

  /**
   * Records a server lifecycle event (`server_start`, `server_stop`) as an owner action outside any
   * session, durably, so the log shows who started or stopped the server, from where and with what.
   */
  async recordServerEvent(
    op: ServerEvent,
    params: Record<string, unknown>,
    transport: string,
  ): Promise<void> {
    await this.deps.audit.append({
      sessionId: null,
      agent: OWNER.name,
      role: OWNER.role,
      transport,
      op,
      params,
      decision: 'allow',
      rule: null,
      outcome: { ok: true },
      durationMs: 0,
    });
  }

  /**
   * Attaches to an execution (authorised and audited as `get_execution`): what it printed so far,
   * then live output, then its result. Returns the detach function.
   */
  async attachExecution(executionId: string, ctx: CallContext, sink: ExecutionSink): Promise<() => void> {
    await this.run('get_execution', { executionId }, ctx);
    return this.deps.executions.get(executionId, ctx.principal).subscribe((event) => {
      if (event.stream === 'exit') sink.result(event.result);
      else sink.output(event);
    });
  }

  /**
   * Opens a live audit feed (authorised and audited like a query of the newest record): every record
   * committed from now on that the caller may see. The open feed keeps its session busy; it ends when
   * the session does. Returns the close function.
   */
  async openAuditFeed(ctx: CallContext, sink: AuditFeedSink): Promise<() => void> {
    await this.run('query_audit', { limit: 1 }, ctx);
    const { sessions, audit } = this.deps;
    const release = sessions.hold(ctx.sessionId);
    const unsubscribe = audit.subscribe((record) => {
      if (maySeeAuditRecord(ctx.principal, record)) sink.record(record);
    });
    const stopWatch = sessions.onSessionEnded((s) => {
      if (s.sessionId === ctx.sessionId) sink.ended();
    });
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      stopWatch();
      release();
    };
  }

  /**
   * Calls `listener` when the typed tools may have changed for someone: a manifest or project file
   * changed, or the policy did. Returns the unsubscribe.
   */
  onToolsChanged(listener: () => void): () => void {
    const stops = [
      this.deps.tools?.onChange(() => listener()),
      this.deps.policy.onChange(() => listener()),
      // A sandboxed MCP server was listed, changed its tools, or was retired.
      this.deps.mcpServers?.onChange(() => listener()),
    ];
    return () => {
      for (const stop of stops) stop?.();
    };
  }

  /** Calls `listener` after each committed record, whoever it belongs to (change notifications only). */
  onAuditCommitted(listener: () => void): () => void {
    return this.deps.audit.subscribe(() => listener());
  }

  /** Runs one operation for a caller; throws a WorkspaceError with a stable code on failure. */
  async run<N extends OperationName>(
    name: N,
    rawInput: unknown,
    ctx: CallContext,
  ): Promise<OperationOutput<N>> {
    const def = OPERATIONS[name];
    const handler = this.handlers[name] as Handler<N>;
    return this.perform(
      {
        op: name,
        target: name,
        ownerOnly: def.ownerOnly,
        // Every session may ask what it negotiated; everything else must have been negotiated.
        capability: name === 'list_capabilities' ? null : name,
        rateLimit: def.rateLimit,
        readOnly: def.annotations.readOnlyHint,
        validate: (raw) => {
          const parsed = def.input.safeParse(raw ?? {});
          if (!parsed.success) {
            throw new WorkspaceError(
              'INVALID_ARGUMENT',
              `Invalid arguments for ${name}: ${z.prettifyError(parsed.error)}`,
            );
          }
          return parsed.data;
        },
      },
      rawInput,
      ctx,
      (params, hctx) => handler(params as OperationInput<N>, hctx),
    );
  }

  /**
   * Runs a typed tool (a manifest or detected tool) for a caller, through the same steps as every
   * operation: session, rate limit (exec), the `allow tool(NAME)` decision, the run in the session's
   * sandbox, and one audit record (`run_tool`) with the tool's name and arguments.
   */
  async runTool(name: string, rawInput: unknown, ctx: CallContext): Promise<ToolResult | McpToolResult> {
    if (!this.deps.tools?.get(name)) {
      const upstream = this.deps.mcpServers ? this.deps.tools?.mcpServerOf(name) : null;
      if (upstream) return this.runMcpTool(name, upstream.server, upstream.tool, rawInput, ctx);
    }
    let tool: RegisteredTool | undefined;
    return this.perform(
      {
        ...toolCallStep(name, { tool: name, arguments: rawInput ?? {} }),
        validate: () => {
          tool = this.deps.tools?.get(name);
          if (!tool) {
            throw new WorkspaceError(
              'NOT_FOUND',
              `No tool named ${JSON.stringify(name)}; list_capabilities names the tools offered to you.`,
            );
          }
          return rawInput;
        },
      },
      rawInput,
      ctx,
      async (raw, hctx) => {
        const found = tool!;
        refuseScoped(ctx.principal);
        if (ctx.principal.role === 'viewer' && !this.toolAnnotations(ctx.principal, found).readOnlyHint) {
          throw new WorkspaceError(
            'CAPABILITY_NOT_NEGOTIATED',
            `Viewers may call read-only tools only, and ${name} is not one for you.`,
          );
        }
        hctx.authorize('tool', name);
        return this.runToolHandler(found, raw, hctx);
      },
    );
  }

  /**
   * Calls a sandboxed MCP server's tool (`SERVER_TOOL`) for a caller, through the same steps as a
   * typed tool: session, rate limit (exec), the `allow tool(SERVER_TOOL)` decision before anything
   * starts, the server started in the session's sandbox on first use, and one audit record
   * (`run_tool`) with the tool's name and arguments.
   */
  private async runMcpTool(
    name: string,
    server: RegisteredMcpServer,
    upstreamName: string,
    rawInput: unknown,
    ctx: CallContext,
  ): Promise<McpToolResult> {
    const host = this.deps.mcpServers!;
    return this.perform(
      {
        ...toolCallStep(name, { tool: name, server: server.name, arguments: rawInput ?? {} }),
        validate: (raw) => {
          const args = raw ?? {};
          if (typeof args !== 'object' || Array.isArray(args)) {
            throw new WorkspaceError('INVALID_ARGUMENT', `The arguments of ${name} must be a JSON object.`);
          }
          return args as Record<string, unknown>;
        },
      },
      rawInput,
      ctx,
      async (args, hctx) => {
        refuseScoped(ctx.principal);
        if (ctx.principal.role === 'viewer') {
          throw new WorkspaceError(
            'CAPABILITY_NOT_NEGOTIATED',
            `Viewers may call read-only tools only, and the tools of MCP servers never are (${name}).`,
          );
        }
        hctx.authorize('tool', name);
        const launch = sandboxLauncher(this.deps, this.auditExecutionHook, hctx);
        const { result } = await host.call(
          ctx.sessionId,
          server,
          upstreamName,
          args as Record<string, unknown>,
          launch,
        );
        return {
          tool: name,
          server: server.name,
          content: result.content,
          ...(result.structuredContent
            ? { structuredContent: result.structuredContent as Record<string, unknown> }
            : {}),
          isError: result.isError === true,
        };
      },
    );
  }

  /**
   * Lists the tools of the sandboxed MCP servers the caller may reach, starting each in the
   * session's sandbox on first use (audited as `list_mcp_tools`, one record per server started).
   * Servers listed already, or that failed a moment ago, are not started again. Waits at most
   * 10 s (a server listed later changes the tool list). Never throws: a server that cannot start
   * is logged and offers no tools.
   */
  async discoverMcpTools(ctx: CallContext): Promise<void> {
    const { mcpServers: host, tools } = this.deps;
    if (!host || !tools) return;
    const pending = tools
      .mcpServers()
      .filter(
        (server) =>
          !host.listed(ctx.sessionId, server) &&
          !host.recentlyFailed(ctx.sessionId, server) &&
          mayReachServer(this.deps, ctx.principal, server),
      );
    const listed = Promise.all(
      pending.map((server) =>
        this.perform(
          {
            op: 'list_mcp_tools',
            target: `${server.name}_*`,
            ownerOnly: false,
            capability: null,
            rateLimit: null,
            readOnly: false,
            params: { server: server.name },
            validate: (raw) => raw,
          },
          {},
          ctx,
          async (_input, hctx) => {
            const launch = sandboxLauncher(this.deps, this.auditExecutionHook, hctx);
            const found = await host.discover(ctx.sessionId, server, launch);
            return { tools: found.tools.map((t) => t.name), skipped: found.skipped };
          },
        ).catch((err: unknown) =>
          this.deps.log.warn('sandboxed MCP server not listed', {
            server: server.name,
            sessionId: ctx.sessionId,
            error: (err as Error).message,
          }),
        ),
      ),
    );
    // A first listing may wait for an image build or a container start: the answer goes out after
    // a bounded wait, and tools listed later reach the client as a list-changed notification.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      listed,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, MCP_LIST_WAIT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** The sandboxed MCP servers' tools listed in a session that the policy grants its principal. */
  offeredMcpTools(principal: Principal, sessionId: string): UpstreamTool[] {
    return offeredMcpTools(this.deps, principal, sessionId);
  }

  /** The annotations of a sandboxed MCP server's tool: never read-only; open-world with a network. */
  mcpToolAnnotations(principal: Principal): ToolAnnotations {
    return mcpToolAnnotations(this.deps, principal);
  }

  /** Whether a typed tool of this name is in force, or a sandboxed MCP server's prefix names it. */
  hasTool(name: string): boolean {
    if (this.deps.tools?.get(name) !== undefined) return true;
    return this.deps.mcpServers !== undefined && (this.deps.tools?.mcpServerOf(name) ?? null) !== null;
  }

  /** Typed tools the policy grants a principal (viewers: only those read-only for them). */
  offeredTools(principal: Principal): RegisteredTool[] {
    return offeredTools(this.deps, principal);
  }

  /**
   * A typed tool's annotations for a principal: read-only only when its manifest says so AND the
   * caller cannot write the workspace (its commands then see the workspace read-only).
   */
  toolAnnotations(principal: Principal, tool: RegisteredTool): ToolAnnotations {
    return toolAnnotations(this.deps, principal, tool);
  }

  /** Session, owner-only, capability, validation and rate checks, the body, and one audit record. */
  private async perform<T>(
    spec: {
      op: string;
      /** The tool target of a refusal decided before the body (for the audit summary). */
      target: string;
      ownerOnly: boolean;
      capability: string | null;
      rateLimit: 'write' | 'exec' | null;
      readOnly: boolean;
      /** What the audit records as params when not the validated input. */
      params?: unknown;
      validate: (raw: unknown) => unknown;
    },
    rawInput: unknown,
    ctx: CallContext,
    body: (params: unknown, hctx: HandlerContext) => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    const name = spec.op;
    const made: Made[] = [];
    let params: unknown = spec.params ?? rawInput;
    // A session with an operation in flight is busy: never ended to admit another of its token.
    let release = this.deps.sessions.hold(ctx.sessionId);
    try {
      const session = this.deps.sessions.get(ctx.sessionId);
      if (!session || session.principal.name !== ctx.principal.name) {
        throw new WorkspaceError(
          'SESSION_NOT_FOUND',
          'This session has ended (idle, revoked or closed). Start a new session.',
        );
      }
      this.deps.sessions.touch(ctx.sessionId);
      if (spec.ownerOnly && ctx.principal.kind !== 'owner') {
        throw new WorkspaceError(
          'OWNER_ONLY',
          `${name} is reserved for the workspace owner; agents cannot change policy, tokens or audit.`,
        );
      }
      if (spec.capability !== null && !session.capabilities.includes(spec.capability)) {
        throw new WorkspaceError(
          'CAPABILITY_NOT_NEGOTIATED',
          `${name} is not among this session's capabilities; request it at InitSession (your role or the policy may exclude it).`,
        );
      }
      const validated = spec.validate(rawInput);
      if (spec.params === undefined) params = validated;
      if (spec.rateLimit) {
        // Keyed on the bearer token, not the session: more sessions buy no more throughput.
        const bucket = this.deps.limiters[spec.rateLimit].take(rateKey(ctx.principal));
        if (!bucket.ok) {
          const what = spec.rateLimit === 'exec' ? 'commands' : 'writes';
          throw new WorkspaceError('RATE_LIMITED', `Too many ${what}; retry in ${bucket.retryAfterMs} ms.`, {
            retryAfterMs: bucket.retryAfterMs,
          });
        }
      }
      const { authorize, decide } = this.decider(ctx.principal, made);
      const result = await body(validated, {
        ...ctx,
        session,
        authorize,
        decide,
        holdUntil: (done) => {
          // The session stays busy while a command it started runs (background ones included).
          const held = release;
          release = () => undefined;
          void done.finally(held);
        },
      });
      const summary = [...made].reverse().find((d) => d.summarises) ?? null;
      await this.record(name, ctx, params, summary, made, successOutcome(result), started, spec.readOnly);
      if (LEASE_OPERATIONS.has(name)) this.recheckDocuments();
      return result;
    } catch (err) {
      throw await this.recordFailure(name, spec.target, ctx, params, made, err, started);
    } finally {
      release();
    }
  }

  /** Policy deciders for one call: each decision is appended to `made` for its audit record. */
  private decider(principal: Principal, made: Made[]): { authorize: Authorize; decide: Decide } {
    const ask = (action: PolicyAction, target: string, summarises: boolean): boolean => {
      const decision = this.deps.policy.decide(principal, action, target);
      made.push({
        action,
        target,
        decision: decision.allowed ? 'allow' : 'deny',
        rule: decision.rule,
        summarises,
      });
      if (!decision.allowed && summarises) {
        throw new WorkspaceError('POLICY_DENIED', `Policy denies ${action}(${target}): ${decision.reason}`, {
          rule: decision.rule,
        });
      }
      return decision.allowed;
    };
    return {
      authorize: (action, target) => void ask(action, target, true),
      decide: (action, target) => ask(action, target, false),
    };
  }

  /**
   * Opens a live shared document on `path` for a caller (transport `collab`), authorised and audited
   * like an operation (`collab_open`): the session must be open and have negotiated read_file, the
   * policy must allow reading the confined path, and writing is decided too: without write_file, as
   * a viewer, where the policy denies writing (protected paths included), or while another agent
   * holds an exclusive lease on it, the connection is read-only. The connection keeps its session busy; it ends when the session ends or the policy
   * stops allowing the file, and its end is audited (`collab_close`).
   */
  async openDocument(ctx: CallContext, path: string, client: CollabClient): Promise<CollabConnection> {
    const { collab, sessions, policy, resources, coordination } = this.deps;
    const started = performance.now();
    const made: Made[] = [];
    let params: Record<string, unknown> = { path };
    const release = sessions.hold(ctx.sessionId);
    try {
      if (!collab) throw new WorkspaceError('NOT_FOUND', 'Live co-editing is not enabled on this server.');
      const session = sessions.get(ctx.sessionId);
      if (!session || session.principal.name !== ctx.principal.name) {
        throw new WorkspaceError(
          'SESSION_NOT_FOUND',
          'This session has ended (idle, revoked or closed). Reconnect.',
        );
      }
      sessions.touch(ctx.sessionId);
      if (!session.capabilities.includes('read_file')) {
        throw new WorkspaceError(
          'CAPABILITY_NOT_NEGOTIATED',
          'Opening a shared document needs read_file among the session capabilities.',
        );
      }
      const { authorize, decide } = this.decider(ctx.principal, made);
      const target = authorizePath(resources, authorize, 'read', path);
      let connection: CollabConnection;
      let closed: { code: number; reason: string } | null = null;
      const { rel, realRel } = target;
      params = { path: rel };
      try {
        const writable = (ask: (action: PolicyAction, target: string) => boolean): CollabAccess => {
          if (ctx.principal.role === 'viewer')
            return { readOnly: true, readOnlyReason: 'viewers cannot edit' };
          if (!session.capabilities.includes('write_file')) {
            return { readOnly: true, readOnlyReason: 'write_file was not negotiated for this session' };
          }
          const allowed = ask('write', rel) && (realRel === rel || ask('write', realRel));
          if (!allowed) return { readOnly: true, readOnlyReason: `the policy denies write(${rel})` };
          // Yjs updates cannot carry a warning: another agent's exclusive lease makes the document read-only.
          const lease = coordination.leaseBlocks(ctx.principal, realRel);
          return lease
            ? { readOnly: true, readOnlyReason: `${lease.holder} holds an exclusive lease (${lease.reason})` }
            : { readOnly: false };
        };
        connection = await collab.open(
          target,
          { principal: ctx.principal, sessionId: ctx.sessionId },
          {
            send: (message) => client.send(message),
            close: (code, reason) => {
              closed ??= { code, reason };
              client.close(code, reason);
            },
          },
          writable(decide),
        );
        const fresh = (action: PolicyAction, path: string): boolean =>
          policy.allows(ctx.principal, action, path);
        const stopSessionWatch = sessions.onSessionEnded((ended) => {
          if (ended.sessionId === ctx.sessionId) {
            connection.end(
              CLOSE_CODES.SESSION_ENDED,
              'Your session ended (token or session revoked, or expired).',
            );
          }
        });
        const recheck = (): void => {
          if (!fresh('read', rel) || !fresh('read', realRel)) {
            connection.end(CLOSE_CODES.FORBIDDEN, 'The policy no longer allows you to read this file.');
          } else {
            connection.setAccess(writable(fresh));
          }
        };
        const stopPolicyWatch = policy.onChange(recheck);
        this.documentAccessChecks.add(recheck);
        const stopLeaseWatch = (): boolean => this.documentAccessChecks.delete(recheck);
        try {
          await this.record(
            'collab_open',
            ctx,
            params,
            [...made].reverse().find((d) => d.summarises) ?? null,
            made,
            { ok: true, readOnly: connection.readOnly, revision: connection.revision },
            started,
            false,
          );
        } catch (err) {
          // Not opened after all: the connection leaves before the refusal is recorded.
          stopSessionWatch();
          stopPolicyWatch();
          stopLeaseWatch();
          connection.detach();
          throw err;
        }
        const opened = performance.now();
        let detached = false;
        const inner = connection;
        return {
          path: inner.path,
          revision: inner.revision,
          get readOnly() {
            return inner.readOnly;
          },
          receive: (message) => inner.receive(message),
          setAccess: (access) => inner.setAccess(access),
          end: (code, reason) => inner.end(code, reason),
          detach: () => {
            if (detached) return;
            detached = true;
            inner.detach();
            stopSessionWatch();
            stopPolicyWatch();
            stopLeaseWatch();
            release();
            void this.record(
              'collab_close',
              ctx,
              params,
              null,
              [],
              {
                ok: true,
                code: closed?.code ?? 1000,
                reason: closed?.reason ?? 'client left',
                openMs: Math.round(performance.now() - opened),
              },
              opened,
              true,
            );
          },
        };
      } finally {
        target.close();
      }
    } catch (err) {
      release();
      throw await this.recordFailure('collab_open', 'collab_open', ctx, params, made, err, started);
    }
  }

  /** Audits one client's edits to a shared document written in one flush (`collab_edit`). */
  recordCollabEdit(peer: CollabPeer, batch: EditBatch): void {
    const { path, ...counts } = batch;
    void this.record(
      'collab_edit',
      { principal: peer.principal, sessionId: peer.sessionId, transport: 'collab' },
      { path },
      null,
      [],
      { ok: true, ...counts },
      performance.now(),
      true,
    );
  }

  /**
   * Records a failed operation and returns the error to throw: an unexpected one becomes INTERNAL
   * with a correlation id (logged with its stack); a refusal is recorded as `deny` with the refusing
   * decision (or, refused before any decision, as a deny of the operation itself).
   */
  private async recordFailure(
    name: string,
    target: string,
    ctx: CallContext,
    params: unknown,
    made: Made[],
    err: unknown,
    started: number,
  ): Promise<WorkspaceError> {
    const error = unexpectedError(this.deps.log, err, {
      op: name,
      sessionId: ctx.sessionId,
      agent: ctx.principal.name,
    });
    const refused =
      REFUSALS.has(error.code) ||
      // An exclusive lease is a policy refusal (deny lease-conflict); an overlapping lease is not.
      (error.code === 'LEASE_CONFLICT' && made.some((d) => d.decision === 'deny'));
    const summary = refused
      ? ([...made].reverse().find((d) => d.decision === 'deny') ?? {
          action: 'tool',
          target,
          decision: 'deny' as const,
          rule: null,
          summarises: true,
        })
      : ([...made].reverse().find((d) => d.summarises) ?? null);
    await this.record(
      name,
      ctx,
      params,
      summary,
      made,
      { ok: false, code: error.code, message: error.message },
      started,
      false,
    );
    return error;
  }

  private async record(
    name: string,
    ctx: CallContext,
    params: unknown,
    summary: AuditDecision | null,
    made: Made[],
    outcome: { ok: boolean; [key: string]: unknown },
    started: number,
    readOnly: boolean,
  ): Promise<void> {
    // A large content is summarised on the thread pool first, not while the record is sealed.
    await this.deps.audit.prepare({ params });
    const appended = this.deps.audit.append({
      sessionId: ctx.sessionId,
      agent: ctx.principal.name,
      role: ctx.principal.role,
      transport: ctx.transport,
      op: name,
      params,
      decision: summary?.decision ?? 'allow',
      rule: summary?.rule ?? null,
      decisions: made.map(({ action, target, decision, rule }) => ({ action, target, decision, rule })),
      outcome,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
    // Mutations and refusals are acknowledged only once their record is durable; reads are
    // recorded in order but answered without waiting for the fsync.
    if (readOnly) appended.catch(() => undefined);
    else await appended;
  }

  /** A lease that ended on its own, recorded under its holder so the holder's audit queries show it. */
  private async recordLeaseEvent(event: LeaseEvent): Promise<void> {
    const { lease } = event;
    await this.deps.audit
      .append({
        sessionId: null,
        agent: lease.holder,
        role: lease.holderRole,
        transport: 'server',
        op: event.kind,
        params: {
          leaseId: lease.id,
          paths: lease.paths,
          reason: lease.reason,
          expiresAt: new Date(lease.expiresAt).toISOString(),
          ...(event.by !== undefined ? { takenOverBy: event.by } : {}),
        },
        decision: 'allow',
        rule: null,
        outcome: { ok: true },
        durationMs: 0,
      })
      .catch((err: unknown) =>
        this.deps.log.error('could not record a lease event', {
          op: event.kind,
          error: (err as Error).message,
        }),
      );
  }

  /** A token whose lifetime ran out (its sessions have ended): `token_expired` under its name. */
  private async recordTokenExpired(token: TokenInfo): Promise<void> {
    await this.deps.audit
      .append({
        sessionId: null,
        agent: token.name,
        role: token.role,
        transport: 'server',
        op: 'token_expired',
        params: { name: token.name, createdAt: token.createdAt, expiresAt: token.expiresAt ?? null },
        decision: 'allow',
        rule: null,
        outcome: { ok: true },
        durationMs: 0,
      })
      .catch((err: unknown) =>
        this.deps.log.error('could not record a token expiry', { error: (err as Error).message }),
      );
  }

  /** The start and the end of an execution each get their own audit record. */
  private auditExecution(execution: Execution, ctx: CallContext, shell: boolean): void {
    const started = performance.now();
    const ids = { executionId: execution.id };
    void this.record(
      'execution_start',
      ctx,
      {
        ...ids,
        command: execution.command,
        args: execution.args ?? null,
        // Whether it ran through `/bin/sh -c` (allow exec(*)) or as an argv with no shell.
        shell,
        cwd: execution.cwd,
        image: execution.image,
      },
      null,
      [],
      { ok: true },
      started,
      true,
    );
    void execution.done.then((result: ExecutionResult) => {
      // A command may have changed files that are open as shared documents.
      this.deps.collab?.checkDisk();
      return this.record(
        'execution_end',
        ctx,
        ids,
        null,
        [],
        {
          ok: result.status === 'exited' && result.exitCode === 0,
          status: result.status,
          exitCode: result.exitCode,
          signal: result.signal,
          oomKilled: result.oomKilled,
          truncated: result.truncated,
          bytesOut: Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr),
        },
        started,
        true,
      );
    });
  }
}

/** The audit outcome of a success: a result cut short (a search at its deadline) says so and why. */
function successOutcome(result: unknown): { ok: true; truncated?: true; truncatedReason?: unknown } {
  const { truncated, truncatedReason } = (result ?? {}) as { truncated?: unknown; truncatedReason?: unknown };
  if (truncated !== true) return { ok: true };
  return { ok: true, truncated: true, ...(truncatedReason !== undefined ? { truncatedReason } : {}) };
}
