import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { WorkspaceError } from '../../protocol/errors';
import { PAIR_PREFIX } from '../../protocol/pair';
import { AGENT_NAME_RE, OWNER, type Principal } from '../../protocol/principal';
import { errnoCode, writeFileAtomic } from '../shared/fs';

export { RateLimiter } from './rateLimiter';
export type { RateLimitResult } from './rateLimiter';

/** One negotiated connection of a principal over a transport. */
export interface SessionInfo {
  sessionId: string;
  principal: Principal;
  capabilities: string[];
  transport: string;
  clientName?: string;
  createdAt: number;
  lastActivityAt: number;
}

/** A minted agent token as listed to the owner (never includes the token or its hash). */
export interface TokenInfo {
  name: string;
  role: 'agent' | 'viewer';
  createdAt: string;
  /** When the token stops authenticating (ISO); absent: never. */
  expiresAt?: string;
}

/** Limits of a minted token: a pair guest's token expires and may negotiate only its scope. */
export interface MintOptions {
  /** The token stops authenticating, and its sessions end, after this many milliseconds. */
  expiresInMs?: number;
  /** The only operations its sessions may negotiate (see {@link Principal.scope}). */
  scope?: readonly string[];
}

/** Construction options for SessionManager. */
export interface SessionManagerOptions {
  /** Directory for `owner.token` and `tokens.json` (created with mode 0700). */
  stateDir: string;
  /** Fixed owner token, e.g. from env MCP_WORKSPACE_TOKEN; at least 16 characters. */
  ownerToken?: string;
  /** Sessions idle longer than this are ended; default 30 minutes. */
  idleTimeoutMs?: number;
  /**
   * Most sessions open at once per agent token (default {@link DEFAULT_MAX_SESSIONS_PER_AGENT}); the
   * owner is not limited. At the cap, the token's least recently used idle session is ended first.
   */
  maxSessionsPerAgent?: number;
  /**
   * A session counts as idle (and may be ended to admit a new one of the same token at the cap)
   * once it has no request in flight and no activity for this long; default 60 seconds.
   */
  reapIdleAfterMs?: number;
  /** Clock in milliseconds, injectable for tests; default Date.now. */
  now?: () => number;
}

/**
 * Why a session ended ('limit': ended, while idle, to admit a new session of its token at the cap;
 * 'expired': its token's lifetime ran out).
 */
export type SessionEndReason = 'idle' | 'revoked' | 'closed' | 'limit' | 'expired';

/** Default cap of open sessions per agent token. */
export const DEFAULT_MAX_SESSIONS_PER_AGENT = 16;
/** Default quiet time after which a session may be ended to admit a new one of its token. */
export const DEFAULT_REAP_IDLE_AFTER_MS = 60 * 1000;

interface TokenRecord {
  name: string;
  role: 'agent' | 'viewer';
  hash: string;
  createdAt: string;
  /** Milliseconds since the epoch; absent: never expires. */
  expiresAt?: number;
  scope?: readonly string[];
  principal: Principal;
}

/** Token names: an agent name, or a pair guest's `pair:<agent name>`. */
const TOKEN_NAME_RE = new RegExp(`^(?:${PAIR_PREFIX})?${AGENT_NAME_RE.source.slice(1, -1)}$`);
/** Longest wait of one expiry timer (setTimeout's limit is about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60 * 1000;
const MAX_SWEEP_INTERVAL_MS = 60 * 1000;
const MAX_TOKEN_LENGTH = 1024;
const AGENT_TOKEN_PREFIX = 'mcpw_';
const OWNER_TOKEN_RE = /^[\x21-\x7e]{16,1024}$/;
const HASH_RE = /^[0-9a-f]{64}$/;

/** SHA-256 of a token. */
function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A detached copy of a session, so callers cannot mutate the manager's state. */
function copySession(session: SessionInfo): SessionInfo {
  return { ...session, capabilities: [...session.capabilities] };
}

