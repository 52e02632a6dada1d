/**
 * Client for mcpw-runner, the small supervisor that runs as each session container's main process
 * and spawns commands on request over its stdin/stdout (see mcpw-runner.c for the wire protocol).
 * A warm command costs one round trip on an already attached stream instead of a `docker exec`.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WorkspaceError } from '../../../protocol/errors';
import { encodeFrame, encodeHeader, FrameDecoder, FrameType, MAX_PAYLOAD } from './frames';

/** What to run in the container. */
export interface RunnerSpawnSpec {
  /** Program and arguments; `argv[0]` is looked up in the `PATH` of `env` (or a default PATH). */
  argv: string[];
  /** Working directory inside the container. */
  cwd: string;
  /** The complete environment of the command; nothing else is inherited. */
  env: Record<string, string>;
  /** Total stdout+stderr bytes to forward; the rest is drained and discarded. 0 or absent = no cap. */
  outputCapBytes?: number;
  /** Whether {@link RunnerProcess.writeStdin} will be used; otherwise stdin is /dev/null. */
  stdin?: boolean;
}

/** How a runner process ended. */
export interface RunnerExit {
  /** Exit status, or null when killed by a signal (or when the runner connection was lost). */
  exitCode: number | null;
  /** Name of the signal that killed the process, e.g. 'SIGKILL'; null when it exited normally. */
  signal: string | null;
  /** Whether output beyond `outputCapBytes` was discarded. */
  truncated: boolean;
  /** Whether the process was SIGKILLed while the container's cgroup OOM-kill counter grew. */
  oomKilled: boolean;
  /** Why the command never ran (exec/chdir failure, exit code 127/126) or 'runner connection lost'. */
  error?: string;
}

/** Signals a caller may send to a running process (delivered to its whole process group). */
export type RunnerSignal = 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP';

/** The error text of processes whose runner went away before they exited. */
const CONNECTION_LOST = 'runner connection lost';

/** Linux signal numbers; the runner always runs on Linux, whatever the host's own numbering. */
const SIGNAL_NUMBERS: Record<RunnerSignal, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
const LINUX_SIGNAL_NAMES = [
  '',
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGKILL',
  'SIGUSR1',
  'SIGSEGV',
  'SIGUSR2',
  'SIGPIPE',
  'SIGALRM',
  'SIGTERM',
  'SIGSTKFLT',
  'SIGCHLD',
  'SIGCONT',
  'SIGSTOP',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGURG',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGVTALRM',
  'SIGPROF',
  'SIGWINCH',
  'SIGIO',
  'SIGPWR',
  'SIGSYS',
];

/** Name of Linux signal `n` ('SIG<n>' for real-time and unknown signals). */
function signalName(n: number): string {
  return LINUX_SIGNAL_NAMES[n] || `SIG${n}`;
}

/** Parses an EXIT payload `"<code> <signal> <truncated> <oomKilled>"`. */
function parseExit(payload: Buffer, error: string | undefined): RunnerExit {
  const [code, sig, truncated, oom] = payload.toString('latin1').split(' ').map(Number);
  const exit: RunnerExit = {
    exitCode: sig > 0 || code < 0 ? null : code,
    signal: sig > 0 ? signalName(sig) : null,
    truncated: truncated === 1,
    oomKilled: oom === 1,
  };
  if (error !== undefined) exit.error = error;
  return exit;
}

function unavailable(): WorkspaceError {
  return new WorkspaceError('SANDBOX_UNAVAILABLE', 'The sandbox runner connection is closed.');
}

/** The connection side a {@link RunnerProcess} writes through. */
interface ProcessChannel {
  send(type: number, id: number, payload?: Buffer): void;
}

/** Client-internal entry points of a {@link RunnerProcess}, keyed by module-private symbols. */
const deliver = Symbol('deliver');
const settle = Symbol('settle');

/**
 * One command running in the runner. Events: `'started'` (pid: number), `'stdout'` (Buffer),
 * `'stderr'` (Buffer). Output events are emitted in the order the runner read the data; the
 * {@link exited} promise settles after the last of them. Created by {@link RunnerClient.spawn}.
 */
export class RunnerProcess extends EventEmitter {
  /** Frame id of this process on its runner connection. */
  readonly id: number;
  /** How the process ended; never rejects (a lost connection resolves with `error` set). */
  readonly exited: Promise<RunnerExit>;

  private readonly channel: ProcessChannel;
  private readonly stdinEnabled: boolean;
  private stdinEnded = false;
  private done = false;
  private error: string | undefined;
  private resolveExit!: (exit: RunnerExit) => void;

