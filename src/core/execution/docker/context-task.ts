/**
 * The build-context work that runs on a worker thread: the confined walk of a devcontainer build
 * context, its fingerprint, and the context tar streamed in bounded chunks. The "may the agent read
 * this path" decision stays on the main thread: each entry is asked for through a shared control
 * block, and the thread waits for the answer. Private to the Docker runtime.
 */
import { createHash } from 'node:crypto';
import { closeSync, readlinkSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { WorkspaceError } from '../../../protocol/errors';
import { fdPath, openFileAt, walkConfined, type ConfinedRootHandle } from '../../resources';
import type { BuildSpec } from './devcontainer';
import { tarDirectory, tarEnd, tarFileHeader, tarPadding, tarSymlink } from './tar';

/** Slots of the control block shared by the main thread and the worker running a context job. */
export const CONTROL = {
  /** The main thread's answer to the last question: 0 pending, 1 may read, 2 may not, 3 stop. */
  answer: 0,
  /** Bytes of tar posted by the worker and not yet handed on by the main thread. */
  inFlight: 1,
  /** Set to 1 by the main thread when the job is abandoned (the engine stopped reading). */
  abort: 2,
} as const;

/** Length of the control block (Int32 slots). */
export const CONTROL_SLOTS = 3;

/** Answers in {@link CONTROL.answer}. */
export const ANSWER = { pending: 0, allow: 1, deny: 2, stop: 3 } as const;

/** Most tar bytes in flight between the worker and the engine stream (the rest waits on disk). */
export const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;

/** Size of the pieces file content is read and posted in. */
export const CHUNK_BYTES = 1024 * 1024;

/** Most bytes of file content a build context may ship. */
export const MAX_CONTEXT_BYTES = 1024 * 1024 * 1024;

/** A context job, as posted to the worker (structured-clone safe). */
export interface ContextJob {
  kind: 'plan' | 'tar';
  /** The workspace's held root descriptor and protected identities (descriptors are process-wide). */
  confined: ConfinedRootHandle;
  build: BuildSpec;
  /** Whether RUN steps get the network (part of the fingerprint). */
  network: boolean;
  /** Shared {@link CONTROL} block (Int32 slots). */
  control: SharedArrayBuffer;
}

/** What the planning walk found. */
export interface PlanOutcome {
  tag: string;
  inputs: string[];
  dockerfile: string;
}

/** Messages a context worker posts. */
export type ContextMessage =
  | { type: 'ask'; path: string }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'done'; plan?: PlanOutcome }
  | { type: 'failed'; code: string; message: string; details?: Record<string, unknown> };

/** The thread's side of a job: asking the main thread, and posting tar bytes to it. */
export interface JobChannel {
  /** Whether the agent may read a workspace-relative path (blocks until the main thread answers). */
  mayRead: (path: string) => boolean;
  /**
   * Posts tar bytes, waiting while {@link MAX_IN_FLIGHT_BYTES} are already in flight. The bytes'
   * memory may be transferred: do not use them afterwards.
   */
  emit: (bytes: Buffer) => void;
}

/** Thrown inside the worker when the main thread abandons the job. */
export class JobAbandoned extends Error {
  constructor() {
    super('the build context job was abandoned');
  }
}

/** The context-relative path of the Dockerfile, or INVALID_ARGUMENT when it is outside the context. */
export function dockerfileInContext(build: BuildSpec): string {
  const dockerfile =
    build.context === '.' ? build.dockerfile : posix.relative(build.context, build.dockerfile);
  if (dockerfile.startsWith('../') || dockerfile === '..' || dockerfile === '') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `The Dockerfile ${build.dockerfile} must be inside the build context ${build.context}.`,
    );
  }
  return dockerfile;
}

/** One entry met while walking a build context. */
interface ContextVisit {
  /** Context-relative path. */
  path: string;
  kind: 'file' | 'directory' | 'link';
  size: number;
  mode: number;
  mtimeMs: number;
  /** Opens the file through the held parent directory (files only, during the walk). */
  open: () => { fd: number; size: number };
  /** The link's target text (links only, during the walk). */
  target: () => string;
}

/** A dockerode or file-system error's message. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Walks the build context through the confined layer: never outside the workspace, never into the
 * server's protected entries, never through a link, and skipping what `mayRead` refuses.
 */
