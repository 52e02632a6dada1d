import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as nodePath from 'node:path';
import { Worker } from 'node:worker_threads';
import { WorkspaceError, type ErrorCode } from '../../../protocol/errors';
import type { EditOp } from '../edits';
import type { SearchMatch, SearchTask, TaskResult, TruncationReason, WorkerTask } from './messages';

/** Tuning of a {@link SearchPool}. */
export interface SearchPoolOptions {
  /** Threads a single search is split across (default: the number of CPUs, at most 2). */
  shards?: number;
  /** Worker threads alive at most, all callers together (default: twice the shards). */
  maxWorkers?: number;
  /** Shards of one caller running at once (default: `shards`); the rest of its work waits its turn. */
  maxRunningPerCaller?: number;
  /** Searches of one caller running or waiting (default 8); more are refused with RATE_LIMITED. */
  maxQueuedPerCaller?: number;
  /** How long past its deadline a shard may run before its thread is terminated (default 2 s). */
  killGraceMs?: number;
  /** Idle threads end after this long (default 30 s); the next search starts new ones. */
  idleMs?: number;
}

/** A whole search as the pool runs it: every shard's task minus the fields the pool fills in. */
export type SearchJob = Omit<SearchTask, 'kind' | 'id' | 'shard' | 'shards'>;

/** The outcome of edits run by {@link SearchPool.edit}. */
export interface EditOutcome {
  newBytes: Buffer;
  applied: number;
  diff: string;
}

/** Subtrees whose walk the shards of a search claim dynamically; further ones are split by hash. */
const SUBTREE_CLAIMS = 65_536;

/** How long the edits of one file may take on a worker before its thread is ended. */
const EDIT_TIMEOUT_MS = 30_000;

/** The merged outcome of a search's shards. */
export interface PoolResult {
  matches: SearchMatch[];
  filesScanned: number;
  truncated: boolean;
  reason?: TruncationReason;
}

interface PendingTask {
  task: WorkerTask;
  caller: string;
  settle: (result: TaskResult) => void;
}

interface PoolWorker {
  thread: Worker;
  busy?: { pending: PendingTask; killTimer: NodeJS.Timeout };
  idleTimer?: NodeJS.Timeout;
}

/** Compares workspace-relative paths in the order the walk visits them (segment by segment). */
export function compareWalkOrder(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    if (as[i] !== bs[i]) return as[i] < bs[i] ? -1 : 1;
  }
  return as.length - bs.length;
}

/**
 * Heap limits of a worker: a bounded old generation, and a young generation large enough that a walk
 * (short-lived entries, paths and stats by the thousand) is not collected every few hundred files.
 * Idle workers end, and their heaps with them.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 64 };

/** The worker script: the bundle's sibling file when built, the TypeScript source (through tsx) otherwise. */
function spawnWorker(): Worker {
  const bundled = nodePath.join(__dirname, 'search-worker.js');
  if (!__filename.endsWith('.ts') && existsSync(bundled)) {
    return new Worker(bundled, { resourceLimits: WORKER_LIMITS });
  }
  const source = nodePath.join(__dirname, 'worker.ts');
  return new Worker(`require('tsx/cjs'); require(${JSON.stringify(source)});`, {
    eval: true,
    resourceLimits: WORKER_LIMITS,
  });
}

/**
 * A bounded pool of worker threads that runs searches off the event loop. Each search is split into
 * shards that run in parallel; each shard stops at the search's deadline with what it found, and a
 * thread that overruns the deadline is terminated. Callers (agent tokens) are served fairly: a caller
 * runs at most `maxRunningPerCaller` shards at once, free threads go to the caller with the fewest
 * running, and the threads beyond the CPU count let a newcomer start while another caller's long
 * search runs (the OS shares the CPUs between them, below the event loop's priority).
 */
export class SearchPool {
  private readonly shards: number;
  private readonly maxWorkers: number;
  private readonly maxRunningPerCaller: number;
  private readonly maxQueuedPerCaller: number;
  private readonly killGraceMs: number;
  private readonly idleMs: number;
  private readonly workers = new Set<PoolWorker>();
  private readonly queues = new Map<string, PendingTask[]>();
  private readonly running = new Map<string, number>();
  private readonly searches = new Map<string, number>();
  private nextId = 1;
  private closed = false;

