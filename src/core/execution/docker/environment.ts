/**
 * Environment resolution of the Docker runtime: which image session containers run (the
 * workspace's devcontainer.json `image` or `build`, else the default image), with the config's
 * environment, user and the host-side fields the owner allowed. Private to the Docker runtime.
 */
import type { ConfinedRootHandle } from '../../resources';
import {
  defaultWorkspaceFolder,
  findDevcontainer,
  parseDevcontainer,
  resolveRemoteEnv,
  type DevcontainerFile,
  type ParsedDevcontainer,
} from './devcontainer';
import type { EngineConnection } from './engine';
import { buildImage, ensureLocalImage, planBuild, type BuildPlan } from './images';
import type {
  BuildView,
  DevcontainerPermissions,
  ProgressEvent,
  ProgressSink,
  ResolvedEnvironment,
  RuntimeLog,
} from './types';
import { parseEnvList } from '../../shared/env';

/** What an {@link EnvironmentResolver} works with. */
export interface EnvironmentResolverOptions {
  /** Host realpath of the workspace. */
  workspace: string;
  /** Used when there is no devcontainer config. */
  defaultImage: string;
  permissions: DevcontainerPermissions;
  engine: EngineConnection;
  /** The workspace root held open for confined build-context walks. */
  root: () => ConfinedRootHandle;
  progress: ProgressSink;
  log: RuntimeLog;
}

/** Resolves (and memoises) the environment session containers run in. */
export class EnvironmentResolver {
  private readonly environments = new Map<string, Promise<ResolvedEnvironment>>();

  constructor(private readonly options: EnvironmentResolverOptions) {}

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
  async resolve(view: BuildView = { network: false, mayRead: () => true }): Promise<ResolvedEnvironment> {
    await this.options.engine.ensure();
    const { workspace, permissions } = this.options;
    const file = await findDevcontainer(workspace);
    const parsed = file
      ? parseDevcontainer(
          file,
          workspace,
          (field) => permissions.allows(field),
          (key) => permissions.allowsEnv?.(key) ?? false,
        )
      : null;
    let key = file ? `${file.path}\0${file.text}` : 'default';
    let plan: BuildPlan | null = null;
    if (parsed?.build) {
      plan = await planBuild(
        parsed.build,
        { root: this.options.root(), mayRead: view.mayRead },
        view.network,
      );
      key += `\0${plan.tag}`;
    }
    let environment = this.environments.get(key);
    if (!environment) {
      const loading = this.load(file, parsed, plan, view);
      environment = loading;
      this.environments.set(key, loading);
      loading.catch(() => {
        if (this.environments.get(key) === loading) this.environments.delete(key);
      });
    }
    return environment;
  }

  /** Forgets every memoised environment (an image was removed behind the runtime's back). */
  forget(): void {
    this.environments.clear();
  }

  /** Loads the image of a parsed config (or the default image) and builds the environment. */
  private async load(
    file: DevcontainerFile | null,
    parsed: ParsedDevcontainer | null,
    plan: BuildPlan | null,
    view: BuildView,
  ): Promise<ResolvedEnvironment> {
    const progress = (event: ProgressEvent) =>
      this.options.progress(view.sessionId === undefined ? event : { ...event, sessionId: view.sessionId });
    const { workspace, defaultImage } = this.options;
    if (!file || !parsed) {
      progress({ phase: 'resolve', message: `No devcontainer.json; using ${defaultImage}` });
      await ensureLocalImage(await this.options.engine.client(), defaultImage, progress);
      return {
        image: defaultImage,
        source: 'default',
        configPath: null,
        workspaceFolder: defaultWorkspaceFolder(workspace),
        containerEnv: {},
        remoteEnv: {},
        user: null,
        extraHostConfig: {},
        buildInputs: null,
      };
    }
    progress({ phase: 'resolve', message: `Using ${file.path}` });
    for (const warning of parsed.warnings) this.options.log('warn', warning, { configPath: file.path });
    let image: string;
    let imageEnv: string[];
    if (parsed.build && plan) {
      const { info, built } = await buildImage(await this.options.engine.client(), parsed.build, plan, {
        source: { root: this.options.root(), mayRead: view.mayRead },
        network: view.network,
        progress,
      });
      if (built)
        this.options.log('info', 'built the dev container image', { image: plan.tag, configPath: file.path });
      image = plan.tag;
      imageEnv = info.Config?.Env ?? [];
    } else {
      image = parsed.image as string;
      imageEnv =
        (await ensureLocalImage(await this.options.engine.client(), image, progress)).Config?.Env ?? [];
    }
    const containerEnvironment = parseEnvList(imageEnv);
    Object.assign(containerEnvironment, parsed.containerEnv);
    return {
      image,
      source: parsed.build ? 'devcontainer-build' : 'devcontainer-image',
      configPath: file.path,
      workspaceFolder: parsed.workspaceFolder,
      containerEnv: parsed.containerEnv,
      remoteEnv: resolveRemoteEnv(parsed.remoteEnv, containerEnvironment),
      user: parsed.user,
      extraHostConfig: parsed.extraHostConfig,
      buildInputs: plan ? plan.inputs : null,
    };
  }
}
