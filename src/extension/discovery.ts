import { mkdir, readFile, readdir, rm, writeFile, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** One server of a VS Code window, as agents and tools discover it. */
export interface DiscoveredServer {
  folder: string;
  url: string;
  mcp: string;
  /** Where the owner token is (mode 0600); the token itself is never written here. */
  tokenFile: string;
}

/** The discovery file of one VS Code window. */
export interface DiscoveryFile {
  pid: number;
  createdAt: string;
  servers: DiscoveredServer[];
}

/** `$XDG_STATE_HOME/mcp-workspace/windows` (default `~/.local/state/...`). */
export function discoveryDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state'), 'mcp-workspace', 'windows');
}

/** Writes this window's discovery file (`<pid>.json`, mode 0600) and returns its path. */
export async function writeDiscoveryFile(
  dir: string,
  pid: number,
  servers: DiscoveredServer[],
): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${pid}.json`);
  const body: DiscoveryFile = { pid, createdAt: new Date().toISOString(), servers };
  await writeFile(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

/** Removes this window's discovery file, if any. */
export async function removeDiscoveryFile(dir: string, pid: number): Promise<void> {
  await rm(join(dir, `${pid}.json`), { force: true });
}

/** Whether a process is alive (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes discovery files of windows whose process is gone (or that are unreadable); returns how many. */
export async function cleanStaleDiscoveryFiles(dir: string, alive = processAlive): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = join(dir, name);
    let pid = Number.NaN;
    try {
      pid = (JSON.parse(await readFile(file, 'utf8')) as DiscoveryFile).pid;
    } catch {
      // unreadable: treated as stale below
    }
    if (!Number.isInteger(pid) || !alive(pid)) {
      await rm(file, { force: true });
      removed++;
    }
  }
  return removed;
}

/** The discovery files of live windows. */
export async function readDiscoveryFiles(dir: string, alive = processAlive): Promise<DiscoveryFile[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const files: DiscoveryFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      const file = JSON.parse(await readFile(join(dir, name), 'utf8')) as DiscoveryFile;
      if (alive(file.pid)) files.push(file);
    } catch {
      // a file being written or removed: skip it
    }
  }
  return files;
}