  constructor(options: SearchPoolOptions = {}) {
    this.shards = Math.max(1, options.shards ?? Math.min(2, availableParallelism()));
    this.maxWorkers = Math.max(this.shards, options.maxWorkers ?? this.shards * 2);
    this.maxRunningPerCaller = Math.max(1, options.maxRunningPerCaller ?? this.shards);
    this.maxQueuedPerCaller = Math.max(1, options.maxQueuedPerCaller ?? 8);
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /**
   * Runs `job` for `caller` (the fairness key: one per token) across the shards and merges the
   * results in walk order, cut to `job.cap`. Throws RATE_LIMITED when the caller already has too
   * many searches, and the worker's WorkspaceError (e.g. INVALID_PATTERN) when the job is invalid.
   */
  async run(caller: string, job: SearchJob): Promise<PoolResult> {
    return this.admit(caller, async () => {
      const shards = job.startIsFile ? 1 : this.shards;
      const claims = shards > 1 ? new SharedArrayBuffer(SUBTREE_CLAIMS * 4) : undefined;
      const results = await Promise.all(
        Array.from({ length: shards }, (_, shard) =>
          this.submit(caller, {
            ...job,
            kind: 'search',
            id: this.nextId++,
            shard,
            shards,
            ...(claims !== undefined ? { claims } : {}),
          }),
        ),
      );
      return this.merge(results, job.cap);
    });
  }

  /**
   * Applies `edits` to `bytes` (UTF-8) and diffs the result on a worker thread, for `caller`. Throws
   * the edit's WorkspaceError (EDIT_NO_MATCH, EDIT_AMBIGUOUS) and RATE_LIMITED like {@link run}.
   */
  async edit(caller: string, rel: string, bytes: Buffer, edits: EditOp[]): Promise<EditOutcome> {
    return this.admit(caller, async () => {
      const result = await this.submit(caller, {
        kind: 'edit',
        id: this.nextId++,
        deadline: Date.now() + EDIT_TIMEOUT_MS,
        rel,
        bytes,
        edits,
      });
      if (!result.ok) throw new WorkspaceError(result.code as ErrorCode, result.message, result.details);
      if (result.kind !== 'edit')
        throw new WorkspaceError('INTERNAL', 'The edit worker answered out of turn.');
      const after = result.after;
      return {
        newBytes: Buffer.from(after.buffer, after.byteOffset, after.byteLength),
        applied: result.applied,
        diff: result.diff,
      };
    });
  }

  /** Counts a caller's work in progress, refusing RATE_LIMITED past the per-caller limit. */
  private async admit<T>(caller: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new WorkspaceError('INTERNAL', 'The server is shutting down; retry later.');
    const active = this.searches.get(caller) ?? 0;
    if (active >= this.maxQueuedPerCaller) {
      throw new WorkspaceError(
        'RATE_LIMITED',
        `Too many searches or large edits in progress for this token (${active}); wait for one to finish and retry.`,
        { retryAfterMs: 1000 },
      );
    }
    this.searches.set(caller, active + 1);
    try {
      return await fn();
    } finally {
      const left = (this.searches.get(caller) ?? 1) - 1;
      if (left === 0) this.searches.delete(caller);
      else this.searches.set(caller, left);
    }
  }

  /** Ends every worker thread; work still queued or running fails once its thread has stopped. */
  async close(): Promise<void> {
    this.closed = true;
    for (const queue of this.queues.values()) {
      for (const pending of queue) {
        pending.settle(this.failure(pending.task.id, 'INTERNAL', 'The server is shutting down.'));
      }
    }
    this.queues.clear();
    await Promise.all(
      [...this.workers].map(async (worker) => {
        const busy = worker.busy;
        this.release(worker);
        await this.retire(worker);
        busy?.pending.settle(this.failure(busy.pending.task.id, 'INTERNAL', 'The server is shutting down.'));
      }),
    );
  }

  private merge(results: TaskResult[], cap: number): PoolResult {
    const failed = results.find((r) => !r.ok);
    if (failed !== undefined && !failed.ok) {
      throw new WorkspaceError(failed.code as ErrorCode, failed.message, failed.details);
    }
    const matches: SearchMatch[] = [];
    let filesScanned = 0;
    let reason: TruncationReason | undefined;
    for (const result of results) {
      if (!result.ok || result.kind !== 'search') continue;
      matches.push(...result.matches);
      filesScanned += result.filesScanned;
      if (result.reason === 'deadline' || (result.reason !== undefined && reason === undefined)) {
        reason = result.reason;
      }
    }
    matches.sort((a, b) => compareWalkOrder(a.path, b.path) || a.line - b.line);
    if (matches.length > cap) {
      matches.length = cap;
      reason ??= 'max_results';
    }
    return {
      matches,
      filesScanned,
      truncated: reason !== undefined,
      ...(reason !== undefined ? { reason } : {}),
    };
  }

  private submit(caller: string, task: WorkerTask): Promise<TaskResult> {
    return new Promise((resolve) => {
      const queue = this.queues.get(caller) ?? [];
      queue.push({ task, caller, settle: resolve });
      this.queues.set(caller, queue);
      this.dispatch();
    });
  }

  /** Hands queued tasks to free threads: the caller with the fewest running shards first. */
  private dispatch(): void {
    for (;;) {
      const caller = this.nextCaller();
      if (caller === undefined) return;
      const worker = this.freeWorker();
      if (worker === undefined) return;
      const queue = this.queues.get(caller)!;
      const pending = queue.shift()!;
      if (queue.length === 0) this.queues.delete(caller);
      if (Date.now() > pending.task.deadline) {
        // Its time ran out while it waited.
        pending.settle(this.overdue(pending.task));
        continue;
      }
      this.start(worker, pending);
    }
  }

  private nextCaller(): string | undefined {
    let best: string | undefined;
    let fewest = Infinity;
    for (const caller of this.queues.keys()) {
      const running = this.running.get(caller) ?? 0;
      if (running < this.maxRunningPerCaller && running < fewest) {
        best = caller;
        fewest = running;
      }
    }
    if (best !== undefined) {
      // Re-queue the chosen caller at the back: ties rotate.
      const queue = this.queues.get(best)!;
      this.queues.delete(best);
      this.queues.set(best, queue);
    }
    return best;
  }

  private freeWorker(): PoolWorker | undefined {
    for (const worker of this.workers) if (worker.busy === undefined) return worker;
    if (this.workers.size >= this.maxWorkers) return undefined;
    const worker: PoolWorker = { thread: spawnWorker() };
    worker.thread.on('message', (result: TaskResult) => this.finish(worker, result));
    worker.thread.on('error', (err) => this.crashed(worker, err));
    worker.thread.on('exit', () => this.crashed(worker, new Error('search worker exited')));
    this.workers.add(worker);
    return worker;
  }

  private start(worker: PoolWorker, pending: PendingTask): void {
    clearTimeout(worker.idleTimer);
    worker.thread.ref();
    this.running.set(pending.caller, (this.running.get(pending.caller) ?? 0) + 1);
    const overdue = Math.max(0, pending.task.deadline - Date.now()) + this.killGraceMs;
    const killTimer = setTimeout(() => {
      // Stuck past its deadline (one long engine call): end the thread, then answer without it (the
      // thread may use the caller's descriptors until it has stopped).
      const busy = worker.busy;
      this.release(worker);
      void this.retire(worker).then(() => {
        busy?.pending.settle(this.overdue(pending.task));
        if (!this.closed) this.dispatch();
      });
    }, overdue);
    worker.busy = { pending, killTimer };
    worker.thread.postMessage(pending.task);
  }

  private finish(worker: PoolWorker, result: TaskResult): void {
    const busy = worker.busy;
    if (busy === undefined || busy.pending.task.id !== result.id) return;
    this.release(worker);
    busy.pending.settle(result);
    this.park(worker);
    this.dispatch();
  }

  private crashed(worker: PoolWorker, err: Error): void {
    if (!this.workers.has(worker)) return;
    const busy = worker.busy;
    this.release(worker);
    this.workers.delete(worker);
    busy?.pending.settle(
      this.failure(busy.pending.task.id, 'INTERNAL', `The search failed: ${err.message}.`),
    );
    if (!this.closed) this.dispatch();
  }

  /** Marks a worker free and the caller's shard finished. */
  private release(worker: PoolWorker): void {
    const busy = worker.busy;
    if (busy === undefined) return;
    clearTimeout(busy.killTimer);
    worker.busy = undefined;
    const left = (this.running.get(busy.pending.caller) ?? 1) - 1;
    if (left === 0) this.running.delete(busy.pending.caller);
    else this.running.set(busy.pending.caller, left);
  }

  /** An idle worker does not keep the process alive, and ends after `idleMs` without work. */
  private park(worker: PoolWorker): void {
    worker.thread.unref();
    worker.idleTimer = setTimeout(() => {
      if (worker.busy === undefined) void this.retire(worker);
    }, this.idleMs);
    worker.idleTimer.unref();
  }

  private async retire(worker: PoolWorker): Promise<void> {
    clearTimeout(worker.idleTimer);
    this.workers.delete(worker);
    await worker.thread.terminate().catch(() => undefined);
  }

  /** The answer for a task whose deadline passed: an empty truncated shard, or a failed edit. */
  private overdue(task: WorkerTask): TaskResult {
    if (task.kind === 'edit') {
      return this.failure(
        task.id,
        'RATE_LIMITED',
        'The server is busy and the edit did not run in time; retry.',
      );
    }
    return {
      kind: 'search',
      id: task.id,
      ok: true,
      matches: [],
      filesScanned: 0,
      truncated: true,
      reason: 'deadline',
    };
  }

  private failure(id: number, code: ErrorCode, message: string): TaskResult {
    return { id, ok: false, code, message };
  }
}
