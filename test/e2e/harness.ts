/**
 * End-to-end harness: a real VS Code workbench (code-server, provisioned by
 * scripts/provision-e2e.sh) driven by Debian's headless Chromium through playwright-core.
 *
 * Typical use in a mocha suite:
 *
 *   const server = await startCodeServer({ vsix, workspace });
 *   const browser = await launchBrowser();
 *   await openWorkbench(browser.page, server.url, workspace);
 *   await runCommand(browser.page, 'My Extension: Do Something');
 *   ...
 *   await browser.close();
 *   await server.stop();
 *
 * Nothing here talks to anything but 127.0.0.1: code-server gets no extension gallery and no
 * telemetry, Chromium gets flags that keep it quiet, and non-local requests are recorded.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
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
import { descendants, procStat } from '../helpers/procs';
import { chromium, type BrowserContext, type FrameLocator, type Locator, type Page } from 'playwright-core';

/** The repository root. */
export const REPO_ROOT = resolve(__dirname, '../..');
/** Where screenshots and the logs of stopped code-server runs are kept (git-ignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, '.test-artifacts', 'e2e');
/** Debian's Chromium, installed by scripts/provision-e2e.sh. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Paths printed by scripts/provision-e2e.sh. */
export interface E2EPaths {
  /** Executable wrapper that runs code-server under Node 22. */
  codeServer: string;
  /** Directory of the private Node 22 (bin/node, include/node). */
  node22: string;
}

let provisioning: Promise<E2EPaths> | null = null;

/**
 * Runs scripts/provision-e2e.sh once per process (later calls share the result) and returns the
 * paths it printed. Installs Debian packages, Node 22 and code-server on a fresh machine (a
 * minute or two); a no-op taking well under a second once everything is cached. The script's
 * progress is forwarded to stderr.
 */
export function provisionE2E(timeoutMs = 600_000): Promise<E2EPaths> {
  provisioning ??= runProvision(timeoutMs).catch((err: unknown) => {
    provisioning = null;
    throw err;
  });
  return provisioning;
}

function runProvision(timeoutMs: number): Promise<E2EPaths> {
  return new Promise((resolvePaths, reject) => {
    const child = spawn('bash', [join(REPO_ROOT, 'scripts', 'provision-e2e.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`scripts/provision-e2e.sh did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const codeServer = /^CODE_SERVER=(.+)$/m.exec(out)?.[1]?.trim();
      const node22 = /^NODE22=(.+)$/m.exec(out)?.[1]?.trim();
      if (code !== 0 || !codeServer || !node22) {
        reject(new Error(`scripts/provision-e2e.sh failed (exit ${code}); stdout:\n${out}`));
        return;
      }
      resolvePaths({ codeServer, node22 });
    });
  });
}

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

/** A headless Chromium with a fresh profile; {@link close} it in an `after` hook. */
export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** URLs of requests to hosts other than 127.0.0.1/localhost (they fail: see the flags). */
  externalRequests: string[];
  /** Closes Chromium and removes its profile dir. Idempotent. */
  close(): Promise<void>;
}

