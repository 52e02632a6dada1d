/**
 * Making images available locally: inspect, pull (only when a registry answers) and cached
 * builds of devcontainer Dockerfiles through the Engine API. Private to the Docker runtime.
 */
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import { contextStream, planOffThread, type BuildSource } from './context-client';
import type { BuildSpec } from './devcontainer';
import type { ProgressSink } from './types';

export type { BuildSource } from './context-client';

/** One JSON message of a pull or build stream. */
interface StreamEvent {
  stream?: string;
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/** A build context, listed (as the requesting agent may read it) and fingerprinted. */
export interface BuildPlan {
  /** `mcpw-build-<16 hex>:latest`. */
  tag: string;
  /** Workspace-relative paths of what ships: the Dockerfile and every file and link of the context. */
  inputs: string[];
  /** Context-relative path of the Dockerfile. */
  dockerfile: string;
}

/** Label put on images built by the runtime (value: the build fingerprint). */
export const BUILD_LABEL = 'dev.mcp-workspace.build';

/** The status code of a dockerode error, if any. */
export function statusCode(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** A dockerode error's message without the HTTP preamble. */
export function reason(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}

/** Inspects `name`; null when the engine does not have it. */
export async function inspectImage(docker: Docker, name: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await docker.getImage(name).inspect();
  } catch (error) {
    if (statusCode(error) === 404) return null;
    throw error;
  }
}

/**
 * Returns the local image `name`, pulling it (with progress) when missing.
 * @throws WorkspaceError SANDBOX_UNAVAILABLE naming the image when it cannot be pulled.
 */
export async function ensureLocalImage(
  docker: Docker,
  name: string,
  progress: ProgressSink,
): Promise<Docker.ImageInspectInfo> {
  const local = await inspectImage(docker, name);
  if (local) return local;
  progress({ phase: 'pull', message: `Pulling ${name}` });
  try {
    const stream = await docker.pull(name);
    await follow(docker, stream, (event) => {
      const detail = event.progressDetail;
      progress({
        phase: 'pull',
        message: [event.id, event.status].filter(Boolean).join(': '),
        ...(detail?.total ? { current: detail.current ?? 0, total: detail.total } : {}),
      });
    });
  } catch (error) {
    throw imageUnavailable(name, reason(error));
  }
  const pulled = await inspectImage(docker, name);
  if (!pulled) throw imageUnavailable(name, 'the pull finished without the image');
  return pulled;
}

/**
 * Lists the build context as the agent may read it and computes the cache tag of `build` (the tag
 * covers the Dockerfile, every shipped entry's name, size, time and mode, the args, the target and
 * whether RUN steps get the network). The walk runs on a worker thread; `source.mayRead` is asked
 * on this thread for each entry.
 * @throws WorkspaceError INVALID_ARGUMENT when the Dockerfile is not a regular file of the context
 * that the agent may read or the context is too large; PATH_OUTSIDE_WORKSPACE when it leads out.
 */
export async function planBuild(build: BuildSpec, source: BuildSource, network: boolean): Promise<BuildPlan> {
  return planOffThread(build, source, network);
}

/**
 * Builds `build` as `plan.tag` unless that tag exists (streams progress as 'build' events).
 * @returns the image and whether a build ran.
 * @throws WorkspaceError SANDBOX_UNAVAILABLE when the build fails.
 */
export async function buildImage(
  docker: Docker,
  build: BuildSpec,
  plan: BuildPlan,
  options: { source: BuildSource; network: boolean; progress: ProgressSink },
): Promise<{ info: Docker.ImageInspectInfo; built: boolean }> {
  const { progress } = options;
  const cached = await inspectImage(docker, plan.tag);
  if (cached) return { info: cached, built: false };
  progress({ phase: 'build', message: `Building ${plan.tag} from ${build.dockerfile}` });
  const buildOptions: Record<string, unknown> = {
    t: plan.tag,
    dockerfile: plan.dockerfile,
    rm: true,
    forcerm: true,
    labels: { [BUILD_LABEL]: plan.tag },
    // RUN steps get no network unless the policy allows this agent the network.
    networkmode: options.network ? 'default' : 'none',
  };
  if (Object.keys(build.args).length > 0) buildOptions.buildargs = build.args;
  if (build.target) buildOptions.target = build.target;
  let lastError: string | null = null;
  // The context tar is packed on a worker thread and streamed (only what the agent may read ships).
  const tar = contextStream(build, options.source, options.network);
  let packingError: string | null = null;
  tar.on('error', (error) => {
    packingError ??= reason(error);
  });
  try {
    const stream = await docker.buildImage(tar, buildOptions);
    await follow(docker, stream, (event) => {
      const text = (event.stream ?? event.status ?? '').trim();
      if (!text) return;
      const step = /^Step (\d+)\/(\d+) :/.exec(text);
      progress({
        phase: 'build',
        message: text,
        ...(step ? { current: Number(step[1]), total: Number(step[2]) } : {}),
      });
    });
  } catch (error) {
    lastError = packingError ?? reason(error);
  } finally {
    // The engine stopped reading (done or failed): a packing still under way is abandoned.
    tar.destroy();
  }
  const info = await inspectImage(docker, plan.tag);
  if (lastError !== null || !info) {
    throw new WorkspaceError(
      'SANDBOX_UNAVAILABLE',
      `Building the dev container image from ${build.dockerfile} failed: ${lastError ?? 'no image was produced'}. ` +
        'Fix the Dockerfile (a FROM image must exist locally or be pullable).',
      { image: plan.tag, dockerfile: build.dockerfile },
    );
  }
  return { info, built: true };
}

function imageUnavailable(name: string, why: string): WorkspaceError {
  return new WorkspaceError(
    'SANDBOX_UNAVAILABLE',
    `The image ${name} is not on this machine and could not be pulled (${why}). Build or load it locally ` +
      `(e.g. \`docker build -t ${name} .\` or \`docker load -i image.tar\`), or point devcontainer.json at a local ` +
      'image or a "build.dockerfile".',
    { image: name },
  );
}

/** Follows a pull/build stream to its end; rejects on an `error` message in it. */
function follow(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (event: StreamEvent) => void,
): Promise<void> {
  return new Promise((resolvePromise, rejectPromise) => {
    let failure: string | null = null;
    docker.modem.followProgress(
      stream,
      (error: Error | null) => {
        if (error) rejectPromise(error);
        else if (failure !== null) rejectPromise(new Error(failure));
        else resolvePromise();
      },
      (event: StreamEvent) => {
        if (event.error || event.errorDetail)
          failure ??= event.error ?? event.errorDetail?.message ?? 'unknown error';
        else onEvent(event);
      },
    );
  });
}
