import * as vscode from 'vscode';
import type { ToolRunReport } from '../core/tools';
import { clampToDocument, problemsOfRun, type ProblemEntry, type ProblemSeverity } from './toolProblems';

const SEVERITY: Record<ProblemSeverity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  information: vscode.DiagnosticSeverity.Information,
};

/** Lines of problems without a file written to the output channel per run, at most. */
const MAX_UNLOCATED_LINES = 20;

/**
 * The Problems panel entries of one folder's typed tools: one diagnostic collection per tool name
 * (created on the tool's first run that found something), replaced by each complete run of that
 * tool, so a clean run clears it. Each run is also summarised in the output channel. Disposed with
 * the folder's server.
 */
export class ToolProblems implements vscode.Disposable {
  private readonly collections = new Map<string, vscode.DiagnosticCollection>();

  constructor(
    private readonly folder: vscode.WorkspaceFolder,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Shows what a finished run found (the listener of the server's `toolRuns.onRun`). */
  show(report: ToolRunReport): void {
    const update = problemsOfRun(report);
    const line = `${this.folder.name}: ${update.summary}`;
    if (report.parseError !== undefined || update.rejected > 0) this.log.warn(line);
    else this.log.info(line);
    for (const problem of update.unlocated.slice(0, MAX_UNLOCATED_LINES)) {
      const code = problem.code !== undefined ? ` [${problem.code}]` : '';
      this.log.info(`  ${report.tool} ${problem.severity}${code}: ${problem.message}`);
    }
    if (!update.replace) return;
    let collection = this.collections.get(report.tool);
    if (!collection) {
      if (update.files.size === 0) return;
      collection = vscode.languages.createDiagnosticCollection(report.tool);
      this.collections.set(report.tool, collection);
    }
    collection.clear();
    const open = new Map(vscode.workspace.textDocuments.map((d) => [d.uri.toString(), d]));
    for (const [path, entries] of update.files) {
      const uri = vscode.Uri.joinPath(this.folder.uri, ...path.split('/'));
      const document = open.get(uri.toString());
      collection.set(
        uri,
        entries.map((entry) =>
          toDiagnostic(
            document
              ? clampToDocument(entry, {
                  lineCount: document.lineCount,
                  lineLength: (n) => document.lineAt(n).text.length,
                })
              : entry,
          ),
        ),
      );
    }
  }

  /** Removes the entries of tools that no longer exist (their manifest was removed). */
  forget(tools: readonly string[]): void {
    for (const tool of tools) {
      this.collections.get(tool)?.dispose();
      this.collections.delete(tool);
    }
  }

  /** Removes every entry of this folder's tools from the Problems panel. */
  dispose(): void {
    for (const collection of this.collections.values()) collection.dispose();
    this.collections.clear();
  }
}

/**
 * A Problems panel entry at the tool's position (an empty range: VS Code underlines the word there,
 * and clamps a position past the end of a file it opens later).
 */
function toDiagnostic(entry: ProblemEntry): vscode.Diagnostic {
  const at = new vscode.Position(entry.line, entry.character);
  const diagnostic = new vscode.Diagnostic(new vscode.Range(at, at), entry.message, SEVERITY[entry.severity]);
  diagnostic.source = entry.source;
  if (entry.code !== undefined) diagnostic.code = entry.code;
  return diagnostic;
}
