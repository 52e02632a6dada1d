import { closeSync, fstatSync } from 'node:fs';
import { WorkspaceError } from '../../protocol/errors';
import { foldPathName } from '../shared/fold';
import { isErrno } from '../shared/fs';
import { quote } from '../shared/text';
import { positiveInt } from './args';
import {
  assertNotProtected,
  fsyncDirectory,
  lstatAt,
  openDirAt,
  readdirAt,
  rmdirAt,
  unlinkAt,
  walkHeldDirectory,
  type ConfinedPath,
} from './confined';
import type { DirEntry, FileList } from './types';
import type { ConfinedWorkspace } from './workspace';

const DEFAULT_LIST_DEPTH = 1;
const MAX_LIST_DEPTH = 20;
const DEFAULT_MAX_ENTRIES = 5000;
/** Directories listed but not descended into unless `includeIgnored`. */
const IGNORED_DIRS = new Set(['.git', 'node_modules']);

function joinRel(parent: string, name: string): string {
  return parent === '.' ? name : `${parent}/${name}`;
}

/** `rel` (at or below `base`, both real workspace-relative) relative to `base`. */
function relativeTo(rel: string, base: string): string {
  return base === '.' ? rel : rel.slice(base.length + 1);
}

/**
 * list_files on a resolution: depth-first to `depth` levels, in path order; symlinks are listed but
 * never followed. When `maxEntries` cuts the listing, the first entries in walk order are kept.
 */
export async function listFilesAt(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  opts: { depth?: number; includeIgnored?: boolean; maxEntries?: number },
): Promise<FileList> {
  const depth = Math.min(positiveInt(opts.depth, 'depth', DEFAULT_LIST_DEPTH), MAX_LIST_DEPTH);
  const maxEntries = positiveInt(opts.maxEntries, 'maxEntries', DEFAULT_MAX_ENTRIES);
  const stats = ws.currentStats(target);
  if (stats === undefined) throw ws.notFound(target.rel);
  if (!stats.isDirectory()) {
    throw new WorkspaceError('NOT_A_DIRECTORY', `${quote(target.rel)} is not a directory.`);
  }
  const entries: DirEntry[] = [];
  let truncated = false;
  const base = target.rel;
  const realBase = target.realRel;
  walkHeldDirectory(ws.confined, target.openDirectory(), realBase, {
    maxDepth: depth,
    onEntry: (entry) => {
      if (ws.isProtectedRel(entry.rel)) return 'skip';
      if (entries.length >= maxEntries) {
        truncated = true;
        return 'stop';
      }
      const type = entry.type;
      entries.push({
        path: joinRel(base, relativeTo(entry.rel, realBase)),
        name: entry.name,
        type,
        ...(type === 'file' ? { size: entry.size } : {}),
        mtimeMs: entry.stats.mtimeMs,
      });
      if (type === 'directory' && opts.includeIgnored !== true && IGNORED_DIRS.has(foldPathName(entry.name)))
        return 'skip';
      return undefined;
    },
  });
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { path: target.rel, entries, truncated };
}

/** Removes directory `name` of `parentFd` and everything below it, on held descriptors only. */
function removeTree(ws: ConfinedWorkspace, parentFd: number, name: string, rel: string): void {
  const fd = openDirAt(parentFd, name);
  try {
    assertNotProtected(ws.confined, fstatSync(fd), rel);
    for (const child of readdirAt(fd)) {
      const stats = lstatAt(fd, child);
      if (stats === undefined) continue;
      const childRel = `${rel}/${child}`;
      assertNotProtected(ws.confined, stats, childRel);
      if (stats.isDirectory()) removeTree(ws, fd, child, childRel);
      else unlinkAt(fd, child);
    }
  } finally {
    closeSync(fd);
  }
  rmdirAt(parentFd, name);
}

/**
 * delete on a resolution that did not follow its final link: a file, a symlink (the link itself) or
 * a directory (non-empty ones need `recursive`).
 */
export async function deleteAt(
  ws: ConfinedWorkspace,
  loc: ConfinedPath,
  opts: { recursive?: boolean; expectedRevision?: string },
): Promise<{ path: string; deleted: true }> {
  ws.assertChangeable(loc, 'delete');
  return ws.locks.run([loc.realRel], async () => {
    const stats = ws.currentStats(loc);
    if (stats === undefined) throw ws.notFound(loc.rel);
    await ws.assertLocationRevision(loc, stats, opts.expectedRevision);
    ws.assertStillAt(loc);
    if (!stats.isDirectory()) {
      unlinkAt(loc.parentFd, loc.name);
    } else if (opts.recursive === true) {
      removeTree(ws, loc.parentFd, loc.name, loc.rel);
    } else {
      try {
        rmdirAt(loc.parentFd, loc.name);
      } catch (err) {
        if (isErrno(err, 'ENOTEMPTY', 'EEXIST')) {
          throw new WorkspaceError(
            'DIRECTORY_NOT_EMPTY',
            `The directory ${quote(loc.rel)} is not empty; pass recursive: true to delete its contents too.`,
          );
        }
        throw err;
      }
    }
    fsyncDirectory(loc.parentFd);
    return { path: loc.rel, deleted: true as const };
  });
}
