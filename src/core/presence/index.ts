import type { OperationOutput } from '../../protocol/operations';
import { OWNER, type Principal } from '../../protocol/principal';
import { redact, type AuditLog, type AuditRecord } from '../audit';
import type { CollabHub, DocumentHolder } from '../collab';
import type { Coordination } from '../coordination';
import type { Execution, ExecutionManager } from '../execution';
import type { PolicyEngine } from '../policy';
import type { SessionInfo, SessionManager } from '../session';

/** What list_presence returns: the people and agents at work, and the live leases. */
export type PresenceView = OperationOutput<'list_presence'>;
/** One agent or human in a {@link PresenceView}. */
export type PresenceEntry = PresenceView['agents'][number];

/** A write or shared-document update this recent (ms) makes its author "editing". */
export const DEFAULT_EDITING_WINDOW_MS = 5000;
/** Changes are reported at most this often (ms): a busy agent never floods a listener. */
export const DEFAULT_CHANGE_DEBOUNCE_MS = 200;
/** Longest command summary shown (characters). */
const MAX_COMMAND_CHARS = 120;

/** File operations whose audit record names the file the agent touched, and how. */
const FILE_OPERATIONS: Readonly<Record<string, 'read' | 'write'>> = {
  read_file: 'read',
  file_info: 'read',
  write_file: 'write',
  edit_file: 'write',
  delete_file: 'write',
  move_file: 'write',
  create_directory: 'write',
};

/** Audited operations after which someone's presence may look different. */
const PRESENCE_OPERATIONS: ReadonlySet<string> = new Set([
  ...Object.keys(FILE_OPERATIONS),
  'init_session',
  'join_workspace',
  'execution_start',
  'execution_end',
  'collab_open',
  'collab_close',
  'collab_edit',
  'acquire_lease',
  'renew_lease',
  'release_lease',
  'lease_expired',
  'lease_revoked',
  'lease_taken_over',
  'revoke_session',
  'revoke_token',
  'set_policy',
]);

