/**
 * One session container: its hardened create options and the attached in-container runner.
 * The container lives exactly as long as the server's attach connection: the container's stdin
 * closes when that connection does (StdinOnce), the runner then ends every command and exits, and
 * the engine removes the container (AutoRemove). A server that dies, even by SIGKILL, so leaves no
 * container behind. Private to the Docker runtime.
 */
import { PassThrough, type Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import { RunnerClient, type RunnerProcess } from '../runner';
import { reason, statusCode } from './images';
import type { SandboxExecSpec, SandboxSpec } from '../runtime';
import type { DockerSandbox, ResolvedEnvironment, RuntimeLog, SandboxLimits } from './types';
import { parseEnvList } from '../../shared/env';

/** Where the runner binary is bind-mounted inside every session container. */
export const RUNNER_TARGET = '/.mcpw/mcpw-runner';

/** Container labels: the server state that owns it, the session and the agent. */
export const LABELS = {
  state: 'dev.mcp-workspace.state',
  session: 'dev.mcp-workspace.session',
  agent: 'dev.mcp-workspace.agent',
} as const;

/** How long a new container's runner has to answer its first ping. */
const START_PING_TIMEOUT_MS = 15_000;

/**
 * Kills every process of the container except pid 1 (docker-init), runners and itself. Runs
 * through `docker exec` with the image's /bin/sh.
 */
const KILL_ALL_SCRIPT =
  'self=$$; victims=; for d in /proc/[0-9]*; do p=${d#/proc/}; ' +
  '[ "$p" = 1 ] || [ "$p" = "$self" ] && continue; ' +
  `[ "$(readlink "$d/exe" 2>/dev/null)" = ${RUNNER_TARGET} ] && continue; ` +
  // Freeze everything first, so no parent sees a child die (and exits 0) before its own KILL.
  'kill -STOP "$p" 2>/dev/null; victims="$victims $p"; done; ' +
  'for p in $victims; do kill -9 "$p" 2>/dev/null; done; exit 0';

/** Everything needed to create a session container. */
export interface ContainerPlan {
  name: string;
  stateId: string;
  spec: SandboxSpec;
  env: ResolvedEnvironment;
  workspace: string;
  /**
   * Protected workspace paths, read-only in the container: an existing one is bind-mounted onto
   * itself read-only (`source`), a missing folder gets an empty read-only tmpfs and a missing file
   * a read-only /dev/null (`source: null`), so commands cannot create them either.
   */
  protectedMounts: ProtectedMount[];
  /** In-container paths hidden from commands (the server's own files inside the workspace). */
  masked: { target: string; directory: boolean }[];
  runnerPath: string;
  /** Host path of an empty read-only file: what a masked or missing protected file shows. */
  emptyFile: string;
  limits: SandboxLimits;
  /** The User to run as (env.user, else the workspace owner when not root). */
  user: string | null;
}

/** One protected path of the workspace as the container sees it (see {@link ContainerPlan}). */
export interface ProtectedMount {
  /** In-container path. */
  target: string;
  /** Host path to bind read-only onto itself, or null for a placeholder of a missing path. */
  source: string | null;
  directory: boolean;
  /**
   * Bind it writable: a parent folder of a protected folder becomes a mount point only so that it
   * cannot be renamed away (rename fails on a mount point), while its content stays writable.
   */
  pinOnly?: boolean;
}

/** A read-only bind mount that never propagates mounts in either direction. */
function readOnlyBind(source: string, target: string): Docker.MountSettings {
  return {
    Type: 'bind',
    Source: source,
    Target: target,
    ReadOnly: true,
    BindOptions: { Propagation: 'rprivate' },
  };
}

/** Docker create options of a hardened session container (see the module docs of the runtime). */
export function containerOptions(plan: ContainerPlan): Docker.ContainerCreateOptions {
  const { env, spec, limits } = plan;
  const mounts: Docker.MountSettings[] = [
    readOnlyBind(plan.runnerPath, RUNNER_TARGET),
    {
      Type: 'bind',
      Source: plan.workspace,
      Target: env.workspaceFolder,
      ReadOnly: spec.readOnly,
      BindOptions: { Propagation: 'rprivate' },
    },
  ];
  // Files are covered by an empty read-only file (writes fail: /dev/null would swallow them
  // silently), directories by an empty read-only tmpfs.
  const tmpfs: Record<string, string> = { '/tmp': `rw,nosuid,nodev,size=${limits.tmpfsBytes}` };
  const placeholder = (target: string, directory: boolean) => {
    if (directory) tmpfs[target] = 'ro,nosuid,nodev,noexec,size=4k';
    else mounts.push(readOnlyBind(plan.emptyFile, target));
  };
  // Parents before children, so a nested protected path is mounted inside its parent's mount.
  const byDepth = [...plan.protectedMounts].sort((a, b) => a.target.length - b.target.length);
  for (const { target, source, directory, pinOnly } of byDepth) {
    if (source === null) placeholder(target, directory);
    else if (pinOnly) mounts.push({ ...readOnlyBind(source, target), ReadOnly: false });
    else mounts.push(readOnlyBind(source, target));
  }
  for (const { target, directory } of plan.masked) placeholder(target, directory);
  const extra = env.extraHostConfig;
  const hostConfig: Docker.HostConfig = {
    Mounts: [...mounts, ...((extra.Mounts ?? []) as Docker.MountSettings[])],
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges', ...(extra.SecurityOpt ?? [])],
    NetworkMode: spec.network ? 'bridge' : 'none',
    PidsLimit: limits.pidsLimit,
    Memory: limits.memoryBytes,
    MemorySwap: limits.memoryBytes,
    NanoCpus: limits.nanoCpus,
    Init: true,
    AutoRemove: true,
    Tmpfs: tmpfs,
    ReadonlyRootfs: false,
  };
  if (extra.Privileged) hostConfig.Privileged = true;
  if (extra.CapAdd?.length) hostConfig.CapAdd = [...extra.CapAdd];
  const options: Docker.ContainerCreateOptions = {
    name: plan.name,
    Image: env.image,
    Entrypoint: [RUNNER_TARGET],
    // The runner's create guard covers the workspace mount: no `.git` or `*.code-workspace` there.
    Cmd: [env.workspaceFolder],
    OpenStdin: true,
    // The attach connection is the container's lifeline: when it closes, stdin closes too.
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Env: Object.entries(env.containerEnv).map(([key, value]) => `${key}=${value}`),
    WorkingDir: env.workspaceFolder,
    Labels: {
      [LABELS.state]: plan.stateId,
      [LABELS.session]: spec.sessionId,
      [LABELS.agent]: spec.agent,
    },
    HostConfig: hostConfig,
  };
  if (plan.user) options.User = plan.user;
  return options;
}

/** Timings of a cold start, in milliseconds. */
export interface StartTimings {
  create: number;
  start: number;
  ping: number;
}

/** A running session container and its runner connection. */
export class SessionSandbox implements DockerSandbox {
  readonly id: string;
  readonly env: ResolvedEnvironment;
  readonly spec: SandboxSpec;
  readonly timings: StartTimings;
  /** performance.now() of the last exec, ping or acquire. */
  lastUsed = performance.now();
  /** Commands not yet exited. */
  active = 0;

  private readonly container: Docker.Container;
  private readonly client: RunnerClient;
  private disposed = false;
  /** The container's own environment (image Env, containerEnv, HOME...): the base of every command's env. */
  private baseEnv: Record<string, string> = {};

  private constructor(
    container: Docker.Container,
    plan: ContainerPlan,
    client: RunnerClient,
    timings: StartTimings,
  ) {
    this.container = container;
    this.id = container.id;
    this.env = plan.env;
    this.spec = { ...plan.spec };
    this.client = client;
    this.timings = timings;
  }

  /**
   * Creates, attaches and starts the container, then waits for its runner to answer a ping.
   * The container is removed again if any step fails.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE; the raw dockerode error (statusCode 404/409) from create.
   */
  static async start(docker: Docker, plan: ContainerPlan, log: RuntimeLog): Promise<SessionSandbox> {
    const t0 = performance.now();
    const container = await docker.createContainer(containerOptions(plan));
    const t1 = performance.now();
    try {
      const stream = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as Duplex;
      const stdout = new PassThrough();
      demux(docker, stream, stdout, (text) =>
        log('warn', 'mcpw-runner stderr', { containerId: container.id, text }),
      );
      const client = new RunnerClient(stream, stdout);
      await container.start();
      const t2 = performance.now();
      await withTimeout(
        client.ping(),
        START_PING_TIMEOUT_MS,
        () =>
          new WorkspaceError(
            'SANDBOX_UNAVAILABLE',
            `The runner did not answer within ${START_PING_TIMEOUT_MS} ms.`,
          ),
      );
      const t3 = performance.now();
      const sandbox = new SessionSandbox(container, plan, client, {
        create: t1 - t0,
        start: t2 - t1,
        ping: t3 - t2,
      });
      await sandbox.loadBaseEnv();
      return sandbox;
    } catch (error) {
      await container.remove({ force: true, v: true }).catch(() => undefined);
      if (error instanceof WorkspaceError) throw error;
      throw new WorkspaceError(
        'SANDBOX_UNAVAILABLE',
        `Starting the session container failed: ${reason(error)}`,
        {
          image: plan.env.image,
        },
      );
    }
  }

  /** Whether the attach connection to the container's main runner was lost. */
  get connectionLost(): boolean {
    return this.client.closed;
  }

  /**
   * Runs one command. Its env is the container's environment overlaid with `spec.env`. Uses the
   * attached runner; SANDBOX_UNAVAILABLE once that connection is lost (the container is ending).
   */
  exec(spec: SandboxExecSpec): RunnerProcess {
    this.lastUsed = performance.now();
    const proc = this.connection().spawn({
      argv: spec.argv,
      cwd: spec.cwd,
      env: { ...this.baseEnv, ...spec.env },
      outputCapBytes: spec.outputCapBytes,
      stdin: spec.stdin === true,
    });
    this.active++;
    void proc.exited.then(() => {
      this.active--;
      this.lastUsed = performance.now();
    });
    return proc;
  }

  /** Round trip to the runner in milliseconds. */
  ping(): Promise<number> {
    this.lastUsed = performance.now();
    return this.connection().ping();
  }

  /** Kills every process of the container except docker-init and the runners (via docker exec). */
  async killAll(): Promise<void> {
    this.lastUsed = performance.now();
    try {
      const exec = await this.container.exec({
        Cmd: ['/bin/sh', '-c', KILL_ALL_SCRIPT],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({});
      await new Promise<void>((resolveDrain, rejectDrain) => {
        stream.on('end', resolveDrain);
        stream.on('error', rejectDrain);
        stream.resume();
      });
    } catch (error) {
      throw new WorkspaceError(
        'SANDBOX_UNAVAILABLE',
        `Killing the session's processes failed: ${reason(error)}`,
      );
    }
  }

  /**
   * Ends the runner (its processes are SIGKILLed) and force-removes the container; returns once it
   * is gone, so its name is free again (also when the engine was already auto-removing it).
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.client.close();
    try {
      await this.container.remove({ force: true, v: true });
    } catch (error) {
      if (statusCode(error) === 404) return;
      // 409: a removal is already in progress (AutoRemove after the runner exited): wait for it.
      if (statusCode(error) !== 409) throw error;
      await this.container.wait({ condition: 'removed' }).catch((waitError: unknown) => {
        if (statusCode(waitError) !== 404) throw waitError;
      });
    }
  }

  /** The attached runner connection; once it is lost the container is ending and cannot serve. */
  private connection(): RunnerClient {
    if (this.disposed) throw new WorkspaceError('SANDBOX_UNAVAILABLE', 'The session container was released.');
    if (this.client.closed) {
      throw new WorkspaceError(
        'SANDBOX_UNAVAILABLE',
        'The connection to the session container was lost and the container is ending; run the command again.',
      );
    }
    return this.client;
  }

  /** Reads the environment docker gave the container (docker-init's), else the inspected Config.Env. */
  private async loadBaseEnv(): Promise<void> {
    const proc = this.client.spawn({
      argv: ['cat', '/proc/1/environ'],
      cwd: '/',
      env: {},
      outputCapBytes: 1 << 20,
    });
    const chunks: Buffer[] = [];
    proc.on('stdout', (chunk: Buffer) => chunks.push(chunk));
    const exit = await proc.exited;
    if (exit.exitCode === 0) {
      this.baseEnv = parseEnvList(Buffer.concat(chunks).toString('utf8').split('\0'));
      return;
    }
    const info = await this.container.inspect();
    this.baseEnv = parseEnvList(info.Config.Env ?? []);
  }
}

/** Demultiplexes an attach/exec stream into `stdout` (ended with the stream); stderr goes to `onStderr`. */
function demux(docker: Docker, stream: Duplex, stdout: PassThrough, onStderr: (text: string) => void): void {
  const stderr = new PassThrough();
  docker.modem.demuxStream(stream, stdout, stderr);
  stderr.on('data', (chunk: Buffer) => onStderr(chunk.toString('utf8')));
  const finish = () => {
    stdout.end();
    stderr.end();
  };
  stream.once('end', finish);
  stream.once('close', finish);
  stream.once('error', finish);
}

/** Settles like `promise`, or rejects with `onTimeout()` after `ms` milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, rejectTimeout) => {
    timer = setTimeout(() => rejectTimeout(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
