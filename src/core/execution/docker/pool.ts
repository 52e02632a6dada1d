/**
 * The container pool of the Docker runtime: starts one hardened container per session, reuses it
 * while it fits the session's spec, caps containers per agent, stops idle ones and removes orphans
 * a crashed server left. Private to the Docker runtime.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WorkspaceError } from '../../../protocol/errors';
import type { ConfinedRootHandle } from '../../resources';
import { runnerBinaryPath } from '../runner';
import type { SandboxSpec } from '../runtime';
import type { EngineConnection } from './engine';
import type { EnvironmentResolver } from './environment';
import { reason, statusCode } from './images';
import { Placeholders, planProtection, verifyProtection, type PlannedProtection } from './protect';
import { LABELS, SessionSandbox, type ContainerPlan } from './sandbox';
import type { BuildView, ProgressSink, ResolvedEnvironment, RuntimeLog, SandboxLimits } from './types';
import { isErrno } from '../../shared/fs';

/** How the engine reports a bind mount whose host path disappeared before the container started. */
const MOUNT_SOURCE_GONE =
  /bind source path does not exist|error mounting "[^"]*" to rootfs .*no such file or directory/;
/** How many times a start plans its mounts again after a mount point vanished. */
const MAX_REPLANS = 5;

/** What a {@link ContainerPool} works with. */
export interface ContainerPoolOptions {
  /** Host realpath of the workspace. */
  workspace: string;
  /** Stable id of this server's state dir: labels containers so orphans can be found. */
  stateId: string;
  limits: SandboxLimits;
  /** Stop a session container idle this long. */
  idleTimeoutMs: number;
  /** Session containers at once per agent. */
  maxContainersPerAgent: number;
  /**
   * Host path of the runner binary bind-mounted into every container; default runnerBinaryPath(),
   * looked up when a container starts (a server without one still serves files).
   */
  runnerPath: string | undefined;
  /** Host paths masked inside every container. */
  protectedPaths: readonly string[];
  /** Holds the empty placeholder file (else a temporary folder is used). */
  stateDir: string | undefined;
  engine: EngineConnection;
  environments: EnvironmentResolver;
  /** The workspace root held open for confined walks. */
  root: () => ConfinedRootHandle;
  progress: ProgressSink;
  log: RuntimeLog;
}

/** The session containers of one workspace on one Docker engine. */
export class ContainerPool {
  private readonly timer: NodeJS.Timeout;
  private readonly log: RuntimeLog;
  private readonly sandboxes = new Map<string, SessionSandbox>();
  private readonly pending = new Map<string, Promise<SessionSandbox>>();
  /** The agent of each pending acquisition, so containers being started count toward its cap. */
  private readonly pendingAgents = new Map<string, string>();
  private closed = false;
  private readonly placeholders = new Placeholders();
  /**
   * Serialises what touches placeholder mount points: planning and starting a container, and
   * removing the placeholders once no container runs. Without it a removal could delete a mount
   * point a starting container was about to bind.
   */
  private mountQueue: Promise<unknown> = Promise.resolve();
  private emptyFilePath: Promise<string> | null = null;
  private unverifiedLogged = false;

  constructor(private readonly options: ContainerPoolOptions) {
    this.log = options.log;
    const sweepEvery = Math.min(Math.max(options.idleTimeoutMs / 4, 50), 30_000);
    this.timer = setInterval(() => this.sweepIdle(), sweepEvery);
    this.timer.unref();
  }

