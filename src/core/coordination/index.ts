import { randomUUID } from 'node:crypto';
import { WorkspaceError } from '../../protocol/errors';
import type { Principal, Role } from '../../protocol/principal';
import type { PolicyEngine } from '../policy';
import type { SessionInfo, SessionManager } from '../session';
import { compileLeaseGlob, normalizeRel, overlaps, touches, type LeaseGlob } from './globs';

/** Default lifetime of a lease that is not renewed. */
export const DEFAULT_LEASE_TTL_SECONDS = 300;
/** Default time without any activity of its holder after which a lease may be taken over. */
export const DEFAULT_LEASE_IDLE_GRACE_MS = 5 * 60 * 1000;
/** Largest message text in UTF-8 bytes. */
export const MAX_MESSAGE_BYTES = 16 * 1024;
/** Messages kept per inbox (older ones are dropped). */
export const INBOX_SIZE = 100;
/** Live leases one holder may have at once. */
export const MAX_LEASES_PER_HOLDER = 64;

/** A live lease: who holds which paths, why, and until when (epoch ms). */
export interface LeaseInfo {
  id: string;
  holder: string;
  holderRole: Role;
  paths: string[];
  reason: string;
  acquiredAt: number;
  expiresAt: number;
  ttlMs: number;
}

/** A message sent with broadcast_message, as every recipient gets it. */
export interface WorkspaceMessage {
  id: string;
  from: string;
  /** The one agent it was addressed to, or null for everyone. */
  to: string | null;
  message: string;
  sentAt: string;
}

/** A session that has joined the workspace, as other members see it. */
export interface MemberInfo {
  agent: string;
  role: Role;
  transport: string;
  joinedAt: string;
}

/** Where a member session's messages go (a 2025 MCP notification, a WebSocket event). */
export type MessageSink = (message: WorkspaceMessage) => void;

/** A lease that ended without its holder asking: audited by the dispatcher. */
export interface LeaseEvent {
  kind: 'lease_expired' | 'lease_revoked' | 'lease_taken_over';
  lease: LeaseInfo;
  /** The agent that took the lease over (lease_taken_over). */
  by?: string;
}

/** Options of {@link Coordination}. */
export interface CoordinationOptions {
  /** Stable id of the served workspace (join_workspace must name it). */
  workspaceId: string;
  /** Human-readable workspace name, for messages. */
  workspaceName: string;
  sessions: SessionManager;
  policy: PolicyEngine;
  /** Holder inactivity after which its leases may be taken over (default 5 minutes). */
  leaseIdleGraceMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

interface Lease extends LeaseInfo {
  holderKind: Principal['kind'];
  globs: LeaseGlob[];
  renewedAt: number;
  timer: NodeJS.Timeout;
}

interface Member {
  session: SessionInfo;
  joinedAt: number;
}

/** Identity of a holder or sender: agent tokens and the owner never share a key. */
function keyOf(principal: Pick<Principal, 'kind' | 'name'>): string {
  return `${principal.kind}:${principal.name}`;
}

/** Runs one listener: a failing recipient never fails the sender or skips the other recipients. */
function notify(deliver: () => void): void {
  try {
    deliver();
  } catch {
    // The recipient's transport is gone or broken; its session ends on its own.
  }
}

/** The public, timer-free view of a lease. */
function infoOf(lease: Lease): LeaseInfo {
  const { id, holder, holderRole, paths, reason, acquiredAt, expiresAt, ttlMs } = lease;
  return { id, holder, holderRole, paths: [...paths], reason, acquiredAt, expiresAt, ttlMs };
}

/**
 * Agents working together in one workspace: membership (join_workspace), messages to every member
 * or one agent (each member session through its transport's sink, every recipient agent's inbox, and
 * the VS Code user), and leases on path globs that warn or, under a `deny lease-conflict(...)` rule,
 * refuse other agents' writes. State lives in memory for the server's lifetime.
 */
export class Coordination {
  /** Stable id of the served workspace. */
  readonly workspaceId: string;
  private readonly workspaceName: string;
  private readonly sessions: SessionManager;
  private readonly policy: PolicyEngine;
  private readonly graceMs: number;
  private readonly now: () => number;
  private readonly members = new Map<string, Member>();
  private readonly sinks = new Map<string, Set<MessageSink>>();
  private readonly inboxes = new Map<string, WorkspaceMessage[]>();
  private readonly humanListeners = new Set<(message: WorkspaceMessage) => void>();
  private readonly inboxListeners = new Set<(agent: string) => void>();
  private readonly leaseListeners = new Set<(event: LeaseEvent) => void>();
  private readonly leases = new Map<string, Lease>();
  private readonly stopSessionWatch: () => void;

