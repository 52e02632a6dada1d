// Installs the git pre-commit hook (lint + type-check) when `npm install` runs inside a git checkout.
const { existsSync, mkdirSync, writeFileSync, chmodSync } = require('node:fs');
const { join } = require('node:path');

const gitDir = join(__dirname, '..', '.git');
if (existsSync(gitDir)) {
  const hooks = join(gitDir, 'hooks');
  mkdirSync(hooks, { recursive: true });
  const hook = join(hooks, 'pre-commit');
  writeFileSync(
    hook,
    '#!/bin/sh\n# Installed by scripts/install-hooks.js\nset -e\nnpm run --silent lint\nnpm run --silent typecheck\n',
  );
  chmodSync(hook, 0o755);
}
