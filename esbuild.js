// Bundles the headless CLI (and, later, the extension) into self-contained CommonJS files in dist/.
// Usage: node esbuild.js [--watch] [--production]
const esbuild = require('esbuild');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};

const builds = [{ ...common, entryPoints: ['src/cli/index.ts'], outfile: 'dist/cli.js' }];

async function run() {
  if (watch) {
    const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  await Promise.all(builds.map((b) => esbuild.build(b)));
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
