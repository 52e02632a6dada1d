import { platform, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { WorkspaceError } from '../../../protocol/errors';
import {
  ANSWER,
  CONTROL,
  JobAbandoned,
  MAX_IN_FLIGHT_BYTES,
  planContext,
  streamContext,
  type ContextJob,
  type ContextMessage,
  type JobChannel,
} from './context-task';

/**
 * Entry of a build-context worker thread: runs one context job (plan or tar) at a time. It asks the
 * main thread whether the agent may read each entry and waits for the answer on the shared control
 * block; tar bytes are posted in pieces, never more than MAX_IN_FLIGHT_BYTES ahead of the engine.
 * On Linux the thread lowers its own scheduling priority, so the event loop wins the CPU.
 */
if (platform() === 'linux') {
  try {
    // On Linux, priority 0 (the calling "process") is the calling thread.
    setPriority(0, 10);
  } catch {
    // Not permitted here: the job simply runs at the server's priority.
  }
}

function post(message: ContextMessage, transfer?: ArrayBuffer[]): void {
  parentPort?.postMessage(message, transfer);
}

function channelFor(control: Int32Array): JobChannel {
  const abandoned = () => Atomics.load(control, CONTROL.abort) !== 0;
  return {
    mayRead(path) {
      if (abandoned()) throw new JobAbandoned();
      Atomics.store(control, CONTROL.answer, ANSWER.pending);
      post({ type: 'ask', path });
      Atomics.wait(control, CONTROL.answer, ANSWER.pending);
      const answer = Atomics.load(control, CONTROL.answer);
      if (answer === ANSWER.stop) throw new JobAbandoned();
      return answer === ANSWER.allow;
    },
    emit(bytes) {
      for (;;) {
        if (abandoned()) throw new JobAbandoned();
        const inFlight = Atomics.load(control, CONTROL.inFlight);
        if (inFlight === 0 || inFlight + bytes.length <= MAX_IN_FLIGHT_BYTES) break;
        Atomics.wait(control, CONTROL.inFlight, inFlight);
      }
      Atomics.add(control, CONTROL.inFlight, bytes.length);
      // Transferred, not copied, when the Buffer owns its memory (a small one may share Node's pool).
      const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const data = owned ? new Uint8Array(bytes.buffer, 0, bytes.byteLength) : new Uint8Array(bytes);
      post({ type: 'chunk', data }, [data.buffer as ArrayBuffer]);
    },
  };
}

parentPort?.on('message', (job: ContextJob) => {
  const channel = channelFor(new Int32Array(job.control));
  try {
    if (job.kind === 'plan') post({ type: 'done', plan: planContext(job, channel) });
    else {
      streamContext(job, channel);
      post({ type: 'done' });
    }
  } catch (err) {
    if (err instanceof WorkspaceError) {
      post({
        type: 'failed',
        code: err.code,
        message: err.message,
        ...(err.details ? { details: err.details } : {}),
      });
    } else if (err instanceof JobAbandoned) {
      post({ type: 'failed', code: 'INTERNAL', message: err.message });
    } else {
      post({ type: 'failed', code: 'INTERNAL', message: (err as Error)?.message ?? String(err) });
    }
  }
});
