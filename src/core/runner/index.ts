import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { WorkspaceError, toWorkspaceError } from '../../protocol/errors';
import {
  NEGOTIABLE_OPERATIONS,
  OPERATIONS,
  type OperationInput,
  type OperationName,
  type OperationOutput,
} from '../../protocol/operations';
import { OWNER, type Principal } from '../../protocol/principal';
import type { AuditLog } from '../audit';
import type { PolicyAction, PolicyDecision, PolicyEngine, PolicyStore } from '../policy';
import type { ConfinedPath, ResourceManager } from '../resources';
import type { RateLimiter, SessionInfo, SessionManager } from '../session';
import type { Execution, ExecutionManager, ExecutionResult, OutputEvent, SandboxHandle } from '../execution';
import {
  argvTarget,
  refuseAmbiguousCharacters,
  shellParts,
  tokenizeCommand,
  type CommandPlan,
} from './command';

/** Who is calling, over which transport, in which session. */
export interface CallContext {
  principal: Principal;
  sessionId: string;
  transport: string;
  /** Receives a command's output as it is produced (run_command streaming). */
  onOutput?: (event: OutputEvent) => void;
}

/** Audit operations of the server's own lifecycle, recorded with the owner as actor. */
export type ServerEvent = 'server_start' | 'server_stop';

/** Collaborators of the runner: the seed's components. */
export interface RunnerDeps {
  sessions: SessionManager;
  resources: ResourceManager;
  policy: PolicyEngine;
  policyStore: PolicyStore;
  audit: AuditLog;
  executions: ExecutionManager;
  /** Token buckets per bearer token (shared by all its sessions): file mutations and command executions. */
  limiters: { write: RateLimiter; exec: RateLimiter };
  /** Refuses (by throwing) a change to a workspace-relative path, e.g. one with unsaved editor changes. */
  writeGuard?: (path: string) => void;
  /** Subscribes to sandbox progress (image builds, container starts); returns the unsubscribe. */
  onSandboxProgress?: (
    listener: (event: { phase: string; message: string; sessionId?: string }) => void,
  ) => () => void;
}

type Authorize = (action: PolicyAction, target: string) => void;
type Handler<N extends OperationName> = (
  input: OperationInput<N>,
  ctx: CallContext & {
    session: SessionInfo;
    authorize: Authorize;
    /** Keeps the session busy until `done` settles instead of until the operation returns. */
    holdUntil: (done: Promise<unknown>) => void;
  },
) => Promise<OperationOutput<N>>;

/** The rate-limit bucket of a caller: one per bearer token, whatever the session. */
function rateKey(principal: Principal): string {
  return `${principal.kind}:${principal.name}`;
}

/**
 * The one place every operation flows through, whatever the transport: session and capability
 * checks, schema validation, owner-only and rate limits, policy decisions, the service call, and
 * exactly one audit record with the decision, the deciding rule and the outcome.
 */
export class OperationRunner {
  private readonly handlers: { [N in OperationName]: Handler<N> };

  constructor(private readonly deps: RunnerDeps) {
    this.handlers = this.createHandlers();
  }

  /** Operations a principal may negotiate: role limits, then any `deny tool(NAME)` rule. */
  offeredFor(principal: Principal): OperationName[] {
    return NEGOTIABLE_OPERATIONS.filter((name) => {
      const def = OPERATIONS[name];
      if (def.ownerOnly && principal.kind !== 'owner') return false;
      if (principal.role === 'viewer' && !def.annotations.readOnlyHint) return false;
      const decision = this.deps.policy.decide(principal, 'tool', name);
      return decision.allowed || decision.rule === null;
    });
  }

