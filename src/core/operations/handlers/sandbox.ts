import { WorkspaceError } from '../../../protocol/errors';
import type { Execution, RunCommandRequest, SandboxEnvironment } from '../../execution';
import type { CallContext, DispatcherDeps, HandlerContext } from '../types';

/** Records an execution's start and end (the dispatcher's audit hook for commands and tools). */
export type ExecutionAuditor = (execution: Execution, ctx: CallContext, shell: boolean) => void;

/** What to run in the caller's sandbox, as run_command or a typed tool decided it. */
export interface SandboxRun {
  /** The request (argv, cwd, env, limits); its environment check is added here. */
  request: Omit<RunCommandRequest, 'checkEnvironment'>;
  /** Whether it runs through `/bin/sh -c` (granted by `allow exec(*)` already). */
  shell: boolean;
  /** What the caller runs, for messages: "commands", "tools". */
  what: string;
  /** Sees the environment the sandbox resolved (e.g. its workspace folder) before anything runs. */
  onEnvironment?: (env: SandboxEnvironment) => void;
}

/**
 * Starts `run` in the caller's session sandbox, the one way commands and typed tools run: the
 * container gets the network and a writable workspace only on the caller's grants (both decisions
 * recorded), an image built from files the caller may write needs `allow exec(*)`, sandbox progress
 * reaches the caller as `[mcp-workspace]` stderr lines, the start and end are audited, the session
 * stays busy until the execution ends, and its output is forwarded as it comes.
 */
export async function startInSandbox(
  deps: DispatcherDeps,
  audit: ExecutionAuditor,
  ctx: HandlerContext,
  run: SandboxRun,
): Promise<Execution> {
  const { policy, executions } = deps;
  const principal = ctx.principal;
  // An image built from files this agent may write runs whatever the agent put in it (its own
  // /bin/sh, /usr/bin/echo...): a narrow grant then guarantees nothing, so it needs exec(*).
  const checkEnvironment = (env: SandboxEnvironment): void => {
    run.onEnvironment?.(env);
    if (run.shell || !env.buildInputs) return;
    const writable = env.buildInputs.find((path) => policy.allows(principal, 'write', path));
    if (writable === undefined || ctx.decide('exec', '*')) return;
    throw new WorkspaceError(
      'POLICY_DENIED',
      `The dev container image is built from files you may write (${writable}), so it can run anything ` +
        `in place of ${run.request.argv[0]}; ${run.what} in it need \`allow exec(*)\`.`,
      { buildInput: writable, rule: 'allow exec(*)' },
    );
  };
  // While the sandbox gets ready (a first build can take minutes), the caller sees progress as
  // stderr lines numbered 0 (they precede the output). Another session's progress is not its to see.
  const forward = ctx.onOutput;
  const stopProgress = forward
    ? deps.onSandboxProgress?.((e) => {
        if (e.sessionId !== undefined && e.sessionId !== ctx.sessionId) return;
        forward({ stream: 'stderr', data: `[mcp-workspace] ${e.phase}: ${e.message}\n`, seq: 0 });
      })
    : undefined;
  const execution = await executions
    .start(
      {
        sessionId: ctx.sessionId,
        principal,
        network: ctx.decide('network', '*'),
        readOnly: !ctx.decide('write', '.'),
        // An image build ships only what this agent may read (one decision per file: not listed in
        // the record, which names the build inputs instead).
        mayRead: (path) => policy.allows(principal, 'read', path),
      },
      { ...run.request, checkEnvironment },
    )
    .finally(() => stopProgress?.());
  audit(execution, ctx, run.shell);
  ctx.holdUntil(execution.done);
  if (forward) {
    const stop = execution.subscribe((event) => {
      if (event.stream !== 'exit') forward(event);
    });
    void execution.done.then(stop);
  }
  return execution;
}
