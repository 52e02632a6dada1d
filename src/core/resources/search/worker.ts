import { platform, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { SearchTask, TaskResult } from './messages';
import { runSearchTask } from './task';

/**
 * Entry of a search worker thread: runs one {@link SearchTask} at a time and posts its result. On
 * Linux the thread lowers its own scheduling priority, so the server's event loop (HTTP, /health)
 * wins the CPU over searches.
 */
if (platform() === 'linux') {
  try {
    // On Linux, priority 0 (the calling "process") is the calling thread.
    setPriority(0, 10);
  } catch {
    // Not permitted here: searches simply run at the server's priority.
  }
}

parentPort?.on('message', (task: SearchTask) => {
  let result: TaskResult;
  try {
    result = runSearchTask(task);
  } catch (err) {
    result = { id: task.id, ok: false, code: 'INTERNAL', message: (err as Error)?.message ?? String(err) };
  }
  parentPort?.postMessage(result);
});
