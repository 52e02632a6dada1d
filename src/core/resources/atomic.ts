import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as nodePath from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { isErrno } from './paths';

/** Longest part of the target's name reused in the temp file name, in UTF-8 bytes. */
const MAX_STEM_BYTES = 200;

function tempStem(base: string): string {
  const chars = Array.from(base);
  while (Buffer.byteLength(chars.join(''), 'utf8') > MAX_STEM_BYTES) chars.pop();
  return chars.join('');
}

/** Options for {@link atomicWrite}. */
export interface AtomicWriteOptions {
  /** Permission bits to give the new file (the replaced file's mode); default 0o666 minus umask. */
  mode?: number;
  /** Fail with EEXIST instead of replacing an existing target (uses a hard link where supported). */
  exclusive: boolean;
  /** Called with the real path of the target's directory after the temp file exists; false aborts. */
  isSafeDirectory: (realDir: string) => boolean;
}

/**
 * Writes `data` to `target` atomically: a temp file `.<name>.mcpw-<random>.tmp` in the same
 * directory is written, fsync'd and renamed over the target. The temp file never outlives a failure.
 */
export async function atomicWrite(target: string, data: Buffer, options: AtomicWriteOptions): Promise<void> {
  const dir = nodePath.dirname(target);
  const temp = nodePath.join(
    dir,
    `.${tempStem(nodePath.basename(target))}.mcpw-${randomBytes(6).toString('hex')}.tmp`,
  );
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
  const handle = await fs.open(temp, flags, 0o666);
  let placed = false;
  try {
    try {
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (!options.isSafeDirectory(await fs.realpath(dir))) {
      throw new WorkspaceError(
        'PATH_OUTSIDE_WORKSPACE',
        'The target directory was moved outside the workspace during the write; nothing was written.',
      );
    }
    if (options.exclusive) {
      try {
        await fs.link(temp, target);
      } catch (err) {
        if (isErrno(err, 'EEXIST')) throw err;
        // Hard links unsupported here: the caller holds the path's lock and checked absence.
        await fs.rename(temp, target);
        placed = true;
      }
    } else {
      await fs.rename(temp, target);
      placed = true;
    }
  } finally {
    if (!placed) await fs.unlink(temp).catch(() => undefined);
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY).catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot fsync a directory; the rename itself has already happened.
  } finally {
    await handle.close();
  }
}