function walkContext(
  root: ConfinedRootHandle,
  build: BuildSpec,
  mayRead: (path: string) => boolean,
  visit: (entry: ContextVisit) => void,
): void {
  const inContext = (rel: string) => (build.context === '.' ? rel : rel.slice(build.context.length + 1));
  try {
    walkConfined(root, build.context, {
      maxDepth: Number.MAX_SAFE_INTEGER,
      onEntry: (entry) => {
        if (!mayRead(entry.rel)) return 'skip';
        if (entry.type === 'other') return undefined;
        const kind = entry.type === 'symlink' ? 'link' : entry.type;
        visit({
          path: inContext(entry.rel),
          kind,
          size: entry.size,
          mode: entry.stats.mode & 0o7777,
          mtimeMs: entry.stats.mtimeMs,
          open: () => {
            const { fd, stats } = openFileAt(root, entry.dirFd, entry.name, entry.rel);
            return { fd, size: stats.size };
          },
          target: () => readlinkSync(fdPath(entry.dirFd, entry.name)),
        });
        return undefined;
      },
    });
  } catch (error) {
    if (error instanceof WorkspaceError || error instanceof JobAbandoned) throw error;
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `Cannot read the build context ${build.context}: ${messageOf(error)}`,
    );
  }
}

/** Fills `buffer` from an open file at `position`; returns the bytes read (fewer at its end). */
function readAt(fd: number, buffer: Buffer, position: number): number {
  let offset = 0;
  while (offset < buffer.length) {
    const read = readSync(fd, buffer, offset, buffer.length - offset, position + offset);
    if (read === 0) break;
    offset += read;
  }
  return offset;
}

/** Reads a whole regular file (its size when opened). */
function readWhole(open: () => { fd: number; size: number }): Buffer {
  const { fd, size } = open();
  try {
    const buffer = Buffer.alloc(size);
    return buffer.subarray(0, readAt(fd, buffer, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Lists the build context as the agent may read it and computes the cache tag (the Dockerfile,
 * every shipped entry's name, size, time and mode, the args, the target and the network).
 */
export function planContext(job: ContextJob, channel: JobChannel): PlanOutcome {
  const { build, network } = job;
  const dockerfile = dockerfileInContext(build);
  const hash = createHash('sha256');
  hash.update(dockerfile).update('\0');
  const inputs: string[] = [];
  let dockerfileKind: ContextVisit['kind'] | null = null;
  let bytes = 0;
  walkContext(job.confined, build, channel.mayRead, (entry) => {
    if (entry.path === dockerfile) {
      dockerfileKind = entry.kind;
      if (entry.kind === 'file') hash.update(readWhole(entry.open)).update('\0');
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

/**
 * Streams the context tar from a second confined walk (same filter): only readable files ship. A
 * file's size is fixed when it is opened: content that grows later is cut there, content that
 * shrinks is padded with zeros, so the archive stays well-formed.
 */
export function streamContext(job: ContextJob, channel: JobChannel): void {
  let shipped = 0;
  walkContext(job.confined, job.build, channel.mayRead, (entry) => {
    if (entry.kind === 'directory') {
      channel.emit(tarDirectory(entry.path, entry.mode, entry.mtimeMs));
      return;
    }
    if (entry.kind === 'link') {
      channel.emit(tarSymlink(entry.path, entry.target(), entry.mtimeMs));
      return;
    }
    const { fd, size } = entry.open();
    try {
      shipped += size;
      if (shipped > MAX_CONTEXT_BYTES) {
        throw new WorkspaceError(
          'INVALID_ARGUMENT',
          `The build context ${job.build.context} grew past ${MAX_CONTEXT_BYTES} bytes while it was packed; ` +
            'point "build.context" at a smaller folder.',
          { context: job.build.context },
        );
      }
      channel.emit(tarFileHeader(entry.path, size, entry.mode, entry.mtimeMs));
      let position = 0;
      while (position < size) {
        // Zero-filled: past the end of a file that shrank, the rest of its declared size ships as zeros.
        const length = Math.min(CHUNK_BYTES, size - position);
        const piece = Buffer.alloc(length);
        readAt(fd, piece, position);
        channel.emit(piece); // may transfer (detach) the piece's memory
        position += length;
      }
      const pad = tarPadding(size);
      if (pad.length > 0) channel.emit(pad);
    } finally {
      closeSync(fd);
    }
  });
  channel.emit(tarEnd());
}
