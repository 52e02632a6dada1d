/**
 * Shared test fixtures: temporary workspaces on the real file system and audit entries. Unit and
 * integration suites use them instead of each writing its own mkdtemp/realpath/cleanup dance.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuditEntry, AuditRecord } from '../../src/core/audit';

/** Creates a fresh directory under the OS temp dir, by its real path (the temp dir may be a link). */
export async function makeTempDir(prefix: string): Promise<string> {
  return fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), `mcpw-${prefix}-`)));
}

/** Removes a directory made by {@link makeTempDir} and everything below it. */
export async function removeTempDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/**
 * A workspace folder `root` beside a folder `outside` it, both under a private temp dir `base`, so
 * a test can prove that nothing outside the workspace was read, written, moved or deleted.
 */
export interface TempWorkspace {
  /** The private temp dir holding both folders (real path). */
  base: string;
  /** The workspace root (real path). */
  root: string;
  /** A sibling folder outside the workspace (real path). */
  outside: string;
  /** Absolute path of a workspace-relative path. */
  abs(rel: string): string;
  /** Writes a file under the workspace, creating its parents. */
  put(rel: string, data: string | Buffer): Promise<void>;
  /** Reads a file under the workspace as UTF-8. */
  read(rel: string): Promise<string>;
  /** Whether an absolute path exists (as a link, not followed). */
  exists(absPath: string): Promise<boolean>;
  /** Deletes `base` with everything in it. */
  remove(): Promise<void>;
}

/** Options of {@link makeTempWorkspace}. */
export interface TempWorkspaceOptions {
  /** Files to create in the workspace, by workspace-relative path. */
  files?: Record<string, string | Buffer>;
  /** Files to create in the folder outside, by path relative to it. */
  outsideFiles?: Record<string, string | Buffer>;
}

/** Creates a {@link TempWorkspace}: `base/ws` and `base/outside`, with the given files. */
export async function makeTempWorkspace(
  prefix: string,
  options: TempWorkspaceOptions = {},
): Promise<TempWorkspace> {
  const base = await makeTempDir(prefix);
  const root = path.join(base, 'ws');
  const outside = path.join(base, 'outside');
  await fs.mkdir(root);
  await fs.mkdir(outside);
  const write = async (file: string, data: string | Buffer): Promise<void> => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, data);
  };
  const workspace: TempWorkspace = {
    base,
    root,
    outside,
    abs: (rel) => path.join(root, rel),
    put: (rel, data) => write(path.join(root, rel), data),
    read: (rel) => fs.readFile(path.join(root, rel), 'utf8'),
    exists: (absPath) =>
      fs.lstat(absPath).then(
        () => true,
        () => false,
      ),
    remove: () => removeTempDir(base),
  };
  for (const [rel, data] of Object.entries(options.files ?? {})) await workspace.put(rel, data);
  for (const [rel, data] of Object.entries(options.outsideFiles ?? {}))
    await write(path.join(outside, rel), data);
  return workspace;
}

/** An audit entry for an allowed, successful `write_file` by agent `claude`, with `overrides` applied. */
export function auditEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    sessionId: 'sess-1',
    agent: 'claude',
    role: 'agent',
    transport: 'mcp',
    op: 'write_file',
    params: { path: 'src/a.ts' },
    decision: 'allow',
    rule: 'agents-write-src',
    outcome: { ok: true },
    durationMs: 2,
    ...overrides,
  };
}

/**
 * A committed audit record number `seq` (timestamp from `seq`, dummy chain hashes) for an allowed,
 * successful `write_file` by agent `claude`, with `overrides` applied: what webview code receives.
 */
export function auditRecord(seq: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    seq,
    ts: new Date(Date.UTC(2025, 0, 1, 12, 0, 0, seq % 1000)).toISOString(),
    prev: '0'.repeat(64),
    hash: 'f'.repeat(64),
    ...auditEntry({ rule: 'allow-src', durationMs: 1.5 }),
    ...overrides,
  };
}
