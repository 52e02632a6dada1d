/** Provisioning of the e2e toolchain (code-server, Chromium) and packaging of the VSIX under test. */
import { execFileSync, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The repository root. */
export const REPO_ROOT = resolve(__dirname, '../../..');
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
