/**
 * What the Problems panel shows for one finished typed-tool run: the pure part of the extension's
 * Problems panel glue (no `vscode` import, so it is tested under plain Node).
 */
import type { ToolRunReport } from '../core/tools';

/** The severities of VS Code's Problems panel a tool's diagnostics map to. */
export type ProblemSeverity = 'error' | 'warning' | 'information';

/** One problem at a 0-based position of a workspace file. */
export interface ProblemEntry {
  /** 0-based line. */
  line: number;
  /** 0-based character. */
  character: number;
  severity: ProblemSeverity;
  message: string;
  code?: string;
  /** The tool's name: the source the Problems panel shows (`tool(code)`). */
  source: string;
}

/** A run's effect on its tool's Problems panel entries, and the line the output channel gets. */
export interface ProblemsUpdate {
  /**
   * Whether the tool's entries are replaced by {@link files}: only by a complete run (exited) whose
   * output the parser could read. A run that timed out, was cancelled or killed, or whose output
   * could not be read says nothing about the files, so the entries of the last complete run stay.
   */
  replace: boolean;
  /** Problems by workspace-relative POSIX path, in the tool's order. */
  files: Map<string, ProblemEntry[]>;
  /** Diagnostics the tool gave no file for (path "."): shown in the output channel, without a location. */
  unlocated: { severity: ProblemSeverity; message: string; code?: string }[];
  /** Diagnostics whose path is not a plain workspace-relative path (never shown). */
  rejected: number;
  /** One line for the output channel. */
  summary: string;
}

const SEVERITIES: Record<ToolRunReport['diagnostics'][number]['severity'], ProblemSeverity> = {
  error: 'error',
  warning: 'warning',
  info: 'information',
};

/**
 * Whether `path` is a plain workspace-relative POSIX path of a file: not absolute, no `.`/`..`
 * segment, no backslash, drive letter or control character. The server maps and confines paths
 * already; the extension checks again before it builds a URI from what a tool printed.
 */
export function isPlainRelativePath(path: string): boolean {
  if (path.length === 0 || path.length > 4096 || path.startsWith('/') || path.includes('\\')) return false;
  if (/^[A-Za-z]:/.test(path)) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** Maps a finished run's report to the update of its tool's Problems panel entries. */
export function problemsOfRun(report: ToolRunReport): ProblemsUpdate {
  const files = new Map<string, ProblemEntry[]>();
  const unlocated: ProblemsUpdate['unlocated'] = [];
  let rejected = 0;
  for (const d of report.diagnostics) {
    const severity = SEVERITIES[d.severity];
    const code = d.code !== undefined && d.code !== '' ? { code: d.code } : {};
    if (d.path === '.') {
      unlocated.push({ severity, message: d.message, ...code });
      continue;
    }
    if (!isPlainRelativePath(d.path)) {
      rejected++;
      continue;
    }
    const entry: ProblemEntry = {
      line: d.line - 1,
      character: d.column - 1,
      severity,
      message: d.message,
      ...code,
      source: report.tool,
    };
    const list = files.get(d.path);
    if (list) list.push(entry);
    else files.set(d.path, [entry]);
  }
  const replace = report.parsed && report.status === 'exited' && report.parseError === undefined;
  return { replace, files, unlocated, rejected, summary: summarize(report, files.size, replace, rejected) };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function summarize(report: ToolRunReport, fileCount: number, replace: boolean, rejected: number): string {
  const who = report.principal.kind === 'owner' ? 'the owner' : `agent ${report.principal.name}`;
  const ended =
    report.status === 'exited' ? `exit code ${String(report.exitCode)}` : `ended ${report.status}`;
  const parts = [`tool ${report.tool} run by ${who}: ${ended}`];
  if (report.parsed) {
    const { error, warning, info } = report.counts;
    parts.push(
      `${plural(error, 'error')}, ${plural(warning, 'warning')}, ${info} info in ${plural(fileCount, 'file')}`,
    );
  }
  if (report.tests) {
    const { passed, failed, skipped } = report.tests;
    parts.push(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
  const unlocated = report.diagnostics.filter((d) => d.path === '.').length;
  if (unlocated > 0) parts.push(`${unlocated} without a file (below)`);
  if (report.outsideWorkspace > 0)
    parts.push(`${report.outsideWorkspace} on files outside the workspace dropped`);
  if (rejected > 0) parts.push(`${rejected} with an unusable path dropped`);
  if (report.truncated) parts.push('output truncated: not every problem is listed');
  if (report.parseError !== undefined) parts.push(`output not understood: ${report.parseError}`);
  if (report.parsed && !replace) parts.push('Problems panel keeps the last complete run');
  return parts.join('; ');
}

/** What a document offers for clamping: its line count and the length of a line. */
export interface DocumentLines {
  lineCount: number;
  lineLength(line: number): number;
}

/** `entry`'s position moved inside `document` (a tool can report a line past the end). */
export function clampToDocument(entry: ProblemEntry, document: DocumentLines): ProblemEntry {
  const lastLine = Math.max(0, document.lineCount - 1);
  const line = Math.min(Math.max(0, entry.line), lastLine);
  const character = Math.min(Math.max(0, entry.character), document.lineLength(line));
  return line === entry.line && character === entry.character ? entry : { ...entry, line, character };
}