  /** InitSession: negotiate the session's tools and open it (audited like any operation). */
  async initSession(
    principal: Principal,
    requested: string[] | undefined,
    meta: { transport: string; clientName?: string; sessionId?: string },
  ): Promise<SessionInfo> {
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

  /** Runs one operation for a caller; throws a WorkspaceError with a stable code on failure. */
  async run<N extends OperationName>(
    name: N,
    rawInput: unknown,
    ctx: CallContext,
  ): Promise<OperationOutput<N>> {
    const started = performance.now();
    const def = OPERATIONS[name];
    let decision: PolicyDecision | null = null;
    let params: unknown = rawInput;
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
      if (def.ownerOnly && ctx.principal.kind !== 'owner') {
        throw new WorkspaceError(
          'OWNER_ONLY',
          `${name} is reserved for the workspace owner; agents cannot change policy, tokens or audit.`,
        );
      }
      // Every session may ask what it negotiated; everything else must have been negotiated.
      if (name !== 'list_capabilities' && !session.capabilities.includes(name)) {
        throw new WorkspaceError(
          'CAPABILITY_NOT_NEGOTIATED',
          `${name} is not among this session's capabilities; request it at InitSession (your role or the policy may exclude it).`,
        );
      }
      const parsed = def.input.safeParse(rawInput ?? {});
      if (!parsed.success) {
        throw new WorkspaceError(
          'INVALID_ARGUMENT',
          `Invalid arguments for ${name}: ${z.prettifyError(parsed.error)}`,
        );
      }
      params = parsed.data;
      if (def.rateLimit) {
        // Keyed on the bearer token, not the session: more sessions buy no more throughput.
        const bucket = this.deps.limiters[def.rateLimit].take(rateKey(ctx.principal));
        if (!bucket.ok) {
          const what = def.rateLimit === 'exec' ? 'commands' : 'writes';
          throw new WorkspaceError('RATE_LIMITED', `Too many ${what}; retry in ${bucket.retryAfterMs} ms.`, {
            retryAfterMs: bucket.retryAfterMs,
          });
        }
      }
      const authorize: Authorize = (action, target) => {
        decision = this.deps.policy.decide(ctx.principal, action, target);
        if (!decision.allowed) {
          throw new WorkspaceError(
            'POLICY_DENIED',
            `Policy denies ${action}(${target}): ${decision.reason}`,
            {
              rule: decision.rule,
            },
          );
        }
      };
      const handler = this.handlers[name] as Handler<N>;
      const result = await handler(parsed.data as OperationInput<N>, {
        ...ctx,
        session,
        authorize,
        holdUntil: (done) => {
          // The session stays busy while a command it started runs (background ones included).
          const held = release;
          release = () => undefined;
          void done.finally(held);
        },
      });
      await this.record(
        name,
        ctx,
        params,
        decision,
        successOutcome(result),
        started,
        def.annotations.readOnlyHint,
      );
      return result;
    } catch (err) {
      const error = toWorkspaceError(err);
      const denied = [
        'POLICY_DENIED',
        'OWNER_ONLY',
        'CAPABILITY_NOT_NEGOTIATED',
        'SESSION_NOT_FOUND',
      ].includes(error.code);
      await this.record(
        name,
        ctx,
        params,
        denied
          ? (decision ?? { allowed: false, rule: null, ruleIndex: null, reason: error.message })
          : decision,
        { ok: false, code: error.code, message: error.message },
        started,
        false,
      );
      throw error;
    } finally {
      release();
    }
  }

