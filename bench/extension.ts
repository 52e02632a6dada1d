import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  REPO_ROOT,
  launchBrowser,
  openWorkbench,
  packageVsix,
  provisionE2E,
  startCodeServer,
  waitFor,
} from '../test/e2e/harness';

/** Resident set size of a process in MB, from /proc. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

/** Finds `text` (a regex with one number group) in any file below `dir`. */
async function findInLogs(dir: string, pattern: RegExp): Promise<number | null> {
  for (const entry of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    const file = join(dir, entry);
    if (!(await stat(file).catch(() => null))?.isFile()) continue;
    const match = pattern.exec(await readFile(file, 'utf8').catch(() => ''));
    if (match) return Number(match[1]);
  }
  return null;
}

/**
 * The extension's figures: VSIX size, activation to server-ready time in a real VS Code
 * (code-server, from the extension's own log), and the idle RSS of the server (headless, alone in
 * its process, after start-up settles).
 */
export async function benchExtension(): Promise<Record<string, number>> {
  await provisionE2E();
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-ext-'));
  try {
    const vsix = packageVsix(join(root, 'mcp-workspace.vsix'), true);
    const vsixMb = Math.round(((await stat(vsix)).size / 1024 / 1024) * 100) / 100;

    const workspace = join(root, 'project');
    await mkdir(workspace);
    await writeFile(join(workspace, 'README.md'), '# bench\n');
    const codeServer = await startCodeServer({
      vsix,
      workspace,
      name: 'bench',
      env: { XDG_STATE_HOME: join(root, 'state') },
    });
    const browser = await launchBrowser();
    let activationToReadyMs: number;
    try {
      await openWorkbench(browser.page, codeServer.url, workspace);
      activationToReadyMs = await waitFor(
        () => findInLogs(join(codeServer.userDataDir, 'logs'), /ready (\d+) ms after activation/),
        90_000,
        { what: 'the extension to report its server ready', page: browser.page },
      );
    } finally {
      await browser.close();
      await codeServer.stop();
    }

    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'dist/cli.js'), 'serve', workspace, '--state-dir', join(root, 'cli-state')],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    try {
      await new Promise<string>((ok) => createInterface({ input: child.stdout! }).once('line', ok));
      await new Promise((r) => setTimeout(r, 3000));
      const idleRssMb = await rssMb(child.pid!);
      return { vsixMb, activationToReadyMs, idleServerRssMb: idleRssMb };
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