/** Builds the frozen principal for a token record (with its scope and expiry, if any). */
function agentPrincipal(
  name: string,
  role: 'agent' | 'viewer',
  limits: { expiresAt?: number; scope?: readonly string[] } = {},
): Principal {
  return Object.freeze({
    kind: 'agent',
    name,
    role,
    ...(limits.scope !== undefined ? { scope: Object.freeze([...limits.scope]) } : {}),
    ...(limits.expiresAt !== undefined ? { expiresAt: limits.expiresAt } : {}),
  }) as Principal;
}

/** Wraps a filesystem failure with the file and operation it concerns. */
function fsError(action: string, file: string, err: unknown): WorkspaceError {
  return new WorkspaceError('INTERNAL', `Could not ${action} ${file}: ${errnoCode(err) ?? String(err)}.`);
}

/**
 * One entry of `tokens.json`: a minted agent token, stored as its hash. `expiresAt` and `scope`
 * (pair tokens) are optional, so files written before them load unchanged.
 */
const TokenEntrySchema = z.object({
  name: z.string().regex(TOKEN_NAME_RE),
  role: z.enum(['agent', 'viewer']),
  hash: z.string().regex(HASH_RE),
  createdAt: z.string(),
  expiresAt: z.string().datetime().optional(),
  scope: z.array(z.string().max(100)).max(200).optional(),
});

/** `tokens.json`: an array of token entries with unique names (extra fields are ignored). */
const TokensFileSchema = z.array(TokenEntrySchema).superRefine((entries, ctx) => {
  const names = new Set<string>();
  for (const { name } of entries) {
    if (names.has(name)) ctx.addIssue({ code: 'custom', message: `duplicate name '${name}'` });
    names.add(name);
  }
});

/** Parses `tokens.json`; a malformed file is reported rather than silently dropped. */
function parseTokens(text: string, file: string): TokenRecord[] {
  const corrupt = (why: string) =>
    new WorkspaceError(
      'INTERNAL',
      `${file} is corrupt (${why}); fix it or delete it and mint new agent tokens.`,
    );
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  const parsed = TokensFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const entry = issue.path[0];
    throw corrupt(
      issue.code === 'custom'
        ? issue.message
        : typeof entry === 'number'
          ? `entry ${entry + 1} is not {name, role, hash, createdAt}`
          : 'expected an array',
    );
  }
  return parsed.data.map(({ name, role, hash, createdAt, expiresAt, scope }) => {
    const limits = {
      ...(expiresAt !== undefined ? { expiresAt: Date.parse(expiresAt) } : {}),
      ...(scope !== undefined ? { scope } : {}),
    };
    return { name, role, hash, createdAt, ...limits, principal: agentPrincipal(name, role, limits) };
  });
}

/** What the owner sees of a token record. */
function tokenInfo({ name, role, createdAt, expiresAt }: TokenRecord): TokenInfo {
  return {
    name,
    role,
    createdAt,
    ...(expiresAt !== undefined ? { expiresAt: new Date(expiresAt).toISOString() } : {}),
  };
}

/** Reads the persisted owner token if it is present and well-formed. */
async function readOwnerToken(file: string): Promise<string | undefined> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return OWNER_TOKEN_RE.test(token) ? token : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw fsError('read', file, err);
  }
}

/** Reads `tokens.json` (empty when absent) and tightens its mode to 0600. */
async function readTokens(file: string): Promise<TokenRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
    await chmod(file, 0o600);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError('read', file, err);
  }
  return parseTokens(text, file);
}

/**
 * Authenticates bearer tokens (the owner token and minted agent tokens, stored only as hashes)
 * and tracks negotiated sessions, ending them when idle or when their token is revoked.
 */
export class SessionManager {
  /** The owner's bearer token. */
  readonly ownerToken: string;
  /** Where the owner token is stored: `<stateDir>/owner.token` (mode 0600). */
  readonly ownerTokenFile: string;

