import type { CallToolResult } from '@modelcontextprotocol/client';
import { WorkspaceError } from '../../../protocol/errors';
import type { Principal } from '../../../protocol/principal';
import type { ToolAnnotations } from '../../../protocol/tools';
import type { Launcher, UpstreamTool } from '../../mcpservers';
import type { PolicyAction } from '../../policy';
import type { RegisteredMcpServer } from '../../tools';
import { refuseAmbiguousCharacters } from '../command';
import type { DispatcherDeps, HandlerContext } from '../types';
import { authorizePath } from './paths';
import { startInSandbox, type ExecutionAuditor } from './sandbox';

/** What a call of a sandboxed MCP server's tool returns on every transport. */
export interface McpToolResult {
  /** The name called (`SERVER_TOOL`). */
  tool: string;
  server: string;
  /** The server's content blocks, as it gave them. */
  content: CallToolResult['content'];
  structuredContent?: Record<string, unknown>;
  /** The server reported the call as failed (its content says why). */
  isError: boolean;
}

/** A sandboxed server's process lives until it idles out or its session ends, within the longest timeout. */
const SERVER_LIFETIME_MS = 3_600_000;

/**
 * Starts a sandboxed MCP server's stdio command in the caller's session sandbox, exactly like
 * run_command (same container, limits, network and workspace decisions, audited start and end),
 * with stdin kept open. The working directory is confined and decided like a typed tool's.
 */
export function sandboxLauncher(
  deps: DispatcherDeps,
  audit: ExecutionAuditor,
  ctx: HandlerContext,
): Launcher {
  return async (server) => {
    // Decided and recorded, refused on a deny, without standing in for the call's own tool decision.
    const mayRead = (action: PolicyAction, target: string): void => {
      if (!ctx.decide(action, target)) {
        throw new WorkspaceError(
          'POLICY_DENIED',
          `Policy denies ${action}(${target}), the working directory of MCP server ${server.name}.`,
        );
      }
    };
    const cwdPath = authorizePath(deps.resources, mayRead, 'read', server.cwd);
    let cwd: string;
    try {
      cwd = cwdPath.realRel;
      const where = await deps.resources.stat(cwdPath);
      if (where.type !== 'directory') {
        throw new WorkspaceError(
          'NOT_A_DIRECTORY',
          `The working directory ${server.cwd} of MCP server ${server.name} is not a directory of the workspace; the owner must fix its manifest.`,
        );
      }
    } finally {
      cwdPath.close();
    }
    const argv = server.command;
    argv.forEach((item, i) => refuseAmbiguousCharacters(`mcpServer.command[${i}]`, item, true));
    // Its stdout is this server's conversation with it, never the caller's output; and a server
    // left running does not keep the session from idling out (ending the session stops it).
    const { onOutput: _caller, ...rest } = ctx;
    const execution = await startInSandbox(
      deps,
      audit,
      { ...rest, holdUntil: () => undefined },
      {
        request: {
          command: argv[0]!,
          args: argv.slice(1),
          argv,
          cwd,
          env: server.env,
          timeoutMs: SERVER_LIFETIME_MS,
          interactive: true,
        },
        shell: false,
        what: 'MCP servers',
      },
    );
    return {
      image: execution.image,
      process: {
        write: (data) => execution.writeStdin(data),
        onOutput: (listener) =>
          execution.subscribe((event) => {
            if (event.stream !== 'exit') listener(event.stream, event.data);
          }),
        exited: execution.done.then((r) => ({ exitCode: r.exitCode, signal: r.signal, error: r.error })),
        stop: () => void execution.cancel(),
      },
    };
  };
}

/** The annotations of every sandboxed server's tool: never read-only, open-world when it has a network. */
export function mcpToolAnnotations(
  deps: Pick<DispatcherDeps, 'policy'>,
  principal: Principal,
): ToolAnnotations {
  return {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: deps.policy.allows(principal, 'network', '*'),
  };
}

/**
 * Whether a principal may be granted any tool of `server`: an allow rule matches `NAME_*`, or names
 * a tool of it. Servers nobody may call are never started for listing.
 */
export function mayReachServer(
  deps: Pick<DispatcherDeps, 'policy'>,
  principal: Principal,
  server: RegisteredMcpServer,
): boolean {
  // Viewers never run them; a scoped token (a pair guest) uses file operations only.
  if (principal.role === 'viewer' || principal.scope !== undefined) return false;
  const prefix = `${server.name}_`;
  const targets = [
    `${prefix}*`,
    ...deps.policy
      .rules()
      .filter((r) => r.effect === 'allow' && r.action === 'tool' && r.pattern.startsWith(prefix))
      .map((r) => r.pattern),
  ];
  return targets.some((target) => deps.policy.allows(principal, 'tool', target));
}

/** The sandboxed MCP servers' tools listed in a session that the policy grants its principal. */
export function offeredMcpTools(
  deps: Pick<DispatcherDeps, 'policy' | 'tools' | 'mcpServers'>,
  principal: Principal,
  sessionId: string,
): UpstreamTool[] {
  const { mcpServers: host, tools, policy } = deps;
  if (!host || !tools || principal.role === 'viewer' || principal.scope !== undefined) return [];
  return tools
    .mcpServers()
    .flatMap((server) => host.tools(sessionId, server))
    .filter((tool) => policy.allows(principal, 'tool', tool.name));
}