  constructor(options: CoordinationOptions) {
    this.workspaceId = options.workspaceId;
    this.workspaceName = options.workspaceName;
    this.sessions = options.sessions;
    this.policy = options.policy;
    this.graceMs = options.leaseIdleGraceMs ?? DEFAULT_LEASE_IDLE_GRACE_MS;
    this.now = options.now ?? Date.now;
    this.stopSessionWatch = options.sessions.onSessionEnded((session, reason) => {
      this.members.delete(session.sessionId);
      this.sinks.delete(session.sessionId);
      if (reason === 'revoked') this.endRevokedLeases();
    });
  }

  // ---- membership and messages ----------------------------------------------------------------

  /**
   * JoinWorkspace: makes `session` a member (it receives broadcasts from now until it ends) and
   * returns the members, itself included. Joining again is harmless. A wrong id is NOT_FOUND.
   */
  join(session: SessionInfo, workspaceId: string): MemberInfo[] {
    if (workspaceId !== this.workspaceId) {
      throw new WorkspaceError(
        'NOT_FOUND',
        `No workspace with id '${workspaceId}' is served here; this server serves '${this.workspaceName}' with id '${this.workspaceId}' (list_capabilities shows it).`,
      );
    }
    if (!this.members.has(session.sessionId)) {
      this.members.set(session.sessionId, { session, joinedAt: this.now() });
    }
    return this.memberList();
  }

  /** The member sessions, oldest first (session ids are not shown to other agents). */
  memberList(): MemberInfo[] {
    return [...this.members.values()].map(({ session, joinedAt }) => ({
      agent: session.principal.name,
      role: session.principal.role,
      transport: session.transport,
      joinedAt: new Date(joinedAt).toISOString(),
    }));
  }

  /** Ids of the sessions that joined the workspace (presence shows who receives broadcasts). */
  memberSessionIds(): string[] {
    return [...this.members.keys()];
  }

  /**
   * Where a session's messages go while it is a member: transports attach one sink per session
   * (MCP 2025 notifications, WebSocket events). Returns the detach function.
   */
  attachDeliveries(sessionId: string, sink: MessageSink): () => void {
    let set = this.sinks.get(sessionId);
    if (!set) this.sinks.set(sessionId, (set = new Set()));
    set.add(sink);
    return () => {
      const current = this.sinks.get(sessionId);
      current?.delete(sink);
      if (current?.size === 0) this.sinks.delete(sessionId);
    };
  }

  /**
   * The VS Code user's messages: every message to everyone or to `owner`, unless the owner sent it.
   * Returns the unsubscribe function.
   */
  onMessage(listener: (message: WorkspaceMessage) => void): () => void {
    this.humanListeners.add(listener);
    return () => this.humanListeners.delete(listener);
  }

  /** Called with the agent name whenever a message lands in that agent's inbox (2026 MCP clients). */
  onInboxUpdated(listener: (agent: string) => void): () => void {
    this.inboxListeners.add(listener);
    return () => this.inboxListeners.delete(listener);
  }

