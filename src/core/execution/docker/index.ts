/**
 * The Docker runtime: one hardened container per session, running the workspace's dev-container
 * image (devcontainer.json `image` or `build`, else a default image) with mcpw-runner as its main
 * process. Commands go to the runner over the container's attached stdin/stdout. This file is the
 * runtime's public entry: environment resolution lives in ./environment, the container pool in
 * ./pool, the engine connection in ./engine.
 */
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import { openConfinedRoot, type ConfinedRootHandle } from '../../resources';
import type { SandboxRuntime, SandboxSpec } from '../runtime';
import { EngineConnection } from './engine';
import { EnvironmentResolver } from './environment';
import { ContainerPool } from './pool';
import {
  DEFAULT_LIMITS,
  type BuildView,
  type DevcontainerPermissions,
  type DockerSandbox,
  type ProgressEvent,
  type ResolvedEnvironment,
  type SandboxLimits,
} from './types';

export { DEFAULT_LIMITS } from './types';
export type {
  BuildView,
  DevcontainerPermissions,
  DockerSandbox,
  ProgressEvent,
  ResolvedEnvironment,
  SandboxLimits,
} from './types';

/** Options of a {@link DockerRuntime}. */
export interface DockerRuntimeOptions {
  /** Host realpath of the workspace. */
  workspace: string;
  /** Stable id of this server's state dir: labels containers so orphans can be found. */
  stateId: string;
  /** Used when there is no devcontainer config. */
  defaultImage: string;
  limits?: Partial<SandboxLimits>;
  /** Stop a session container idle this long (default 10 min). */
  idleTimeoutMs?: number;
  /**
   * Session containers at once per agent (default {@link DEFAULT_MAX_CONTAINERS_PER_AGENT}): at the
   * cap the agent's idle containers are removed first, then SANDBOX_LIMIT.
   */
  maxContainersPerAgent?: number;
  permissions: DevcontainerPermissions;
  /** Engine address (`unix:///path` or `tcp://host:port`); default DOCKER_HOST, else the default socket. */
  dockerHost?: string;
  /** Default runnerBinaryPath(). */
  runnerPath?: string;
  /**
   * Host paths that commands must not see (the server's state dir or the owner's policy file when
   * they lie inside the workspace); masked inside every container.
   */
  protectedPaths?: string[];
  /** The server's state dir: holds the empty placeholder file (else a temporary folder is used). */
  stateDir?: string;
  onProgress?: (e: ProgressEvent) => void;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Default cap of session containers running at once per agent token. */
export const DEFAULT_MAX_CONTAINERS_PER_AGENT = 4;
const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;

/** The {@link SandboxRuntime} on a Docker engine: the session containers of one workspace. */
export class DockerRuntime implements SandboxRuntime {
  private readonly engine: EngineConnection;
  private readonly environments: EnvironmentResolver;
  private readonly pool: ContainerPool;
  private confinedRoot: ConfinedRootHandle | null = null;

  /** @throws WorkspaceError INVALID_ARGUMENT for a bad per-agent cap or engine address. */
  constructor(private readonly options: DockerRuntimeOptions) {
    const maxContainersPerAgent = options.maxContainersPerAgent ?? DEFAULT_MAX_CONTAINERS_PER_AGENT;
    if (!(Number.isInteger(maxContainersPerAgent) && maxContainersPerAgent > 0)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `maxContainersPerAgent must be a positive integer; got ${maxContainersPerAgent}.`,
      );
    }
    const log = options.log ?? (() => undefined);
    const progress = (event: ProgressEvent) => options.onProgress?.(event);
    const root = () => this.root();
    this.engine = new EngineConnection(options.dockerHost);
    this.environments = new EnvironmentResolver({
      workspace: options.workspace,
      defaultImage: options.defaultImage,
      permissions: options.permissions,
      engine: this.engine,
      root,
      progress,
      log,
    });
    this.pool = new ContainerPool({
      workspace: options.workspace,
      stateId: options.stateId,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      maxContainersPerAgent,
      runnerPath: options.runnerPath,
      protectedPaths: options.protectedPaths ?? [],
      stateDir: options.stateDir,
      engine: this.engine,
      environments: this.environments,
      root,
      progress,
      log,
    });
  }

  /** The dockerode client, loaded on first use (an idle server never needs it). */
  client(): Promise<Docker> {
    return this.engine.client();
  }

  /**
   * Pings the engine (DOCKER_HOST or the default socket). Success is cached; a failure is
   * re-checked on the next call.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE saying how to start an engine.
   */
  ensureEngine(): Promise<void> {
    return this.engine.ensure();
  }

  /**
   * Reads .devcontainer/devcontainer.json or .devcontainer.json and makes its image available
   * locally (present, pulled, or built and cached as `mcpw-build-<hash>:latest`). Permissions are
   * checked on every call; the image work is memoised per config, build inputs and network. A build
   * reads its context through the confined layer, ships only what `view.mayRead` allows, and runs
   * without network unless `view.network`.
   * @throws WorkspaceError INVALID_ARGUMENT (bad config), PATH_OUTSIDE_WORKSPACE (build paths),
   * POLICY_DENIED (field or env key not allowed), SANDBOX_UNAVAILABLE (no engine, image missing,
   * build failed).
   */
  resolveEnvironment(view?: BuildView): Promise<ResolvedEnvironment> {
    return this.environments.resolve(view);
  }

  /**
   * The session's container, created and started on first use (cold) or reused (warm). A
   * container whose runner connection was lost is ending (the engine removes it), so a new one
   * is started. A new container that would exceed the agent's cap first removes the agent's least
   * recently used idle containers.
   * @throws WorkspaceError SANDBOX_LIMIT (every container of the agent is busy), SANDBOX_UNAVAILABLE,
   * plus the errors of {@link resolveEnvironment}.
   */
  acquire(spec: SandboxSpec): Promise<DockerSandbox> {
    return this.pool.acquire(spec);
  }

  /** Stops and removes the session's container (no-op when it has none). */
  release(sessionId: string): Promise<void> {
    return this.pool.release(sessionId);
  }

  /** Removes containers labelled with this stateId that this runtime does not manage. Returns how many. */
  cleanupOrphans(): Promise<number> {
    return this.pool.cleanupOrphans();
  }

  /** Releases every session container and stops the idle timer; acquire() fails afterwards. */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** The workspace root held open for confined walks (build contexts, protected mounts), opened once. */
  private root(): ConfinedRootHandle {
    return (this.confinedRoot ??= openConfinedRoot(
      this.options.workspace,
      this.options.protectedPaths ?? [],
    ));
  }
}
