import { WorkspaceError } from '../../../protocol/errors';
import type { Principal } from '../../../protocol/principal';
import type { ToolAnnotations, ToolResult } from '../../../protocol/tools';
import type { ExecutionResult } from '../../execution';
import { unexpectedError } from '../../log';
import {
  checkArguments,
  countSeverities,
  DEFAULT_TOOL_TIMEOUT_MS,
  expandArgv,
  pathArguments,
  type OutputParsers,
  type PathArgument,
  type RegisteredTool,
} from '../../tools';
import { refuseAmbiguousCharacters } from '../command';
import type { DispatcherDeps, HandlerContext } from '../types';
import { authorizePath } from './paths';
import { startInSandbox, type ExecutionAuditor } from './sandbox';

/** Runs one typed tool call after the dispatcher's checks (session, rate limit, `allow tool(NAME)`). */
export type ToolRunner = (tool: RegisteredTool, args: unknown, ctx: HandlerContext) => Promise<ToolResult>;

/**
 * Typed tool calls: arguments checked against the manifest, path arguments confined and decided on
 * their real paths like the file tools, the argv expanded from the template (no shell), then run in
 * the session's sandbox exactly like run_command, with streaming output, limits and cancel.
 */
export function toolRunner(deps: DispatcherDeps, audit: ExecutionAuditor): ToolRunner {
  const { resources } = deps;
  return async (tool, rawArgs, ctx) => {
    const { manifest } = tool.compiled;
    const values = checkArguments(tool.compiled, rawArgs);
    const cwdPath = authorizePath(resources, ctx.authorize, 'read', manifest.cwd ?? '.');
    const resolved = new Map<PathArgument, string>();
    const held = [cwdPath];
    let argv: string[];
    let realCwd: string;
    try {
      for (const arg of pathArguments(tool.compiled, values)) {
        refuseAmbiguousCharacters(
          arg.index === null ? arg.name : `${arg.name}[${arg.index}]`,
          arg.path,
          false,
        );
        const path = authorizePath(resources, ctx.authorize, arg.access, arg.path, {
          followFinal: true,
          writeGuard: deps.writeGuard,
        });
        held.push(path);
        resolved.set(arg, path.realRel);
      }
      argv = expandArgv(tool.compiled, values, resolved);
      argv.forEach((item, i) => refuseAmbiguousCharacters(`argv[${i}]`, item, true));
      realCwd = cwdPath.realRel;
      const where = await resources.stat(cwdPath);
      if (where.type !== 'directory') {
        throw new WorkspaceError(
          'NOT_A_DIRECTORY',
          `The working directory ${manifest.cwd ?? '.'} of tool ${tool.name} is not a directory of the workspace; the owner must fix its manifest.`,
        );
      }
    } finally {
      for (const path of held) path.close();
    }
    let workspaceFolder = '';
    const execution = await startInSandbox(deps, audit, ctx, {
      request: {
        command: argv[0]!,
        args: argv.slice(1),
        argv,
        cwd: realCwd,
        env: manifest.env,
        timeoutMs: manifest.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS,
      },
      shell: false,
      what: 'tools',
      onEnvironment: (env) => {
        workspaceFolder = env.workspaceFolder;
      },
    });
    const result = await execution.done;
    // The runner reports a program it could not execute as exit code 127 with `exec PROGRAM: ...`.
    if (result.exitCode === 127 && result.error?.startsWith('exec ')) {
      throw new WorkspaceError(
        'TOOL_UNAVAILABLE',
        `Tool ${tool.name} needs the program "${argv[0]}", which the image ${result.image} does not have ` +
          `(${result.error}). Add it to the dev container image, or change the tool's manifest.`,
        { tool: tool.name, program: argv[0], image: result.image },
      );
    }
    const parsed = parseRun(deps, tool, result, { containerWorkspace: workspaceFolder, cwd: realCwd });
    deps.toolRuns?.emit({
      tool: tool.name,
      principal: ctx.principal,
      sessionId: ctx.sessionId,
      executionId: result.executionId,
      status: result.status,
      exitCode: result.exitCode,
      diagnostics: parsed.diagnostics,
      counts: countSeverities(parsed.diagnostics),
      ...(parsed.tests ? { tests: parsed.tests } : {}),
      outsideWorkspace: parsed.outsideWorkspace ?? 0,
      truncated: parsed.truncated ?? false,
      ...(parsed.parseError !== undefined ? { parseError: parsed.parseError } : {}),
      parsed: manifest.parser !== undefined && deps.parsers !== undefined,
      finishedAt: new Date().toISOString(),
    });
    return {
      ...result,
      tool: tool.name,
      diagnostics: parsed.diagnostics,
      ...(parsed.tests ? { tests: parsed.tests } : {}),
    };
  };
}

/**
 * A run's output through its manifest's parser (nothing without one). A parser that throws despite
 * its contract costs the run its diagnostics, not its result: the failure is logged and reported as
 * the run's parse error.
 */
function parseRun(
  deps: DispatcherDeps,
  tool: RegisteredTool,
  result: ExecutionResult,
  where: { containerWorkspace: string; cwd: string },
): ReturnType<OutputParsers['parse']> {
  const spec = tool.compiled.manifest.parser;
  if (!spec || !deps.parsers) return { diagnostics: [] };
  try {
    return deps.parsers.parse(
      spec,
      { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode },
      { ...where, toolName: tool.name },
    );
  } catch (err) {
    const failure = unexpectedError(deps.log, err, { tool: tool.name, parser: spec.type });
    return { diagnostics: [], parseError: `The ${spec.type} output parser failed: ${failure.message}` };
  }
}

/**
 * A typed tool's annotations for a principal: read-only only when its manifest says so AND the
 * caller cannot write the workspace (its commands then see the workspace read-only).
 */
export function toolAnnotations(
  deps: Pick<DispatcherDeps, 'policy'>,
  principal: Principal,
  tool: RegisteredTool,
): ToolAnnotations {
  const readOnly = tool.annotations.readOnlyHint && !deps.policy.allows(principal, 'write', '.');
  return readOnly
    ? { ...tool.annotations, readOnlyHint: true, destructiveHint: false }
    : { ...tool.annotations, readOnlyHint: false };
}

/** Typed tools the policy grants a principal (viewers: only those read-only for them). */
export function offeredTools(
  deps: Pick<DispatcherDeps, 'policy' | 'tools'>,
  principal: Principal,
): RegisteredTool[] {
  // A scoped principal (a pair guest) never runs typed tools, whatever `allow tool` rules exist.
  if (principal.scope !== undefined) return [];
  return (deps.tools?.list() ?? []).filter((tool) => {
    if (!deps.policy.allows(principal, 'tool', tool.name)) return false;
    return principal.role !== 'viewer' || toolAnnotations(deps, principal, tool).readOnlyHint;
  });
}
