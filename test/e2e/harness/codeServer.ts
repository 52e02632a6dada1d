/** A real VS Code (code-server) per test run: start, wait for the extension, stop and clean up. */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { descendants, procStat } from '../../helpers/procs';
import { describeScreen } from './browser';
import { ARTIFACTS_DIR, provisionE2E, type E2EPaths } from './provision';
import { sanitize, sleep } from './util';
import { waitFor } from './workbench';

/** Options of {@link startCodeServer}. */
export interface CodeServerOptions {
  /** VSIX file(s) to install into the run's fresh extensions dir before starting. */
  vsix?: string | string[];
  /** Folder to open (passed to code-server; open it in the browser with {@link openWorkbench}). */
  workspace?: string;
  /** Extra environment for code-server; it reaches the extension host. */
  env?: Record<string, string>;
  /** User settings, merged over the harness defaults (see {@link DEFAULT_SETTINGS}). */
  settings?: Record<string, unknown>;
  /** Extra command-line arguments for code-server. */
  args?: string[];
  /** Name of the run, used for the log directory kept under {@link ARTIFACTS_DIR}/logs. */
  name?: string;
  /** How long to wait for /healthz (default 60 s). */
  readyTimeoutMs?: number;
}

/** A running code-server; {@link stop} it in an `after` hook. */
export interface RunningCodeServer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** PID of the code-server process (the wrapper execs node, so this is node's PID). */
  pid: number;
  /** Temporary root holding config, user data, extensions and the log; removed by stop(). */
  root: string;
  userDataDir: string;
  extensionsDir: string;
  /** code-server's stdout and stderr (also of the --install-extension step). */
  logs: string;
  /** The last `lines` lines of {@link logs}. */
  logTail(lines?: number): string;
  /**
   * Stops code-server and every descendant process by PID (SIGTERM, then SIGKILL after 5 s),
   * waits for them to be gone and the port to be free, copies the logs to
   * {@link ARTIFACTS_DIR}/logs/<name> and removes the temporary root (kept when MCPW_E2E_KEEP=1).
   * Idempotent.
   */
  stop(): Promise<void>;
}

/** User settings every run gets (RECIPES: quiet, no update checks, no trust prompt). */
export const DEFAULT_SETTINGS: Readonly<Record<string, unknown>> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'security.workspace.trust.enabled': false,
  'update.mode': 'none',
  'git.enabled': false,
  'chat.disableAIFeatures': true,
};

const running = new Set<RunningCodeServer>();

/** The code-servers started by this process and not yet stopped. */
export function runningCodeServers(): ReadonlySet<RunningCodeServer> {
  return running;
}
const livePids = new Set<number>();
let exitHookInstalled = false;

/** Last-resort cleanup when the test process exits without calling stop(): SIGKILL by PID. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      for (const p of [...descendants(pid), pid]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

/**
 * Starts code-server on a free 127.0.0.1 port with a fresh user-data dir, extensions dir and empty
 * config file, after installing `vsix` into it. Resolves once /healthz answers. Throws with the
 * tail of code-server's log when it exits early or does not become ready.
 */