  private async record(
    name: string,
    ctx: CallContext,
    params: unknown,
    decision: PolicyDecision | null,
    outcome: { ok: boolean; [key: string]: unknown },
    started: number,
    readOnly: boolean,
  ): Promise<void> {
    const appended = this.deps.audit.append({
      sessionId: ctx.sessionId,
      agent: ctx.principal.name,
      role: ctx.principal.role,
      transport: ctx.transport,
      op: name,
      params,
      decision: decision && !decision.allowed ? 'deny' : 'allow',
      rule: decision?.rule ?? null,
      outcome,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
    // Mutations and refusals are acknowledged only once their record is durable; reads are
    // recorded in order but answered without waiting for the fsync.
    if (readOnly) appended.catch(() => undefined);
    else await appended;
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
      { ok: true },
      started,
      true,
    );
    void execution.done.then((result: ExecutionResult) =>
      this.record(
        'execution_end',
        ctx,
        ids,
        null,
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
      ),
    );
  }

  private createHandlers(): { [N in OperationName]: Handler<N> } {
    const { resources, policy, policyStore, sessions, audit, executions } = this.deps;
    // Resolves the path once (on held descriptors), decides on the path as asked and, when a symlink
    // redirects it, on where it really lands, and returns that same resolution for the I/O: no path
    // string is looked up again after the decision. The caller closes it (see `closing`).
    const authorizePath = (
      authorize: Authorize,
      action: PolicyAction,
      path: string,
      opts: { followFinal: boolean } = { followFinal: true },
    ): ConfinedPath => {
      const asked = resources.normalize(path);
      authorize(action, asked);
      const resolved = resources.resolve(path, opts);
      try {
        if (resolved.realRel !== asked) authorize(action, resolved.realRel);
        if (action === 'write') this.deps.writeGuard?.(resolved.realRel);
      } catch (err) {
        resolved.close();
        throw err;
      }
      return resolved;
    };
    const closing = async <T>(paths: ConfinedPath[], fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } finally {
        for (const path of paths) path.close();
      }
    };
    const location = { followFinal: false };
    return {
      init_session: async () => {
        throw new WorkspaceError(
          'INVALID_ARGUMENT',
          'InitSession is answered by the transport, not as a call.',
        );
      },
      list_capabilities: async (_input, ctx) => ({ tools: [...ctx.session.capabilities] }),
      read_file: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'read', input.path);
        return closing([target], () =>
          resources.readFile(target, input.encoding ? { encoding: input.encoding } : {}),
        );
      },
      write_file: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'write', input.path);
        return closing([target], () =>
          resources.writeFile(target, input.content, {
            ...(input.encoding ? { encoding: input.encoding } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
          }),
        );
      },
      list_files: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'read', input.path);
        return closing([target], () =>
          resources.listFiles(target, {
            ...(input.depth !== undefined ? { depth: input.depth } : {}),
            ...(input.includeIgnored !== undefined ? { includeIgnored: input.includeIgnored } : {}),
          }),
        );
      },
      file_info: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'read', input.path);
        return closing([target], () => resources.stat(target));
      },
      edit_file: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'read', input.path);
        return closing([target], async () => {
          ctx.authorize('write', target.rel);
          if (target.realRel !== target.rel) ctx.authorize('write', target.realRel);
          this.deps.writeGuard?.(target.realRel);
          return resources.edit(target, input.edits, {
            ...(input.dryRun !== undefined ? { dryRun: input.dryRun } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
            // Large edits run on the worker threads, shared fairly per token.
            caller: `${ctx.principal.kind}:${ctx.principal.name}`,
          });
        });
      },
      search_files: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'read', input.path ?? '.');
        const principal = ctx.principal;
        return closing([target], () =>
          resources.search(input.query, {
            path: target,
            ...(input.regex !== undefined ? { regex: input.regex } : {}),
            ...(input.caseSensitive !== undefined ? { caseSensitive: input.caseSensitive } : {}),
            ...(input.glob !== undefined ? { glob: input.glob } : {}),
            ...(input.maxResults !== undefined ? { maxResults: input.maxResults } : {}),
            // Files the policy forbids reading (secrets) never show up in results: the search threads
            // decide on the policy in force when the search started.
            access: { policy: policy.policy, principal },
            // Fair shares of the search threads are per token.
            caller: `${principal.kind}:${principal.name}`,
          }),
        );
      },
      create_directory: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'write', input.path);
        return closing([target], () => resources.mkdir(target));
      },
      delete_file: async (input, ctx) => {
        const target = authorizePath(ctx.authorize, 'write', input.path, location);
        return closing([target], () =>
          resources.delete(target, {
            ...(input.recursive !== undefined ? { recursive: input.recursive } : {}),
            ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
          }),
        );
      },
      move_file: async (input, ctx) => {
        const source = authorizePath(ctx.authorize, 'write', input.from, location);
        return closing([source], () => {
          const dest = authorizePath(ctx.authorize, 'write', input.to, location);
          return closing([dest], () =>
            resources.move(source, dest, {
              ...(input.overwrite !== undefined ? { overwrite: input.overwrite } : {}),
              ...(input.expectedRevision !== undefined ? { expectedRevision: input.expectedRevision } : {}),
            }),
          );
        });
      },
      run_command: async (input, ctx) => {
        const cwd = input.cwd ?? '.';
        refuseAmbiguousCharacters('cwd', cwd, false);
        const cwdPath = authorizePath(ctx.authorize, 'read', cwd);
        const realCwd = cwdPath.realRel;
        const where = await closing([cwdPath], () => resources.stat(cwdPath));
        if (where.type !== 'directory') {
          throw new WorkspaceError('NOT_A_DIRECTORY', `cwd ${cwd} is not a directory of the workspace.`);
        }
        const plan = planCommand(ctx.authorize, input);
        for (const [key, value] of Object.entries(input.env ?? {})) {
          refuseAmbiguousCharacters(`env.${key}`, value, true);
          ctx.authorize('env', key);
        }
        const principal = ctx.principal;
        // An image built from files this agent may write runs whatever the agent put in it (its own
        // /bin/sh, /usr/bin/echo...): a narrow exec rule then guarantees nothing, so it needs exec(*).
        const checkEnvironment = (env: SandboxHandle['env']): void => {
          if (plan.shell || !env.buildInputs) return;
          const writable = env.buildInputs.find((path) => policy.decide(principal, 'write', path).allowed);
          if (writable === undefined) return;
          try {
            ctx.authorize('exec', '*');
            return;
          } catch (err) {
            if (!(err instanceof WorkspaceError) || err.code !== 'POLICY_DENIED') throw err;
          }
          throw new WorkspaceError(
            'POLICY_DENIED',
            `The dev container image is built from files you may write (${writable}), so it can run anything ` +
              'in place of the allowed program; commands in it need `allow exec(*)`.',
            { buildInput: writable, rule: 'allow exec(*)' },
          );
        };
        // While the sandbox gets ready (a first build can take minutes), the caller sees progress
        // as stderr lines marked `[mcp-workspace]`, numbered 0 (they precede the command's output).
        // Progress addressed to another session (its build log) is not this caller's to see.
        const forward = ctx.onOutput;
        const stopProgress = forward
          ? this.deps.onSandboxProgress?.((e) => {
              if (e.sessionId !== undefined && e.sessionId !== ctx.sessionId) return;
              forward({ stream: 'stderr', data: `[mcp-workspace] ${e.phase}: ${e.message}\n`, seq: 0 });
            })
          : undefined;
        const execution = await executions
          .start(
            {
              sessionId: ctx.sessionId,
              principal: ctx.principal,
              // The container gets the network only on an explicit grant, and a writable workspace
              // only when the policy lets this agent write.
              network: policy.decide(ctx.principal, 'network', '*').allowed,
              readOnly: !policy.decide(ctx.principal, 'write', '.').allowed,
              // An image build ships only what this agent may read.
              mayRead: (path) => policy.decide(principal, 'read', path).allowed,
            },
            { ...input, cwd: realCwd, argv: plan.argv, checkEnvironment },
          )
          .finally(() => stopProgress?.());
        this.auditExecution(execution, ctx, plan.shell);
        ctx.holdUntil(execution.done);
        if (ctx.onOutput) {
          const forward = ctx.onOutput;
          const stop = execution.subscribe((event) => {
            if (event.stream !== 'exit') forward(event);
          });
          void execution.done.then(stop);
        }
        return input.background ? execution.snapshot() : execution.done;
      },
      cancel_execution: async (input, ctx) => executions.cancel(input.executionId, ctx.principal),
      get_execution: async (input, ctx) => {
        const execution = executions.get(input.executionId, ctx.principal);
        return input.wait ? execution.done : execution.snapshot();
      },
      list_executions: async (_input, ctx) => ({
        executions: executions.list(ctx.principal).map((e) => ({
          executionId: e.id,
          agent: e.agent,
          sessionId: e.sessionId,
          command: e.args ? [e.command, ...e.args].join(' ') : e.command,
          status: e.status,
          startedAt: new Date(e.startedAt).toISOString(),
        })),
      }),
      get_policies: async () => ({ policies: [policy.policy] }),
      explain_policy: async (input, ctx) => {
        let principal = ctx.principal;
        if (input.agent !== undefined && input.agent !== principal.name) {
          if (principal.kind !== 'owner') {
            throw new WorkspaceError('OWNER_ONLY', 'Only the owner can explain decisions for another agent.');
          }
          const token = sessions.listTokens().find((t) => t.name === input.agent);
          if (!token) throw new WorkspaceError('NOT_FOUND', `No agent token named '${input.agent}'.`);
          principal = { kind: 'agent', name: token.name, role: token.role };
        }
        return policy.decide(principal, input.action, input.target);
      },
      set_policy: async (input) => {
        policy.set(input);
        await policyStore.save(policy.policy);
        return {
          success: true,
          message: `Policy '${input.id}' with ${input.rules.length} rules is in force.`,
        };
      },
      create_token: async (input) => sessions.mintToken(input.name, input.role),
      revoke_token: async (input) => {
        await sessions.revokeToken(input.name);
        return { success: true, message: `Token '${input.name}' revoked; its sessions have ended.` };
      },
      list_tokens: async () => ({ tokens: sessions.listTokens() }),
      revoke_session: async (input) => {
        const target = sessions.get(input.sessionId);
        if (!target) {
          throw new WorkspaceError(
            'SESSION_NOT_FOUND',
            `No open session ${input.sessionId}; it may have ended already (list_sessions shows the open ones).`,
          );
        }
        sessions.end(input.sessionId, 'revoked');
        return {
          success: true,
          message: `Session ${input.sessionId} of '${target.principal.name}' ended; its token stays valid.`,
        };
      },
      list_sessions: async () => ({
        sessions: sessions.list().map((s) => ({
          sessionId: s.sessionId,
          agent: s.principal.name,
          role: s.principal.role,
          transport: s.transport,
          ...(s.clientName !== undefined ? { clientName: s.clientName } : {}),
          capabilities: s.capabilities,
          createdAt: new Date(s.createdAt).toISOString(),
          lastActivityAt: new Date(s.lastActivityAt).toISOString(),
        })),
      }),
      query_audit: async (input, ctx) => {
        // Agents and viewers see only their own records; the owner sees all.
        const agent = ctx.principal.kind === 'owner' ? input.agent : ctx.principal.name;
        // Reads are answered before their record is durable; a query sees every record appended
        // before it (the caller's own reads included), not only those already committed.
        await audit.flush();
        const page = await audit.query({ ...input, ...(agent !== undefined ? { agent } : {}) });
        return page as OperationOutput<'query_audit'>;
      },
      verify_audit: async () => {
        return audit.verify();
      },
    };
  }
}

