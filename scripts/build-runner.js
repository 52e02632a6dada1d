// Compiles the container-side process runner (src/core/execution/runner/mcpw-runner.c and its
// create guard, guard.c) into a static binary at dist/mcpw-runner, so it runs in any Linux image.
// Skips the build when the binary is newer than every source. Usage: node scripts/build-runner.js [--force]
const { spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, renameSync, rmSync, statSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const sourceDir = join(root, 'src', 'core', 'execution', 'runner');
const sources = ['mcpw-runner.c', 'guard.c'].map((name) => join(sourceDir, name));
const inputs = [...sources, join(sourceDir, 'guard.h')];
const output = join(root, 'dist', 'mcpw-runner');
const INSTALL_HINT = 'Install a C toolchain with static libc, e.g.: apt-get install -y gcc libc6-dev';

/**
 * Builds dist/mcpw-runner unless it is up to date.
 * @param {{ force?: boolean }} [options]
 * @returns {{ ok: true, built: boolean, path: string } | { ok: false, message: string }}
 */
function buildRunner(options = {}) {
  const newest = Math.max(...inputs.map((path) => statSync(path).mtimeMs));
  if (!options.force && existsSync(output) && statSync(output).mtimeMs >= newest) {
    return { ok: true, built: false, path: output };
  }
  mkdirSync(join(root, 'dist'), { recursive: true });
  // Compile to a temporary name and rename, so a concurrent reader never sees a partial binary.
  const temp = `${output}.${process.pid}.tmp`;
  const result = spawnSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-o', temp, ...sources], {
    encoding: 'utf8',
  });
  if (result.error) {
    const reason =
      result.error.code === 'ENOENT'
        ? 'gcc was not found on PATH.'
        : `gcc failed to start: ${result.error.message}`;
    return { ok: false, message: `mcpw-runner: ${reason}\n${INSTALL_HINT}` };
  }
  if (result.status !== 0) {
    rmSync(temp, { force: true });
    return {
      ok: false,
      message: `mcpw-runner: gcc exited with ${result.status}.\n${result.stderr}\n${INSTALL_HINT}`,
    };
  }
  if (result.stderr.trim()) process.stderr.write(result.stderr);
  renameSync(temp, output);
  return { ok: true, built: true, path: output };
}

module.exports = { buildRunner };

if (require.main === module) {
  const result = buildRunner({ force: process.argv.includes('--force') });
  if (!result.ok) {
    console.error(result.message);
    process.exit(1);
  }
  console.log(result.built ? `built ${result.path}` : `${result.path} is up to date`);
}
