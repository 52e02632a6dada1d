/**
 * Making images available locally: inspect, pull (only when a registry answers) and cached
 * builds of devcontainer Dockerfiles through the Engine API. Private to the Docker runtime.
 */
import { createHash } from 'node:crypto';
import { closeSync, readlinkSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { WorkspaceError } from '../../../protocol/errors';
import { fdPath, openFileAt, walkConfined, type ConfinedRootHandle } from '../../resources/confined';
import type { BuildSpec } from './devcontainer';
import { tarDirectory, tarEnd, tarFile, tarSymlink } from './tar';
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

/** A build context, listed (as the requesting agent may read it) and fingerprinted. */
export interface BuildPlan {
  /** `mcpw-build-<16 hex>:latest`. */
  tag: string;
  /** Workspace-relative paths of what ships: the Dockerfile and every file and link of the context. */
  inputs: string[];
  /** Context-relative path of the Dockerfile. */
  dockerfile: string;
}

/** How a build context is read: confined to the workspace, filtered by what the agent may read. */
export interface BuildSource {
  root: ConfinedRootHandle;
  /** Whether the requesting agent may read a workspace-relative path; what it may not never ships. */
  mayRead: (path: string) => boolean;
}

/** Most bytes of file content a build context may ship (it is assembled in memory). */
export const MAX_CONTEXT_BYTES = 1024 * 1024 * 1024;

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

/** One entry met while walking a build context. */
interface ContextVisit {
  /** Context-relative path. */
  path: string;
  kind: 'file' | 'directory' | 'link';
  size: number;
  mode: number;
  mtimeMs: number;
  /** Reads the file's content through the held parent directory (files only, during the walk). */
  read: () => Buffer;
  /** The link's target text (links only, during the walk). */
  target: () => string;
}

/**
 * Walks the build context through the confined layer: never outside the workspace, never into the
 * server's protected entries, never through a link, and skipping what `mayRead` refuses.
 */
function walkContext(build: BuildSpec, source: BuildSource, visit: (entry: ContextVisit) => void): void {
  const inContext = (rel: string) => (build.context === '.' ? rel : rel.slice(build.context.length + 1));
  try {
    walkConfined(source.root, build.context, {
      maxDepth: Number.MAX_SAFE_INTEGER,
      onEntry: (entry) => {
        if (!source.mayRead(entry.rel)) return 'skip';
        if (entry.type === 'other') return undefined;
        const kind = entry.type === 'symlink' ? 'link' : entry.type;
        visit({
          path: inContext(entry.rel),
          kind,
          size: entry.size,
          mode: entry.stats.mode & 0o7777,
          mtimeMs: entry.stats.mtimeMs,
          read: () => readHeldFile(source.root, entry.dirFd, entry.name, entry.rel),
          target: () => readlinkSync(fdPath(entry.dirFd, entry.name)),
        });
        return undefined;
      },
    });
  } catch (error) {
    if (error instanceof WorkspaceError) throw error;
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Cannot read the build context ${build.context}: ${reason(error)}`,
    );
  }
}

/** Reads a whole regular file of a held directory (no link is followed). */
function readHeldFile(root: ConfinedRootHandle, dirFd: number, name: string, rel: string): Buffer {
  const { fd, stats } = openFileAt(root, dirFd, name, rel);
  try {
    const buffer = Buffer.alloc(stats.size);
    let offset = 0;
    while (offset < buffer.length) {
      const read = readSync(fd, buffer, offset, buffer.length - offset, offset);
      if (read === 0) break;
      offset += read;
    }
    return buffer.subarray(0, offset);
  } finally {
    closeSync(fd);
  }
}

/**
 * Lists the build context as the agent may read it and computes the cache tag of `build` (the tag
 * covers the Dockerfile, every shipped entry's name, size, time and mode, the args, the target and
 * whether RUN steps get the network).
 * @throws WorkspaceError INVALID_ARGUMENT when the Dockerfile is not a regular file of the context
 * that the agent may read; PATH_OUTSIDE_WORKSPACE when the context leads out.
 */
export function planBuild(build: BuildSpec, source: BuildSource, network: boolean): BuildPlan {
  const dockerfile =
    build.context === '.' ? build.dockerfile : posix.relative(build.context, build.dockerfile);
  if (dockerfile.startsWith('../') || dockerfile === '..' || dockerfile === '') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The Dockerfile ${build.dockerfile} must be inside the build context ${build.context}.`,
    );
  }
  const hash = createHash('sha256');
  hash.update(dockerfile).update('\0');
  const inputs: string[] = [];
  let dockerfileKind: ContextVisit['kind'] | null = null;
  let bytes = 0;
  walkContext(build, source, (entry) => {
    if (entry.path === dockerfile) {
      dockerfileKind = entry.kind;
      if (entry.kind === 'file') hash.update(entry.read()).update('\0');
    }
    if (entry.kind !== 'directory') inputs.push(posix.join(build.context, entry.path));
    if (entry.kind === 'file') bytes += entry.size;
    hash.update(`${entry.path}\0${entry.size}\0${entry.mtimeMs}\0${entry.kind}\0${entry.mode}\n`);
  });
  if (dockerfileKind !== 'file') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The Dockerfile ${build.dockerfile} is ${dockerfileKind === 'link' ? 'a symbolic link' : 'not a regular file you may read'} ` +
        'in the build context; point "build.dockerfile" at a regular file inside the workspace.',
      { dockerfile: build.dockerfile },
    );
  }
  if (bytes > MAX_CONTEXT_BYTES) {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The build context ${build.context} holds ${bytes} bytes, more than ${MAX_CONTEXT_BYTES}; ` +
        'point "build.context" at a smaller folder.',
      { context: build.context, bytes },
    );
  }
  const args = Object.entries(build.args).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  hash
    .update(JSON.stringify(args))
    .update('\0')
    .update(build.target ?? '')
    .update(network ? '\0network' : '\0offline');
  const fingerprint = hash.digest('hex').slice(0, 16);
  return { tag: `mcpw-build-${fingerprint}:latest`, inputs: inputs.sort(), dockerfile };
}

/** Assembles the context tar from a second confined walk (same filter): only readable files ship. */
function contextTar(build: BuildSpec, source: BuildSource): Buffer {
  const chunks: Buffer[] = [];
  walkContext(build, source, (entry) => {
    if (entry.kind === 'directory') chunks.push(tarDirectory(entry.path, entry.mode, entry.mtimeMs));
    else if (entry.kind === 'link') chunks.push(tarSymlink(entry.path, entry.target(), entry.mtimeMs));
    else chunks.push(tarFile(entry.path, entry.read(), entry.mode, entry.mtimeMs));
  });
  chunks.push(tarEnd());
  return Buffer.concat(chunks);
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
  try {
    const tar = contextTar(build, options.source);
    const stream = await docker.buildImage(Readable.from([tar]), buildOptions);
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
