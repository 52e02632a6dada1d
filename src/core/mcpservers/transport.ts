/**
 * The MCP SDK client's transport to a stdio server running in a session's sandbox: JSON-RPC lines
 * written to the process's stdin and read from its stdout through the SDK's own framing
 * (ReadBuffer, serializeMessage), with a cap on one message's size and on how many unsolicited
 * messages (requests and notifications) the server may send per window. A server over either
 * limit is stopped. Private to the mcpservers component.
 */
import {
  ReadBuffer,
  serializeMessage,
  type JSONRPCMessage,
  type Transport,
} from '@modelcontextprotocol/client';

/** A stdio process in the sandbox, as the transport drives it. */
export interface StdioProcess {
  /** Writes to the process's stdin. */
  write(data: string): void;
  /** Receives the process's output as it comes; returns the unsubscribe. */
  onOutput(listener: (stream: 'stdout' | 'stderr', data: string) => void): () => void;
  /** Settles when the process has ended (never rejects). */
  readonly exited: Promise<{ exitCode: number | null; signal: string | null; error?: string | undefined }>;
  /** Stops the process (TERM, then KILL after a grace period); returns at once. */
  stop(): void;
}

/** Limits on what a sandboxed server may send. */
export interface TransportLimits {
  /** Largest JSON-RPC message (one line of stdout), in bytes. */
  maxMessageBytes: number;
  /** Most requests and notifications the server may send in one window (responses do not count). */
  maxUnsolicited: number;
  /** The window of {@link maxUnsolicited}, in ms. */
  unsolicitedWindowMs: number;
}

/** Bytes of the server's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 2048;

/** An MCP transport over a sandboxed process's stdin and stdout. */
export class SandboxStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  private readonly buffer: ReadBuffer;
  private stopOutput: (() => void) | null = null;
  private closed = false;
  private windowStart = 0;
  private unsolicited = 0;
  private stderr = '';
  /** Why the transport stopped the server, when it did. */
  stoppedBecause: string | null = null;
  /** How the process ended, once it has. */
  exit: Awaited<StdioProcess['exited']> | null = null;

  constructor(
    private readonly process: StdioProcess,
    private readonly limits: TransportLimits,
  ) {
    this.buffer = new ReadBuffer({ maxBufferSize: limits.maxMessageBytes });
  }

  /** The end of what the server wrote to stderr (for error messages). */
  get stderrTail(): string {
    return this.stderr;
  }

  start(): Promise<void> {
    this.stopOutput = this.process.onOutput((stream, data) => {
      if (stream === 'stderr') {
        this.stderr = (this.stderr + data).slice(-STDERR_TAIL_BYTES);
        return;
      }
      this.receive(data);
    });
    void this.process.exited.then((exit) => {
      this.exit = exit;
      this.finish();
    });
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the sandboxed MCP server has stopped'));
    this.process.write(serializeMessage(message));
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (!this.closed) this.process.stop();
    this.finish();
    return Promise.resolve();
  }

  private receive(data: string): void {
    if (this.closed) return;
    try {
      this.buffer.append(Buffer.from(data, 'utf8'));
    } catch {
      this.abort(`sent a message larger than ${this.limits.maxMessageBytes} bytes`);
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.buffer.readMessage();
      } catch (err) {
        this.onerror?.(
          new Error(`the sandboxed MCP server wrote a line that is not JSON-RPC: ${(err as Error).message}`),
        );
        continue;
      }
      if (message === null || this.closed) return;
      if ('method' in message && !this.admit()) return;
      this.onmessage?.(message);
    }
  }

  /** Counts one unsolicited message; stops a server that floods. */
  private admit(): boolean {
    const now = Date.now();
    if (now - this.windowStart > this.limits.unsolicitedWindowMs) {
      this.windowStart = now;
      this.unsolicited = 0;
    }
    if (++this.unsolicited <= this.limits.maxUnsolicited) return true;
    this.abort(
      `sent more than ${this.limits.maxUnsolicited} requests or notifications in ${this.limits.unsolicitedWindowMs} ms`,
    );
    return false;
  }

  private abort(reason: string): void {
    this.stoppedBecause ??= reason;
    void this.close();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopOutput?.();
    this.buffer.clear();
    this.onclose?.();
  }
}
