#!/usr/bin/env bash
# `npm test`: provisions what the suites need on a fresh machine (dependencies, a C compiler for
# the in-container runner, a Docker engine and the test image, code-server and Chromium), then
# runs lint, the type check and every suite (unit, integration, and end to end in a real VS Code)
# under c8 with the coverage floor from .c8rc.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

echo "== provisioning: C toolchain (static libc), Docker engine, test image"
if ! command -v gcc >/dev/null 2>&1 || [ -z "$(gcc -print-file-name=libc.a | grep /)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev
fi
docker_line=$(bash scripts/provision-docker.sh | tail -n 1)
export "${docker_line?}"
echo "$docker_line"

echo "== provisioning: code-server (real VS Code) on a private Node 22, Chromium"
bash scripts/provision-e2e.sh >/dev/null

echo "== lint and type check"
npx --no-install eslint .
npx --no-install prettier --check . >/dev/null || { npx --no-install prettier --check .; exit 1; }
npx --no-install tsc --noEmit -p .
npx --no-install tsc --noEmit -p media

echo "== build"
node esbuild.js --production

echo "== tests"
npx --no-install c8 mocha --config .mocharc.json --reporter ./test/helpers/reporter.js \
  --require ./test/helpers/leftovers.ts \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/e2e/**/*.e2e.test.ts'
