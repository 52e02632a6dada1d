/** Who is acting: the workspace owner (VS Code user or CLI operator) or a named agent token. */
export type Role = 'owner' | 'agent' | 'viewer';

/** The authenticated identity behind a request, resolved from its bearer token. */
export interface Principal {
  /** `owner` for the owner token; `agent` for minted tokens (role agent or viewer). */
  kind: 'owner' | 'agent';
  /** Agent name as minted (`owner` for the owner). */
  name: string;
  role: Role;
  /**
   * The only operations this principal may ever negotiate, whatever the policy grants (a pair guest:
   * file operations and live co-editing, never commands or typed tools); absent: no such limit.
   */
  scope?: readonly string[];
  /** When its token stops authenticating (ms since the epoch); absent: never. */
  expiresAt?: number;
}

/** The owner principal: there is exactly one per server. */
export const OWNER: Principal = Object.freeze({ kind: 'owner', name: 'owner', role: 'owner' }) as Principal;

/**
 * What an agent (token) name may look like: 1-64 of letters, digits, `.`, `_` and `-`, starting with
 * a letter or digit. Token minting, policy `@agent:NAME` rules and every other check use this one.
 */
export const AGENT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