  private readonly ownerHash: Buffer;
  private readonly tokensFile: string;
  private readonly idleTimeoutMs: number;
  private readonly now: () => number;
  private readonly tokensByHash = new Map<string, TokenRecord>();
  private readonly tokensByName = new Map<string, TokenRecord>();
  private readonly sessions = new Map<string, SessionInfo>();
  /** Requests, streams or commands in flight per session: a held session is never reaped. */
  private readonly holds = new Map<string, number>();
  private readonly maxSessionsPerAgent: number;
  private readonly reapIdleAfterMs: number;
  private readonly endListeners = new Set<(session: SessionInfo, reason: SessionEndReason) => void>();
  private readonly expiryListeners = new Set<(token: TokenInfo) => void>();
  private readonly timer: NodeJS.Timeout;
  private expiryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private persistQueue: Promise<void> = Promise.resolve();

  private constructor(
    stateDir: string,
    ownerToken: string,
    tokens: TokenRecord[],
    idleTimeoutMs: number,
    now: () => number,
    limits: { maxSessionsPerAgent: number; reapIdleAfterMs: number },
  ) {
    this.ownerToken = ownerToken;
    this.ownerTokenFile = join(stateDir, 'owner.token');
    this.ownerHash = sha256(ownerToken);
    this.tokensFile = join(stateDir, 'tokens.json');
    this.idleTimeoutMs = idleTimeoutMs;
    this.now = now;
    this.maxSessionsPerAgent = limits.maxSessionsPerAgent;
    this.reapIdleAfterMs = limits.reapIdleAfterMs;
    for (const record of tokens) this.addRecord(record);
    this.scheduleExpiry();
    const interval = Math.max(1, Math.floor(Math.min(MAX_SWEEP_INTERVAL_MS, idleTimeoutMs / 2)));
    this.timer = setInterval(() => this.sweep(), interval);
    this.timer.unref();
  }

