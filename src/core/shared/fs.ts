import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `data` (UTF-8) to `file` atomically with permission bits `mode`, for small files such as
 * tokens and policies.
 *
 * The data goes to a uniquely named temp file in the same directory (created exclusively with
 * `mode`, then chmod-ed so the umask cannot widen or narrow it), is fsync-ed, and is renamed over
 * `file`; the directory is then fsync-ed where the platform supports it. Readers therefore see either
 * the old or the new content, never a partial write. On failure the temp file is removed and the
 * error is re-thrown.
 *
 * @param file - Destination path; its directory must already exist.
 * @param data - The complete new content.
 * @param mode - Permission bits for the new file, e.g. `0o600`.
 */
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

/**
 * The Node error code (such as `'ENOENT'`) of a failed fs call.
 *
 * @param err - Anything caught from a `try`; need not be an Error.
 * @returns The `code` property, or undefined when `err` is null/undefined or carries no code.
 */
export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * True if `err` is a Node.js system error with one of the given codes, e.g.
 * `isErrno(err, 'ENOENT')` or `isErrno(err, 'ENOTEMPTY', 'EEXIST')`.
 */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoCode(err);
  return code !== undefined && codes.includes(code);
}
