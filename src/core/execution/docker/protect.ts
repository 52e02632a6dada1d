/**
 * The container side of protected paths: which workspace paths a session container sees read-only
 * (existing ones) or as empty read-only placeholders (missing ones, so a command cannot create
 * `.vscode/settings.json` either), and the check after start that each bind mount shows the very
 * directory that was inspected. Private to the Docker runtime.
 */
import { lstat, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { WorkspaceError } from '../../../protocol/errors';
import {
  CODE_WORKSPACE_SUFFIX,
  gitHooksFolders,
  PROTECTED_ROOT_FILES,
  PROTECTED_ROOT_FOLDERS,
} from '../../policy';
import { walkConfined, type ConfinedRootHandle } from '../../resources';
import type { ProtectedMount } from './sandbox';

/** Folders below which nested `.git` entries are not searched (vendored trees). */
const SKIPPED_FOR_NESTED_GIT = new Set(['node_modules', '.git']);
/** Entries visited at most when looking for nested `.git` entries at container start. */
const NESTED_GIT_SCAN_LIMIT = 100_000;
/** Depth below the root searched for nested `.git` entries. */
const NESTED_GIT_SCAN_DEPTH = 8;

/** A protected mount together with what the host showed when it was planned. */
export interface PlannedProtection {
  mount: ProtectedMount;
  /** Workspace-relative path. */
  rel: string;
  /** `dev:ino` of an existing entry (bind mounts), to compare with what the container shows. */
  identity: string | null;
}

/** `dev:ino` of stats. */
function identity(stats: { dev: number; ino: number }): string {
  return `${stats.dev}:${stats.ino}`;
}

/** Workspace-relative paths protected in containers, in the order they are planned. */
async function protectedCandidates(
  workspace: string,
  root: ConfinedRootHandle,
): Promise<{ rel: string; directory: boolean; pinOnly?: boolean }[]> {
  const candidates: { rel: string; directory: boolean; pinOnly?: boolean }[] = [
    { rel: '.git', directory: true },
  ];
  for (const folder of PROTECTED_ROOT_FOLDERS) candidates.push({ rel: folder, directory: true });
  for (const folder of await gitHooksFolders(workspace)) {
    // Pin its parents (renaming `tools` would let a command make a new `tools/hooks`).
    const parts = folder.split('/');
    for (let i = 1; i < parts.length; i++) {
      candidates.push({ rel: parts.slice(0, i).join('/'), directory: true, pinOnly: true });
    }
    candidates.push({ rel: folder, directory: true });
  }
  for (const file of PROTECTED_ROOT_FILES) candidates.push({ rel: file, directory: false });
  for (const name of await readdir(workspace).catch(() => [] as string[])) {
    if (name.endsWith(CODE_WORKSPACE_SUFFIX)) candidates.push({ rel: name, directory: false });
  }
  let visited = 0;
  walkConfined(root, '.', {
    maxDepth: NESTED_GIT_SCAN_DEPTH,
    onEntry: (entry) => {
      if (++visited > NESTED_GIT_SCAN_LIMIT) return 'stop';
      if (
        entry.name === '.git' &&
        entry.rel !== '.git' &&
        (entry.type === 'directory' || entry.type === 'file')
      ) {
        candidates.push({ rel: entry.rel, directory: entry.type === 'directory' });
      }
      return SKIPPED_FOR_NESTED_GIT.has(entry.name) ? 'skip' : undefined;
    },
  });
  const seen = new Set<string>();
  return candidates.filter(({ rel }) => !seen.has(rel) && seen.add(rel));
}

/**
 * Plans the protected mounts of a new container. An existing protected entry is bound read-only
 * onto itself, a missing one gets a placeholder; every path on the way must be a real directory
 * (a protected path behind a symbolic link cannot be given a read-only view and is refused).
 * @throws WorkspaceError SANDBOX_UNAVAILABLE naming the symbolic link.
 */
export async function planProtection(
  workspace: string,
  workspaceFolder: string,
  root: ConfinedRootHandle,
): Promise<PlannedProtection[]> {
  const planned: PlannedProtection[] = [];
  for (const { rel, directory, pinOnly } of await protectedCandidates(workspace, root)) {
    const parts = rel.split('/');
    let host = workspace;
    let missing = false;
    let found: Awaited<ReturnType<typeof lstat>> | null = null;
    for (const part of parts) {
      host = join(host, part);
      found = await lstat(host).catch(() => null);
      if (!found) {
        missing = true;
        break;
      }
      if (found.isSymbolicLink()) {
        throw new WorkspaceError(
          'SANDBOX_UNAVAILABLE',
          `The protected path ${rel} is reached through the symbolic link ${host}; commands cannot get a ` +
            'read-only view of it. Replace the link with the real folder or file (the owner can do this).',
          { path: rel },
        );
      }
    }
    // A missing nested path is protected by its nearest protected ancestor or not at all: only
    // top-level entries get placeholders (creating folders deep in the tree would change it).
    if (missing && (parts.length > 1 || pinOnly)) continue;
    const target = posix.join(workspaceFolder, ...parts);
    if (missing || !found) {
      planned.push({ mount: { target, source: null, directory }, rel, identity: null });
    } else {
      planned.push({
        mount: { target, source: host, directory: found.isDirectory(), ...(pinOnly ? { pinOnly } : {}) },
        rel,
        identity: identity(found),
      });
    }
  }
  return planned;
}

/**
 * Checks, through `/proc/<pid>/root` of the container's first process, that every bind mount
 * shows the entry that was inspected when it was planned (so swapping a protected folder for a link
 * while the container started cannot mount anything else). Returns false when the host cannot see
 * the container's root (a remote engine): nothing could be compared.
 * @throws WorkspaceError SANDBOX_UNAVAILABLE when a mount shows something else.
 */
export async function verifyProtection(pid: number, planned: readonly PlannedProtection[]): Promise<boolean> {
  const rootfs = `/proc/${pid}/root`;
  if (!(await stat(rootfs).catch(() => null))) return false;
  for (const { mount, rel, identity: expected } of planned) {
    if (expected === null) continue;
    const seen = await lstat(rootfs + mount.target).catch(() => null);
    if (!seen || identity(seen) !== expected) {
      throw new WorkspaceError(
        'SANDBOX_UNAVAILABLE',
        `The protected path ${rel} changed while the session container started; try again.`,
        { path: rel, changedDuringStart: true },
      );
    }
  }
  return true;
}

/** Placeholders the engine created on the host (mount points of missing protected paths). */
export class Placeholders {
  private readonly created = new Map<string, boolean>();

  /** Remembers the missing top-level entries of `planned` (the engine creates them as mount points). */
  note(workspace: string, planned: readonly PlannedProtection[]): void {
    for (const { mount, rel } of planned) {
      if (mount.source === null) this.created.set(join(workspace, rel), mount.directory);
    }
  }

  /**
   * Removes the mount points left on the host, if still empty. Call only when no session container
   * runs: removing a mount point detaches the mount in every container that has it.
   */
  async removeAll(): Promise<void> {
    const entries = [...this.created];
    this.created.clear();
    for (const [path, directory] of entries) {
      const found = await lstat(path).catch(() => null);
      if (!found) continue;
      if (directory && found.isDirectory()) await rmdir(path).catch(() => undefined);
      else if (!directory && found.isFile() && found.size === 0) await unlink(path).catch(() => undefined);
    }
  }
}