  /**
   * The session's container, created and started on first use (cold) or reused (warm). A
   * container whose runner connection was lost is ending (the engine removes it), so a new one
   * is started. A new container that would exceed the agent's cap first removes the agent's least
   * recently used idle containers.
   * @throws WorkspaceError SANDBOX_LIMIT (every container of the agent is busy), SANDBOX_UNAVAILABLE,
   * plus the errors of {@link resolveEnvironment}.
   */
  acquire(spec: SandboxSpec): Promise<SessionSandbox> {
    if (this.closed) {
      return Promise.reject(new WorkspaceError('SANDBOX_UNAVAILABLE', 'The Docker runtime is closed.'));
    }
    if (typeof spec.sessionId !== 'string' || spec.sessionId === '') {
      return Promise.reject(new WorkspaceError('INVALID_ARGUMENT', 'sessionId must be a non-empty string.'));
    }
    const inFlight = this.pending.get(spec.sessionId);
    if (inFlight) return inFlight;
    let evicted: SessionSandbox[];
    try {
      evicted = this.sandboxes.has(spec.sessionId) ? [] : this.makeRoomFor(spec);
    } catch (error) {
      return Promise.reject(error);
    }
    // The evicted containers are gone before the new one starts: the cap holds at every moment.
    const acquiring = Promise.all(evicted.map((sandbox) => this.disposeQuietly(sandbox, 'an idle')))
      .then(() => this.acquireNow(spec))
      .finally(() => {
        this.pending.delete(spec.sessionId);
        this.pendingAgents.delete(spec.sessionId);
      });
    this.pending.set(spec.sessionId, acquiring);
    this.pendingAgents.set(spec.sessionId, spec.agent);
    return acquiring;
  }

  /** Stops and removes the session's container (no-op when it has none). */
  async release(sessionId: string): Promise<void> {
    await this.pending.get(sessionId)?.catch(() => undefined);
    const sandbox = this.sandboxes.get(sessionId);
    if (!sandbox) return;
    this.sandboxes.delete(sessionId);
    await sandbox.dispose();
    await this.removePlaceholdersWhenIdle();
  }

  /** Removes containers labelled with this stateId that this runtime does not manage. Returns how many. */
  async cleanupOrphans(): Promise<number> {
    await this.options.engine.ensure();
    const filters = encodeURIComponent(
      JSON.stringify({ label: [`${LABELS.state}=${this.options.stateId}`] }),
    );
    const listed = await this.options.engine.request(
      'GET',
      `/containers/json?all=1&filters=${filters}`,
      30_000,
    );
    if (listed.status !== 200)
      throw new WorkspaceError('SANDBOX_UNAVAILABLE', `Listing containers failed: ${listed.body}`);
    const containers = JSON.parse(listed.body) as { Id: string; Labels: Record<string, string> }[];
    const own = new Set([...this.sandboxes.values()].map((sandbox) => sandbox.id));
    let removed = 0;
    for (const container of containers) {
      if (own.has(container.Id) || this.pending.has(container.Labels[LABELS.session] ?? '')) continue;
      try {
        const { status, body } = await this.options.engine.request(
          'DELETE',
          `/containers/${container.Id}?force=1&v=1`,
          30_000,
        );
        if (status === 404) continue;
        if (status >= 300) throw Object.assign(new Error(body), { statusCode: status });
        removed++;
      } catch (error) {
        if (statusCode(error) !== 404) {
          this.log('warn', 'could not remove an orphaned container', {
            containerId: container.Id,
            error: reason(error),
          });
        }
      }
    }
    if (removed > 0) this.log('info', 'removed orphaned session containers', { removed });
    return removed;
  }

