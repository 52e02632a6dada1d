import { WorkspaceError } from '../../../protocol/errors';
import { Coordination, DEFAULT_LEASE_TTL_SECONDS, type LeaseInfo } from '../../coordination';
import type { DispatcherDeps, HandlerContext, Handlers } from '../types';

/** The operations of agents working together: membership, messages and leases. */
export type CoordinationOperation =
  | 'join_workspace'
  | 'broadcast_message'
  | 'read_inbox'
  | 'acquire_lease'
  | 'renew_lease'
  | 'release_lease'
  | 'list_leases'
  | 'list_presence';

/** A lease as the protocol shows it (ISO times, whether its holder has gone idle). */
function leaseView(coordination: Coordination, lease: LeaseInfo) {
  return {
    id: lease.id,
    holder: lease.holder,
    paths: lease.paths,
    reason: lease.reason,
    acquiredAt: new Date(lease.acquiredAt).toISOString(),
    expiresAt: new Date(lease.expiresAt).toISOString(),
    idle: coordination.isIdle(lease),
  };
}

/** Handlers of join_workspace, broadcast_message, read_inbox, the lease operations and list_presence. */
export function coordinationHandlers(deps: DispatcherDeps): Handlers<CoordinationOperation> {
  const { coordination } = deps;
  return {
    join_workspace: async (input, ctx) => {
      const members = coordination.join(ctx.session, input.workspaceId);
      return {
        sessionId: ctx.session.sessionId,
        capabilities: ctx.session.capabilities,
        agent: ctx.principal.name,
        role: ctx.principal.role,
        workspaceId: coordination.workspaceId,
        members,
      };
    },
    broadcast_message: async (input, ctx) =>
      coordination.broadcast(ctx.principal, ctx.sessionId, input.message, input.to),
    read_inbox: async (input, ctx) => {
      const agent = input.agent ?? ctx.principal.name;
      return { agent, messages: coordination.inbox(ctx.principal, agent, input.after) };
    },
    acquire_lease: async (input, ctx) => {
      const paths = Coordination.leasePaths(input.paths);
      authorizeLeasePaths(ctx, paths);
      const { lease, takenOver } = coordination.acquire(ctx.principal, {
        paths,
        ttlMs: (input.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS) * 1000,
        reason: input.reason,
        ...(input.takeOver !== undefined ? { takeOver: input.takeOver } : {}),
      });
      return {
        ...leaseView(coordination, lease),
        ...(takenOver.length > 0
          ? { takenOver: takenOver.map((l) => ({ id: l.id, holder: l.holder })) }
          : {}),
      };
    },
    renew_lease: async (input, ctx) =>
      leaseView(
        coordination,
        coordination.renew(
          ctx.principal,
          input.leaseId,
          input.ttlSeconds !== undefined ? input.ttlSeconds * 1000 : undefined,
        ),
      ),
    release_lease: async (input, ctx) => {
      const lease = coordination.release(ctx.principal, input.leaseId);
      return {
        success: true,
        message: `Lease ${lease.id} of '${lease.holder}' on ${lease.paths.join(', ')} released.`,
      };
    },
    // Like presence: a lease shows only the paths the caller may read, and one with none is left out.
    list_leases: async (_input, ctx) => ({
      leases: coordination
        .list()
        .map((lease) => ({ ...lease, paths: coordination.visiblePaths(ctx.principal, lease) }))
        .filter((lease) => lease.paths.length > 0)
        .map((lease) => leaseView(coordination, lease)),
    }),
    // Filtered for the caller: files it may not read never appear.
    list_presence: async (_input, ctx) => deps.presence.view(ctx.principal),
  };
}

/**
 * Only paths the caller may write can be leased: each glob is decided as a write target, and so is
 * the folder its matches live under (protected paths and denied folders are refused).
 */
function authorizeLeasePaths(ctx: HandlerContext, paths: string[]): void {
  for (const path of paths) {
    ctx.authorize('write', path);
    const prefix = Coordination.leasePrefix(path);
    if (prefix !== '' && prefix !== path) ctx.authorize('write', prefix);
  }
}

/**
 * Checks a change of workspace paths against other agents' leases: each touched lease is decided
 * as `lease-conflict(PATH)` (recorded in the audit record); a deny is LEASE_CONFLICT naming the
 * holder and the lease, an allow becomes a warning in the result. Returns the warnings.
 */
export function leaseWarnings(deps: DispatcherDeps, ctx: HandlerContext, paths: string[]): string[] {
  const warnings: string[] = [];
  for (const path of new Set(paths)) {
    const leases = deps.coordination.conflicts(ctx.principal, path);
    if (leases.length === 0) continue;
    const allowed = ctx.decide('lease-conflict', path);
    for (const lease of leases) {
      const until = new Date(lease.expiresAt).toISOString();
      if (!allowed) {
        throw new WorkspaceError(
          'LEASE_CONFLICT',
          `${path} is leased exclusively by '${lease.holder}' until ${until} (${lease.reason}); ask them with broadcast_message, or wait for the lease ${lease.id} to be released or to expire.`,
          { leaseId: lease.id, holder: lease.holder, paths: lease.paths, expiresAt: until },
        );
      }
      warnings.push(
        `${path} is leased by '${lease.holder}' until ${until} (${lease.reason}, lease ${lease.id}); your change was made, but coordinate with them (broadcast_message).`,
      );
    }
  }
  return warnings;
}
