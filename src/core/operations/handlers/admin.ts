import { WorkspaceError } from '../../../protocol/errors';
import type { OperationOutput } from '../../../protocol/operations';
import type { DispatcherDeps, Handlers } from '../types';
import { auditAgentFilter } from '../visibility';
import { offeredMcpTools } from './mcpservers';
import { offeredTools } from './tools';

/** Session, policy, token and audit operations (most are owner-only; the dispatcher enforces it). */
export type AdminOperation =
  | 'init_session'
  | 'list_capabilities'
  | 'get_policies'
  | 'explain_policy'
  | 'set_policy'
  | 'create_token'
  | 'revoke_token'
  | 'list_tokens'
  | 'revoke_session'
  | 'list_sessions'
  | 'query_audit'
  | 'verify_audit';

/** Handlers of the session, policy, token and audit operations. */
export function adminHandlers(deps: DispatcherDeps): Handlers<AdminOperation> {
  const { policy, policyStore, sessions, audit } = deps;
  return {
    init_session: async () => {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        'InitSession opens a session: call the dispatcher’s initSession, not run().',
      );
    },
    // Negotiated operations, then the typed tools the policy grants now (they come and go with
    // manifests), then the tools of sandboxed MCP servers listed in this session.
    list_capabilities: async (_input, ctx) => ({
      tools: [
        ...ctx.session.capabilities,
        ...offeredTools(deps, ctx.principal).map((tool) => tool.name),
        ...offeredMcpTools(deps, ctx.principal, ctx.sessionId).map((tool) => tool.name),
      ],
      workspaceId: deps.coordination.workspaceId,
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
      const agent = auditAgentFilter(ctx.principal, input.agent);
      // Reads are answered before their record is durable; a query sees every record appended
      // before it (the caller's own reads included), not only those already committed.
      await audit.flush();
      const page = await audit.query({ ...input, ...(agent !== undefined ? { agent } : {}) });
      return page as OperationOutput<'query_audit'>;
    },
    verify_audit: async () => audit.verify(),
  };
}
