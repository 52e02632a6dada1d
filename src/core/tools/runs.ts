import type { Diagnostic, DiagnosticSeverity, TestCounts } from '../../protocol/diagnostics';
import type { Principal } from '../../protocol/principal';
import type { ToolResult } from '../../protocol/tools';
import type { Logger } from '../log';

/**
 * What one finished typed-tool run found, as the VS Code Problems panel (and any other in-process
 * listener) needs it. Paths are workspace-relative, already mapped by the output parser: a file the
 * tool printed outside the workspace is not in `diagnostics` but counted in `outsideWorkspace`, and a
 * diagnostic the tool gave no file for has the path ".".
 */
export interface ToolRunReport {
  /** The tool that ran (its manifest's or detected name). */
  tool: string;
  /** Who ran it. */
  principal: Principal;
  sessionId: string;
  executionId: string;
  /** How the execution ended: `exited` is a complete run, the others ended early. */
  status: ToolResult['status'];
  exitCode: number | null;
  /** What the parser found, in output order (empty when the manifest names no parser). */
  diagnostics: Diagnostic[];
  /** How many diagnostics of each severity. */
  counts: Record<DiagnosticSeverity, number>;
  /** Test counts, when the tool is a test runner whose output shows them. */
  tests?: TestCounts;
  /** Diagnostics dropped because the tool printed a file outside the workspace. */
  outsideWorkspace: number;
  /** Part of the output was not parsed, or diagnostics beyond the cap were dropped. */
  truncated: boolean;
  /** Why the output could not be read as the parser expects; the diagnostics are then not the tool's verdict. */
  parseError?: string;
  /** Whether the manifest names an output parser (without one, `diagnostics` is always empty). */
  parsed: boolean;
  /** When the run ended (ISO 8601). */
  finishedAt: string;
}

/** How many diagnostics of each severity `diagnostics` holds. */
export function countSeverities(diagnostics: readonly Diagnostic[]): Record<DiagnosticSeverity, number> {
  const counts: Record<DiagnosticSeverity, number> = { error: 0, warning: 0, info: 0 };
  for (const d of diagnostics) counts[d.severity]++;
  return counts;
}

/**
 * The in-process feed of finished typed-tool runs: the tools handler reports each run once its
 * execution ended, listeners (the VS Code extension's Problems panel) subscribe. A listener that
 * throws is logged and never fails the run or the other listeners.
 */
export class ToolRunFeed {
  private readonly listeners = new Set<(report: ToolRunReport) => void>();

  constructor(private readonly log?: Logger) {}

  /** Calls `listener` with every finished run; returns the unsubscribe function. */
  onRun(listener: (report: ToolRunReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reports one finished run to every listener. */
  emit(report: ToolRunReport): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(report);
      } catch (err) {
        this.log?.error('a tool run listener failed', {
          tool: report.tool,
          sessionId: report.sessionId,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  /** Drops every listener (the server is stopping). */
  close(): void {
    this.listeners.clear();
  }
}
