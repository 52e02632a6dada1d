/**
 * Public types of the Docker runtime, re-exported by its index. Kept apart so private modules
 * can use them without importing the runtime itself.
 */
import type { Sandbox, SandboxEnvironment } from '../runtime';
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
  /**
   * Whether containerEnv/remoteEnv may set a key that changes how programs are found or loaded
   * (policy rule `allow env(KEY)`); absent means never.
   */
  allowsEnv?(key: string): boolean;
}

/** The environment session containers run in, resolved from devcontainer.json or the default image. */
export interface ResolvedEnvironment extends SandboxEnvironment {
  /** Local image tag to run. */
  image: string;
  source: 'devcontainer-image' | 'devcontainer-build' | 'default';
  /** Host path of the devcontainer.json used. */
  configPath: string | null;
  /** In-container path of the workspace; default /workspaces/<basename of workspace>. */
  workspaceFolder: string;
  containerEnv: Record<string, string>;
  /** containerUser ?? remoteUser. */
  user: string | null;
  /** Only the fields the owner allowed. */
  extraHostConfig: ExtraHostConfig;
}

/** Whose view of the workspace an image build uses, and whether its RUN steps get the network. */
export interface BuildView {
  /** Give RUN steps the network (only when the policy allows the requesting agent the network). */
  network: boolean;
  /** Whether the requesting agent may read a workspace-relative path; what it may not never ships. */
  mayRead: (path: string) => boolean;
  /** The requesting session: progress (the build log included) is addressed to it alone. */
  sessionId?: string;
}

/** Progress of a slow step (image pull or build, container start). */
export interface ProgressEvent {
  phase: 'resolve' | 'pull' | 'build' | 'start';
  message: string;
  /** The session whose command caused it: a build log goes only to that session's command. */
  sessionId?: string;
  current?: number;
  total?: number;
}

/** A session container: a {@link Sandbox} whose environment is the resolved dev container. */
export interface DockerSandbox extends Sandbox {
  /** The container id. */
  readonly id: string;
  readonly env: ResolvedEnvironment;
}

/** Log sink of the runtime. */
export type RuntimeLog = (
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** Progress sink of the runtime. */
export type ProgressSink = (event: ProgressEvent) => void;
