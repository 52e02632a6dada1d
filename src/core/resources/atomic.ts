import { randomBytes } from 'node:crypto';
import { close, fchmod, fsync, write } from 'node:fs';
import { promisify } from 'node:util';
import { createExclusiveAt, fsyncDirectory, linkAt, renameAt, unlinkAt } from './confined';
import { isErrno } from '../shared/fs';

const writeAsync = promisify(write);
const fsyncAsync = promisify(fsync);
const fchmodAsync = promisify(fchmod);
const closeAsync = promisify(close);

/** Longest part of the target's name reused in the temp file name, in UTF-8 bytes. */
const MAX_STEM_BYTES = 200;

function tempStem(base: string): string {
  const chars = Array.from(base);
  while (Buffer.byteLength(chars.join(''), 'utf8') > MAX_STEM_BYTES) chars.pop();
  return chars.join('');
}

/** Options for {@link atomicWriteAt}. */
export interface AtomicWriteOptions {
  /** Permission bits to give the new file (the replaced file's mode); default 0o666 minus umask. */
  mode?: number;
  /** Fail with EEXIST instead of replacing an existing target (uses a hard link where supported). */
  exclusive: boolean;
  /** Called just before the temp file is put in place; throwing aborts (the temp file is removed). */
  beforePlace?: () => void;
}

async function writeAll(fd: number, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await writeAsync(fd, data, offset, data.length - offset, offset);
    offset += bytesWritten;
  }
}

/**
 * Writes `data` as entry `name` of the held directory `dirFd` atomically: a temp file
 * `.<name>.mcpw-<random>.tmp` is created there (`O_EXCL | O_NOFOLLOW`), written, fsync'd and renamed
 * over the target, so an existing file (or a hard link to one elsewhere) is replaced, never written
 * through. The temp file never outlives a failure.
 */
export async function atomicWriteAt(
  dirFd: number,
  name: string,
  data: Buffer,
  options: AtomicWriteOptions,
): Promise<void> {
  const temp = `.${tempStem(name)}.mcpw-${randomBytes(6).toString('hex')}.tmp`;
  const fd = createExclusiveAt(dirFd, temp, 0o666);
  let placed = false;
  try {
    try {
      if (options.mode !== undefined) await fchmodAsync(fd, options.mode);
      await writeAll(fd, data);
      await fsyncAsync(fd);
    } finally {
      await closeAsync(fd);
    }
    options.beforePlace?.();
    if (options.exclusive) {
      try {
        linkAt(dirFd, temp, name);
      } catch (err) {
        if (isErrno(err, 'EEXIST')) throw err;
        // Hard links unsupported here: the caller holds the path's lock and checked absence.
        renameAt(dirFd, temp, dirFd, name);
        placed = true;
      }
    } else {
      renameAt(dirFd, temp, dirFd, name);
      placed = true;
    }
  } finally {
    if (!placed) {
      try {
        unlinkAt(dirFd, temp);
      } catch {
        // already gone
      }
    }
  }
  fsyncDirectory(dirFd);
}