/** Collaborators of {@link Presence}. */
export interface PresenceOptions {
  sessions: SessionManager;
  executions: ExecutionManager;
  coordination: Coordination;
  policy: PolicyEngine;
  /** Every committed record: the source of the files agents touch and of change events. */
  audit: AuditLog;
  /** Shared documents and who holds them (none without live co-editing). */
  collab?: CollabHub;
  editingWindowMs?: number;
  changeDebounceMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

interface FileTouch {
  path: string;
  action: 'read' | 'write';
  at: number;
}

/** Identity of an agent or the owner: agent tokens and the owner never share a key. */
function keyOf(principal: Pick<Principal, 'kind' | 'name'>): string {
  return `${principal.kind}:${principal.name}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The file a successful file operation touched: its last allowed read or write decision. */
function touchedFile(record: AuditRecord): FileTouch | null {
  const action = FILE_OPERATIONS[record.op];
  if (!action || !record.outcome.ok || record.sessionId === null) return null;
  const decision = [...(record.decisions ?? [])]
    .reverse()
    .find((d) => d.decision === 'allow' && (d.action === 'read' || d.action === 'write'));
  if (!decision) return null;
  const dryRun = (record.params as { dryRun?: unknown } | null)?.dryRun === true;
  return { path: decision.target, action: dryRun ? 'read' : action, at: Date.parse(record.ts) };
}

/**
 * Who is working in the workspace and on what: for each agent and the owner, its live sessions,
 * the files it holds as shared documents, the last file it read or wrote, whether it is editing,
 * running a command or idle, and the live leases. Every view is computed for one reader: files the
 * reader may not read never appear in it (like shared-document presence, which a client sees only
 * on files it may open), and commands of others are summarised without their arguments.
 */
export class Presence {
  private readonly options: PresenceOptions;
  private readonly windowMs: number;
  private readonly debounceMs: number;
  private readonly now: () => number;
  private readonly lastFiles = new Map<string, FileTouch>();
  private readonly listeners = new Set<() => void>();
  private readonly stops: (() => void)[];
  private changeTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(options: PresenceOptions) {
    this.options = options;
    this.windowMs = options.editingWindowMs ?? DEFAULT_EDITING_WINDOW_MS;
    this.debounceMs = options.changeDebounceMs ?? DEFAULT_CHANGE_DEBOUNCE_MS;
    this.now = options.now ?? Date.now;
    this.stops = [
      options.audit.subscribe((record) => {
        const touch = touchedFile(record);
        if (touch && record.sessionId !== null) this.lastFiles.set(record.sessionId, touch);
        if (PRESENCE_OPERATIONS.has(record.op)) this.changed();
      }),
      options.sessions.onSessionEnded((session) => {
        this.lastFiles.delete(session.sessionId);
        this.changed();
      }),
    ];
  }

  /**
   * Calls `listener` (debounced) whenever presence may have changed: sessions, shared documents,
   * file activity, commands, leases, and an "editing" state running out. Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Presence as `viewer` may see it (the owner sees everything, including session ids). */
  view(viewer: Principal): PresenceView {
    const { sessions, executions, coordination, collab } = this.options;
    const now = this.now();
    const owner = viewer.kind === 'owner';
    const mayRead = (path: string): boolean => owner || this.mayRead(viewer, path);
    const members = new Set(coordination.memberSessionIds());
    const holders = collab?.holders() ?? [];
    // Everyone's commands: what the reader sees of each is decided below.
    const running = executions.list(OWNER).filter((e) => e.status === 'running');

    const groups = new Map<string, { principal: Principal; sessions: SessionInfo[] }>();
    for (const session of sessions.list()) {
      const key = keyOf(session.principal);
      const group = groups.get(key) ?? { principal: session.principal, sessions: [] };
      group.sessions.push(session);
      groups.set(key, group);
    }
    const entries: PresenceEntry[] = [];
    for (const [key, { principal, sessions: own }] of groups) {
      const ids = new Set(own.map((s) => s.sessionId));
      const held = holders.filter((h) => ids.has(h.peer.sessionId));
      const commands = running.filter((e) => keyOf(e.principal) === key);
      const touches = own
        .map((s) => this.lastFiles.get(s.sessionId))
        .filter((t): t is FileTouch => t !== undefined)
        .sort((a, b) => b.at - a.at);
      const lastTouch = touches[0];
      const lastActivityAt = Math.max(...own.map((s) => s.lastActivityAt));
      entries.push({
        agent: principal.name,
        role: principal.role,
        joined: own.some((s) => members.has(s.sessionId)),
        sessions: own
          .sort((a, b) => b.lastActivityAt - a.lastActivityAt)
          .map((s) => ({
            transport: s.transport,
            ...(s.clientName !== undefined ? { clientName: s.clientName } : {}),
            ...(owner ? { sessionId: s.sessionId } : {}),
            lastActivityAt: iso(s.lastActivityAt),
          })),
        openFiles: uniqueFiles(held).filter((f) => mayRead(f.path)),
        lastFile:
          lastTouch && mayRead(lastTouch.path)
            ? { path: lastTouch.path, action: lastTouch.action, at: iso(lastTouch.at) }
            : null,
        activity: this.activityOf(held, touches, commands, now, owner, mayRead),
        running: commands.map((e) => ({
          executionId: e.id,
          command: commandSummary(e, owner),
          startedAt: iso(e.startedAt),
        })),
        lastActivityAt: iso(lastActivityAt),
      });
    }
    entries.sort((a, b) => Date.parse(b.lastActivityAt) - Date.parse(a.lastActivityAt));
    this.scheduleExpiry(holders, now);
    return {
      agents: entries,
      leases: coordination
        .list()
        .map((lease) => ({ lease, paths: coordination.visiblePaths(viewer, lease) }))
        .filter(({ paths }) => paths.length > 0)
        .map(({ lease, paths }) => ({
          id: lease.id,
          holder: lease.holder,
          paths,
          reason: lease.reason,
          acquiredAt: iso(lease.acquiredAt),
          expiresAt: iso(lease.expiresAt),
          idle: lease.idle,
        })),
      generatedAt: iso(now),
    };
  }

  /** Stops listening to the audit log and sessions, and cancels pending change events. */
  close(): void {
    for (const stop of this.stops) stop();
    if (this.changeTimer) clearTimeout(this.changeTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.changeTimer = null;
    this.expiryTimer = null;
    this.listeners.clear();
    this.lastFiles.clear();
  }

  /** Editing (a shared-document update or a write within the window), else running, else idle. */
  private activityOf(
    held: DocumentHolder[],
    touches: FileTouch[],
    commands: Execution[],
    now: number,
    owner: boolean,
    mayRead: (path: string) => boolean,
  ): PresenceEntry['activity'] {
    const edits: { path: string; at: number }[] = [
      ...held.filter((h) => h.lastEditAt !== null).map((h) => ({ path: h.path, at: h.lastEditAt! })),
      ...touches.filter((t) => t.action === 'write'),
    ].filter((e) => now - e.at < this.windowMs);
    edits.sort((a, b) => b.at - a.at);
    const edit = edits[0];
    if (edit) {
      return { state: 'editing', ...(mayRead(edit.path) ? { path: edit.path } : {}), since: iso(edit.at) };
    }
    const command = commands[0];
    if (command) {
      return {
        state: 'running',
        executionId: command.id,
        command: commandSummary(command, owner),
        since: iso(command.startedAt),
      };
    }
    return { state: 'idle' };
  }

  private mayRead(viewer: Principal, path: string): boolean {
    return this.options.policy.decide(viewer, 'read', path).allowed;
  }

  /** Reports a change once the debounce time has passed (one event for a burst). */
  private changed(): void {
    if (this.changeTimer || this.listeners.size === 0) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = null;
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch {
          // A failing listener must not keep the others from hearing of the change.
        }
      }
    }, this.debounceMs);
    this.changeTimer.unref();
  }

  /** When the newest edit or write leaves the editing window, listeners hear of it. */
  private scheduleExpiry(holders: DocumentHolder[], now: number): void {
    const recent = [
      ...holders.map((h) => h.lastEditAt ?? 0),
      ...[...this.lastFiles.values()].filter((t) => t.action === 'write').map((t) => t.at),
    ].filter((at) => now - at < this.windowMs);
    if (recent.length === 0 || this.expiryTimer) return;
    const due = Math.max(...recent) + this.windowMs - now;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = null;
      this.changed();
    }, due + 1);
    this.expiryTimer.unref();
  }
}

/** Each held file once (a client may hold it through several connections); read-only if all are. */
function uniqueFiles(held: DocumentHolder[]): { path: string; readOnly: boolean }[] {
  const files = new Map<string, boolean>();
  for (const h of held) files.set(h.path, (files.get(h.path) ?? true) && h.readOnly);
  return [...files]
    .map(([path, readOnly]) => ({ path, readOnly }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * What a command is, for presence: the owner sees the command line (shortened, secrets redacted);
 * others see only the program name, since arguments may name files they may not read, and a
 * program given by path is shown as "a command".
 */
function commandSummary(execution: Execution, full: boolean): string {
  const line = execution.args ? [execution.command, ...execution.args].join(' ') : execution.command;
  if (full) {
    const short = line.length > MAX_COMMAND_CHARS ? `${line.slice(0, MAX_COMMAND_CHARS - 1)}…` : line;
    const redacted = redact(short);
    return typeof redacted === 'string' ? redacted : '[REDACTED]';
  }
  const words = line.trim().split(/\s+/);
  const program = words[0] ?? '';
  if (!/^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$/.test(program)) return 'a command';
  return words.length > 1 ? `${program} …` : program;
}
