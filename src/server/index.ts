import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { realpath, stat } from 'node:fs/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import { WorkspaceError } from '../protocol/errors';
import { OWNER, type Principal } from '../protocol/principal';
import { AuditLog, createRedactor, REDACTION_KEY_BYTES } from '../core/audit';
import { CollabHub, type CollabLimits } from '../core/collab';
import {
  DockerRuntime,
  ExecutionManager,
  type ExecutionLimits,
  type ProgressEvent,
  type SandboxLimits,
} from '../core/execution';
import { createLogger, redactingLogger, unexpectedError, type Logger } from '../core/log';
import { DEFAULT_POLICY, gitHooksFolders, PolicyEngine, PolicyStore } from '../core/policy';
import { assertOutsideWorkspace, ResourceManager } from '../core/resources';
import { Coordination, type LeaseInfo, type WorkspaceMessage } from '../core/coordination';
import { McpServerHost, type McpServerLimits } from '../core/mcpservers';
import { OperationDispatcher } from '../core/operations';
import { Presence, type PresenceView } from '../core/presence';
import { RateLimiter, SessionManager } from '../core/session';
import {
  BUILT_IN_PARSERS,
  ToolRegistry,
  ToolRunFeed,
  type OutputParsers,
  type ToolRunReport,
} from '../core/tools';
import { OPERATION_NAMES } from '../protocol/operations';
import {
  buildOpenApi,
  COLLAB_PREFIX,
  CollabGateway,
  createAdmission,
  createRestRouter,
  jsonBody,
  loadMcpGateway,
  LOOPBACK_BIND_HOSTS,
  routeUpgrades,
  sendError,
  WS_PATH,
  WsGateway,
  type McpGateway,
  type McpGatewayDeps,
} from '../gateway';

/** The product version reported to clients. */
export const SERVER_VERSION = '0.1.0';

/** Options of {@link startWorkspaceServer}; everything but `workspace` has an embedded default. */
export interface WorkspaceServerOptions {
  /** The folder to serve. */
  workspace: string;
  /** Loopback address to bind (127.0.0.1, ::1 or localhost). */
  host?: string;
  /** TCP port; 0 or absent picks a free one. */
  port?: number;
  /** Where tokens, policy and the audit log live (default: per-workspace under XDG_STATE_HOME). */
  stateDir?: string;
  /** Owner token to use instead of the generated one (e.g. MCP_WORKSPACE_TOKEN). */
  ownerToken?: string;
  /**
   * Browser origins allowed to call the server (exact match), besides the server's own loopback
   * origins (`http://localhost:PORT`, `http://127.0.0.1:PORT`, `http://[::1]:PORT`).
   */
  allowedOrigins?: string[];
  /** A policy file the owner controls; it replaces the stored policy at start. */
  policyFile?: string;
  /** Idle sessions end after this long (ms). */
  idleTimeoutMs?: number;
  /** Largest file read or written (bytes). */
  maxFileBytes?: number;
  /** How long a search_files call may run before it answers with what it found (default 10 s). */
  searchTimeoutMs?: number;
  /** Token bucket for mutating operations per bearer token (all its sessions share it). */
  writeRateLimit?: { capacity: number; refillPerSec: number };
  /** Token bucket for command executions per bearer token (all its sessions share it). */
  execRateLimit?: { capacity: number; refillPerSec: number };
  /**
   * Open sessions per agent token, over every transport and both MCP eras (default 16). At the cap
   * the token's least recently used idle session is ended; if none is idle, SESSION_LIMIT.
   */
  maxSessionsPerAgent?: number;
  /** A session with nothing in flight for this long (ms) counts as idle for the cap (default 60 s). */
  sessionReapIdleMs?: number;
  /**
   * Session containers running at once per agent token (default 4). At the cap the token's idle
   * containers (no command running) are removed first; if none is idle, SANDBOX_LIMIT.
   */
  maxContainersPerAgent?: number;
  /** Image used when the workspace has no devcontainer.json. */
  defaultImage?: string;
  /** Docker engine address (default DOCKER_HOST, else the default socket). */
  dockerHost?: string;
  /**
   * Called before an agent changes a file (workspace-relative path); throwing refuses the change.
   * The VS Code extension refuses files with unsaved changes in an editor.
   */
  writeGuard?: (path: string) => void;
  /** Resource limits of each session container. */
  sandboxLimits?: Partial<SandboxLimits>;
  /** Session containers idle this long (ms) are stopped. */
  sandboxIdleTimeoutMs?: number;
  /** Time, output and concurrency limits of commands. */
  executionLimits?: Partial<ExecutionLimits>;
  /** Progress of long sandbox work (image pulls and builds, container starts), e.g. for a UI. */
  onSandboxProgress?: (event: ProgressEvent) => void;
  /** Caps and timings of shared documents (live co-editing at `/collab/<path>`). */
  collab?: Partial<CollabLimits>;
  /** Where structured logs go (default: stderr as JSON lines). */
  logger?: Logger;
  /**
   * A lease whose holder has shown no activity for this long (ms) may be taken over by another agent
   * (`acquire_lease` with `takeOver: true`); default 5 minutes.
   */
  leaseIdleGraceMs?: number;
  /**
   * Tool manifests from the owner's settings (the VS Code `mcpWorkspace.tools` machine setting),
   * besides those in the workspace's `.mcp-workspace/tools/*.json`.
   */
  tools?: readonly unknown[];
  /**
   * Offer detected tools (package.json scripts, Makefile targets, pytest, cargo test, go test). Each
   * still needs a rule naming it, `allow tool(NAME)`; `allow tool(*)` never grants one.
   */
  detectTools?: boolean;
  /** Limits of sandboxed MCP servers (message size, flood, tool list caps, idle stop). */
  mcpServerLimits?: Partial<McpServerLimits>;
  /** Output parsers of typed tools (default: the built-in ones, see `BUILT_IN_PARSERS`). */
  outputParsers?: OutputParsers;
  /** Where the owner started the server from (`vscode`, `cli`): the transport of its server_start/stop audit records. */
  startedFrom?: string;
}

