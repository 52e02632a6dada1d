import { isUtf8 } from 'node:buffer';
import { WorkspaceError } from '../../protocol/errors';
import { quote } from '../shared/text';
import { assertExpected } from './args';
import { atomicWriteAt } from './atomic';
import type { ConfinedPath } from './confined';
import { revisionAsync } from './content';
import { applyEdits, type EditOp } from './edits';
import type { EditResult } from './types';
import type { ConfinedWorkspace } from './workspace';

/** Files larger than this are edited and diffed on a worker thread. */
const INLINE_EDIT_BYTES = 256 * 1024;

/** Applies edits to a small file on this thread. */
function inlineEdit(
  rel: string,
  bytes: Buffer,
  ops: EditOp[],
): { newBytes: Buffer; applied: number; diff: string } {
  const { after, applied, diff } = applyEdits(rel, bytes.toString('utf8'), ops);
  return { newBytes: Buffer.from(after, 'utf8'), applied, diff };
}

/** Checks the shape of an untrusted edit list; throws INVALID_ARGUMENT naming the bad edit. */
function validateEdits(edits: unknown): EditOp[] {
  if (!Array.isArray(edits) || edits.length === 0) {
    throw new WorkspaceError('INVALID_ARGUMENT', 'edits must be a non-empty array of {oldText, newText}.');
  }
  edits.forEach((edit: Partial<EditOp> | null, index) => {
    if (typeof edit?.oldText !== 'string' || edit.oldText.length === 0 || typeof edit.newText !== 'string') {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Edit ${index} needs a non-empty string oldText and a string newText.`,
        { index },
      );
    }
  });
  return edits as EditOp[];
}

/**
 * edit_file on a resolution: exact-text replacements in order, all or nothing, under the path's
 * lock; returns a unified diff and writes atomically unless `dryRun`.
 */
export async function editAt(
  ws: ConfinedWorkspace,
  target: ConfinedPath,
  edits: EditOp[],
  opts: { dryRun?: boolean; expectedRevision?: string; caller?: string },
): Promise<EditResult> {
  const ops = validateEdits(edits);
  return ws.locks.run([target.realRel], async () => {
    const stats = ws.requireFile(target.rel, target);
    const bytes = await ws.readBytes(target.parentFd, target.name, target.rel);
    const revision = await revisionAsync(bytes);
    assertExpected(opts.expectedRevision, revision, target.rel);
    if (!isUtf8(bytes)) {
      throw new WorkspaceError(
        'INVALID_ENCODING',
        `${quote(target.rel)} is not UTF-8 text; it cannot be edited.`,
      );
    }
    // Large files are edited and diffed on a worker thread, never on the event loop.
    const { newBytes, applied, diff } =
      bytes.length > INLINE_EDIT_BYTES
        ? await ws.pool().edit(opts.caller ?? 'owner', target.rel, bytes, ops)
        : inlineEdit(target.rel, bytes, ops);
    ws.assertSize(newBytes.length);
    const dryRun = opts.dryRun === true;
    if (dryRun || newBytes.equals(bytes)) return { path: target.rel, revision, diff, applied, dryRun };
    await atomicWriteAt(target.parentFd, target.name, newBytes, {
      mode: stats.mode & 0o7777,
      exclusive: false,
      beforePlace: () => ws.assertStillAt(target),
    });
    return { path: target.rel, revision: await revisionAsync(newBytes), diff, applied, dryRun };
  });
}
