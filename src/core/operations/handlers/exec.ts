import { WorkspaceError } from '../../../protocol/errors';
import {
  argvTarget,
  refuseAmbiguousCharacters,
  shellParts,
  tokenizeCommand,
  type CommandPlan,
} from '../command';
import type { Authorize, DispatcherDeps, Handlers } from '../types';
import { authorizePath, closing } from './paths';
import { startInSandbox, type ExecutionAuditor } from './sandbox';

/** The command operations this group answers. */
export type ExecOperation = 'run_command' | 'cancel_execution' | 'get_execution' | 'list_executions';

/** Commands in the session's sandbox: decided on exactly what will execute, then started and followed. */
export function execHandlers(deps: DispatcherDeps, audit: ExecutionAuditor): Handlers<ExecOperation> {
  const { resources, executions } = deps;
  return {
    run_command: async (input, ctx) => {
      const cwd = input.cwd ?? '.';
      refuseAmbiguousCharacters('cwd', cwd, false);
      const cwdPath = authorizePath(resources, ctx.authorize, 'read', cwd);
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
      const execution = await startInSandbox(deps, audit, ctx, {
        request: { ...input, cwd: realCwd, argv: plan.argv },
        shell: plan.shell,
        what: 'commands',
      });
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
  };
}

/**
 * Authorises a command and decides how it runs. With `args`, or when the command is plain words,
 * the argv is judged (quoted words joined by spaces) and run with no shell. Anything a shell would
 * interpret (pipes, redirections such as `&>`, `;`, `&&`, `$(...)`, backquotes, globs, assignments)
 * needs `allow exec(*)`, and then every chained part must pass the `deny exec(...)` rules too.
 * A caller granted `allow exec(*)` runs through `/bin/sh -c`, so shell builtins work for it.
 */
export function planCommand(
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