  /** Prepares the state directory, resolves and persists the owner token, and loads agent tokens. */
  static async create(options: SessionManagerOptions): Promise<SessionManager> {
    const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (!(Number.isFinite(idleTimeoutMs) && idleTimeoutMs > 0)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `idleTimeoutMs must be a positive number; got ${idleTimeoutMs}.`,
      );
    }
    const maxSessionsPerAgent = options.maxSessionsPerAgent ?? DEFAULT_MAX_SESSIONS_PER_AGENT;
    if (!(Number.isInteger(maxSessionsPerAgent) && maxSessionsPerAgent > 0)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `maxSessionsPerAgent must be a positive integer; got ${maxSessionsPerAgent}.`,
      );
    }
    const reapIdleAfterMs = options.reapIdleAfterMs ?? DEFAULT_REAP_IDLE_AFTER_MS;
    if (!(Number.isFinite(reapIdleAfterMs) && reapIdleAfterMs >= 0)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `reapIdleAfterMs must be a number of milliseconds >= 0; got ${reapIdleAfterMs}.`,
      );
    }
    if (options.ownerToken !== undefined && !OWNER_TOKEN_RE.test(options.ownerToken)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        'The owner token must be at least 16 (and at most 1024) printable ASCII characters without spaces.',
      );
    }
    const { stateDir } = options;
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw fsError('create the state directory', stateDir, err);
    }
    const ownerFile = join(stateDir, 'owner.token');
    const ownerToken =
      options.ownerToken ?? (await readOwnerToken(ownerFile)) ?? randomBytes(32).toString('base64url');
    try {
      await writeFileAtomic(ownerFile, ownerToken, 0o600);
    } catch (err) {
      throw fsError('write', ownerFile, err);
    }
    const tokens = await readTokens(join(stateDir, 'tokens.json'));
    return new SessionManager(stateDir, ownerToken, tokens, idleTimeoutMs, options.now ?? Date.now, {
      maxSessionsPerAgent,
      reapIdleAfterMs,
    });
  }

  /** Resolves a bearer token to its principal, or null when it is missing, unknown, revoked or expired. */
  authenticate(token: string | undefined): Principal | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return null;
    const digest = sha256(token);
    if (timingSafeEqual(digest, this.ownerHash)) return OWNER;
    const record = this.tokensByHash.get(digest.toString('hex'));
    if (!record) return null;
    // Refused from the very millisecond it expires, even before the expiry timer has run.
    if (record.expiresAt !== undefined && this.now() >= record.expiresAt) return null;
    return record.principal;
  }

  /**
   * Mints a new agent token; only its hash is persisted, so the returned token is shown exactly once.
   * A pair guest's token (`pair:<name>`) must carry an expiry and a scope; other names may not.
   */
  async mintToken(
    name: string,
    role: 'agent' | 'viewer',
    options: MintOptions = {},
  ): Promise<{ token: string; name: string; role: 'agent' | 'viewer'; expiresAt?: string }> {
    if (typeof name !== 'string' || !TOKEN_NAME_RE.test(name)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Invalid token name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
      );
    }
    const pair = name.startsWith(PAIR_PREFIX);
    if (pair !== (options.expiresInMs !== undefined && options.scope !== undefined)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        pair
          ? `Token names starting with '${PAIR_PREFIX}' are pair links: create them with create_pair_link.`
          : `A token with an expiry and a scope must be named '${PAIR_PREFIX}<name>'.`,
      );
    }
    const { expiresInMs } = options;
    if (expiresInMs !== undefined && !(Number.isFinite(expiresInMs) && expiresInMs > 0)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `expiresInMs must be a positive number of milliseconds; got ${expiresInMs}.`,
      );
    }
    if (name.toLowerCase() === 'owner') {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        "The name 'owner' is reserved for the owner token; pick another.",
      );
    }
    if (role !== 'agent' && role !== 'viewer') {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Invalid role ${JSON.stringify(role)}: use 'agent' or 'viewer'.`,
      );
    }
    if (this.tokensByName.has(name)) {
      throw new WorkspaceError(
        'ALREADY_EXISTS',
        `A token named '${name}' already exists; revoke it first or pick another name.`,
      );
    }
    const token = AGENT_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const now = this.now();
    const limits = {
      ...(expiresInMs !== undefined ? { expiresAt: now + expiresInMs } : {}),
      ...(options.scope !== undefined ? { scope: Object.freeze([...options.scope]) } : {}),
    };
    const record: TokenRecord = {
      name,
      role,
      hash: sha256(token).toString('hex'),
      createdAt: new Date(now).toISOString(),
      ...limits,
      principal: agentPrincipal(name, role, limits),
    };
    this.addRecord(record);
    this.scheduleExpiry();
    try {
      await this.persistTokens();
    } catch (err) {
      if (this.tokensByName.get(name) === record) this.removeRecord(record);
      throw fsError('save', this.tokensFile, err);
    }
    return {
      token,
      name,
      role,
      ...(limits.expiresAt !== undefined ? { expiresAt: new Date(limits.expiresAt).toISOString() } : {}),
    };
  }

  /** Revokes a token at once: it stops authenticating and its agent's sessions end ('revoked'). */
  async revokeToken(name: string): Promise<void> {
    const record = this.tokensByName.get(name);
    if (!record) throw new WorkspaceError('NOT_FOUND', `No agent token named '${name}'.`);
    this.removeRecord(record);
    for (const session of [...this.sessions.values()]) {
      if (session.principal.kind === 'agent' && session.principal.name === name) {
        this.end(session.sessionId, 'revoked');
      }
    }
    try {
      await this.persistTokens();
    } catch (err) {
      throw fsError('save', this.tokensFile, err);
    }
  }

  /** The minted agent tokens (names, roles, creation and expiry times), in minting order. */
  listTokens(): TokenInfo[] {
    return [...this.tokensByName.values()].map(tokenInfo);
  }

  /** Subscribes to token expiries (after the token's sessions have ended); returns the unsubscribe. */
  onTokenExpired(listener: (token: TokenInfo) => void): () => void {
    this.expiryListeners.add(listener);
    return () => {
      this.expiryListeners.delete(listener);
    };
  }

  /**
   * Starts a session with capabilities = requested ∩ offered (offered order), or all offered when
   * nothing is requested. Fails with UNAUTHORIZED for a revoked agent, ALREADY_EXISTS for a live id,
   * SESSION_LIMIT when the agent's token already holds its cap of sessions and none of them is idle.
   */
  initSession(
    principal: Principal,
    requested: string[] | undefined,
    offered: string[],
    meta: { transport: string; clientName?: string; sessionId?: string },
  ): SessionInfo {
    if (principal.kind === 'agent') {
      const record = this.tokensByName.get(principal.name);
      if (!record) {
        throw new WorkspaceError('UNAUTHORIZED', `The token for agent '${principal.name}' has been revoked.`);
      }
      if (record.expiresAt !== undefined && this.now() >= record.expiresAt) {
        throw new WorkspaceError(
          'UNAUTHORIZED',
          `The token for '${principal.name}' has expired; ask the workspace owner for a new link.`,
        );
      }
    }
    const sessionId = meta.sessionId ?? randomUUID();
    if (this.sessions.has(sessionId)) {
      throw new WorkspaceError('ALREADY_EXISTS', `Session '${sessionId}' is already active.`);
    }
    if (principal.kind === 'agent') this.makeRoomFor(principal.name);
    const wanted = requested === undefined ? undefined : new Set(requested);
    const capabilities = [...new Set(offered)].filter((capability) => !wanted || wanted.has(capability));
    const now = this.now();
    const session: SessionInfo = {
      sessionId,
      principal,
      capabilities,
      transport: meta.transport,
      ...(meta.clientName !== undefined ? { clientName: meta.clientName } : {}),
      createdAt: now,
      lastActivityAt: now,
    };
    this.sessions.set(sessionId, session);
    return copySession(session);
  }

  /** A copy of the live session with this id, or undefined when unknown or ended. */
  get(sessionId: string): SessionInfo | undefined {
    const session = this.sessions.get(sessionId);
    return session ? copySession(session) : undefined;
  }

  /** Records activity on a session, postponing its idle expiry; unknown ids are ignored. */
  touch(sessionId: string): void {
    const session = this.sessions.get(sessionId);
    if (session) session.lastActivityAt = this.now();
  }

  /**
   * Marks a session busy (a request, stream or command in flight) until the returned release is
   * called: a busy session is never ended to make room for another. Unknown ids hold nothing.
   */
  hold(sessionId: string): () => void {
    if (!this.sessions.has(sessionId)) return () => undefined;
    this.holds.set(sessionId, (this.holds.get(sessionId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(sessionId) ?? 1) - 1;
      if (left > 0) this.holds.set(sessionId, left);
      else this.holds.delete(sessionId);
      const session = this.sessions.get(sessionId);
      if (session) session.lastActivityAt = this.now();
    };
  }

  /** Ends a session (default reason 'closed') and notifies listeners; unknown ids are ignored. */
  end(sessionId: string, reason: SessionEndReason = 'closed'): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    this.sessions.delete(sessionId);
    this.holds.delete(sessionId);
    for (const listener of [...this.endListeners]) {
      try {
        listener(copySession(session), reason);
      } catch (err) {
        process.emitWarning(
          `A session-ended listener threw for session ${sessionId}: ${(err as Error)?.message ?? String(err)}`,
        );
      }
    }
  }

  /** Copies of all live sessions. */
  list(): SessionInfo[] {
    return [...this.sessions.values()].map(copySession);
  }

  /** Ends every session idle for longer than the idle timeout (reason 'idle'); busy ones stay. */
  sweep(): void {
    const now = this.now();
    for (const session of [...this.sessions.values()]) {
      if (this.holds.has(session.sessionId)) continue;
      if (now - session.lastActivityAt > this.idleTimeoutMs) this.end(session.sessionId, 'idle');
    }
  }

  /** Subscribes to session ends; returns an unsubscribe function. */
  onSessionEnded(listener: (session: SessionInfo, reason: SessionEndReason) => void): () => void {
    this.endListeners.add(listener);
    return () => {
      this.endListeners.delete(listener);
    };
  }

  /** Stops the periodic idle sweep and the expiry timer; sessions and tokens stay as they are. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  /** Arms one timer for the earliest token expiry (re-armed after each mint and each expiry). */
  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    if (this.closed) return;
    let next = Infinity;
    for (const record of this.tokensByName.values()) {
      if (record.expiresAt !== undefined && record.expiresAt < next) next = record.expiresAt;
    }
    if (next === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - this.now()));
    this.expiryTimer = setTimeout(() => this.expireTokens(), delay);
    this.expiryTimer.unref();
  }

  /** Removes every token past its expiry, ends its sessions ('expired') and tells the listeners. */
  private expireTokens(): void {
    this.expiryTimer = null;
    const now = this.now();
    const expired = [...this.tokensByName.values()].filter(
      (record) => record.expiresAt !== undefined && record.expiresAt <= now,
    );
    for (const record of expired) {
      this.removeRecord(record);
      for (const session of [...this.sessions.values()]) {
        if (session.principal.kind === 'agent' && session.principal.name === record.name) {
          this.end(session.sessionId, 'expired');
        }
      }
      for (const listener of [...this.expiryListeners]) {
        try {
          listener(tokenInfo(record));
        } catch (err) {
          process.emitWarning(`A token-expired listener threw: ${(err as Error)?.message ?? String(err)}`);
        }
      }
    }
    if (expired.length > 0) {
      this.persistTokens().catch((err: unknown) =>
        process.emitWarning(`Could not save ${this.tokensFile} after tokens expired: ${String(err)}`),
      );
    }
    this.scheduleExpiry();
  }

  /**
   * At the agent's session cap, ends its least recently used idle session (no hold, quiet for
   * `reapIdleAfterMs`); when every one is busy or recent, refuses with SESSION_LIMIT.
   */
  private makeRoomFor(agent: string): void {
    const own = [...this.sessions.values()].filter(
      (s) => s.principal.kind === 'agent' && s.principal.name === agent,
    );
    if (own.length < this.maxSessionsPerAgent) return;
    const now = this.now();
    const idle = own
      .filter((s) => !this.holds.has(s.sessionId) && now - s.lastActivityAt >= this.reapIdleAfterMs)
      .sort((a, b) => a.lastActivityAt - b.lastActivityAt);
    const excess = own.length - this.maxSessionsPerAgent + 1;
    if (idle.length < excess) {
      throw new WorkspaceError(
        'SESSION_LIMIT',
        `Agent token '${agent}' already has ${own.length} open sessions (the limit is ${this.maxSessionsPerAgent}) and none is idle. ` +
          'Reuse an open session, or close one you no longer need (MCP: DELETE /mcp with its Mcp-Session-Id), then try again.',
        { limit: this.maxSessionsPerAgent, retryAfterMs: Math.max(1000, this.reapIdleAfterMs) },
      );
    }
    for (const session of idle.slice(0, excess)) this.end(session.sessionId, 'limit');
  }

  private addRecord(record: TokenRecord): void {
    this.tokensByName.set(record.name, record);
    this.tokensByHash.set(record.hash, record);
  }

  private removeRecord(record: TokenRecord): void {
    this.tokensByName.delete(record.name);
    this.tokensByHash.delete(record.hash);
  }

  /** Writes `tokens.json` (hashes only) after any write already queued; each write captures the latest state. */
  private persistTokens(): Promise<void> {
    const write = this.persistQueue.then(() => {
      const entries = [...this.tokensByName.values()].map(
        ({ name, role, hash, createdAt, expiresAt, scope }) => ({
          name,
          role,
          hash,
          createdAt,
          ...(expiresAt !== undefined ? { expiresAt: new Date(expiresAt).toISOString() } : {}),
          ...(scope !== undefined ? { scope: [...scope] } : {}),
        }),
      );
      return writeFileAtomic(this.tokensFile, JSON.stringify(entries, null, 2) + '\n', 0o600);
    });
    this.persistQueue = write.catch(() => undefined);
    return write;
  }
}