  /** Releases every session container and stops the idle timer; acquire() fails afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.pending.values()]);
    await Promise.allSettled([...this.sandboxes.keys()].map((sessionId) => this.release(sessionId)));
    await this.placeholders.removeAll();
  }

  private async acquireNow(spec: SandboxSpec): Promise<SessionSandbox> {
    const existing = this.sandboxes.get(spec.sessionId);
    if (existing) {
      if (this.reusable(existing, spec)) {
        existing.lastUsed = performance.now();
        return existing;
      }
      this.sandboxes.delete(spec.sessionId);
      await existing.dispose().catch((error: unknown) =>
        this.log('warn', 'could not remove a stale session container', {
          containerId: existing.id,
          error: reason(error),
        }),
      );
    }
    await this.options.engine.ensure();
    const view: BuildView = {
      network: spec.network,
      mayRead: spec.mayRead ?? (() => true),
      sessionId: spec.sessionId,
    };
    let env = await this.options.environments.resolve(view);
    let sandbox: SessionSandbox;
    try {
      sandbox = await this.start(spec, env);
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      // The memoised image is gone (removed behind our back): resolve it again, once.
      this.options.environments.forget();
      env = await this.options.environments.resolve(view);
      sandbox = await this.start(spec, env).catch((retryError: unknown) => {
        if (statusCode(retryError) !== 404) throw retryError;
        throw new WorkspaceError(
          'SANDBOX_UNAVAILABLE',
          `The image ${env.image} disappeared: ${reason(retryError)}`,
          {
            image: env.image,
          },
        );
      });
    }
    if (this.closed) {
      await sandbox.dispose();
      throw new WorkspaceError('SANDBOX_UNAVAILABLE', 'The Docker runtime is closed.');
    }
    this.sandboxes.set(spec.sessionId, sandbox);
    this.log('info', 'session container started', {
      sessionId: spec.sessionId,
      agent: spec.agent,
      containerId: sandbox.id,
      image: env.image,
      ms: sandbox.timings,
    });
    return sandbox;
  }

  /** The protected paths inside the workspace, as in-container paths to mask. */
  private async maskedPaths(workspaceFolder: string): Promise<{ target: string; directory: boolean }[]> {
    const masked: { target: string; directory: boolean }[] = [];
    for (const path of this.options.protectedPaths) {
      const rel = relative(this.options.workspace, path);
      if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) continue;
      const stats = await lstat(path).catch(() => null);
      if (!stats) continue;
      masked.push({ target: posix.join(workspaceFolder, ...rel.split(sep)), directory: stats.isDirectory() });
    }
    return masked;
  }

  /** Whether `sandbox` can serve `spec`: same mounts and network, and its runner still connected. */
  private reusable(sandbox: SessionSandbox, spec: SandboxSpec): boolean {
    if (sandbox.spec.readOnly !== spec.readOnly || sandbox.spec.network !== spec.network) return false;
    return !sandbox.connectionLost;
  }

  /** Creates and starts the session container, handling a name already in use. */
  private start(spec: SandboxSpec, env: ResolvedEnvironment): Promise<SessionSandbox> {
    return this.withMounts(() => this.startNow(spec, env));
  }

  /** Runs `task` after every earlier task of the mount queue (see {@link mountQueue}). */
  private withMounts<T>(task: () => Promise<T>): Promise<T> {
    const run = this.mountQueue.then(task, task);
    this.mountQueue = run.catch(() => undefined);
    return run;
  }

  private async startNow(spec: SandboxSpec, env: ResolvedEnvironment): Promise<SessionSandbox> {
    this.options.progress({
      phase: 'start',
      message: `Starting a container from ${env.image}`,
      sessionId: spec.sessionId,
    });
    const { workspace } = this.options;
    // A read-only workspace mount protects everything already (and placeholders could not be made).
    const planMounts = async () => {
      const planned = spec.readOnly
        ? []
        : await planProtection(workspace, env.workspaceFolder, this.options.root());
      this.placeholders.note(workspace, planned);
      return planned;
    };
    let protection = await planMounts();
    const plan: ContainerPlan = {
      name: containerName(this.options.stateId, spec.sessionId),
      stateId: this.options.stateId,
      spec,
      env,
      workspace,
      protectedMounts: protection.map((entry) => entry.mount),
      masked: await this.maskedPaths(env.workspaceFolder),
      runnerPath: this.options.runnerPath ?? runnerBinaryPath(),
      emptyFile: await this.emptyFile(),
      limits: this.options.limits,
      user: env.user ?? (await workspaceOwner(workspace)),
    };
    for (let attempt = 0, replanned = 0; ; attempt++) {
      try {
        const sandbox = await SessionSandbox.start(await this.options.engine.client(), plan, this.log);
        await this.verify(sandbox, protection);
        return sandbox;
      } catch (error) {
        if (statusCode(error) === 404) throw error;
        // A mount point vanished or changed between planning and start (another server on this
        // folder removed its placeholders when its last container ended, or a command swapped a
        // protected folder): plan the mounts again from what is there, a bounded number of times.
        const raced =
          MOUNT_SOURCE_GONE.test(reason(error)) ||
          (error instanceof WorkspaceError && error.details?.['changedDuringStart'] === true);
        if (raced && replanned++ < MAX_REPLANS) {
          protection = await planMounts();
          plan.protectedMounts = protection.map((entry) => entry.mount);
          attempt--;
          continue;
        }
        if (statusCode(error) !== 409 || attempt >= 2) {
          if (error instanceof WorkspaceError) throw error;
          throw new WorkspaceError(
            'SANDBOX_UNAVAILABLE',
            `Creating the session container failed: ${reason(error)}`,
            {
              image: env.image,
            },
          );
        }
      }
      // The name is taken: by a leftover of this very session (remove it) or by another session.
      const holder = await (
        await this.options.engine.client()
      )
        .getContainer(plan.name)
        .inspect()
        .catch(() => null);
      const labels = holder?.Config.Labels ?? {};
      if (
        holder &&
        labels[LABELS.state] === this.options.stateId &&
        labels[LABELS.session] === spec.sessionId
      ) {
        await (
          await this.options.engine.client()
        )
          .getContainer(holder.Id)
          .remove({ force: true, v: true })
          .catch(() => undefined);
      } else {
        plan.name = `${plan.name}-${createHash('sha256').update(spec.sessionId).digest('hex').slice(0, 8)}`;
      }
    }
  }

  /**
   * An empty, read-only file to bind over masked and missing protected files: in the state dir
   * when one is given, else in a folder of this user under the temporary directory (re-created if
   * anything changed it, never trusted when someone else owns it).
   */
  private emptyFile(): Promise<string> {
    return (this.emptyFilePath ??= (async () => {
      let dir = this.options.stateDir;
      if (!dir) {
        dir = join(tmpdir(), `mcpw-empty-${process.getuid?.() ?? 'user'}`);
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const owner = await lstat(dir);
        if (!owner.isDirectory() || owner.uid !== process.getuid?.() || (owner.mode & 0o022) !== 0) {
          dir = await mkdtemp(join(tmpdir(), 'mcpw-empty-'));
        }
      }
      const file = join(dir, 'empty-placeholder');
      const found = await lstat(file).catch(() => null);
      if (!found || !found.isFile() || found.size !== 0 || (found.mode & 0o222) !== 0) {
        await rm(file, { recursive: true, force: true });
        // EEXIST: another runtime of this user made it in between (the folder is private).
        await writeFile(file, '', { mode: 0o444, flag: 'wx' }).catch((error: unknown) => {
          if (!isErrno(error, 'EEXIST')) throw error;
        });
      }
      return file;
    })());
  }

  /** Checks the started container's protected mounts; removes the container when one is wrong. */
  private async verify(sandbox: SessionSandbox, protection: readonly PlannedProtection[]): Promise<void> {
    try {
      const info = await (await this.options.engine.client()).getContainer(sandbox.id).inspect();
      if (!(await verifyProtection(info.State.Pid, protection)) && !this.unverifiedLogged) {
        this.unverifiedLogged = true;
        this.log(
          'warn',
          'cannot see session containers from this host; protected mounts are not re-checked',
          {
            dockerHost: this.options.engine.label,
          },
        );
      }
    } catch (error) {
      await sandbox.dispose().catch(() => undefined);
      throw error instanceof WorkspaceError
        ? error
        : new WorkspaceError(
            'SANDBOX_UNAVAILABLE',
            `Checking the session container failed: ${reason(error)}`,
          );
    }
  }

  /** Removes placeholder mount points from the host once no session container can be using them. */
  private removePlaceholdersWhenIdle(): Promise<void> {
    return this.withMounts(async () => {
      if (this.sandboxes.size === 0 && this.pending.size === 0) await this.placeholders.removeAll();
    });
  }

  /**
   * Makes room for one more container of `spec.agent`: at its cap, takes the agent's least recently
   * used idle containers (no command running, none being acquired) out of service and returns them
   * for disposal; when too few are idle, refuses with SANDBOX_LIMIT.
   */
  private makeRoomFor(spec: SandboxSpec): SessionSandbox[] {
    const others = [...this.sandboxes].filter(
      ([sessionId, sandbox]) => sessionId !== spec.sessionId && sandbox.spec.agent === spec.agent,
    );
    let starting = 0;
    for (const [sessionId, agent] of this.pendingAgents) {
      if (sessionId !== spec.sessionId && agent === spec.agent && !this.sandboxes.has(sessionId)) starting++;
    }
    const excess = others.length + starting + 1 - this.options.maxContainersPerAgent;
    if (excess <= 0) return [];
    const idle = others
      .filter(([sessionId, sandbox]) => sandbox.active === 0 && !this.pending.has(sessionId))
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed)
      .slice(0, excess);
    if (idle.length < excess) {
      throw new WorkspaceError(
        'SANDBOX_LIMIT',
        `Agent '${spec.agent}' already has ${others.length + starting} session containers running commands (the limit is ${this.options.maxContainersPerAgent}). ` +
          'Run this command in a session that already has a container, or wait for a command to finish (or cancel one) and retry.',
        { limit: this.options.maxContainersPerAgent, retryAfterMs: 1000 },
      );
    }
    for (const [sessionId, sandbox] of idle) {
      this.sandboxes.delete(sessionId);
      this.log('info', 'removing an idle session container to stay within the per-agent cap', {
        sessionId,
        agent: spec.agent,
        containerId: sandbox.id,
      });
    }
    return idle.map(([, sandbox]) => sandbox);
  }

  /** Disposes a container taken out of service, logging (not throwing) a failure. */
  private async disposeQuietly(sandbox: SessionSandbox, what: string): Promise<void> {
    await sandbox.dispose().catch((error: unknown) =>
      this.log('warn', `could not remove ${what} session container`, {
        containerId: sandbox.id,
        error: reason(error),
      }),
    );
  }

  /** Stops and removes containers idle longer than idleTimeoutMs (never one running a command). */
  private sweepIdle(): void {
    const now = performance.now();
    for (const [sessionId, sandbox] of this.sandboxes) {
      if (
        sandbox.active > 0 ||
        this.pending.has(sessionId) ||
        now - sandbox.lastUsed < this.options.idleTimeoutMs
      )
        continue;
      this.sandboxes.delete(sessionId);
      this.log('info', 'stopping an idle session container', { sessionId, containerId: sandbox.id });
      sandbox
        .dispose()
        .then(() => this.removePlaceholdersWhenIdle())
        .catch((error: unknown) =>
          this.log('warn', 'could not remove an idle session container', {
            containerId: sandbox.id,
            error: reason(error),
          }),
        );
    }
  }
}

/** `mcpw-<stateId first 8>-<sessionId first 12>`, with characters Docker refuses replaced by '-'. */
function containerName(stateId: string, sessionId: string): string {
  const clean = (value: string) => value.replace(/[^a-zA-Z0-9_.-]/g, '-');
  return `mcpw-${clean(stateId).slice(0, 8)}-${clean(sessionId).slice(0, 12)}`;
}

/** `uid:gid` of the workspace owner when it is not root (so a cap-less container can write to it). */
async function workspaceOwner(workspace: string): Promise<string | null> {
  const info = await stat(workspace);
  return info.uid === 0 ? null : `${info.uid}:${info.gid}`;
}
