import { WorkspaceError } from '../../protocol/errors';
import { unifiedDiff } from './diff';
import { quote } from '../shared/text';

/** One exact-text replacement for {@link ResourceManager.edit}. */
export interface EditOp {
  oldText: string;
  newText: string;
  /** Replace every occurrence instead of requiring exactly one. */
  replaceAll?: boolean;
}

/** The text after a set of edits, how many replacements were made, and the unified diff. */
export interface AppliedEdits {
  after: string;
  applied: number;
  diff: string;
}

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) count++;
  return count;
}

/**
 * Applies exact-text replacements to `before` in order, all or nothing, and diffs the result. Throws
 * EDIT_NO_MATCH or EDIT_AMBIGUOUS naming the edit. Pure (no I/O): the resource manager runs it on a
 * worker thread for large files.
 */
export function applyEdits(rel: string, before: string, ops: readonly EditOp[]): AppliedEdits {
  let after = before;
  let applied = 0;
  ops.forEach((op, index) => {
    const matches = countOccurrences(after, op.oldText);
    if (matches === 0) {
      throw new WorkspaceError(
        'EDIT_NO_MATCH',
        `Edit ${index}: oldText was not found in ${quote(rel)}; read the file and copy the text exactly.`,
        { index },
      );
    }
    if (matches > 1 && op.replaceAll !== true) {
      throw new WorkspaceError(
        'EDIT_AMBIGUOUS',
        `Edit ${index}: oldText occurs ${matches} times; add surrounding context or set replaceAll.`,
        { index, matches },
      );
    }
    if (op.replaceAll === true) {
      after = after.split(op.oldText).join(op.newText);
    } else {
      const at = after.indexOf(op.oldText);
      after = after.slice(0, at) + op.newText + after.slice(at + op.oldText.length);
    }
    applied += matches;
  });
  return { after, applied, diff: unifiedDiff(rel, before, after) };
}
