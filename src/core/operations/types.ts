import type { OperationInput, OperationName, OperationOutput } from '../../protocol/operations';
import type { Principal } from '../../protocol/principal';
import type { AuditLog } from '../audit';
import type { CollabHub } from '../collab';
import type { Coordination } from '../coordination';
import type { ExecutionManager, OutputEvent } from '../execution';
import type { Logger } from '../log';
import type { McpServerHost } from '../mcpservers';
import type { PolicyAction, PolicyEngine, PolicyStore } from '../policy';
import type { Presence } from '../presence';
import type { ResourceManager } from '../resources';
import type { RateLimiter, SessionInfo, SessionManager } from '../session';
import type { OutputParsers, ToolRegistry, ToolRunFeed } from '../tools';

/** Who is calling, over which transport, in which session. */
export interface CallContext {
  principal: Principal;
  sessionId: string;
  transport: string;
  /** Receives a command's output as it is produced (run_command streaming). */
  onOutput?: (event: OutputEvent) => void;
}

/** Collaborators of the dispatcher: the core components it drives. */
export interface DispatcherDeps {
  sessions: SessionManager;
  resources: ResourceManager;
  policy: PolicyEngine;
  policyStore: PolicyStore;
  audit: AuditLog;
  executions: ExecutionManager;
  /** Membership, messages and leases of the agents working in the workspace. */
  coordination: Coordination;
  /** Who is working on what (list_presence), computed per reader. */
  presence: Presence;
  /** Token buckets per bearer token (shared by all its sessions): file mutations and command executions. */
  limiters: { write: RateLimiter; exec: RateLimiter };
  /** Where unexpected errors go with their stack, session and correlation id. */
  log: Logger;
  /** Shared documents (live co-editing); file writes to an open document go through it. */
  collab?: CollabHub;
  /** Refuses (by throwing) a change to a workspace-relative path, e.g. one with unsaved editor changes. */
  writeGuard?: (path: string) => void;
  /** Typed tools in force (manifests and detected tools); none without it. */
  tools?: ToolRegistry;
  /** Sandboxed MCP servers declared by manifests (their tools are offered as `NAME_TOOL`); none without it. */
  mcpServers?: McpServerHost;
  /** Output parsers of typed tools (a manifest naming a parser is refused without them). */
  parsers?: OutputParsers;
  /** Where each finished typed-tool run is reported (the VS Code Problems panel listens). */
  toolRuns?: ToolRunFeed;
  /** Where guests reach this server (loopback host and port), for pair links; unknown until it listens. */
  endpoint?: () => { host: string; port: number } | null;
  /** Subscribes to sandbox progress (image builds, container starts); returns the unsubscribe. */
  onSandboxProgress?: (
    listener: (event: { phase: string; message: string; sessionId?: string }) => void,
  ) => () => void;
}

/** Decides `action(target)` for the caller, records the decision, and throws POLICY_DENIED on a deny. */
export type Authorize = (action: PolicyAction, target: string) => void;

/** Decides `action(target)` for the caller and records the decision, without throwing. */
export type Decide = (action: PolicyAction, target: string) => boolean;

/** What a handler gets besides its validated input. */
export interface HandlerContext extends CallContext {
  session: SessionInfo;
  authorize: Authorize;
  decide: Decide;
  /** Keeps the session busy until `done` settles instead of until the operation returns. */
  holdUntil: (done: Promise<unknown>) => void;
}

/** The service call of one operation, after the dispatcher's checks. */
export type Handler<N extends OperationName> = (
  input: OperationInput<N>,
  ctx: HandlerContext,
) => Promise<OperationOutput<N>>;

/** Handlers of a group of operations. */
export type Handlers<K extends OperationName> = { [N in K]: Handler<N> };
