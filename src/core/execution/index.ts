/**
 * The Execution Manager and the public entry of the execution component: the runtime-neutral
 * sandbox vocabulary (./runtime), the Docker runtime that implements it (./docker) and the types
 * of the in-container runner's processes (./runner). Nothing outside this folder imports its
 * subfolders.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WorkspaceError } from '../../protocol/errors';
import type { z } from 'zod';
import type { schemas } from '../../protocol/operations';
import type { Principal } from '../../protocol/principal';
import type { RunnerExit, RunnerProcess } from './runner';
import type { Sandbox, SandboxEnvironment, SandboxRuntime } from './runtime';

export type { Sandbox, SandboxEnvironment, SandboxExecSpec, SandboxRuntime, SandboxSpec } from './runtime';
export type { RunnerExit, RunnerProcess } from './runner';
export {
  DockerRuntime,
  type DockerRuntimeOptions,
  type DockerSandbox,
  type ProgressEvent,
  type ResolvedEnvironment,
  type SandboxLimits,
} from './docker';

/** RunCommand parameters, validated by the protocol schema and authorised by the operation runner. */
export interface RunCommandRequest {
  /** The command as the caller wrote it (for display and the audit). */
  command: string;
  args?: string[] | undefined;
  /** What runs: the argv the policy judged (no shell), or `/bin/sh -c COMMAND` for `allow exec(*)`. */
  argv: string[];
  /** Refuses (by throwing) to run in the environment the sandbox resolved, e.g. an agent-built image. */
  checkEnvironment?: (env: SandboxEnvironment) => void;
  /** Workspace-relative working directory (already confined by the caller). */
  cwd: string;
  env?: Record<string, string> | undefined;
  timeoutMs?: number | undefined;
  stdin?: string | undefined;
  background?: boolean | undefined;
  /**
   * A long-lived process spoken to over its stdin and stdout (a sandboxed MCP server): stdin stays
   * open for {@link Execution.writeStdin}, and output goes to subscribers only (nothing is retained
   * for replay, so no output cap applies; the caller bounds what it reads).
   */
  interactive?: boolean | undefined;
}

/** One piece of a running command's output, in order (`seq` counts events per execution). */
export interface OutputEvent {
  stream: 'stdout' | 'stderr';
  data: string;
  seq: number;
}

/** Lifecycle of an execution. */
export type ExecutionStatus = ExecutionResult['status'];

/** The PRD's ExecutionResult `{executionId, exitCode, logs}` plus everything an agent needs (the protocol's shape). */
export type ExecutionResult = z.output<typeof schemas.executionResult>;

/** Limits of the Execution Manager. */
export interface ExecutionLimits {
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  /** stdout+stderr bytes kept (and forwarded) per execution; the rest is dropped with a marker. */
  outputCapBytes: number;
  /** Grace between TERM and KILL on cancel or timeout. */
  killGraceMs: number;
  maxConcurrentPerSession: number;
  /** Commands running at once per agent token, over all its sessions (the owner is not limited). */
  maxConcurrentPerAgent: number;
  maxLogLines: number;
  /** Finished executions stay attachable this long. */
  retainMs: number;
}

/** Defaults: 2 min timeout (1 h max), 10 MiB output, 2 s grace, 4 concurrent per session, 8 per agent. */
export const DEFAULT_EXECUTION_LIMITS: ExecutionLimits = {
  defaultTimeoutMs: 120_000,
  maxTimeoutMs: 3_600_000,
  outputCapBytes: 10 * 1024 * 1024,
  killGraceMs: 2_000,
  maxConcurrentPerSession: 4,
  maxConcurrentPerAgent: 8,
  maxLogLines: 1_000,
  retainMs: 10 * 60_000,
};

/** The PATH every command starts with (programs are looked up in it, never in one the image chose). */
export const SERVER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const TRUNCATION_MARKER = '\n[mcp-workspace: output truncated]\n';
/** A line longer than this is cut in `logs` (stdout and stderr keep it whole). */
const MAX_LOG_LINE_CHARS = 4096;

