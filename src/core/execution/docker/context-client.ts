/**
 * The main thread's side of build-context jobs: runs the confined walk, the fingerprint and the
 * context tar on a worker thread (see context-worker.ts), answers its "may the agent read this
 * path" questions with the caller's policy callback, and turns its tar pieces into a Readable with
 * bounded memory. Private to the Docker runtime.
 */
import { existsSync } from 'node:fs';
import * as nodePath from 'node:path';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { WorkspaceError, type ErrorCode } from '../../../protocol/errors';
import type { ConfinedRootHandle } from '../../resources';
import {
  ANSWER,
  CONTROL,
  CONTROL_SLOTS,
  type ContextJob,
  type ContextMessage,
  type PlanOutcome,
} from './context-task';
import type { BuildSpec } from './devcontainer';

/** How long a finished worker thread is kept for the next job before it ends. */
const IDLE_MS = 30_000;

/** How a build context is read: confined to the workspace, filtered by what the agent may read. */
export interface BuildSource {
  root: ConfinedRootHandle;
  /** Whether the requesting agent may read a workspace-relative path; what it may not never ships. */
  mayRead: (path: string) => boolean;
}

/** The worker script: the bundle's sibling file when built, the TypeScript source (through tsx) otherwise. */
function spawnWorker(): Worker {
  const bundled = nodePath.join(__dirname, 'build-context-worker.js');
  if (!__filename.endsWith('.ts') && existsSync(bundled)) {
    return new Worker(bundled, { resourceLimits: { maxOldGenerationSizeMb: 128 } });
  }
  const source = nodePath.join(__dirname, 'context-worker.ts');
  return new Worker(`require('tsx/cjs'); require(${JSON.stringify(source)});`, {
    eval: true,
    resourceLimits: { maxOldGenerationSizeMb: 128 },
  });
}

/** One finished thread kept for the next job (jobs running at once get threads of their own). */
let parked: { worker: Worker; timer: NodeJS.Timeout } | undefined;

function acquire(): Worker {
  const kept = parked;
  parked = undefined;
  if (kept === undefined) return spawnWorker();
  clearTimeout(kept.timer);
  kept.worker.ref();
  return kept.worker;
}

function park(worker: Worker): void {
  if (parked !== undefined) {
    void worker.terminate();
    return;
  }
  worker.unref();
  const timer = setTimeout(() => {
    if (parked?.worker === worker) parked = undefined;
    void worker.terminate();
  }, IDLE_MS);
  timer.unref();
  parked = { worker, timer };
}

/** A running job: its outcome, and a way to abandon it (the worker stops at its next step). */
interface RunningJob {
  done: Promise<PlanOutcome | undefined>;
  abandon: () => void;
}

function runJob(
  kind: ContextJob['kind'],
  build: BuildSpec,
  network: boolean,
  source: BuildSource,
  onChunk: (bytes: Buffer) => void,
  control: Int32Array,
): RunningJob {
  const worker = acquire();
  let settled = false;
  let failure: unknown;
  let abandon = () => {};
  const done = new Promise<PlanOutcome | undefined>((resolve, reject) => {
    const finish = (reuse: boolean) => {
      settled = true;
      worker.off('message', onMessage);
      worker.off('error', onCrash);
      worker.off('exit', onCrash);
      if (reuse) park(worker);
      else void worker.terminate();
    };
    const answer = (value: number) => {
      Atomics.store(control, CONTROL.answer, value);
      Atomics.notify(control, CONTROL.answer);
    };
    abandon = () => {
      if (settled) return;
      failure ??= new WorkspaceError('INTERNAL', 'The build context was abandoned before it was packed.');
      Atomics.store(control, CONTROL.abort, 1);
      Atomics.notify(control, CONTROL.inFlight);
      answer(ANSWER.stop);
    };
    const onMessage = (message: ContextMessage) => {
      if (message.type === 'ask') {
        if (failure !== undefined) return answer(ANSWER.stop);
        try {
          answer(source.mayRead(message.path) ? ANSWER.allow : ANSWER.deny);
        } catch (error) {
          failure = error;
          answer(ANSWER.stop);
        }
      } else if (message.type === 'chunk') {
        onChunk(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
      } else if (message.type === 'done') {
        finish(true);
        if (failure !== undefined) reject(failure);
        else resolve(message.plan);
      } else {
        finish(true);
        reject(failure ?? new WorkspaceError(message.code as ErrorCode, message.message, message.details));
      }
    };
    const onCrash = (error: unknown) => {
      finish(false);
      reject(
        new WorkspaceError(
          'INTERNAL',
          `The build context worker stopped (${error instanceof Error ? error.message : String(error)}); retry the command.`,
        ),
      );
    };
    worker.on('message', onMessage);
    worker.on('error', onCrash);
    worker.on('exit', onCrash);
  });
  const job: ContextJob = {
    kind,
    confined: source.root,
    build,
    network,
    control: control.buffer as SharedArrayBuffer,
  };
  worker.postMessage(job);
  return { done, abandon: () => abandon() };
}

function newControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
}

/**
 * Walks the build context off the event loop and computes its plan (see planContext).
 * @throws WorkspaceError like planContext, or what `source.mayRead` threw.
 */
export async function planOffThread(
  build: BuildSpec,
  source: BuildSource,
  network: boolean,
): Promise<PlanOutcome> {
  const job = runJob('plan', build, network, source, () => undefined, newControl());
  const plan = await job.done;
  if (plan === undefined)
    throw new WorkspaceError('INTERNAL', 'The build context worker answered out of turn; retry.');
  return plan;
}

/**
 * The context tar of `build`, packed off the event loop and streamed: the worker stays at most a
 * few megabytes ahead of whoever reads it. Destroying the stream abandons the packing; a failure
 * of the walk destroys the stream with its WorkspaceError.
 */
export function contextStream(build: BuildSpec, source: BuildSource, network: boolean): Readable {
  const control = newControl();
  const queue: Buffer[] = [];
  let wanting = false;
  let packed = false;
  let ended = false;
  const drain = () => {
    while (wanting && queue.length > 0) {
      const piece = queue.shift()!;
      Atomics.sub(control, CONTROL.inFlight, piece.length);
      Atomics.notify(control, CONTROL.inFlight);
      wanting = stream.push(piece);
    }
    if (wanting && packed && queue.length === 0 && !ended) {
      ended = true;
      stream.push(null);
    }
  };
  const job = runJob(
    'tar',
    build,
    network,
    source,
    (bytes) => {
      queue.push(bytes);
      drain();
    },
    control,
  );
  const stream = new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      wanting = true;
      drain();
    },
    destroy(error, callback) {
      job.abandon();
      queue.length = 0;
      callback(error);
    },
  });
  job.done.then(
    () => {
      packed = true;
      drain();
    },
    (error: unknown) => stream.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return stream;
}
