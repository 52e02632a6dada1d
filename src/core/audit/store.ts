import type { FileHandle } from 'node:fs/promises';
import type { AuditRecord } from './types';

const SCAN_CHUNK = 1024 * 1024;
const NEWLINE = 0x0a;

/** Byte offsets of every line in the log: line i spans `[start(i), start(i + 1))`, newline included. */
export class OffsetIndex {
  private data = new Float64Array(1024);
  private lines = 0;

  /** Number of complete lines. */
  get count(): number {
    return this.lines;
  }

  /** Offset just after the last complete line. */
  get end(): number {
    return this.data[this.lines];
  }

  /** Start offset of line `i` (`i === count` gives {@link end}). */
  start(i: number): number {
    return this.data[i];
  }

  /** Records that a line ends (newline included) at `endOffset`. */
  push(endOffset: number): void {
    if (this.lines + 2 > this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[++this.lines] = endOffset;
  }

  /** Adds every line ending in `buf`, which starts at file offset `base`. */
  pushLines(buf: Buffer, base: number, length = buf.length): void {
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, from);
      if (nl === -1 || nl >= length) return;
      this.push(base + nl + 1);
      from = nl + 1;
    }
  }
}

/** Scans the whole file for line ends; returns the index and the file size (which may exceed `index.end`). */
export async function scanLines(fh: FileHandle): Promise<{ index: OffsetIndex; size: number }> {
  const index = new OffsetIndex();
  const buf = Buffer.allocUnsafe(SCAN_CHUNK);
  let size = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, size);
    if (bytesRead === 0) return { index, size };
    index.pushLines(buf, size, bytesRead);
    size += bytesRead;
  }
}

/** Reads lines `[from, to)` as one buffer; line i sits at `index.start(i) - index.start(from)`. */
export async function readLines(
  fh: FileHandle,
  index: OffsetIndex,
  from: number,
  to: number,
): Promise<Buffer> {
  const start = index.start(from);
  const length = index.start(to) - start;
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, start + done);
    if (bytesRead === 0) throw new Error('audit log shrank while reading');
    done += bytesRead;
  }
  return buf;
}

/** Fixed-capacity ring of the most recent records. */
export class TailRing {
  private readonly items: AuditRecord[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  /** Adds a record, evicting the oldest when full. */
  push(record: AuditRecord): void {
    if (this.items.length < this.capacity) this.items.push(record);
    else this.items[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
  }

  /** The last `n` records, oldest first. */
  last(n: number): AuditRecord[] {
    const size = this.items.length;
    const take = Math.min(size, Math.max(0, Math.floor(n) || 0));
    const out: AuditRecord[] = new Array(take);
    // When full, `next` is the oldest slot; before that the ring is a plain array starting at 0.
    const newest = size < this.capacity ? size : this.next + size;
    for (let i = 0; i < take; i++) out[i] = this.items[(newest - take + i) % size];
    return out;
  }
}
