import { createHash } from 'node:crypto';
import * as vscode from 'vscode';
import * as Y from 'yjs';
import { replaceText } from '../../core/collab';
import { editorToShared } from './changes';
import { CursorDecorations, type PlacedCursor } from './cursors';
import { toEditorOffset, toEditorText, toSharedOffset, type Eol } from './eol';
import { EditorMirror } from './mirror';
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
/** Longest Ctrl+S waits for the server's write before leaving the save to VS Code (ms). */
const SAVE_WAIT_MS = 2500;
/** How often Ctrl+S looks for the server's write (ms). */
const SAVE_POLL_MS = 40;

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
  /** What the editor shows and what its change events mean (null until the first sync). */
  private mirror: EditorMirror | null = null;
  private applying: Promise<void> | null = null;
  private applyAgain = false;
  private persistTimer: NodeJS.Timeout | null = null;
  private persistAttempts = 0;
  private driftTimer: NodeJS.Timeout | null = null;
  private readonly cleanups: Unsubscribe[] = [];
  private disposed = false;
  private toldReadOnly = false;
  /** The last {@link DocumentBinding.clearDirty} (they run one after the other). */
  private clearing: Promise<unknown> = Promise.resolve();
  /** The Ctrl+S in progress (a second one waits for it). */
  private saving: Promise<void> | null = null;

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
    const shared = text.toString();
    const eol = eolOf(this.document);
    const shown = toEditorText(shared, eol);
    const editor = this.document.getText();
    // What the editor shows, in shared form.
    const mirrored = editorToShared(shared, shown, editor, eol);
    if (this.document.isDirty && editor !== shown && !this.readOnly) replaceText(text, mirrored, this.origin);
    const mirror = new EditorMirror(text, this.origin, mirrored);
    this.mirror = mirror;
    const onShared = (_event: Y.YTextEvent, tr: Y.Transaction): void => {
      const remote = tr.origin !== this.origin;
      mirror.sharedChanged(remote, eolOf(this.document));
      if (!remote) return;
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
    if (mirror.behind) this.scheduleApply();
    this.schedulePersistCheck();
    this.host.changed();
    const active = vscode.window.activeTextEditor;
    if (active?.document === this.document) this.publishCursor(active.selection);
    this.renderCursors();
  }

  /** A change of the editor's document (from VS Code's onDidChangeTextDocument). */
  onEditorChange(event: vscode.TextDocumentChangeEvent): void {
    const mirror = this.mirror;
    if (!mirror || this.disposed || event.contentChanges.length === 0) return;
    const outcome = mirror.editorChanged(
      event.contentChanges,
      eolOf(this.document),
      () => this.document.getText(),
      this.readOnly,
    );
    if (outcome === 'read-only') this.tellReadOnly('the server does not accept your edits');
    // Anything but a plain local edit may leave the editor short of the shared text.
    if (outcome !== 'shared' && (outcome !== 'echo' || mirror.behind)) this.scheduleApply();
    if (outcome === 'shared' || outcome === 'merged') this.schedulePersistCheck();
  }

  /** The local user's cursor or selection moved in an editor of this document. */
  publishCursor(selection: vscode.Selection): void {
    const text = this.text;
    const mirror = this.mirror;
    if (!text || !mirror || this.disposed || mirror.behind) return;
    const eol = eolOf(this.document);
    const anchor = toSharedOffset(mirror.base, eol, this.document.offsetAt(selection.anchor));
    const head = toSharedOffset(mirror.base, eol, this.document.offsetAt(selection.active));
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

  /**
   * VS Code is about to write this document (a save, auto-save or Save All): the server is told the
   * SHA-256 of the bytes first, so it does not take them for a change made outside and merge them
   * into the shared text again. The save waits for that (at most about a second).
   */
  announceSave(): Promise<void> {
    if (!this.ready || this.readOnly) return Promise.resolve();
    const sha256 = createHash('sha256').update(this.document.getText(), 'utf8').digest('hex');
    return this.handle.announceSave(sha256);
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
    const mirror = this.mirror;
    for (let attempt = 0; attempt < APPLY_ATTEMPTS; attempt++) {
      if (!mirror || this.disposed || this.document.isClosed) return;
      const change = mirror.nextEdit(this.document.getText(), eolOf(this.document));
      if (!change) return;
      const edit = new vscode.WorkspaceEdit();
      edit.replace(
        this.document.uri,
        new vscode.Range(
          this.document.positionAt(change.rangeOffset),
          this.document.positionAt(change.rangeOffset + change.rangeLength),
        ),
        change.text,
      );
      const ticket = mirror.echo.expect(change);
      const applied = await vscode.workspace.applyEdit(edit).then(
        (ok) => ok,
        () => false,
      );
      mirror.echo.settle(ticket);
      if (!applied) await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * (attempt + 1))));
    }
    this.host.log.warn(`live editing ${this.relPath}: the editor kept moving; the drift check will retry`);
  }

  /** The whole text, compared: anything the editor holds that the shared text does not is repaired. */
  private checkDrift(): void {
    const text = this.text;
    const mirror = this.mirror;
    if (!text || !mirror || this.disposed || this.applying || mirror.echo.inFlight || mirror.isReverting)
      return;
    const target = toEditorText(text.toString(), eolOf(this.document));
    if (target !== this.document.getText()) {
      this.host.log.info(`live editing ${this.relPath}: editor and shared text differ; repairing`);
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
    if ((await this.clearDirty()) === 'later' && ++this.persistAttempts < PERSIST_ATTEMPTS) {
      this.armPersistCheck();
    }
  }

  /**
   * Clears "dirty" if the file on disk holds the editor's text, by reverting the editor to it:
   * `clean` once it is (or was), `later` while the text is not on disk yet, `never` when this editor
   * is not to be reverted now. With `reload`, an editor that is not dirty is reverted too, so VS
   * Code knows the file as the server last wrote it.
   */
  private clearDirty(reload = false): Promise<'clean' | 'later' | 'never'> {
    // One at a time: two reverts at once (the timer's and Ctrl+S's) can leave the editor dirty.
    const run = this.clearing.then(() => this.clearDirtyNow(reload));
    this.clearing = run.catch(() => undefined);
    return run;
  }

  private async clearDirtyNow(reload: boolean): Promise<'clean' | 'later' | 'never'> {
    const text = this.text;
    const mirror = this.mirror;
    if (!text || !mirror || this.disposed || this.readOnly) return 'never';
    if (!this.document.isDirty && !reload) return 'clean';
    const shared = text.toString();
    const shown = toEditorText(shared, eolOf(this.document));
    if (mirror.behind || this.applying || mirror.echo.inFlight || this.document.getText() !== shown)
      return 'later';
    const disk = new TextDecoder().decode(await vscode.workspace.fs.readFile(this.document.uri));
    if (disk !== shared) return 'later';
    if (this.disposed || text.toString() !== shared || this.document.getText() !== shown) return 'later';
    if (!this.host.mayRevert(this.document)) return 'never';
    mirror.beginRevert(shown);
    try {
      await vscode.commands.executeCommand('workbench.action.files.revert');
    } finally {
      mirror.endRevert();
    }
    if (this.document.getText() !== toEditorText(text.toString(), eolOf(this.document))) this.scheduleApply();
    return this.document.isDirty ? 'later' : 'clean';
  }

  /**
   * Ctrl+S in this (active) editor: waits for the server to write the shared text (it does so about
   * 300 ms after the last change, and within 2 s while changes keep coming), reverts the editor to
   * that file (clearing "dirty"), and then lets VS Code save. Saving a document that is not dirty runs the save participants (format
   * on save, code actions on save) without the "content of the file is newer" conflict VS Code would
   * otherwise meet on the file the server wrote; what they change is shared like any edit.
   */
  save(): Promise<void> {
    this.saving ??= this.saveOnce().finally(() => (this.saving = null));
    return this.saving;
  }

  private async saveOnce(): Promise<void> {
    const deadline = Date.now() + SAVE_WAIT_MS;
    // Reverted even when not dirty: the server may have written since VS Code last read the file.
    while (Date.now() < deadline && (await this.clearDirty(true)) === 'later') {
      await new Promise((resolve) => setTimeout(resolve, SAVE_POLL_MS));
    }
    await vscode.commands.executeCommand('workbench.action.files.save');
  }
}
