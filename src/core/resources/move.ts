import { WorkspaceError } from '../../protocol/errors';
import { quote } from '../shared/text';
import { fsyncDirectory, renameAt, type ConfinedPath } from './confined';
import { isWithin } from './paths';
import type { ConfinedWorkspace } from './workspace';

/**
 * move on two resolutions that did not follow their final links: renames a file, directory or
 * symlink inside the workspace, creating missing parents of the destination. `toLabel` names the
 * destination in file-system errors.
 */
export async function moveAt(
  ws: ConfinedWorkspace,
  source: ConfinedPath,
  dest: ConfinedPath,
  toLabel: string,
  opts: { overwrite?: boolean; expectedRevision?: string },
): Promise<{ from: string; to: string }> {
  ws.assertChangeable(source, 'move');
  ws.assertChangeable(dest, 'move');
  if (isWithin(dest.realRel, source.realRel) && dest.realRel !== source.realRel) {
    throw new WorkspaceError(
      'INVALID_PATH',
      `Cannot move ${quote(source.rel)} into itself (${quote(dest.rel)}).`,
    );
  }
  return ws.locks.run([source.realRel, dest.realRel], async () => {
    const stats = ws.currentStats(source);
    if (stats === undefined) throw ws.notFound(source.rel);
    await ws.assertLocationRevision(source, stats, opts.expectedRevision);
    if (dest.realRel === source.realRel) return { from: source.rel, to: dest.rel };
    const existing = ws.currentStats(dest);
    if (existing !== undefined && opts.overwrite !== true) {
      throw new WorkspaceError(
        'ALREADY_EXISTS',
        `${quote(dest.rel)} already exists; pass overwrite: true to replace it.`,
      );
    }
    if (existing?.isDirectory() && !stats.isDirectory()) {
      throw new WorkspaceError(
        'NOT_A_FILE',
        `${quote(dest.rel)} is a directory; cannot replace it with a file.`,
      );
    }
    await ws.guard(toLabel, async () => {
      dest.makeParents();
      ws.assertStillAt(source);
      ws.assertStillAt(dest);
      renameAt(source.parentFd, source.name, dest.parentFd, dest.name);
    });
    fsyncDirectory(dest.parentFd);
    if (dest.parentFd !== source.parentFd) fsyncDirectory(source.parentFd);
    return { from: source.rel, to: dest.rel };
  });
}
