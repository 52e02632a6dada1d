/**
 * Public types of the Docker runtime, re-exported by its index. Kept apart so private modules
 * can use them without importing the runtime itself.
 */
import type { RunnerProcess } from '../runner';
import type { ExtraHostConfig } from './devcontainer';

/** cgroup limits of one session container. */
export interface SandboxLimits {
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  tmpfsBytes: number;
}

/** Default limits: 1 GiB memory (no swap), 2 CPUs, 512 processes, 256 MiB /tmp. */
export const DEFAULT_LIMITS: SandboxLimits = Object.freeze({
  memoryBytes: 1024 * 1024 * 1024,
  nanoCpus: 2e9,
  pidsLimit: 512,
  tmpfsBytes: 256 * 1024 * 1024,
});

/** Which devcontainer.json fields the owner allowed (policy rules `allow tool(devcontainer.<field>)`). */
export interface DevcontainerPermissions {
  allows(
    field: 'privileged' | 'capAdd' | 'securityOpt' | 'mounts' | 'runArgs' | 'initializeCommand',
  ): boolean;
}

/** The environment session containers run in, resolved from devcontainer.json or the default image. */
export interface ResolvedEnvironment {
  /** Local image tag to run. */
  image: string;
  source: 'devcontainer-image' | 'devcontainer-build' | 'default';
  /** Host path of the devcontainer.json used. */
  configPath: string | null;
  /** In-container path of the workspace; default /workspaces/<basename of workspace>. */
  workspaceFolder: string;
  containerEnv: Record<string, string>;
  /** Environment the caller merges into every command's env. */
  remoteEnv: Record<string, string>;
  /** containerUser ?? remoteUser. */
  user: string | null;
  /** Only the fields the owner allowed. */
  extraHostConfig: ExtraHostConfig;
}

/** Progress of a slow step (image pull or build, container start). */
export interface ProgressEvent {
  phase: 'resolve' | 'pull' | 'build' | 'start';
  message: string;
  current?: number;
  total?: number;
}

/** What a session container is for. */
export interface SandboxSpec {
  sessionId: string;
  agent: string;
  /** Mount the workspace read-only. */
  readOnly: boolean;
  /** Give the container a bridge network (otherwise none). */
  network: boolean;
}

/** One command to run in a session container. */
export interface SandboxExecSpec {
  argv: string[];
  /** In-container working directory. */
  cwd: string;
  env: Record<string, string>;
  outputCapBytes: number;
  stdin?: boolean;
}

/** A session's container, reachable through its in-container runner. */
export interface Sandbox {
  readonly containerId: string;
  readonly env: ResolvedEnvironment;
  /** Runs one command through the in-container runner. */
  exec(spec: SandboxExecSpec): RunnerProcess;
  /** Kills every process of the session container except the runner (used when a cancel must be total). */
  killAll(): Promise<void>;
  /** Measures one round trip to the runner, in milliseconds. */
  ping(): Promise<number>;
}

/** Log sink of the runtime. */
export type RuntimeLog = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Progress sink of the runtime. */
export type ProgressSink = (event: ProgressEvent) => void;
