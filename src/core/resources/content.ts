import { createHash, webcrypto } from 'node:crypto';
import { read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { assertSize } from './args';

const readAsync = promisify(read);

/** Contents from this size on are hashed on the thread pool (WebCrypto), not on the event loop. */
const ASYNC_HASH_BYTES = 256 * 1024;
/** Files up to this size are read with synchronous syscalls (a few µs); larger ones asynchronously. */
const SYNC_READ_LIMIT = 256 * 1024;
const HASH_CHUNK_BYTES = 1024 * 1024;

/** sha256 hex of the content bytes: the revision used for optimistic concurrency. */
export function revisionOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** {@link revisionOf}, off the event loop for large contents. */
export async function revisionAsync(bytes: Buffer): Promise<string> {
  if (bytes.length < ASYNC_HASH_BYTES) return revisionOf(bytes);
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
}

/** sha256 hex of an open file's bytes, read from its descriptor in chunks (no size cap). */
export async function hashFd(fd: number): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  let position = 0;
  for (;;) {
    const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    hash.update(chunk.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

/**
 * Reads an open regular file of (fstat) size `size` to its end, refusing more than `limit` bytes: a
 * file that grew since fstat is read on, still under the cap.
 */
export async function readFd(fd: number, size: number, limit: number): Promise<Buffer> {
  assertSize(size, limit);
  // One spare byte detects a file that grew since fstat.
  const buffer = Buffer.allocUnsafe(size + 1);
  let length = 0;
  for (;;) {
    const n =
      size <= SYNC_READ_LIMIT
        ? readSync(fd, buffer, length, buffer.length - length, length)
        : (await readAsync(fd, buffer, length, buffer.length - length, length)).bytesRead;
    if (n === 0) break;
    length += n;
    if (length === buffer.length) return Buffer.concat([buffer, await readRest(fd, length, limit)]);
  }
  return buffer.subarray(0, length);
}

/** The rest of a file that grew while it was read, still under the size cap. */
async function readRest(fd: number, position: number, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = position;
  const chunk = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  for (;;) {
    const { bytesRead } = await readAsync(fd, chunk, 0, chunk.length, total);
    if (bytesRead === 0) return Buffer.concat(chunks);
    total += bytesRead;
    assertSize(total, limit);
    chunks.push(Buffer.from(chunk.subarray(0, bytesRead)));
  }
}