/** A command running (or run) in a session container; output is buffered for re-attachment. */
export class Execution {
  readonly id = randomUUID();
  readonly startedAt = Date.now();
  status: ExecutionStatus = 'running';
  /** Settles with the final result; never rejects. */
  readonly done: Promise<ExecutionResult>;
  private readonly events: OutputEvent[] = [];
  private readonly listeners = new Set<
    (event: OutputEvent | { stream: 'exit'; result: ExecutionResult }) => void
  >();
  private bufferedBytes = 0;
  private readonly logs: string[] = [];
  private partialLine = '';
  private dropped = false;
  private cancelRequested = false;
  private timedOut = false;
  private result: ExecutionResult | null = null;
  private readonly started = performance.now();
  private killTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly sessionId: string,
    readonly principal: Principal,
    readonly command: string,
    readonly args: string[] | undefined,
    readonly cwd: string,
    readonly image: string,
    private readonly child: RunnerProcess,
    private readonly limits: ExecutionLimits,
    timeoutMs: number,
    private readonly interactive = false,
  ) {
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const data = decoders[stream].decode(chunk, { stream: true });
      if (data) this.push(stream, data);
    };
    child.on('stdout', onData('stdout'));
    child.on('stderr', onData('stderr'));
    const timeout = setTimeout(() => {
      this.timedOut = true;
      this.terminate();
    }, timeoutMs);
    timeout.unref();
    this.done = child.exited.then((exit) => {
      clearTimeout(timeout);
      if (this.killTimer) clearTimeout(this.killTimer);
      for (const stream of ['stdout', 'stderr'] as const) {
        const tail = decoders[stream].decode();
        if (tail) this.push(stream, tail);
      }
      return this.finish(exit);
    });
  }

  /** Name of the agent that started it. */
  get agent(): string {
    return this.principal.name;
  }

  /** Output so far and, once finished, the result: replayed first, then live (re-attach). */
  subscribe(
    listener: (event: OutputEvent | { stream: 'exit'; result: ExecutionResult }) => void,
  ): () => void {
    for (const event of this.events) listener(event);
    if (this.result) {
      listener({ stream: 'exit', result: this.result });
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Current state: the final result, or a running snapshot. */
  snapshot(): ExecutionResult {
    return this.result ?? this.build({ exitCode: null, signal: null, truncated: false, oomKilled: false });
  }

  /** Cancels: TERM to the whole process tree, KILL after the grace period. Returns at once. */
  cancel(): boolean {
    if (this.result) return false;
    this.cancelRequested = true;
    this.terminate();
    return true;
  }

  /** Sends stdin (closed afterwards). */
  feedStdin(data: string): void {
    this.child.writeStdin(data);
    this.child.endStdin();
  }

  /** Writes to the stdin of an interactive execution (kept open until {@link endStdin} or exit). */
  writeStdin(data: string): void {
    if (!this.interactive) throw new Error('writeStdin: the execution was not started interactive');
    this.child.writeStdin(data);
  }

  /** Closes the stdin of an interactive execution (the process sees EOF). */
  endStdin(): void {
    if (this.interactive) this.child.endStdin();
  }

  private terminate(): void {
    if (this.result || this.killTimer) return;
    this.child.signal('SIGTERM');
    this.killTimer = setTimeout(() => this.child.signal('SIGKILL'), this.limits.killGraceMs);
    this.killTimer.unref();
  }

  private push(stream: 'stdout' | 'stderr', data: string): void {
    if (this.interactive) {
      // Spoken to, not logged: live subscribers get the output; nothing is kept for replay.
      const event: OutputEvent = { stream, data, seq: 0 };
      for (const listener of this.listeners) listener(event);
      return;
    }
    if (this.dropped) return;
    const bytes = Buffer.byteLength(data);
    if (this.bufferedBytes + bytes > this.limits.outputCapBytes) {
      this.dropped = true;
      data = TRUNCATION_MARKER;
    }
    this.bufferedBytes += bytes;
    const event: OutputEvent = { stream, data, seq: this.events.length + 1 };
    this.events.push(event);
    this.collectLines(data);
    for (const listener of this.listeners) listener(event);
  }

  // The PRD's `logs`: lines of both streams in order, kept as they arrive (linear in the output).
  private collectLines(data: string): void {
    if (this.logs.length >= this.limits.maxLogLines) return;
    let start = 0;
    for (let nl = data.indexOf('\n'); nl !== -1; nl = data.indexOf('\n', start)) {
      this.pushLine(this.partialLine + data.slice(start, nl));
      this.partialLine = '';
      start = nl + 1;
      if (this.logs.length >= this.limits.maxLogLines) return;
    }
    if (this.partialLine.length < MAX_LOG_LINE_CHARS)
      this.partialLine += data.slice(start, start + MAX_LOG_LINE_CHARS);
  }

  private pushLine(line: string): void {
    this.logs.push(line.length > MAX_LOG_LINE_CHARS ? `${line.slice(0, MAX_LOG_LINE_CHARS)}…` : line);
  }

  private finish(exit: RunnerExit): ExecutionResult {
    this.result = this.build(exit);
    this.status = this.result.status;
    for (const listener of this.listeners) listener({ stream: 'exit', result: this.result });
    this.listeners.clear();
    return this.result;
  }

  private build(exit: RunnerExit): ExecutionResult {
    const text = (stream: 'stdout' | 'stderr'): string =>
      this.events
        .filter((e) => e.stream === stream)
        .map((e) => e.data)
        .join('');
    const logs =
      this.partialLine && this.logs.length < this.limits.maxLogLines
        ? [...this.logs, this.partialLine.slice(0, MAX_LOG_LINE_CHARS)]
        : [...this.logs];
    const finished =
      this.result !== null || exit.exitCode !== null || exit.signal !== null || Boolean(exit.error);
    const status: ExecutionStatus = !finished
      ? 'running'
      : this.cancelRequested
        ? 'cancelled'
        : this.timedOut
          ? 'timed_out'
          : exit.error && exit.exitCode === null
            ? 'failed'
            : exit.signal
              ? 'killed'
              : 'exited';
    return {
      executionId: this.id,
      status,
      exitCode: exit.exitCode,
      signal: exit.signal,
      timedOut: this.timedOut,
      cancelled: this.cancelRequested,
      oomKilled: exit.oomKilled,
      truncated: exit.truncated || this.dropped,
      durationMs: Math.round((performance.now() - this.started) * 1000) / 1000,
      stdout: text('stdout'),
      stderr: text('stderr'),
      logs,
      image: this.image,
      ...(exit.error ? { error: exit.error } : {}),
    };
  }
}

/**
 * The PRD's Execution Manager: runs commands in the session's container (never on the host), with
 * streaming output, cancellation of the whole process tree, time and output limits, a per-session
 * concurrency limit, and re-attachment to background executions by id.
 */
export class ExecutionManager {
  private readonly executions = new Map<string, Execution>();
  private readonly limits: ExecutionLimits;
  /** Commands admitted but not yet registered (their sandbox is being acquired), by session. */
  private readonly starting = new Map<string, { agent: string; count: number }>();

  constructor(
    private readonly sandboxes: SandboxRuntime,
    limits: Partial<ExecutionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_EXECUTION_LIMITS, ...limits };
  }

  /** Starts a command; resolves once it is running (use `execution.done` for the result). */
  async start(
    session: {
      sessionId: string;
      principal: Principal;
      readOnly: boolean;
      network: boolean;
      mayRead?: (path: string) => boolean;
    },
    request: RunCommandRequest,
  ): Promise<Execution> {
    this.admit(session.sessionId, session.principal);
    const reservation = this.starting.get(session.sessionId)!;
    reservation.count++;
    let sandbox: Sandbox;
    try {
      sandbox = await this.sandboxes.acquire({
        sessionId: session.sessionId,
        agent: session.principal.name,
        readOnly: session.readOnly,
        network: session.network,
        ...(session.mayRead ? { mayRead: session.mayRead } : {}),
      });
    } finally {
      if (--reservation.count === 0) this.starting.delete(session.sessionId);
    }
    const timeoutMs = Math.min(request.timeoutMs ?? this.limits.defaultTimeoutMs, this.limits.maxTimeoutMs);
    request.checkEnvironment?.(sandbox.env);
    const folder = sandbox.env.workspaceFolder;
    const cwd = request.cwd === '.' ? folder : `${folder}/${request.cwd}`;
    const argv = request.argv;
    // The server's PATH, whatever the image set: only an owner rule `allow env(PATH)` lets
    // devcontainer.json remoteEnv or the request change it.
    const env = {
      PATH: SERVER_PATH,
      HOME: '/tmp',
      ...sandbox.env.remoteEnv,
      ...(request.env ?? {}),
    };
    const child = sandbox.exec({
      argv,
      cwd,
      env,
      outputCapBytes: request.interactive ? 0 : this.limits.outputCapBytes,
      stdin: request.stdin !== undefined || request.interactive === true,
    });
    const execution = new Execution(
      session.sessionId,
      session.principal,
      request.command,
      request.args,
      request.cwd,
      sandbox.env.image,
      child,
      this.limits,
      timeoutMs,
      request.interactive === true,
    );
    if (request.stdin !== undefined) execution.feedStdin(request.stdin);
    this.executions.set(execution.id, execution);
    void execution.done.then(() => {
      const forget = setTimeout(() => this.executions.delete(execution.id), this.limits.retainMs);
      forget.unref();
    });
    return execution;
  }

  /**
   * Refuses a command (RATE_LIMITED) when its session, or its agent token over all sessions, already
   * runs its limit of commands, counting those still waiting for their sandbox; otherwise ensures
   * the session has a reservation entry for the caller to count itself in.
   */
  private admit(sessionId: string, principal: Principal): void {
    let session = this.starting.get(sessionId)?.count ?? 0;
    let agent = 0;
    const byAgent = principal.kind === 'agent';
    for (const e of this.executions.values()) {
      if (e.status !== 'running') continue;
      if (e.sessionId === sessionId) session++;
      if (byAgent && e.principal.kind === 'agent' && e.agent === principal.name) agent++;
    }
    if (byAgent) {
      for (const pending of this.starting.values())
        if (pending.agent === principal.name) agent += pending.count;
    }
    if (session >= this.limits.maxConcurrentPerSession) {
      throw new WorkspaceError(
        'RATE_LIMITED',
        `This session already runs ${session} commands (the limit); wait for one to finish or cancel it.`,
        { retryAfterMs: 1000 },
      );
    }
    if (byAgent && agent >= this.limits.maxConcurrentPerAgent) {
      throw new WorkspaceError(
        'RATE_LIMITED',
        `Agent token '${principal.name}' already runs ${agent} commands over its sessions (the limit is ${this.limits.maxConcurrentPerAgent}); wait for one to finish or cancel it (cancel_execution).`,
        { retryAfterMs: 1000, limit: this.limits.maxConcurrentPerAgent },
      );
    }
    if (!this.starting.has(sessionId))
      this.starting.set(sessionId, { agent: byAgent ? principal.name : '', count: 0 });
  }

  /** An execution the caller may see: its own agent's, or any for the owner. */
  get(executionId: string, principal: Principal): Execution {
    const execution = this.executions.get(executionId);
    if (!execution || (principal.kind !== 'owner' && execution.agent !== principal.name)) {
      throw new WorkspaceError(
        'EXECUTION_NOT_FOUND',
        `No execution ${executionId} of yours (finished ones are kept ${Math.round(this.limits.retainMs / 60_000)} minutes).`,
      );
    }
    return execution;
  }

  /** CancelExecution: TERM, then KILL after the grace period; returns at once. */
  cancel(executionId: string, principal: Principal): { success: boolean; message: string } {
    const execution = this.get(executionId, principal);
    return execution.cancel()
      ? { success: true, message: `Cancelling ${executionId}: TERM sent to its process tree, KILL follows.` }
      : { success: false, message: `${executionId} has already finished (${execution.status}).` };
  }

  /** Executions of a session (or, for the owner, all), newest first. */
  list(principal: Principal): Execution[] {
    return [...this.executions.values()]
      .filter((e) => principal.kind === 'owner' || e.agent === principal.name)
      .sort((a, b) => b.startedAt - a.startedAt);
  }

  /** Number of running executions (for status displays). */
  get running(): number {
    return [...this.executions.values()].filter((e) => e.status === 'running').length;
  }

  /** A session ended: cancel its commands and drop its container. */
  async endSession(sessionId: string): Promise<void> {
    for (const execution of this.executions.values()) {
      if (execution.sessionId === sessionId) execution.cancel();
    }
    await this.sandboxes.release(sessionId);
  }
}