/** Chromium flags verified on this kind of machine (RECIPES "Browser tests"). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // Belt and braces: no name other than localhost resolves, so nothing leaves the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Launches Debian's Chromium headless through playwright-core with a fresh temporary profile. */
export async function launchBrowser(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'mcpw-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: options.viewport ?? { width: 1400, height: 900 },
    env: { ...process.env, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
    args: [...CHROMIUM_ARGS],
  });
  const externalRequests: string[] = [];
  context.on('request', (req) => {
    const url = req.url();
    if (!/^https?:/.test(url)) return;
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') externalRequests.push(url);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  let closing: Promise<void> | null = null;
  return {
    context,
    page,
    externalRequests,
    close() {
      closing ??= (async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/**
 * What is on screen, for failure messages: the page URL and title, visible notifications,
 * dialogs, the quick input, the status bar, and the log tail of every running code-server.
 */
export async function describeScreen(page: Page): Promise<string> {
  const texts = async (selector: string): Promise<string[]> => {
    try {
      const all = await page.locator(selector).filter({ visible: true }).allInnerTexts();
      return all.map((t) => t.replace(/\s+/g, ' ').trim()).filter((t) => t.length > 0);
    } catch {
      return [];
    }
  };
  const lines: string[] = [];
  try {
    lines.push(`url: ${page.url()}`, `title: ${await page.title()}`);
  } catch (err) {
    lines.push(`page unavailable: ${(err as Error).message}`);
  }
  const sections: Array<[string, string]> = [
    [
      'notifications',
      '.notifications-toasts .notification-toast, .notifications-center .notification-list-item',
    ],
    ['dialogs', '.monaco-dialog-box'],
    ['quick input', '.quick-input-widget'],
    ['status bar', '.part.statusbar'],
  ];
  for (const [label, selector] of sections) {
    const found = await texts(selector);
    lines.push(`${label}: ${found.length ? found.map((t) => t.slice(0, 300)).join(' | ') : '(none)'}`);
  }
  for (const server of running) {
    lines.push(`code-server ${server.url} log tail:\n${server.logTail(25)}`);
  }
  return lines.join('\n');
}

/**
 * Packages this repository's extension into `out` with the repository's own vsce (its
 * `vscode:prepublish` script makes the production build first) and returns the path.
 */
export function packageVsix(out: string, quiet = false): string {
  execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '-o', out], {
    cwd: REPO_ROOT,
    stdio: quiet ? 'ignore' : 'inherit',
  });
  return out;
}

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** What is being waited for, for the error message. */
  what?: string;
  /** Page whose screen is described in the error message. */
  page?: Page;
  /** Poll interval (default 250 ms). */
  intervalMs?: number;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * Exceptions thrown by the predicate count as "not yet"; the last one is reported on timeout,
 * together with what was on screen when `page` is given.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(options.intervalMs ?? 250);
  }
  let message = `timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}`;
  if (lastError) message += `\nlast error: ${(lastError as Error).message ?? String(lastError)}`;
  if (options.page) message += `\n--- on screen ---\n${await describeScreen(options.page)}`;
  throw new Error(message, lastError ? { cause: lastError } : undefined);
}

/** Waits for `locator` to be visible, failing with a description of the screen. */
export async function waitVisible(
  page: Page,
  locator: Locator,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: timeoutMs });
  } catch (err) {
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}: ${(err as Error).message.split('\n')[0]}\n` +
        `--- on screen ---\n${await describeScreen(page)}`,
      { cause: err },
    );
  }
}

/**
 * Opens the workbench at `url` on `folder` and waits for `.monaco-workbench` and for the
 * extension host to have started (the status bar is populated).
 */
export async function openWorkbench(
  page: Page,
  url: string,
  folder: string,
  timeoutMs = 60_000,
): Promise<void> {
  const target = `${url.replace(/\/$/, '')}/?folder=${encodeURIComponent(folder)}`;
  await page.goto(target, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  await waitVisible(
    page,
    page.locator('.monaco-workbench'),
    `the workbench (.monaco-workbench) at ${target}`,
    timeoutMs,
  );
  await waitVisible(page, page.locator('.part.statusbar'), 'the status bar', timeoutMs);
}

/**
 * Runs a command from the command palette: F1, types `>` + `title`, waits for a row whose label
 * is exactly `title`, and accepts it (Enter when it is the focused row, a click otherwise). Returns
 * once the palette has closed or the command has opened a quick input of its own (read it with
 * {@link quickPickRows}).
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  // The first F1 can land before the workbench's keybindings are ready: retry until it opens.
  await waitFor(
    async () => {
      if (await input.isVisible()) return true;
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 1_500 }).catch(() => undefined);
      return input.isVisible();
    },
    timeoutMs,
    { what: 'the command palette to open (F1)', page },
  );
  await input.fill(`>${title}`);
  const row = page
    .locator('.quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exactText(title) }) })
    .first();
  await waitVisible(page, row, `the command "${title}" in the command palette`, timeoutMs);
  const focused = (await row.getAttribute('class'))?.split(/\s+/).includes('focused') ?? false;
  if (focused) await page.keyboard.press('Enter');
  else await row.click();
  // Done once the palette closed or was replaced by a quick input the command opened itself.
  const widget = page.locator('.quick-input-widget');
  await waitFor(
    async () => !(await widget.isVisible()) || (await input.inputValue()) !== `>${title}`,
    10_000,
    { what: `the command palette to close after running "${title}"`, page },
  );
}

/**
 * The visible rows of the open quick pick, in order, as VS Code labels them for screen readers:
 * `label`, or `label, description` (an item's description, or a separator's text such as
 * "recently used"). Falls back to the row's text when it has no aria-label. Waits for one row.
 */
export async function quickPickRows(page: Page, timeoutMs = 10_000): Promise<string[]> {
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  await waitVisible(page, rows, 'quick pick rows', timeoutMs);
  const texts: string[] = [];
  for (const row of await rows.filter({ visible: true }).all()) {
    const text = (await row.getAttribute('aria-label')) || (await row.innerText());
    texts.push(text.replace(/\s+/g, ' ').trim());
  }
  return texts;
}

/**
 * The content of a webview, two frames deep (`iframe.webview.ready` → `#active-frame`). With
 * several webviews, the last visible one (or the `index`-th visible one) is taken.
 */
export function webviewFrame(page: Page, index?: number): FrameLocator {
  const outer = page.locator('iframe.webview.ready').filter({ visible: true });
  return (index === undefined ? outer.last() : outer.nth(index))
    .contentFrame()
    .locator('#active-frame')
    .contentFrame();
}

/** Saves a full-page screenshot as {@link ARTIFACTS_DIR}/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${sanitize(name)}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

function exactText(text: string): RegExp {
  return new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed';
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}
