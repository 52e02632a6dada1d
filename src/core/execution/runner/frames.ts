/**
 * Binary framing of the mcpw-runner protocol: a 9-byte header (type u8, id u32 BE, length u32 BE)
 * followed by `length` payload bytes. Private to the runner client.
 */

/** Header size in bytes. */
export const HEADER_SIZE = 9;
/** Largest payload either side may send. */
export const MAX_PAYLOAD = 1024 * 1024;

/** Frame types, host → runner (0x0*) and runner → host (0x8*). */
export const FrameType = {
  SPAWN: 0x01,
  STDIN: 0x02,
  STDIN_EOF: 0x03,
  SIGNAL: 0x04,
  PING: 0x05,
  STARTED: 0x81,
  STDOUT: 0x82,
  STDERR: 0x83,
  EXIT: 0x84,
  ERROR: 0x85,
  PONG: 0x86,
} as const;

const EMPTY = Buffer.alloc(0);

/** Encodes a frame header for a payload of `length` bytes. */
export function encodeHeader(type: number, id: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = type;
  header.writeUInt32BE(id, 1);
  header.writeUInt32BE(length, 5);
  return header;
}

/** Encodes a whole frame in one buffer (for small control frames). */
export function encodeFrame(type: number, id: number, payload: Buffer = EMPTY): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame[0] = type;
  frame.writeUInt32BE(id, 1);
  frame.writeUInt32BE(payload.length, 5);
  payload.copy(frame, HEADER_SIZE);
  return frame;
}

/**
 * Incremental frame parser. Chunks are queued as-is; a payload that lies inside one chunk is
 * handed out as a zero-copy view, and only payloads spanning chunks are copied (once). Consumed
 * chunks are dropped with amortised compaction, so parsing is linear in the bytes received.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private pending: { type: number; id: number; length: number } | null = null;

  constructor(private readonly onFrame: (type: number, id: number, payload: Buffer) => void) {}

  /** Queues `chunk` and emits every frame it completes. Throws on a frame above {@link MAX_PAYLOAD}. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (!this.pending) {
        if (this.buffered < HEADER_SIZE) return;
        const header = this.take(HEADER_SIZE);
        const length = header.readUInt32BE(5);
        if (length > MAX_PAYLOAD) throw new Error(`runner frame of ${length} bytes exceeds the 1 MiB limit`);
        this.pending = { type: header[0], id: header.readUInt32BE(1), length };
      }
      if (this.buffered < this.pending.length) return;
      const { type, id, length } = this.pending;
      this.pending = null;
      this.onFrame(type, id, length === 0 ? EMPTY : this.take(length));
    }
  }

  /** Removes and returns the next `n` (≤ buffered, > 0) bytes. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[this.head];
    if (first.length >= n) {
      if (first.length === n) this.advance();
      else this.chunks[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let offset = 0;
    while (offset < n) {
      const chunk = this.chunks[this.head];
      const count = Math.min(chunk.length, n - offset);
      chunk.copy(out, offset, 0, count);
      offset += count;
      if (count === chunk.length) this.advance();
      else this.chunks[this.head] = chunk.subarray(count);
    }
    return out;
  }

  /** Drops the head chunk; compacts the queue once more than half of it is consumed. */
  private advance(): void {
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
