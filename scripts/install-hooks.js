// Installs the git pre-commit hook (lint + type-check) when `npm install` runs inside a git checkout.
// Asks git where hooks live, so a linked worktree (whose .git is a file) works too.
const { execFileSync } = require('node:child_process');
const { mkdirSync, writeFileSync, chmodSync } = require('node:fs');
const { join, resolve } = require('node:path');

const repo = join(__dirname, '..');
let hooks;
try {
  hooks = execFileSync('git', ['rev-parse', '--git-path', 'hooks'], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
} catch {
  hooks = null; // not a git checkout (an unpacked tarball), or no git: nothing to install
}
if (hooks) {
  const dir = resolve(repo, hooks);
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, 'pre-commit');
  writeFileSync(
    hook,
    '#!/bin/sh\n# Installed by scripts/install-hooks.js\nset -e\nnpm run --silent lint\nnpm run --silent typecheck\n',
  );
  chmodSync(hook, 0o755);
}