  /**
   * BroadcastMessage: delivers `text` to every other member session (or only those of agent `to`),
   * to each recipient agent's inbox, and to the VS Code user. Returns the message id and how many
   * recipients it reached (member sessions, plus one for the VS Code user when it is listening).
   */
  broadcast(
    from: Principal,
    fromSessionId: string,
    text: string,
    to?: string,
  ): { id: string; delivered: number } {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new WorkspaceError(
        'MESSAGE_TOO_LARGE',
        `The message is ${bytes} bytes; at most ${MAX_MESSAGE_BYTES} are allowed. Put long content in a file and send its path.`,
        { limit: MAX_MESSAGE_BYTES },
      );
    }
    const recipients = [...this.members.values()].filter(
      ({ session }) =>
        session.sessionId !== fromSessionId && (to === undefined || session.principal.name === to),
    );
    const toHuman =
      (to === undefined || to === 'owner') && from.kind !== 'owner' && this.humanListeners.size > 0;
    if (to !== undefined && recipients.length === 0 && !toHuman) {
      const known = to === 'owner' || this.sessions.listTokens().some((t) => t.name === to);
      throw new WorkspaceError(
        'NOT_FOUND',
        known
          ? `Agent '${to}' has no session that joined the workspace; it receives messages after join_workspace.`
          : `No agent named '${to}'; send without "to" to reach every member.`,
      );
    }
    const message: WorkspaceMessage = {
      id: randomUUID(),
      from: from.name,
      to: to ?? null,
      message: text,
      sentAt: new Date(this.now()).toISOString(),
    };
    const agents = new Set<string>();
    for (const { session } of recipients) {
      agents.add(session.principal.name);
      for (const sink of this.sinks.get(session.sessionId) ?? []) notify(() => sink(message));
    }
    for (const agent of agents) {
      const inbox = this.inboxes.get(agent) ?? [];
      inbox.push(message);
      if (inbox.length > INBOX_SIZE) inbox.splice(0, inbox.length - INBOX_SIZE);
      this.inboxes.set(agent, inbox);
      for (const listener of this.inboxListeners) notify(() => listener(agent));
    }
    if (toHuman) for (const listener of this.humanListeners) notify(() => listener(message));
    return { id: message.id, delivered: recipients.length + (toHuman ? 1 : 0) };
  }

  /**
   * The messages delivered to `agent` (the newest {@link INBOX_SIZE}, oldest first), optionally only
   * those after message `after`. An agent reads only its own inbox; the owner reads any.
   */
  inbox(reader: Principal, agent: string, after?: string): WorkspaceMessage[] {
    if (agent !== reader.name && reader.kind !== 'owner') {
      throw new WorkspaceError(
        'OWNER_ONLY',
        `An agent reads only its own inbox (inbox://${reader.name}); only the owner may read '${agent}'s.`,
      );
    }
    const inbox = this.inboxes.get(agent) ?? [];
    if (after === undefined) return [...inbox];
    const index = inbox.findIndex((m) => m.id === after);
    return index === -1 ? [...inbox] : inbox.slice(index + 1);
  }

  // ---- leases ---------------------------------------------------------------------------------

  /** Subscribes to leases ending on their own (expiry, token revocation, takeover). */
  onLeaseEvent(listener: (event: LeaseEvent) => void): () => void {
    this.leaseListeners.add(listener);
    return () => this.leaseListeners.delete(listener);
  }

  /** Validates lease globs (INVALID_PATTERN when malformed) and returns them normalised. */
  static leasePaths(paths: string[]): string[] {
    return [...new Set(paths.map((p) => compileLeaseGlob(p).text))];
  }

  /** The literal folder a lease glob's matches live under ('' for the whole workspace). */
  static leasePrefix(path: string): string {
    return compileLeaseGlob(path).prefix;
  }