  /** @internal Use {@link RunnerClient.spawn}. */
  constructor(id: number, channel: ProcessChannel, stdinEnabled: boolean) {
    super();
    this.id = id;
    this.channel = channel;
    this.stdinEnabled = stdinEnabled;
    this.exited = new Promise((resolveExit) => {
      this.resolveExit = resolveExit;
    });
  }

  /**
   * Sends bytes to the process's stdin (the spec must have had `stdin: true`). Data written after
   * {@link endStdin} or after the process exited is dropped. The buffer must not be modified
   * afterwards: it is queued without copying.
   */
  writeStdin(data: Buffer | string): void {
    if (!this.stdinEnabled) {
      throw new WorkspaceError('INVALID_ARGUMENT', 'The process was started without stdin.');
    }
    if (this.done || this.stdinEnded) return;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let offset = 0; offset < bytes.length; offset += MAX_PAYLOAD) {
      this.channel.send(FrameType.STDIN, this.id, bytes.subarray(offset, offset + MAX_PAYLOAD));
    }
  }

  /** Closes the process's stdin (EOF once everything written before has been delivered). */
  endStdin(): void {
    if (!this.stdinEnabled || this.done || this.stdinEnded) return;
    this.stdinEnded = true;
    this.channel.send(FrameType.STDIN_EOF, this.id);
  }

  /** Sends `sig` to the process's whole process group; a no-op once it has exited. */
  signal(sig: RunnerSignal): void {
    const number = SIGNAL_NUMBERS[sig];
    if (number === undefined)
      throw new WorkspaceError('INVALID_ARGUMENT', `Unsupported signal ${String(sig)}.`);
    if (this.done) return;
    this.channel.send(FrameType.SIGNAL, this.id, Buffer.from(String(number), 'latin1'));
  }

  /** Handles a runner frame addressed to this process. */
  [deliver](type: number, payload: Buffer): void {
    switch (type) {
      case FrameType.STARTED:
        this.emit('started', Number(payload.toString('latin1')));
        break;
      case FrameType.STDOUT:
        this.emit('stdout', payload);
        break;
      case FrameType.STDERR:
        this.emit('stderr', payload);
        break;
      case FrameType.ERROR:
        this.error = payload.toString('utf8');
        break;
      case FrameType.EXIT:
        this[settle](parseExit(payload, this.error));
        break;
    }
  }

  /** Resolves {@link exited} once. */
  [settle](exit: RunnerExit): void {
    if (this.done) return;
    this.done = true;
    this.resolveExit(exit);
  }
}

/**
 * One connection to an mcpw-runner: `input` is the runner's stdin, `output` its stdout (for a
 * container: the demultiplexed stdout of `docker attach`). Any number of processes may run at
 * once (the runner allows 256); each gets its own frame id.
 */
export class RunnerClient {
  private readonly input: NodeJS.WritableStream;
  private readonly processes = new Map<number, RunnerProcess>();
  private readonly pings = new Map<
    number,
    { start: number; resolve: (ms: number) => void; reject: (err: Error) => void }
  >();
  private readonly channel: ProcessChannel = { send: (type, id, payload) => this.send(type, id, payload) };
  private readonly closeListeners = new Set<() => void>();
  private lastId = 0;
  private isClosed = false;
  private lost = false;

  constructor(input: NodeJS.WritableStream, output: NodeJS.ReadableStream) {
    this.input = input;
    const decoder = new FrameDecoder((type, id, payload) => this.onFrame(type, id, payload));
    output.on('data', (chunk: Buffer | string) => {
      if (this.lost) return;
      try {
        decoder.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      } catch {
        this.connectionLost();
      }
    });
    output.on('end', () => this.connectionLost());
    output.on('close', () => this.connectionLost());
    output.on('error', () => this.connectionLost());
    // A write error (EPIPE) means the runner is gone; its output ends too, but do not wait for it.
    input.on('error', () => this.connectionLost());
  }

  /** True once {@link close} was called or the connection was lost; {@link spawn} then throws. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Starts a command. Failures to start (command not found, bad cwd) are not thrown: they resolve
   * {@link RunnerProcess.exited} with exit code 127/126 and `error`.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE when the connection is closed; INVALID_ARGUMENT for
   * an empty argv, NUL bytes, an env name with '=' or a request above 1 MiB.
   */
  spawn(spec: RunnerSpawnSpec): RunnerProcess {
    if (this.isClosed) throw unavailable();
    const payload = encodeSpawn(spec);
    const id = this.nextId();
    const proc = new RunnerProcess(id, this.channel, spec.stdin === true);
    this.processes.set(id, proc);
    this.send(FrameType.SPAWN, id, payload);
    return proc;
  }

