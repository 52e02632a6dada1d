import { posix } from 'node:path';

/** Where a tool ran, as the parsers need it to map the paths it printed. */
export interface PathContext {
  /** Absolute POSIX path of the workspace folder inside the container, e.g. `/workspaces/app`. */
  containerWorkspace: string;
  /** Workspace-relative POSIX working directory of the run ("." for the workspace root). */
  cwd: string;
}

/**
 * Maps a path a tool printed (absolute in the container, or relative to the run's working
 * directory) to a workspace-relative POSIX path; null when it points outside the workspace or is
 * not a plain path. The result is only a name for display and lookup: callers must still confine it
 * before touching a file, since the tool's output is whatever the agent's code made it print.
 */
export function toWorkspacePath(reported: string, ctx: PathContext): string | null {
  const text = reported.trim();
  if (text.length === 0 || text.length > 4096 || hasControlCharacter(text)) return null;
  let relative: string;
  if (text.startsWith('/')) {
    const root = withoutTrailingSlashes(posix.normalize(ctx.containerWorkspace));
    const absolute = posix.normalize(text);
    if (root === '' || !root.startsWith('/')) return null;
    if (absolute === root) return '.';
    if (!absolute.startsWith(`${root}/`)) return null;
    relative = absolute.slice(root.length + 1);
  } else {
    relative = posix.normalize(posix.join(ctx.cwd, text));
  }
  relative = withoutTrailingSlashes(relative);
  if (relative === '' || relative === '.') return '.';
  if (relative === '..' || relative.startsWith('../') || relative.startsWith('/')) return null;
  return relative;
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function withoutTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end--;
  return text.slice(0, end);
}
