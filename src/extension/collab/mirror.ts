import type * as Y from 'yjs';
import { changedRegion, mergeText } from '../../core/collab';
import { applyEditorChanges, toSharedSplices, type EditorChange } from './changes';
import { EchoGuard } from './echo';
import { toEditorText, type Eol } from './eol';

/** What became of one change event of the editor. */
export type EditorChangeOutcome =
  /** The editor's echo of a remote change: nothing sent. */
  | 'echo'
  /** The revert that clears "dirty" reloaded the disk: the shared text is to be put back. */
  | 'revert'
  /** The server drops this replica's edits: the shared text is to be put back. */
  | 'read-only'
  /** Sent into the shared text as it is (the editor showed the shared text). */
  | 'shared'
  /** Merged three-way into the shared text (the editor did not show the latest remote changes). */
  | 'merged';

/**
 * The editor side of a binding without the editor: which shared text the editor shows, whether
 * remote changes are still to be applied to it, and what each change event of the editor means.
 * Pure (no `vscode`), so every rule of the binding is tested under plain Node.
 */
export class EditorMirror {
  /**
   * The shared text the editor shows (in shared form: the server's line endings), kept in step with
   * every change event of the editor, whoever made it.
   */
  base: string;
  /** The shared text has changes the editor does not show yet. */
  behind = false;
  /** Edits on their way to the editor, whose echo is not sent back. */
  readonly echo = new EchoGuard();
  /**
   * While a revert runs: the editor texts it may leave, one per shared text the disk may hold
   * meanwhile (the server writes only states of the shared text).
   */
  private reverting: Set<string> | null = null;

  constructor(
    private readonly text: Y.Text,
    /** Origin of this editor's transactions. */
    private readonly origin: unknown,
    /** What the editor shows, in shared form. */
    base: string,
  ) {
    this.base = base;
    this.behind = base !== text.toString();
  }

  /** The shared text changed (any origin): remote changes leave the editor behind. */
  sharedChanged(remote: boolean, eol: Eol): void {
    this.reverting?.add(toEditorText(this.text.toString(), eol));
    if (remote) this.behind = true;
  }

  /** A revert to the disk starts; `shown` is the editor text it is expected to leave. */
  beginRevert(shown: string): void {
    this.reverting = new Set([shown]);
  }

  /** The revert ended. */
  endRevert(): void {
    this.reverting = null;
  }

  /** Whether a revert is running. */
  get isReverting(): boolean {
    return this.reverting !== null;
  }

  /**
   * Takes one change event of the editor: `changes` as VS Code reports them, `editorText` the
   * editor's text after them (read only when needed). Local edits go into the shared text in one
   * transaction with this editor's origin; the editor's echoes of remote changes never do.
   */
  editorChanged(
    changes: readonly EditorChange[],
    eol: Eol,
    editorText: () => string,
    readOnly: boolean,
  ): EditorChangeOutcome {
    const before = this.base;
    this.base = toSharedSplices(before, changes, eol).after;
    if (this.echo.match(changes)) {
      // If the edit landed on top of keystrokes, the shared text already has them (merged).
      this.behind = toEditorText(this.text.toString(), eol) !== editorText();
      return 'echo';
    }
    if (this.reverting?.has(editorText())) {
      this.behind = true;
      return 'revert';
    }
    if (readOnly) {
      this.behind = true;
      return 'read-only';
    }
    if (!this.behind) {
      applyEditorChanges(this.text, before, changes, eol, this.origin);
      return 'shared';
    }
    mergeText(this.text, before, this.base, this.origin);
    return 'merged';
  }

  /**
   * The one replace that brings the editor (showing `editorText`) to the shared text, in editor
   * offsets, or null when it shows it already (then the editor is no longer behind).
   */
  nextEdit(editorText: string, eol: Eol): EditorChange | null {
    const target = toEditorText(this.text.toString(), eol);
    const region = changedRegion(editorText, target);
    if (!region) {
      this.behind = false;
      return null;
    }
    return {
      rangeOffset: region.start,
      rangeLength: region.endA - region.start,
      text: target.slice(region.start, region.endB),
    };
  }
}
