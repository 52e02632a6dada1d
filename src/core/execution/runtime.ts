/**
 * The sandbox vocabulary, independent of any runtime: a {@link SandboxRuntime} creates one
 * {@link Sandbox} per session from a {@link SandboxSpec}, and the Execution Manager runs commands
 * in it through the in-container runner. The Docker runtime (./docker) implements it; a second
 * runtime (podman, a microVM) implements the same interface.
 */
import type { RunnerProcess } from './runner';

/** What a session's sandbox is for. */
export interface SandboxSpec {
  sessionId: string;
  /** Agent name of the session (per-agent caps count sandboxes by it). */
  agent: string;
  /** Mount the workspace read-only. */
  readOnly: boolean;
  /** Give the sandbox a network (otherwise none). */
  network: boolean;
  /**
   * Whether the session's agent may read a workspace-relative path (filters what an image build
   * may ship); absent means every path the confined layer reaches.
   */
  mayRead?: (path: string) => boolean;
}

/** One command to run in a sandbox. */
export interface SandboxExecSpec {
  argv: string[];
  /** Working directory inside the sandbox. */
  cwd: string;
  env: Record<string, string>;
  /** stdout+stderr bytes the runner forwards before it truncates. */
  outputCapBytes: number;
  /** Open a stdin pipe (otherwise the command reads /dev/null). */
  stdin?: boolean;
}

/** What every command of a sandbox runs in: the part of the resolved environment any runtime has. */
export interface SandboxEnvironment {
  /** The image (or root filesystem) commands run in. */
  image: string;
  /** In-sandbox path of the workspace. */
  workspaceFolder: string;
  /** Environment merged into every command's env. */
  remoteEnv: Record<string, string>;
  /**
   * Workspace-relative files the image was built from (the Dockerfile and the build context), or
   * null when the image was not built from the workspace. Whoever may write one of them controls
   * the image.
   */
  buildInputs: readonly string[] | null;
}

/** A session's sandbox, reachable through its in-sandbox runner. */
export interface Sandbox {
  /** The runtime's id of the sandbox (a container id for Docker). */
  readonly id: string;
  readonly env: SandboxEnvironment;
  /** Runs one command through the runner. */
  exec(spec: SandboxExecSpec): RunnerProcess;
  /** Kills every process of the sandbox except the runner (for when a cancel must be total). */
  killAll(): Promise<void>;
  /** Measures one round trip to the runner, in milliseconds. */
  ping(): Promise<number>;
}

/** Where sessions' sandboxes come from: one per session, reused while it fits the spec. */
export interface SandboxRuntime {
  /**
   * The session's sandbox, created on first use or reused.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE, SANDBOX_LIMIT, or the environment's refusals.
   */
  acquire(spec: SandboxSpec): Promise<Sandbox>;
  /** Stops and removes the session's sandbox (no-op when it has none). */
  release(sessionId: string): Promise<void>;
  /** Releases every sandbox; acquire() fails afterwards. */
  close(): Promise<void>;
}
