// Builds everything that runs: the headless CLI (dist/cli.js) and the VS Code extension
// (dist/extension.js) as self-contained CommonJS bundles, the audit webview script
// (media/audit.js), the marketplace icon (media/icon.png) and the in-container command runner
// (dist/mcpw-runner, C). Usage: node esbuild.js [--watch] [--production]
const { copyFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const esbuild = require('esbuild');
const { buildRunner } = require('./scripts/build-runner');
const { makeIcon } = require('./scripts/make-icon');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const node = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
  // dockerode reaches ssh2, whose native helpers are optional (loaded in try/catch): leave them
  // out so the bundle runs with no node_modules and no compiled addons.
  external: ['cpu-features', '*.node'],
  // Prefer ES module builds: jsonc-parser's UMD build hides its requires from the bundler.
  mainFields: ['module', 'main'],
  // rregex's ES module build loads its WebAssembly with a top-level await; take the CommonJS one,
  // which loads dist/rregex.wasm beside the bundle (search workers and the typed tools' parsers).
  alias: { rregex: require.resolve('rregex') },
};

const builds = [
  { ...node, entryPoints: ['src/cli/index.ts'], outfile: 'dist/cli.js' },
  // search_files runs in worker threads: their script sits beside the bundles that start them, with
  // the regex engine's WebAssembly module (loaded from the script's directory).
  {
    ...node,
    entryPoints: ['src/core/resources/search/worker.ts'],
    outfile: 'dist/search-worker.js',
  },
  // A devcontainer build's context is walked and packed in a worker thread (same directory).
  {
    ...node,
    entryPoints: ['src/core/execution/docker/context-worker.ts'],
    outfile: 'dist/build-context-worker.js',
  },
  {
    ...node,
    entryPoints: ['src/extension/index.ts'],
    outfile: 'dist/extension.js',
    external: [...node.external, 'vscode'],
  },
  {
    entryPoints: ['media/audit/main.ts'],
    outfile: 'media/audit.js',
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    sourcemap: false,
    minify: production,
    logLevel: 'info',
  },
];

async function run() {
  makeIcon();
  if (watch) {
    const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyFileSync(join(dirname(require.resolve('rregex')), 'rregex.wasm'), 'dist/rregex.wasm');
  // The in-container command runner is C, compiled statically so it runs in any Linux image. A
  // package must carry it; a development build without a C compiler still serves files, and
  // commands answer SANDBOX_UNAVAILABLE saying how to get the runner.
  const runner = buildRunner();
  if (!runner.ok) {
    if (production) throw new Error(runner.message);
    console.warn(`warning: ${runner.message}\nCommands (run_command) need it; everything else works.`);
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
