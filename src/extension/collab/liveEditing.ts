import * as vscode from 'vscode';
import { DocumentBinding, type BindingHost } from './binding';
import { CursorDecorations } from './cursors';
import type { DocumentSource } from './types';

/** Command ids of live editing, as contributed in package.json. */
export const LIVE_EDITING_COMMANDS = {
  undo: 'mcpWorkspace.liveEditing.undo',
  redo: 'mcpWorkspace.liveEditing.redo',
  save: 'mcpWorkspace.liveEditing.save',
} as const;

/** Context key: the active editor is bound live (its Ctrl+Z undoes only the user's own edits). */
export const LIVE_EDITING_CONTEXT = 'mcpWorkspace.liveEditingBound';

/**
 * A source of shared documents and the editor documents it serves: `relativePath` maps a document
 * URI to the workspace-relative path of its shared document, or null when it is not this source's.
 */
export interface LiveEditingSource {
  source: DocumentSource;
  relativePath(uri: vscode.Uri): string | null;
}

/**
 * Binds every text editor shown in the window whose document a registered source serves to its
 * shared document, while `enabled()` says so; keeps the context key for the undo keybindings and
 * registers the undo and redo commands.
 */
export class LiveEditing implements vscode.Disposable {
  private readonly sources = new Set<LiveEditingSource>();
  private readonly bindings = new Map<vscode.TextDocument, DocumentBinding>();
  private readonly owners = new Map<DocumentBinding, LiveEditingSource>();
  private readonly decorations = new CursorDecorations();
  private readonly disposables: vscode.Disposable[] = [];
  /** Paths told about being read-only (once per path and window). */
  private readonly toldReadOnly = new Set<string>();
  private readonly host: BindingHost;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly enabled: () => boolean,
  ) {
    this.host = {
      log,
      decorations: this.decorations,
      readOnly: (binding, reason) => this.tellReadOnly(binding, reason),
      closed: (binding, reason) => {
        log.info(`live editing ${binding.relPath} ended: ${reason}`);
        this.unbind(binding.document);
      },
      mayRevert: (document) => this.mayRevert(document),
      changed: () => this.updateContext(),
    };
    this.disposables.push(
      this.decorations,
      vscode.window.onDidChangeVisibleTextEditors(() => this.refresh()),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        this.updateContext();
        if (editor) this.bindings.get(editor.document)?.schedulePersistCheck();
      }),
      vscode.workspace.onDidChangeTextDocument((e) => this.bindings.get(e.document)?.onEditorChange(e)),
      vscode.workspace.onDidCloseTextDocument((document) => this.unbind(document)),
      vscode.workspace.onWillSaveTextDocument((e) => {
        const binding = this.bindings.get(e.document);
        if (binding) e.waitUntil(binding.announceSave());
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor === vscode.window.activeTextEditor) {
          this.bindings.get(e.textEditor.document)?.publishCursor(e.selections[0] ?? e.textEditor.selection);
        }
      }),
      vscode.commands.registerCommand(LIVE_EDITING_COMMANDS.undo, () => this.activeBinding()?.undo()),
      vscode.commands.registerCommand(LIVE_EDITING_COMMANDS.redo, () => this.activeBinding()?.redo()),
      vscode.commands.registerCommand(LIVE_EDITING_COMMANDS.save, () => {
        const binding = this.activeBinding();
        return binding ? binding.save() : vscode.commands.executeCommand('workbench.action.files.save');
      }),
    );
    this.updateContext();
  }

  /** Adds a source of shared documents; disposing the result unbinds its documents. */
  register(source: LiveEditingSource): vscode.Disposable {
    this.sources.add(source);
    this.refresh();
    return new vscode.Disposable(() => {
      this.sources.delete(source);
      for (const [binding, owner] of [...this.owners]) {
        if (owner === source) this.unbind(binding.document);
      }
    });
  }

  /** Whether `uri` is open in an editor bound live (its text reaches the disk through the server). */
  isBound(uri: vscode.Uri): boolean {
    const key = uri.toString();
    for (const [document, binding] of this.bindings) {
      if (document.uri.toString() === key) return binding.ready && !binding.readOnly;
    }
    return false;
  }

  /** Binds what should be bound now and unbinds the rest (after a setting or source change). */
  refresh(): void {
    if (!this.enabled()) {
      for (const document of [...this.bindings.keys()]) this.unbind(document);
      this.updateContext();
      return;
    }
    for (const editor of vscode.window.visibleTextEditors) this.bind(editor.document);
    for (const binding of this.bindings.values()) binding.renderCursors();
    this.updateContext();
  }

  dispose(): void {
    for (const document of [...this.bindings.keys()]) this.unbind(document);
    for (const d of this.disposables.splice(0)) d.dispose();
    void vscode.commands.executeCommand('setContext', LIVE_EDITING_CONTEXT, false);
  }

  private bind(document: vscode.TextDocument): void {
    if (this.bindings.has(document) || document.isClosed || document.isUntitled) return;
    for (const source of this.sources) {
      const relPath = source.relativePath(document.uri);
      if (relPath === null) continue;
      const binding = new DocumentBinding(document, relPath, source.source.open(relPath), this.host);
      this.bindings.set(document, binding);
      this.owners.set(binding, source);
      binding.start().catch((err: unknown) => {
        this.log.info(`live editing ${relPath} not available: ${(err as Error).message}`);
        this.unbind(document);
      });
      return;
    }
  }

  private unbind(document: vscode.TextDocument): void {
    const binding = this.bindings.get(document);
    if (!binding) return;
    this.bindings.delete(document);
    this.owners.delete(binding);
    binding.dispose();
    this.updateContext();
  }

  private activeBinding(): DocumentBinding | undefined {
    const editor = vscode.window.activeTextEditor;
    return editor ? this.bindings.get(editor.document) : undefined;
  }

  private updateContext(): void {
    const binding = this.activeBinding();
    void vscode.commands.executeCommand('setContext', LIVE_EDITING_CONTEXT, !!binding?.ready);
  }

  /**
   * Reverting acts on the active editor: only when it shows this document and no other editor of
   * any kind holds unsaved changes that are not bound (so a revert can never drop a person's work).
   */
  private mayRevert(document: vscode.TextDocument): boolean {
    if (vscode.window.activeTextEditor?.document !== document) return false;
    const bound = new Set([...this.bindings.keys()].map((d) => d.uri.toString()));
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        if (!tab.isDirty) continue;
        const input = tab.input;
        if (!(input instanceof vscode.TabInputText) || !bound.has(input.uri.toString())) return false;
      }
    }
    return true;
  }

  private tellReadOnly(binding: DocumentBinding, reason: string): void {
    this.log.info(`live editing ${binding.relPath} is read-only: ${reason}`);
    if (this.toldReadOnly.has(binding.relPath)) return;
    this.toldReadOnly.add(binding.relPath);
    void vscode.window.showInformationMessage(
      `MCP Workspace: ${binding.relPath} is read-only for you (${reason}). Edits you make to it are undone.`,
    );
  }
}