  /**
   * Acquires a lease on `paths` for `ttlMs`. Overlapping leases of other holders are a
   * LEASE_CONFLICT, unless `takeOver` is set and each of their holders has been idle for the grace
   * period: those leases end (lease_taken_over) and this one starts.
   */
  acquire(
    principal: Principal,
    request: { paths: string[]; ttlMs: number; reason: string; takeOver?: boolean },
  ): { lease: LeaseInfo; takenOver: LeaseInfo[] } {
    this.prune();
    const globs = request.paths.map(compileLeaseGlob);
    const holderKey = keyOf(principal);
    const own = [...this.leases.values()].filter(
      (l) => keyOf({ kind: l.holderKind, name: l.holder }) === holderKey,
    );
    if (own.length >= MAX_LEASES_PER_HOLDER) {
      throw new WorkspaceError(
        'LEASE_LIMIT',
        `You hold ${own.length} leases, the most allowed; release some (release_lease) or lease a broader glob.`,
      );
    }
    const conflicting = [...this.leases.values()].filter(
      (l) =>
        keyOf({ kind: l.holderKind, name: l.holder }) !== holderKey &&
        l.globs.some((g) => globs.some((mine) => overlaps(g, mine))),
    );
    for (const lease of conflicting) {
      const idle = this.isIdle(lease);
      if (!request.takeOver || !idle) {
        throw this.conflictError(
          lease,
          idle
            ? 'Its holder has gone idle: retry with takeOver: true to take it over.'
            : `Its holder is active; ask them (broadcast_message to '${lease.holder}') or wait until it expires. A lease can be taken over once its holder has been idle for ${Math.round(this.graceMs / 1000)} s.`,
        );
      }
    }
    for (const lease of conflicting) {
      this.remove(lease);
      this.emit({ kind: 'lease_taken_over', lease: infoOf(lease), by: principal.name });
    }
    const now = this.now();
    const lease: Lease = {
      id: randomUUID(),
      holder: principal.name,
      holderKind: principal.kind,
      holderRole: principal.role,
      paths: globs.map((g) => g.text),
      globs,
      reason: request.reason,
      acquiredAt: now,
      renewedAt: now,
      expiresAt: now + request.ttlMs,
      ttlMs: request.ttlMs,
      timer: this.expiryTimer(request.ttlMs),
    };
    this.leases.set(lease.id, lease);
    return { lease: infoOf(lease), takenOver: conflicting.map(infoOf) };
  }

  /** Extends one of the caller's leases to `ttlMs` (default its TTL) from now. */
  renew(principal: Principal, leaseId: string, ttlMs?: number): LeaseInfo {
    this.prune();
    const lease = this.leaseOf(leaseId);
    if (keyOf({ kind: lease.holderKind, name: lease.holder }) !== keyOf(principal)) {
      throw new WorkspaceError(
        'LEASE_CONFLICT',
        `Lease ${leaseId} is held by '${lease.holder}'; only its holder can renew it.`,
        { leaseId, holder: lease.holder },
      );
    }
    const now = this.now();
    lease.ttlMs = ttlMs ?? lease.ttlMs;
    lease.renewedAt = now;
    lease.expiresAt = now + lease.ttlMs;
    clearTimeout(lease.timer);
    lease.timer = this.expiryTimer(lease.ttlMs);
    return infoOf(lease);
  }

  /** Ends one of the caller's leases (the owner may end anyone's). */
  release(principal: Principal, leaseId: string): LeaseInfo {
    this.prune();
    const lease = this.leaseOf(leaseId);
    const mine = keyOf({ kind: lease.holderKind, name: lease.holder }) === keyOf(principal);
    if (!mine && principal.kind !== 'owner') {
      throw new WorkspaceError(
        'LEASE_CONFLICT',
        `Lease ${leaseId} is held by '${lease.holder}'; only its holder or the owner can release it.`,
        { leaseId, holder: lease.holder },
      );
    }
    this.remove(lease);
    return infoOf(lease);
  }

  /** Every live lease, oldest first, with whether its holder has gone idle. */
  list(): (LeaseInfo & { idle: boolean })[] {
    this.prune();
    return [...this.leases.values()].map((l) => ({ ...infoOf(l), idle: this.isIdle(l) }));
  }

  /**
   * The paths of a lease that `viewer` may see: all for the owner; for others only the globs it may
   * read, glob and literal folder alike (a lease on files hidden from an agent never names them to it).
   */
  visiblePaths(viewer: Principal, lease: Pick<LeaseInfo, 'paths'>): string[] {
    if (viewer.kind === 'owner') return [...lease.paths];
    const mayRead = (path: string): boolean => this.policy.decide(viewer, 'read', path).allowed;
    return lease.paths.filter((glob) => {
      const prefix = compileLeaseGlob(glob).prefix;
      return mayRead(glob) && (prefix === '' || mayRead(prefix));
    });
  }