/** A running server and the handles to drive or stop it. */
export interface RunningWorkspaceServer {
  url: string;
  mcpUrl: string;
  port: number;
  tokenFile: string;
  ownerToken: string;
  stateDir: string;
  workspace: string;
  sessions: SessionManager;
  audit: AuditLog;
  policy: PolicyEngine;
  dispatcher: OperationDispatcher;
  executions: ExecutionManager;
  /** Shared documents open for live co-editing. */
  collab: CollabHub;
  /** Stable id of the served workspace (what `join_workspace` takes; also in list_capabilities). */
  workspaceId: string;
  /** Agents working together: what the VS Code UI and collaborative editors need. */
  coordination: {
    /** Messages for the VS Code user (to everyone or to `owner`); returns the unsubscribe. */
    onMessage(listener: (message: WorkspaceMessage) => void): () => void;
    /** The lease that makes `path` read-only for `principal` (an exclusive lease of another), or null. */
    leaseBlocks(principal: Principal, path: string): LeaseInfo | null;
  };
  /** Who is working on what, for the VS Code user (list_presence is the same view for callers). */
  presence: {
    /** Presence as the owner sees it: every agent, file, command and lease. */
    view(): PresenceView;
    /** Called (debounced) whenever presence may have changed; returns the unsubscribe. */
    onChange(listener: () => void): () => void;
  };
  /** Typed tools in force; `onChange` reports each change, with the manifests that did not load. */
  tools: ToolRegistry;
  /** Finished typed-tool runs: what the VS Code Problems panel shows. */
  toolRuns: {
    /** Calls `listener` after each typed-tool run ends, with what it found; returns the unsubscribe. */
    onRun(listener: (report: ToolRunReport) => void): () => void;
  };
  /**
   * Stops accepting connections, ends sessions, removes session containers, records `server_stop`
   * (with `reason`) and flushes the audit log.
   */
  close(reason?: string): Promise<void>;
}