export async function startCodeServer(options: CodeServerOptions = {}): Promise<RunningCodeServer> {
  const paths = await provisionE2E();
  const root = await mkdtemp(join(tmpdir(), 'mcpw-e2e-cs-'));
  const config = join(root, 'config.yaml');
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  const logs = join(root, 'code-server.log');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(config, '');
  writeFileSync(
    join(userDataDir, 'User', 'settings.json'),
    JSON.stringify({ ...DEFAULT_SETTINGS, ...options.settings }, null, 2),
  );
  writeFileSync(logs, '');
  const logTail = (lines = 40): string => tailOf(logs, lines);
  const env = codeServerEnv(paths, root, options.env);
  const baseArgs = ['--config', config, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];

  const vsixes = options.vsix === undefined ? [] : ([] as string[]).concat(options.vsix);
  if (vsixes.length > 0) {
    const args = [...baseArgs, ...vsixes.flatMap((v) => ['--install-extension', resolve(v)])];
    const { code } = await runLogged(paths.codeServer, args, env, logs, 120_000);
    const installed = readdirSync(extensionsDir).filter((d) => !d.startsWith('.') && d !== 'extensions.json');
    if (code !== 0 || installed.length < vsixes.length) {
      await rm(root, { recursive: true, force: true }).catch(() => undefined);
      throw new Error(
        `code-server --install-extension ${vsixes.map((v) => basename(v)).join(' ')} failed ` +
          `(exit ${code}, installed: ${installed.join(', ') || 'nothing'}); log tail:\n${tailOf(logs, 40)}`,
      );
    }
  }

  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  let child: ChildProcess | null = null;
  let port = 0;
  let lastError = '';
  for (let attempt = 1; attempt <= 3 && !child; attempt++) {
    port = await freePort();
    const args = [
      ...baseArgs,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--auth',
      'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      ...(options.args ?? []),
      ...(options.workspace ? [options.workspace] : []),
    ];
    const logFd = openSync(logs, 'a');
    const proc = spawn(paths.codeServer, args, { env, stdio: ['ignore', logFd, logFd], detached: true });
    closeSync(logFd);
    const exited = new Promise<string>((res) => {
      proc.on('exit', (code, signal) => res(`exited with ${signal ?? `code ${code}`}`));
      proc.on('error', (err) => res(`failed to start: ${err.message}`));
    });
    if (proc.pid !== undefined) livePids.add(proc.pid);
    installExitHook();
    const outcome = await Promise.race([waitHealthy(port, readyTimeoutMs), exited]);
    if (outcome === 'healthy') {
      child = proc;
      break;
    }
    if (proc.pid !== undefined) {
      await killTree(proc.pid, proc);
      livePids.delete(proc.pid);
    }
    lastError = outcome === 'timeout' ? `/healthz did not answer within ${readyTimeoutMs} ms` : outcome;
    // Only a lost race for the port is worth another attempt.
    if (!/EADDRINUSE/.test(tailOf(logs, 20))) break;
  }
  if (!child || child.pid === undefined) {
    const tail = tailOf(logs, 40);
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`code-server did not start: ${lastError}; log tail:\n${tail}`);
  }

  const pid = child.pid;
  const proc = child;
  let stopping: Promise<void> | null = null;
  const server: RunningCodeServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    pid,
    root,
    userDataDir,
    extensionsDir,
    logs,
    logTail,
    stop() {
      stopping ??= (async () => {
        running.delete(server);
        await killTree(pid, proc);
        livePids.delete(pid);
        await waitPortFree(port, 15_000);
        keepLogs(server, options.name ?? `code-server-${port}-${Date.now()}`);
        if (process.env['MCPW_E2E_KEEP'] !== '1') await rm(root, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  running.add(server);
  return server;
}

/** The environment code-server runs with: isolated from any VS Code this process runs inside. */
function codeServerEnv(paths: E2EPaths, root: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // VSCODE_IPC_HOOK_CLI & co. would make code-server talk to an enclosing VS Code; NODE_OPTIONS
    // may carry this test runner's loaders (tsx) into the extension host.
    if (/^(VSCODE_|ELECTRON_)/.test(key) || key === 'NODE_OPTIONS') continue;
    env[key] = value;
  }
  return {
    ...env,
    PATH: `${join(paths.node22, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    XDG_CONFIG_HOME: join(root, 'xdg-config'),
    XDG_DATA_HOME: join(root, 'xdg-data'),
    XDG_CACHE_HOME: join(root, 'xdg-cache'),
    // No extension gallery: nothing is fetched from open-vsx.org.
    EXTENSIONS_GALLERY: '{}',
    ...extra,
  };
}

/** Runs a command to completion with its output appended to `logFile`. */
function runLogged(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  timeoutMs: number,
): Promise<{ code: number | null }> {
  return new Promise((res, reject) => {
    const fd = openSync(logFile, 'a');
    writeFileSync(fd, `$ ${basename(cmd)} ${args.join(' ')}\n`);
    const proc = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${basename(cmd)} ${args.join(' ')} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      res({ code });
    });
  });
}

function tailOf(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

function keepLogs(server: RunningCodeServer, name: string): void {
  const dest = join(ARTIFACTS_DIR, 'logs', sanitize(name));
  try {
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    cpSync(server.logs, join(dest, 'code-server.log'));
    const vscodeLogs = join(server.userDataDir, 'logs');
    if (existsSync(vscodeLogs)) cpSync(vscodeLogs, join(dest, 'vscode'), { recursive: true });
  } catch {
    // Logs are a debugging aid only.
  }
}

/** The extension host logs of a run (`<user-data>/logs/<session>/exthost<N>/remoteexthost.log`). */
export function extensionHostLogs(server: RunningCodeServer): string[] {
  const root = join(server.userDataDir, 'logs');
  const out: string[] = [];
  if (!existsSync(root)) return out;
  for (const session of readdirSync(root)) {
    const sessionDir = join(root, session);
    let entries: string[];
    try {
      entries = readdirSync(sessionDir);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const log = join(sessionDir, entry, 'remoteexthost.log');
      if (/^exthost\d+$/.test(entry) && existsSync(log)) out.push(log);
    }
  }
  return out.sort();
}

/**
 * Waits until the extension host has activated `extensionId` (`publisher.name`), read from its log
 * (the line is written as activate() is called: check what activate() does separately). Fails early when the log reports that the activation failed, and on timeout with every log line
 * that mentions the extension plus what is on screen when `page` is given.
 */
export async function waitForActivation(
  server: RunningCodeServer,
  extensionId: string,
  timeoutMs = 30_000,
  page?: Page,
): Promise<void> {
  const id = extensionId.toLowerCase();
  const logLines = (): string[] =>
    extensionHostLogs(server).flatMap((log) => readFileSync(log, 'utf8').split('\n'));
  const mentions = (): string[] => logLines().filter((line) => line.toLowerCase().includes(id));
  const activated = (line: string): boolean => line.toLowerCase().includes(`_doactivateextension ${id},`);
  const failed = (line: string): boolean =>
    line.toLowerCase().includes(id) && /activating extension .*failed/i.test(line);
  let outcome: { failure?: string };
  try {
    outcome = await waitFor(
      () => {
        const lines = logLines();
        const at = lines.findIndex(failed);
        // The error and its stack follow the "failed" line.
        if (at >= 0) return { failure: lines.slice(at, at + 8).join('\n') };
        return lines.some(activated) ? {} : null;
      },
      timeoutMs,
      { what: `activation of ${extensionId}` },
    );
  } catch (err) {
    let message = `${(err as Error).message}\nextension host log lines about ${extensionId}:\n`;
    message += mentions().join('\n') || '(none)';
    message += `\nextension host logs: ${extensionHostLogs(server).join(', ') || '(none yet)'}`;
    if (page) message += `\n--- on screen ---\n${await describeScreen(page)}`;
    throw new Error(message, { cause: err });
  }
  if (outcome.failure) throw new Error(`the extension host reports a failed activation: ${outcome.failure}`);
}

/** A port that was free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((res, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function waitHealthy(port: number, timeoutMs: number): Promise<'healthy' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.text();
      if (res.ok) return 'healthy';
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  return 'timeout';
}

async function waitPortFree(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const free = await new Promise<boolean>((res) => {
      const srv = createServer();
      srv.once('error', () => res(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
    });
    if (free) return;
    if (Date.now() > deadline)
      throw new Error(`port ${port} still in use ${timeoutMs} ms after stopping code-server`);
    await sleep(200);
  }
}

function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * Stops `pid` and its descendants, each by PID: SIGTERM to all, SIGKILL to survivors after 5 s.
 * The tree is read before signalling, as children are re-parented once their parent is gone.
 */
async function killTree(pid: number, proc: ChildProcess): Promise<void> {
  const exited =
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((res) => proc.once('exit', () => res()));
  const pids = [...descendants(pid), pid];
  const signal = (sig: NodeJS.Signals): void => {
    for (const p of pids) {
      if (!alive(p)) continue;
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 5_000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(100);
  if (pids.some(alive)) {
    signal('SIGKILL');
    const hardDeadline = Date.now() + 5_000;
    while (pids.some(alive) && Date.now() < hardDeadline) await sleep(100);
  }
  await Promise.race([exited, sleep(5_000)]);
}