/** The audit outcome of a success: a result cut short (a search at its deadline) says so and why. */
function successOutcome(result: unknown): { ok: true; truncated?: true; truncatedReason?: unknown } {
  const { truncated, truncatedReason } = (result ?? {}) as { truncated?: unknown; truncatedReason?: unknown };
  if (truncated !== true) return { ok: true };
  return { ok: true, truncated: true, ...(truncatedReason !== undefined ? { truncatedReason } : {}) };
}

/**
 * Authorises a command and decides how it runs. With `args`, or when the command is plain words,
 * the argv is judged (quoted words joined by spaces) and run with no shell. Anything a shell would
 * interpret (pipes, redirections such as `&>`, `;`, `&&`, `$(...)`, backquotes, globs, assignments)
 * needs `allow exec(*)`, and then every chained part must pass the `deny exec(...)` rules too.
 * A caller granted `allow exec(*)` runs through `/bin/sh -c`, so shell builtins work for it.
 */
function planCommand(
  authorize: Authorize,
  input: { command: string; args?: string[] | undefined },
): CommandPlan {
  const { command, args } = input;
  refuseAmbiguousCharacters('command', command, args === undefined);
  if (args) {
    args.forEach((arg, i) => refuseAmbiguousCharacters(`args[${i}]`, arg, true));
    const argv = [command, ...args];
    authorize('exec', argvTarget(argv));
    return { argv, shell: false };
  }
  const words = tokenizeCommand(command);
  let wildcard: WorkspaceError | null = null;
  try {
    authorize('exec', '*');
  } catch (err) {
    if (!(err instanceof WorkspaceError) || err.code !== 'POLICY_DENIED') throw err;
    wildcard = err;
  }
  if (wildcard === null) {
    for (const part of shellParts(command)) authorize('exec', part);
    return { argv: ['/bin/sh', '-c', command], shell: true };
  }
  if (words === null) {
    throw new WorkspaceError(
      'POLICY_DENIED',
      `Policy denies exec(${command.length > 200 ? command.slice(0, 200) + '...' : command}): it uses shell ` +
        'syntax (pipes, redirections, lists, expansions, globs or quoting beyond plain words), which only ' +
        '`allow exec(*)` grants; commands allowed by a narrower rule run as plain words with no shell. ' +
        'Pass the program and its arguments, or ask the owner for `allow exec(*)`.',
      { rule: null },
    );
  }
  authorize('exec', argvTarget(words));
  return { argv: words, shell: false };
}