  /** Leases of other holders that a change of `path` (workspace-relative) touches. */
  conflicts(principal: Principal, path: string): LeaseInfo[] {
    this.prune();
    const rel = normalizeRel(path);
    const key = keyOf(principal);
    return [...this.leases.values()]
      .filter(
        (l) => keyOf({ kind: l.holderKind, name: l.holder }) !== key && l.globs.some((g) => touches(g, rel)),
      )
      .map(infoOf);
  }

  /**
   * The lease that makes `path` read-only for `principal`: another holder's lease on it, made
   * exclusive for this principal by a `deny lease-conflict(...)` rule; null when it may write.
   * Collaborative editors call this for clients whose updates cannot carry a warning.
   */
  leaseBlocks(principal: Principal, path: string): LeaseInfo | null {
    const leases = this.conflicts(principal, path);
    if (leases.length === 0) return null;
    return this.policy.decide(principal, 'lease-conflict', normalizeRel(path) || '.').allowed
      ? null
      : leases[0]!;
  }

  /** Whether a lease's holder has shown no activity for the grace period. */
  isIdle(lease: LeaseInfo): boolean {
    const stored = this.leases.get(lease.id);
    let last = stored?.renewedAt ?? lease.acquiredAt;
    for (const session of this.sessions.list()) {
      const p = session.principal;
      if (p.name === lease.holder && (stored === undefined || p.kind === stored.holderKind)) {
        last = Math.max(last, session.lastActivityAt);
      }
    }
    return this.now() - last >= this.graceMs;
  }

  /** Stops every expiry timer and forgets members, sinks and listeners (server stop). */
  close(): void {
    this.stopSessionWatch();
    for (const lease of this.leases.values()) clearTimeout(lease.timer);
    this.leases.clear();
    this.members.clear();
    this.sinks.clear();
    this.humanListeners.clear();
    this.inboxListeners.clear();
    this.leaseListeners.clear();
  }

  private conflictError(lease: Lease, advice: string): WorkspaceError {
    return new WorkspaceError(
      'LEASE_CONFLICT',
      `Lease ${lease.id} of '${lease.holder}' on ${lease.paths.join(', ')} (${lease.reason}) overlaps until ${new Date(lease.expiresAt).toISOString()}. ${advice}`,
      {
        leaseId: lease.id,
        holder: lease.holder,
        paths: [...lease.paths],
        expiresAt: new Date(lease.expiresAt).toISOString(),
      },
    );
  }

  private leaseOf(leaseId: string): Lease {
    const lease = this.leases.get(leaseId);
    if (!lease) {
      throw new WorkspaceError(
        'LEASE_NOT_FOUND',
        `No live lease ${leaseId}; it may have expired or been released (list_leases shows the live ones).`,
      );
    }
    return lease;
  }

  /** Ends the lease (through prune, which emits lease_expired) once its time is up. */
  private expiryTimer(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.prune(), ms + 1);
    timer.unref();
    return timer;
  }

  /** Ends expired leases and those whose holder's token was revoked, each with its event. */
  private prune(): void {
    const now = this.now();
    for (const lease of [...this.leases.values()]) {
      if (lease.expiresAt <= now) {
        this.remove(lease);
        this.emit({ kind: 'lease_expired', lease: infoOf(lease) });
      }
    }
    this.endRevokedLeases();
  }

  private endRevokedLeases(): void {
    const agents = new Set(this.sessions.listTokens().map((t) => t.name));
    for (const lease of [...this.leases.values()]) {
      if (lease.holderKind === 'agent' && !agents.has(lease.holder)) {
        this.remove(lease);
        this.emit({ kind: 'lease_revoked', lease: infoOf(lease) });
      }
    }
  }

  private remove(lease: Lease): void {
    clearTimeout(lease.timer);
    this.leases.delete(lease.id);
  }

  private emit(event: LeaseEvent): void {
    for (const listener of this.leaseListeners) notify(() => listener(event));
  }
}
