import * as vscode from 'vscode';
import * as Y from 'yjs';
import { changedRegion, mergeText, replaceText } from '../../core/collab';
import { applyEditorChanges, editorToShared } from './changes';
import { CursorDecorations, type PlacedCursor } from './cursors';
import { EchoGuard } from './echo';
import { toEditorOffset, toEditorText, toSharedOffset, type Eol } from './eol';
import { encodeCursor, remoteCursors } from './presence';
import type { SharedDocumentHandle, Unsubscribe } from './types';

/** What a binding needs from the editor glue around it. */
export interface BindingHost {
  log: vscode.LogOutputChannel;
  decorations: CursorDecorations;
  /** The server made (or keeps) the document read-only: tell the user once. */
  readOnly(binding: DocumentBinding, reason: string): void;
  /** The server ended the document for good: unbind it. */
  closed(binding: DocumentBinding, reason: string): void;
  /** Whether reverting the active editor (to clear "dirty" for text already on disk) is safe now. */
  mayRevert(document: vscode.TextDocument): boolean;
  /** The binding became ready or changed state (context keys follow). */
  changed(): void;
}

/** Attempts to apply the shared text to the editor before leaving it to the drift repair. */
const APPLY_ATTEMPTS = 30;
/** How often the editor is compared with the shared text as a whole. */
const DRIFT_CHECK_MS = 2000;
/** Quiet time after a change before the file on disk is compared (the server writes after ~300 ms). */
const PERSIST_CHECK_MS = 450;
/** Checks of the disk before giving up until the next change (the server writes within 2 s). */
const PERSIST_ATTEMPTS = 8;

function eolOf(document: vscode.TextDocument): Eol {
  return document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
}

/**
 * One editor document bound to its shared Y.Text: local changes go into Yjs in one transaction per
 * change event (origin: this binding), remote changes come back as WorkspaceEdits (retried when the
 * document moved underneath), the editor's echo of them is never sent back, and the whole text is
 * compared now and then and after errors (the shared text wins). The shared text keeps the bytes
 * the server has (CRLF, mixed endings); offsets are mapped to the editor's single line ending.
 */
export class DocumentBinding {
  /** Origin of this editor's transactions: what the undo manager tracks. */
  readonly origin = Object.freeze({ liveEditing: true });
  /** The user's own edits in this editor, undone and redone without touching anyone else's. */
  undoManager: Y.UndoManager | null = null;
  private text: Y.Text | null = null;
  /** The shared text the editor shows (in shared form: the server's line endings). */
  private base = '';
  /** The shared text has changes the editor does not show yet. */
  private behind = false;
  /** Counts remote changes, so an apply knows whether more came meanwhile. */
  private remoteGen = 0;
  private readonly echo = new EchoGuard<{ shared: string; gen: number }>();
  private applying: Promise<void> | null = null;
  private applyAgain = false;
  /** The editor text a revert is expected to leave (while the revert command runs). */
  private reverting: string | null = null;
  private persistTimer: NodeJS.Timeout | null = null;
  private persistAttempts = 0;
  private driftTimer: NodeJS.Timeout | null = null;
  private readonly cleanups: Unsubscribe[] = [];
  private disposed = false;
  private toldReadOnly = false;

  constructor(
    readonly document: vscode.TextDocument,
    /** Workspace-relative path (the room). */
    readonly relPath: string,
    readonly handle: SharedDocumentHandle,
    private readonly host: BindingHost,
  ) {}

  /** Whether the first sync is done and edits flow both ways. */
  get ready(): boolean {
    return this.text !== null && !this.disposed;
  }

  /** Whether the server drops this replica's edits. */
  get readOnly(): boolean {
    return this.handle.readOnly;
  }

