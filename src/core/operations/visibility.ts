import type { Principal } from '../../protocol/principal';

/**
 * The one audit visibility rule, for queries and live feeds alike: the owner sees every record,
 * agents and viewers only their own.
 */
export function maySeeAuditRecord(principal: Principal, record: { agent: string }): boolean {
  return principal.kind === 'owner' || record.agent === principal.name;
}

/** The `agent` filter a query runs with: the owner's choice, else always the caller's own name. */
export function auditAgentFilter(principal: Principal, asked: string | undefined): string | undefined {
  return principal.kind === 'owner' ? asked : principal.name;
}
