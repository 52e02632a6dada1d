import { isUtf8 } from 'node:buffer';
import type { Stats } from 'node:fs';
import { WorkspaceError } from '../../protocol/errors';
import { isErrno } from '../shared/fs';
import { quote } from '../shared/text';
import { assertExpected, conflict, decodeContent, MUST_NOT_EXIST, validateEncoding } from './args';
import { atomicWriteAt } from './atomic';
import { fsyncDirectory, lstatAt, mkdirAt, type ConfinedPath } from './confined';
import { revisionAsync } from './content';
import type { Encoding, EntryType, FileContent, FileInfo, WriteResult } from './types';
import type { ConfinedWorkspace } from './workspace';

/** Kind of an entry from its `lstat`. */
export function entryType(stats: Stats): EntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

/** read_file on a resolution: UTF-8 text comes back as utf8 and anything else as base64, unless asked. */
export async function readFileAt(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  opts: { encoding?: Encoding },
): Promise<FileContent> {
  const requested = validateEncoding(opts.encoding);
  ws.requireFile(target.rel, target);
  const bytes = await ws.readBytes(target.parentFd, target.name, target.rel);
  ws.assertStillAt(target);
  const text = isUtf8(bytes);
  if (requested === 'utf8' && !text) {
    throw new WorkspaceError(
      'INVALID_ENCODING',
      `${quote(target.rel)} is not valid UTF-8; read it with encoding "base64".`,
    );
  }
  const encoding: Encoding = requested ?? (text ? 'utf8' : 'base64');
  return {
    path: target.rel,
    content: bytes.toString(encoding),
    encoding,
    revision: await revisionAsync(bytes),
    size: bytes.length,
  };
}

/** write_file on a resolution: atomic, revision-checked under the path's lock. */
export async function writeFileAt(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  content: string,
  opts: { encoding?: Encoding; expectedRevision?: string; createParents?: boolean },
): Promise<WriteResult> {
  const bytes = decodeContent(content, validateEncoding(opts.encoding) ?? 'utf8', ws.limits.maxFileBytes);
  return ws.locks.run([target.realRel], async () => {
    const stats = ws.currentStats(target);
    if (stats !== undefined && !stats.isFile()) {
      throw new WorkspaceError('NOT_A_FILE', `${quote(target.rel)} exists and is not a regular file.`);
    }
    if (opts.expectedRevision !== undefined) {
      const current = stats === undefined ? null : await ws.hashAt(target.parentFd, target.name, target.rel);
      assertExpected(opts.expectedRevision, current, target.rel);
    }
    ws.ensureParent(target, opts.createParents !== false);
    try {
      await atomicWriteAt(target.parentFd, target.name, bytes, {
        mode: stats === undefined ? undefined : stats.mode & 0o7777,
        exclusive: opts.expectedRevision === MUST_NOT_EXIST,
        beforePlace: () => ws.assertStillAt(target),
      });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        throw conflict(target.rel, await ws.hashAt(target.parentFd, target.name, target.rel));
      }
      throw err;
    }
    return {
      path: target.rel,
      revision: await revisionAsync(bytes),
      bytes: bytes.length,
      created: stats === undefined,
    };
  });
}

/** stat on a resolution: type, size, mtime and (files only) revision. */
export async function statAt(ws: ConfinedWorkspace, target: ConfinedPath): Promise<FileInfo> {
  const stats = ws.currentStats(target);
  if (stats === undefined) throw ws.notFound(target.rel);
  const type = entryType(stats);
  return {
    path: target.rel,
    type,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ...(type === 'file' ? { revision: await ws.hashAt(target.parentFd, target.name, target.rel) } : {}),
  };
}

/** mkdir on a resolution (with missing parents unless `recursive: false`). */
export async function mkdirAtPath(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  opts: { recursive?: boolean },
): Promise<{ path: string; created: boolean }> {
  const recursive = opts.recursive !== false;
  const stats = ws.currentStats(target);
  if (stats !== undefined) {
    if (stats.isDirectory() && recursive) return { path: target.rel, created: false };
    throw new WorkspaceError('ALREADY_EXISTS', `${quote(target.rel)} already exists.`);
  }
  if (!recursive && target.missingDirs.length > 0) throw ws.notFound(target.rel);
  target.makeParents();
  ws.assertStillAt(target);
  try {
    mkdirAt(target.parentFd, target.name);
  } catch (err) {
    if (isErrno(err, 'EEXIST') && recursive) {
      const now = lstatAt(target.parentFd, target.name);
      if (now?.isDirectory()) return { path: target.rel, created: false };
      throw new WorkspaceError('NOT_A_DIRECTORY', `A component of ${quote(target.rel)} is a file.`);
    }
    throw err;
  }
  fsyncDirectory(target.parentFd);
  return { path: target.rel, created: true };
}