  /**
   * Waits for the first sync, then brings the editor and the shared text together: a clean editor
   * takes the shared text; unsaved text typed before the binding becomes this user's shared edit.
   */
  async start(): Promise<void> {
    await this.handle.synced;
    if (this.disposed) return;
    const text = this.handle.doc.getText('content');
    this.text = text;
    this.undoManager = new Y.UndoManager(text, {
      trackedOrigins: new Set([this.origin]),
      captureTimeout: 500,
    });
    this.base = text.toString();
    const eol = eolOf(this.document);
    const shown = toEditorText(this.base, eol);
    const editor = this.document.getText();
    if (this.document.isDirty && editor !== shown && !this.readOnly) {
      const next = editorToShared(this.base, shown, editor, eol);
      replaceText(text, next, this.origin);
      this.base = next;
    } else if (editor !== shown) {
      this.behind = true;
    }
    const onShared = (_event: Y.YTextEvent, tr: Y.Transaction): void => {
      if (tr.origin === this.origin) return;
      this.remoteGen++;
      this.behind = true;
      this.scheduleApply();
      this.schedulePersistCheck();
    };
    text.observe(onShared);
    const onAwareness = (): void => this.renderCursors();
    this.handle.awareness.on('change', onAwareness);
    this.cleanups.push(
      () => text.unobserve(onShared),
      () => this.handle.awareness.off('change', onAwareness),
      this.handle.onReadOnlyChange((readOnly, reason) => {
        if (readOnly) this.tellReadOnly(reason);
        else this.toldReadOnly = false;
        this.host.changed();
      }),
      this.handle.onClosed((reason) => this.host.closed(this, reason)),
    );
    if (this.readOnly) this.tellReadOnly('the server does not accept your edits');
    this.driftTimer = setInterval(() => this.checkDrift(), DRIFT_CHECK_MS);
    if (this.behind) this.scheduleApply();
    this.schedulePersistCheck();
    this.host.changed();
    const active = vscode.window.activeTextEditor;
    if (active?.document === this.document) this.publishCursor(active.selection);
    this.renderCursors();
  }

  /** A change of the editor's document (from VS Code's onDidChangeTextDocument). */
  onEditorChange(event: vscode.TextDocumentChangeEvent): void {
    const text = this.text;
    if (!text || this.disposed || event.contentChanges.length === 0) return;
    const echoed = this.echo.match(() => this.document.getText());
    if (echoed) {
      this.base = echoed.shared;
      if (echoed.gen === this.remoteGen) this.behind = false;
      return;
    }
    if (this.reverting !== null && this.document.getText() === this.reverting) {
      // The revert that clears "dirty" reloaded the disk: the shared text is put back after it.
      this.behind = true;
      return;
    }
    if (this.readOnly) {
      this.tellReadOnly('the server does not accept your edits');
      this.behind = true;
      this.scheduleApply();
      return;
    }
    const eol = eolOf(this.document);
    if (!this.behind) {
      this.base = applyEditorChanges(text, this.base, event.contentChanges, eol, this.origin);
    } else {
      // The editor does not show the latest remote changes yet: merge three-way against what it showed.
      const next = editorToShared(this.base, toEditorText(this.base, eol), this.document.getText(), eol);
      mergeText(text, this.base, next, this.origin);
      this.base = next;
      this.scheduleApply();
    }
    this.schedulePersistCheck();
  }

  /** The local user's cursor or selection moved in an editor of this document. */
  publishCursor(selection: vscode.Selection): void {
    const text = this.text;
    if (!text || this.disposed || this.behind) return;
    const eol = eolOf(this.document);
    const anchor = toSharedOffset(this.base, eol, this.document.offsetAt(selection.anchor));
    const head = toSharedOffset(this.base, eol, this.document.offsetAt(selection.active));
    this.handle.awareness.setLocalStateField('cursor', encodeCursor(text, anchor, head));
  }

  /** Draws everyone else's cursors in the visible editors of this document. */
  renderCursors(): void {
    const text = this.text;
    if (!text || this.disposed) return;
    const editors = vscode.window.visibleTextEditors.filter((e) => e.document === this.document);
    if (editors.length === 0) return;
    const states = this.handle.awareness.getStates() as Map<number, Record<string, unknown>>;
    const cursors = remoteCursors(this.handle.doc, text, states, this.handle.doc.clientID);
    const shared = text.toString();
    const eol = eolOf(this.document);
    const position = (offset: number): vscode.Position =>
      this.document.positionAt(toEditorOffset(shared, eol, offset));
    const placed: PlacedCursor[] = cursors.map((cursor) => {
      const head = position(cursor.head);
      return { cursor, head, range: new vscode.Range(position(cursor.anchor), head) };
    });
    for (const editor of editors) this.host.decorations.render(editor, placed);
  }

  /** Undoes this user's last edit in this document (never another user's or agent's). */
  undo(): void {
    this.undoManager?.undo();
  }

  /** Redoes this user's last undone edit. */
  redo(): void {
    this.undoManager?.redo();
  }

  /** Checks soon whether the text is on disk, to clear "dirty" (the server writes it). */
  schedulePersistCheck(): void {
    if (this.disposed) return;
    this.persistAttempts = 0;
    this.armPersistCheck();
  }

