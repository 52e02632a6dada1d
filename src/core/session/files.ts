import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes `data` to `file` atomically with `mode`: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.chmod(mode);
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dir = await open(dirname(file), 'r').catch(() => null);
  if (dir) {
    try {
      await dir.sync();
    } catch {
      // Directory fsync is not supported on every platform; the rename itself is still atomic.
    } finally {
      await dir.close();
    }
  }
}

/** The Node error code of a failed fs call, if any. */
export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}
