/**
 * Making images available locally: inspect, pull (only when a registry answers) and cached
 * builds of devcontainer Dockerfiles through the Engine API. Private to the Docker runtime.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import type { BuildSpec } from './devcontainer';
import type { ProgressSink } from './types';

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

/** A build context, listed and fingerprinted. */
export interface BuildPlan {
  /** `mcpw-build-<16 hex>:latest`. */
  tag: string;
  /** Context-relative paths of the files (and symlinks) to send, '/'-separated. */
  files: string[];
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

/** Lists the build context and computes the cache tag of `build`. */
export async function planBuild(build: BuildSpec): Promise<BuildPlan> {
  const dockerfile = relative(build.context, build.dockerfile).split(sep).join('/');
  if (dockerfile.startsWith('../') || dockerfile === '..') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The Dockerfile ${build.dockerfile} must be inside the build context ${build.context}.`,
    );
  }
  let dockerfileText: Buffer;
  try {
    dockerfileText = await readFile(build.dockerfile);
  } catch (error) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Cannot read the Dockerfile ${build.dockerfile}: ${reason(error)}`,
    );
  }
  const hash = createHash('sha256');
  hash.update(dockerfile).update('\0').update(dockerfileText).update('\0');
  let entries: ContextEntry[];
  try {
    entries = await listContext(build.context);
  } catch (error) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Cannot read the build context ${build.context}: ${reason(error)}`,
    );
  }
  for (const entry of entries) hash.update(`${entry.path}\0${entry.size}\0${entry.mtimeMs}\0${entry.kind}\n`);
  const args = Object.entries(build.args).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  hash
    .update(JSON.stringify(args))
    .update('\0')
    .update(build.target ?? '');
  const fingerprint = hash.digest('hex').slice(0, 16);
  return { tag: `mcpw-build-${fingerprint}:latest`, files: entries.map((entry) => entry.path), dockerfile };
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
  progress: ProgressSink,
): Promise<{ info: Docker.ImageInspectInfo; built: boolean }> {
  const cached = await inspectImage(docker, plan.tag);
  if (cached) return { info: cached, built: false };
  progress({ phase: 'build', message: `Building ${plan.tag} from ${build.dockerfile}` });
  const options: Record<string, unknown> = {
    t: plan.tag,
    dockerfile: plan.dockerfile,
    rm: true,
    forcerm: true,
    labels: { [BUILD_LABEL]: plan.tag },
  };
  if (Object.keys(build.args).length > 0) options.buildargs = build.args;
  if (build.target) options.target = build.target;
  let lastError: string | null = null;
  try {
    const stream = await docker.buildImage({ context: build.context, src: plan.files }, options);
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
    lastError = reason(error);
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

interface ContextEntry {
  path: string;
  size: number;
  mtimeMs: number;
  kind: 'file' | 'link';
}

/** Every regular file and symlink under `root` (symlinked directories are not followed), sorted. */
async function listContext(root: string): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, dirent.name);
      if (dirent.isDirectory()) {
        pending.push(full);
      } else if (dirent.isFile() || dirent.isSymbolicLink()) {
        const stat = await lstat(full);
        entries.push({
          path: relative(root, full).split(sep).join('/'),
          size: stat.size,
          mtimeMs: stat.mtimeMs,
          kind: dirent.isFile() ? 'file' : 'link',
        });
      }
    }
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