  /** Leaves the shared document and removes the cursors it drew. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.persistTimer) clearTimeout(this.persistTimer);
    if (this.driftTimer) clearInterval(this.driftTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.undoManager?.destroy();
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === this.document) this.host.decorations.clear(editor);
    }
    this.handle.dispose();
  }

  private tellReadOnly(reason: string): void {
    if (this.toldReadOnly) return;
    this.toldReadOnly = true;
    this.host.readOnly(this, reason);
  }

  /** Applies the shared text to the editor, one apply at a time (another follows if asked meanwhile). */
  private scheduleApply(): void {
    if (this.applying) {
      this.applyAgain = true;
      return;
    }
    this.applying = this.applyShared()
      .catch((err: unknown) => this.host.log.warn(`live editing ${this.relPath}: ${(err as Error).message}`))
      .finally(() => {
        this.applying = null;
        this.renderCursors();
        if (this.applyAgain) {
          this.applyAgain = false;
          this.scheduleApply();
        }
      });
  }

  /**
   * Brings the editor to the shared text with one minimal replace, retried while the document moves
   * underneath (a person typing: VS Code refuses an edit made for an older version).
   */
  private async applyShared(): Promise<void> {
    const text = this.text;
    for (let attempt = 0; attempt < APPLY_ATTEMPTS; attempt++) {
      if (!text || this.disposed || this.document.isClosed) return;
      const shared = text.toString();
      const gen = this.remoteGen;
      const target = toEditorText(shared, eolOf(this.document));
      const current = this.document.getText();
      const region = changedRegion(current, target);
      if (!region) {
        this.base = shared;
        if (gen === this.remoteGen) this.behind = false;
        return;
      }
      const edit = new vscode.WorkspaceEdit();
      edit.replace(
        this.document.uri,
        new vscode.Range(this.document.positionAt(region.start), this.document.positionAt(region.endA)),
        target.slice(region.start, region.endB),
      );
      const ticket = this.echo.expect(target, { shared, gen });
      const applied = await vscode.workspace.applyEdit(edit).then(
        (ok) => ok,
        () => false,
      );
      this.echo.settle(ticket);
      if (applied && this.document.getText() === target) {
        this.base = shared;
        if (gen === this.remoteGen) {
          this.behind = false;
          return;
        }
      } else {
        await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * (attempt + 1))));
      }
    }
    this.host.log.warn(`live editing ${this.relPath}: the editor kept moving; the drift check will retry`);
  }

  /** The whole text, compared: anything the editor holds that the shared text does not is repaired. */
  private checkDrift(): void {
    const text = this.text;
    if (!text || this.disposed || this.applying || this.echo.inFlight || this.reverting !== null) return;
    const target = toEditorText(text.toString(), eolOf(this.document));
    if (target !== this.document.getText()) {
      this.host.log.info(`live editing ${this.relPath}: editor and shared text differ; repairing`);
      this.behind = true;
      this.scheduleApply();
    }
  }

  private armPersistCheck(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.checkPersisted().catch((err: unknown) =>
        this.host.log.warn(`live editing ${this.relPath}: ${(err as Error).message}`),
      );
    }, PERSIST_CHECK_MS);
  }

  /**
   * The server has written the shared text to disk: the editor is not "dirty" for it any more. VS
   * Code has no API to mark a document saved, and saving would run formatters and then fail on the
   * newer file the server wrote, so the active editor is reverted to the disk, which holds exactly
   * its text (nothing changes in it); other editors are cleared when they become active.
   */
  private async checkPersisted(): Promise<void> {
    const text = this.text;
    if (!text || this.disposed || !this.document.isDirty || this.readOnly) return;
    const retry = (): void => {
      if (++this.persistAttempts < PERSIST_ATTEMPTS) this.armPersistCheck();
    };
    const shared = text.toString();
    const shown = toEditorText(shared, eolOf(this.document));
    if (this.behind || this.applying || this.echo.inFlight || this.document.getText() !== shown)
      return retry();
    const disk = new TextDecoder().decode(await vscode.workspace.fs.readFile(this.document.uri));
    if (disk !== shared) return retry();
    if (this.disposed || text.toString() !== shared || this.document.getText() !== shown) return retry();
    if (!this.host.mayRevert(this.document)) return;
    this.reverting = shown;
    try {
      await vscode.commands.executeCommand('workbench.action.files.revert');
    } finally {
      this.reverting = null;
    }
    if (this.document.getText() !== toEditorText(text.toString(), eolOf(this.document))) {
      this.behind = true;
      this.scheduleApply();
    }
  }
}