  /**
   * Measures one round trip to the runner.
   * @returns the round-trip time in milliseconds.
   * @throws WorkspaceError SANDBOX_UNAVAILABLE (rejection) when the connection is or becomes closed.
   */
  ping(): Promise<number> {
    if (this.isClosed) return Promise.reject(unavailable());
    const id = this.nextId();
    return new Promise<number>((resolvePing, rejectPing) => {
      this.pings.set(id, { start: performance.now(), resolve: resolvePing, reject: rejectPing });
      this.send(FrameType.PING, id);
    });
  }

  /**
   * Calls `listener` once when the client closes (by {@link close} or a lost connection).
   * @returns a function that removes the listener.
   */
  onClose(listener: () => void): () => void {
    if (this.isClosed) {
      queueMicrotask(listener);
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Ends the runner's stdin: the runner SIGKILLs every process group, reports their exits and
   * stops. Running processes resolve with signal 'SIGKILL' (or a lost connection).
   */
  close(): void {
    if (this.isClosed) return;
    this.markClosed();
    this.input.end();
  }

  /** Writes one frame (dropped once closed); a large payload is queued without copying. */
  private send(type: number, id: number, payload?: Buffer): void {
    if (this.isClosed) return;
    if (!payload || payload.length <= 256) {
      this.input.write(encodeFrame(type, id, payload));
    } else {
      this.input.write(encodeHeader(type, id, payload.length));
      this.input.write(payload);
    }
  }

  private nextId(): number {
    do {
      this.lastId = (this.lastId % 0xffffffff) + 1;
    } while (this.processes.has(this.lastId) || this.pings.has(this.lastId));
    return this.lastId;
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    if (type === FrameType.PONG) {
      const ping = this.pings.get(id);
      if (!ping) return;
      this.pings.delete(id);
      ping.resolve(performance.now() - ping.start);
      return;
    }
    const proc = this.processes.get(id);
    if (!proc) return;
    if (type === FrameType.EXIT) this.processes.delete(id);
    proc[deliver](type, payload);
  }

  private markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
  }

  /** The runner's output ended or failed: settle everything still pending. */
  private connectionLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.markClosed();
    for (const proc of this.processes.values()) {
      proc[settle]({
        exitCode: null,
        signal: null,
        truncated: false,
        oomKilled: false,
        error: CONNECTION_LOST,
      });
    }
    this.processes.clear();
    for (const ping of this.pings.values()) ping.reject(unavailable());
    this.pings.clear();
  }
}

/** Validates `spec` and encodes the SPAWN payload (NUL-terminated fields). */
function encodeSpawn(spec: RunnerSpawnSpec): Buffer {
  const invalid = (message: string) => new WorkspaceError('INVALID_ARGUMENT', message);
  const noNul = (value: string, what: string) => {
    if (value.includes('\0')) throw invalid(`${what} must not contain NUL bytes.`);
    return value;
  };
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || !spec.argv[0]) {
    throw invalid('argv must name a program.');
  }
  if (!spec.cwd) throw invalid('cwd must not be empty.');
  const cap = spec.outputCapBytes ?? 0;
  if (!Number.isSafeInteger(cap) || cap < 0) throw invalid('outputCapBytes must be a non-negative integer.');
  const env = Object.entries(spec.env).map(([key, value]) => {
    if (!key || key.includes('=')) throw invalid(`Invalid environment variable name ${JSON.stringify(key)}.`);
    return noNul(`${key}=${value}`, 'Environment variables');
  });
  const fields = [
    noNul(spec.cwd, 'cwd'),
    String(spec.argv.length),
    ...spec.argv.map((arg) => noNul(arg, 'Arguments')),
    String(env.length),
    ...env,
    String(cap),
    spec.stdin ? '1' : '0',
  ];
  const payload = Buffer.from(fields.join('\0') + '\0', 'utf8');
  if (payload.length > MAX_PAYLOAD) throw invalid('The command line and environment exceed 1 MiB.');
  return payload;
}

/**
 * Path of the mcpw-runner binary: `MCPW_RUNNER_PATH`, else `mcpw-runner` next to the running
 * bundle (dist/), else `<repo>/dist/mcpw-runner` when running from source.
 * @throws WorkspaceError SANDBOX_UNAVAILABLE when no binary exists.
 */
export function runnerBinaryPath(): string {
  const fromEnv = process.env.MCPW_RUNNER_PATH;
  if (fromEnv) return fromEnv;
  const candidates = [
    join(__dirname, 'mcpw-runner'),
    resolve(__dirname, '..', '..', '..', '..', 'dist', 'mcpw-runner'),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found)
    throw new WorkspaceError(
      'SANDBOX_UNAVAILABLE',
      'mcpw-runner (the in-container command runner) was not built: install a C compiler (apt-get install -y gcc libc6-dev), then run npm run build.',
    );
  return found;
}