/** Image for workspaces without a devcontainer.json: the dev containers base image. */
export const DEFAULT_IMAGE = 'mcr.microsoft.com/devcontainers/base:bookworm';

/** The stable id of a workspace: derived from its real path, so it survives restarts. */
export function workspaceIdOf(workspaceRealPath: string): string {
  return createHash('sha256').update(`mcp-workspace\u0000${workspaceRealPath}`).digest('hex').slice(0, 16);
}

/** Default state directory for a workspace: outside it, so agents can never write it. */
export function defaultStateDir(workspaceRealPath: string): string {
  const base = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  const id = createHash('sha256').update(workspaceRealPath).digest('hex').slice(0, 12);
  return join(base, 'mcp-workspace', `${basename(workspaceRealPath) || 'root'}-${id}`);
}

/**
 * Starts the headless server on a workspace: the core components, then MCP at `/mcp` and REST on
 * one loopback port, each request authenticated, Host- and Origin-checked, policy-decided and audited.
 */
export async function startWorkspaceServer(options: WorkspaceServerOptions): Promise<RunningWorkspaceServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK_BIND_HOSTS.includes(host)) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Refusing to bind ${host}: MCP Workspace listens on loopback only (127.0.0.1, ::1, localhost). Use an SSH tunnel for remote access.`,
    );
  }
  const workspaceStat = await stat(options.workspace).catch(() => null);
  if (!workspaceStat?.isDirectory()) {
    throw new WorkspaceError('NOT_FOUND', `Workspace folder not found: ${options.workspace}`);
  }
  const workspace = await realpath(options.workspace);
  const stateDir = options.stateDir ?? defaultStateDir(workspace);
  // Neither may sit where an agent could rename a parent folder (issue class 6).
  await assertOutsideWorkspace('state dir', stateDir, workspace);
  if (options.policyFile) await assertOutsideWorkspace('policy file', options.policyFile, workspace);
  // Secrets known to the server by value (the owner token) are removed from every log line and
  // audit record, besides everything that looks like a secret by name or shape.
  let knownSecrets: string[] = options.ownerToken ? [options.ownerToken] : [];
  const secrets = (): string[] => knownSecrets;
  const redactLog = createRedactor({ key: randomBytes(REDACTION_KEY_BYTES), secrets });
  const log = redactingLogger(
    options.logger ?? createLogger((line) => process.stderr.write(line + '\n'), redactLog),
    redactLog,
  );
  const maxFileBytes = options.maxFileBytes ?? 10 * 1024 * 1024;

  const sessions = await SessionManager.create({
    stateDir,
    ...(options.ownerToken !== undefined ? { ownerToken: options.ownerToken } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.maxSessionsPerAgent !== undefined
      ? { maxSessionsPerAgent: options.maxSessionsPerAgent }
      : {}),
    ...(options.sessionReapIdleMs !== undefined ? { reapIdleAfterMs: options.sessionReapIdleMs } : {}),
  });
  knownSecrets = [sessions.ownerToken];
  const stateReal = await realpath(stateDir);
  const policyStore = new PolicyStore(stateDir);
  const policyFile = options.policyFile
    ? await realpath(options.policyFile).catch(() => options.policyFile!)
    : null;
  let initialPolicy = (await policyStore.load()) ?? DEFAULT_POLICY;
  if (policyFile) {
    initialPolicy = await PolicyStore.loadFile(policyFile);
    await policyStore.save(initialPolicy);
  }
  const policy = new PolicyEngine(initialPolicy, { protectedFolders: await gitHooksFolders(workspace) });
  // The state dir and the owner's policy file are never reachable through the workspace API.
  const resources = await ResourceManager.create({
    root: workspace,
    maxFileBytes,
    protectedPaths: [stateReal, ...(policyFile ? [policyFile] : [])],
    ...(options.searchTimeoutMs !== undefined ? { searchTimeoutMs: options.searchTimeoutMs } : {}),
  });
  const audit = await AuditLog.open({ dir: join(stateDir, 'audit'), secrets });
  // Names a tool may not take: the operations, and the WebSocket's own ops.
  const tools = new ToolRegistry({
    resources,
    reserved: [...OPERATION_NAMES, 'tool', 'attach'],
    ...(options.tools ? { settingsManifests: options.tools } : {}),
    detect: options.detectTools === true,
    parsers: options.outputParsers ?? BUILT_IN_PARSERS,
    log,
  });
  // Detected tools run what a project file says: only a rule naming one grants it.
  tools.onChange(() => policy.setExplicitTools(tools.detectedNames()));
  await tools.reload();
  policy.setExplicitTools(tools.detectedNames());
  const toolRuns = new ToolRunFeed(log);
  const limiters = {
    write: new RateLimiter(options.writeRateLimit ?? { capacity: 200, refillPerSec: 50 }),
    exec: new RateLimiter(options.execRateLimit ?? { capacity: 60, refillPerSec: 20 }),
  };
  // Commands that wait for an image build or a container start see its progress as they wait.
  const progressListeners = new Set<(event: ProgressEvent) => void>();
  const docker = new DockerRuntime({
    workspace,
    stateId: createHash('sha256').update(stateReal).digest('hex').slice(0, 16),
    defaultImage: options.defaultImage ?? DEFAULT_IMAGE,
    ...(options.dockerHost ? { dockerHost: options.dockerHost } : {}),
    ...(options.sandboxLimits ? { limits: options.sandboxLimits } : {}),
    ...(options.sandboxIdleTimeoutMs !== undefined ? { idleTimeoutMs: options.sandboxIdleTimeoutMs } : {}),
    ...(options.maxContainersPerAgent !== undefined
      ? { maxContainersPerAgent: options.maxContainersPerAgent }
      : {}),
    // Host-side and privileged devcontainer.json fields need an owner rule such as
    // `allow tool(devcontainer.runArgs)`; agents cannot grant it to themselves.
    permissions: {
      allows: (field) => policy.allows(OWNER, 'tool', `devcontainer.${field}`),
      allowsEnv: (key) => policy.allows(OWNER, 'env', key),
    },
    // Commands must not read the owner token or rewrite the owner's policy file either.
    protectedPaths: [stateReal, ...(policyFile ? [policyFile] : [])],
    stateDir: stateReal,
    onProgress: (event) => {
      log.info('sandbox progress', { ...event });
      options.onSandboxProgress?.(event);
      for (const listener of progressListeners) listener(event);
    },
    log: (level, msg, fields) => log[level](msg, fields),
  });
  const executions = new ExecutionManager(docker, options.executionLimits);
  const workspaceId = workspaceIdOf(workspace);
  const coordination = new Coordination({
    workspaceId,
    workspaceName: basename(workspace) || workspace,
    sessions,
    policy,
    ...(options.leaseIdleGraceMs !== undefined ? { leaseIdleGraceMs: options.leaseIdleGraceMs } : {}),
  });
  const collab = new CollabHub({
    resources,
    stateDir: stateReal,
    limits: { maxDocumentBytes: Math.min(maxFileBytes, 4 * 1024 * 1024), ...(options.collab ?? {}) },
    // Edits are audited through the dispatcher, like every operation.
    auditor: { edit: (peer, batch) => dispatcher.recordCollabEdit(peer, batch) },
    mayWrite: (peer, realRel) =>
      peer.principal.role !== 'viewer' &&
      policy.allows(peer.principal, 'write', realRel) &&
      coordination.leaseBlocks(peer.principal, realRel) === null,
    log,
  });
  const presence = new Presence({ sessions, executions, coordination, policy, audit, collab });
  // Sandboxed MCP servers declared by manifests, started per session in its sandbox on first use.
  const mcpServers = new McpServerHost({
    log,
    ...(options.mcpServerLimits ? { limits: options.mcpServerLimits } : {}),
  });
  const dispatcher: OperationDispatcher = new OperationDispatcher({
    mcpServers,
    collab,
    presence,
    sessions,
    resources,
    policy,
    policyStore,
    audit,
    executions,
    coordination,
    limiters,
    log,
    tools,
    parsers: options.outputParsers ?? BUILT_IN_PARSERS,
    toolRuns,
    onSandboxProgress: (listener) => {
      progressListeners.add(listener);
      return () => progressListeners.delete(listener);
    },
    ...(options.writeGuard ? { writeGuard: options.writeGuard } : {}),
    // Pair links name the address this server listens on (known once it does).
    endpoint: () =>
      listeningPort > 0 ? { host: host === '::1' ? '[::1]' : host, port: listeningPort } : null,
  });
  // Containers left by a server that crashed are removed; without an engine this is a no-op.
  void docker
    .ensureEngine()
    .then(() => docker.cleanupOrphans())
    .then((removed) => removed > 0 && log.info('removed orphaned session containers', { removed }))
    .catch((err: unknown) => log.info('docker engine not available', { error: (err as Error).message }));

  // Rate buckets belong to tokens, not sessions: ending a session must not refill them.
  const stopSessionCleanup = sessions.onSessionEnded((s) => {
    executions.endSession(s.sessionId).catch((err: unknown) =>
      log.warn('could not remove a session container', {
        sessionId: s.sessionId,
        error: (err as Error).message,
      }),
    );
  });

  const maxRequestBodySize = Math.ceil(maxFileBytes * 1.4) + 1024 * 1024;
  const mcpDeps: McpGatewayDeps = {
    dispatcher,
    sessions,
    serverName: 'mcp-workspace',
    serverVersion: SERVER_VERSION,
    maxRequestBodySize,
    log: (level, msg, fields) => log[level](msg, fields),
  };
  // The MCP SDK is loaded with the first MCP request: a server no MCP client uses stays lean.
  let mcp: Promise<McpGateway> | null = null;
  const mcpGateway = (): Promise<McpGateway> => (mcp ??= loadMcpGateway(mcpDeps));
  // Built on first request (most servers are never asked for it), again after the tools changed.
  let openApi: { version: number; document: ReturnType<typeof buildOpenApi> } | null = null;
  const openApiDocument = (): ReturnType<typeof buildOpenApi> => {
    if (openApi?.version !== tools.version) {
      openApi = { version: tools.version, document: buildOpenApi(SERVER_VERSION, tools.list()) };
    }
    return openApi.document;
  };
  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  // Known once the server listens; until then no request can arrive.
  let listeningPort = -1;

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // Host, Origin and token checks, shared by HTTP requests and WebSocket upgrades.
  const admission = createAdmission({
    authenticate: (token) => sessions.authenticate(token),
    allowedOrigins,
    serverPort: () => listeningPort,
    onRefused: (fields) => log.warn('authentication failed', fields),
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    const refused = admission.checkHostAndOrigin(req);
    if (refused) sendError(res, refused);
    else next();
  });
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    const auth = admission.authenticate(req);
    if (auth instanceof WorkspaceError) {
      sendError(res, auth);
      return;
    }
    req.auth = {
      token: auth.token,
      clientId: auth.principal.name,
      scopes: [],
      // A pair token's real expiry; other tokens live until revoked (the SDK wants a time).
      expiresAt: Math.floor((auth.principal.expiresAt ?? Date.now() + 3600_000) / 1000),
      extra: { principal: auth.principal },
    };
    next();
  });
  app.use(jsonBody(maxRequestBodySize));
  app.all('/mcp', (req, res, next) => {
    mcpGateway()
      .then((gateway) => gateway.handle(req, res))
      .catch(next);
  });
  app.use(
    createRestRouter({
      dispatcher,
      openApi: openApiDocument,
    }),
  );
  app.use((_req: Request, res: Response) => {
    sendError(res, new WorkspaceError('NOT_FOUND', 'No such endpoint; see /openapi.json.'));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    if (err instanceof WorkspaceError) {
      sendError(res, err);
    } else if (status === 413) {
      sendError(
        res,
        new WorkspaceError('FILE_TOO_LARGE', 'Request body too large.', { limit: maxRequestBodySize }),
      );
    } else if (status === 400 || err instanceof SyntaxError) {
      sendError(res, new WorkspaceError('INVALID_ARGUMENT', 'The request body is not valid JSON.'));
    } else {
      const error = unexpectedError(log, err, { path: req.path, method: req.method });
      if (!res.headersSent) sendError(res, error);
    }
  });

  const server: Server = createServer(app);
  server.keepAliveTimeout = 65_000;
  const ws = new WsGateway({
    dispatcher,
    sessions,
    maxMessageBytes: maxRequestBodySize,
    admit: (req) => {
      const admitted = admission.admit(req);
      return admitted instanceof WorkspaceError ? admitted : admitted.principal;
    },
  });
  const collabGateway = new CollabGateway({
    dispatcher,
    maxMessageBytes: collab.limits.maxUpdateBytes * 2 + 1024,
    admit: (req) => {
      const admitted = admission.admitWithQueryToken(req);
      return admitted instanceof WorkspaceError ? admitted : admitted.principal;
    },
  });
  routeUpgrades(server, [
    {
      matches: (path) => path === WS_PATH,
      handle: (req, socket, head) => ws.handleUpgrade(req, socket, head),
    },
    {
      matches: (path) => path.startsWith(COLLAB_PREFIX),
      handle: (req, socket, head) => collabGateway.handleUpgrade(req, socket, head),
    },
  ]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  listeningPort = port;
  const urlHost = host === '::1' ? '[::1]' : host;
  const url = `http://${urlHost}:${port}`;
  log.info('server ready', { url, workspace, stateDir });
  const startedFrom = options.startedFrom ?? 'embedded';
  // What an agent may do depends on these: the audit log keeps what was in force from each start.
  await dispatcher.recordServerEvent(
    'server_start',
    {
      url,
      workspace,
      workspaceId,
      policyId: policy.policy.id,
      policyFile,
      allowedOrigins: [...allowedOrigins],
      dockerHost: options.dockerHost ?? null,
      defaultImage: options.defaultImage ?? null,
    },
    startedFrom,
  );

  // Every change of the tool set is recorded, with the manifests that did not load and why.
  const recordTools = (change: {
    added: string[];
    removed: string[];
    changed: string[];
    problems: unknown[];
  }) =>
    dispatcher
      .recordServerEvent('tools_changed', { ...change }, startedFrom)
      .catch((err: unknown) =>
        log.error('could not record tools_changed', { error: (err as Error).message }),
      );
  if (tools.list().length > 0 || tools.problems.length > 0) {
    await recordTools({
      added: tools.list().map((t) => t.name),
      removed: [],
      changed: [],
      problems: tools.problems,
    });
  }
  const stopToolAudit = tools.onChange((change) => void recordTools(change));
  tools.watch();

  let closing: Promise<void> | null = null;
  return {
    url,
    mcpUrl: `${url}/mcp`,
    port,
    tokenFile: sessions.ownerTokenFile,
    ownerToken: sessions.ownerToken,
    stateDir,
    workspace,
    sessions,
    audit,
    policy,
    dispatcher,
    executions,
    collab,
    workspaceId,
    coordination: {
      onMessage: (listener) => coordination.onMessage(listener),
      leaseBlocks: (principal, path) => coordination.leaseBlocks(principal, path),
    },
    presence: {
      view: () => presence.view(OWNER),
      onChange: (listener) => presence.onChange(listener),
    },
    tools,
    toolRuns: { onRun: (listener) => toolRuns.onRun(listener) },
    close: (reason?: string) =>
      (closing ??= (async () => {
        stopToolAudit();
        tools.close();
        mcpServers.close();
        if (mcp) await (await mcp).close();
        await ws.close();
        // Shared documents are written to disk before their connections drop.
        await collab.close();
        await collabGateway.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        stopSessionCleanup();
        presence.close();
        sessions.close();
        coordination.close();
        await docker.close();
        toolRuns.close();
        await dispatcher
          .recordServerEvent('server_stop', { url, reason: reason ?? null }, startedFrom)
          .catch((err: unknown) =>
            log.error('could not record server_stop', { error: (err as Error).message }),
          );
        await audit.close();
        await resources.close();
        log.info('server stopped', { url });
      })()),
  };
}
