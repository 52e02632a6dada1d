import { platform, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { WorkspaceError } from '../../../protocol/errors';
import { applyEdits } from '../edits';
import type { EditTask, TaskResult, WorkerTask } from './messages';
import { runSearchTask } from './task';

/**
 * Entry of a worker thread: runs one task (a search shard, or the edits of a large file) at a time
 * and posts its result. On Linux the thread lowers its own scheduling priority, so the server's
 * event loop (HTTP, /health) wins the CPU over this work.
 */
if (platform() === 'linux') {
  try {
    // On Linux, priority 0 (the calling "process") is the calling thread.
    setPriority(0, 10);
  } catch {
    // Not permitted here: searches simply run at the server's priority.
  }
}

/** Applies edits to a large file and diffs them, off the event loop. */
function runEditTask(task: EditTask): TaskResult {
  const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  const { after, applied, diff } = applyEdits(task.rel, bytes.toString('utf8'), task.edits);
  return { kind: 'edit', id: task.id, ok: true, after: Buffer.from(after, 'utf8'), applied, diff };
}

parentPort?.on('message', (task: WorkerTask) => {
  let result: TaskResult;
  try {
    result = task.kind === 'edit' ? runEditTask(task) : runSearchTask(task);
  } catch (err) {
    result =
      err instanceof WorkspaceError
        ? {
            id: task.id,
            ok: false,
            code: err.code,
            message: err.message,
            ...(err.details ? { details: err.details } : {}),
          }
        : { id: task.id, ok: false, code: 'INTERNAL', message: (err as Error)?.message ?? String(err) };
  }
  parentPort?.postMessage(result);
});
