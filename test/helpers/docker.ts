import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** The busybox image `scripts/provision-docker.sh` builds locally (no registry needed). */
export const TEST_IMAGE = 'mcpw-test-busybox:1';

let provisioned: string | null = null;

/**
 * Makes sure a real Docker engine answers (installing and starting one when needed, see
 * scripts/provision-docker.sh) and points DOCKER_HOST at it. Never skips: tests need the engine.
 */
export function ensureDocker(): string {
  if (provisioned) return provisioned;
  const root = resolve(__dirname, '../..');
  const out = execFileSync('bash', [resolve(root, 'scripts/provision-docker.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  const host = /DOCKER_HOST=(\S+)\s*$/.exec(out)?.[1];
  if (!host) throw new Error(`provision-docker.sh printed no DOCKER_HOST line: ${out}`);
  process.env['DOCKER_HOST'] = host;
  execFileSync(process.execPath, [resolve(root, 'scripts/build-runner.js')], { stdio: 'inherit' });
  provisioned = host;
  return host;
}

let toolImage: string | null = null;

/**
 * Makes sure the typed-tools test image exists (busybox plus Node 22, ESLint, the TypeScript
 * compiler and npm; built by `scripts/provision-docker.sh --tool-image` without any image registry,
 * tagged by the hash of its contents) and returns its tag. Also does what {@link ensureDocker} does.
 */
export function ensureToolImage(): string {
  if (toolImage) return toolImage;
  ensureDocker();
  const root = resolve(__dirname, '../..');
  const out = execFileSync('bash', [resolve(root, 'scripts/provision-docker.sh'), '--tool-image'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
  });
  const tag = /^TOOL_IMAGE=(\S+)$/m.exec(out)?.[1];
  if (!tag) throw new Error(`provision-docker.sh --tool-image printed no TOOL_IMAGE line: ${out}`);
  toolImage = tag;
  return tag;
}
