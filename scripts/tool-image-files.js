// Lists the installed packages the test tool image copies from this project's node_modules: eslint
// and typescript with every package they depend on (the runtime closure, as Node's resolution
// finds it), one `PATH<TAB>VERSION` line each, PATH relative to the project root, sorted. The
// provisioning script hashes this list into the image tag and copies exactly these folders.
// Usage: node scripts/tool-image-files.js [PROJECT_ROOT]
const { existsSync, readFileSync } = require('node:fs');
const { dirname, join, relative } = require('node:path');

const ROOTS = ['eslint', 'typescript'];

/**
 * The folder Node would load `name` from when required by the package in `from`, or null.
 * @param {string} name
 * @param {string} from
 * @param {string} root
 * @returns {string | null}
 */
function resolvePackage(name, from, root) {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root) return null;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * @param {string} root
 * @returns {Map<string, string>} package folder (relative to root) -> version
 */
function closure(root) {
  /** @type {Map<string, string>} */
  const found = new Map();
  /** @type {string[]} */
  const queue = [];
  for (const name of ROOTS) {
    const dir = resolvePackage(name, root, root);
    if (dir === null) throw new Error(`${name} is not installed in ${root}/node_modules: run npm ci first`);
    queue.push(dir);
  }
  while (queue.length > 0) {
    const dir = /** @type {string} */ (queue.pop());
    const rel = relative(root, dir);
    if (found.has(rel)) continue;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    found.set(rel, String(manifest.version));
    const deps = { ...(manifest.dependencies ?? {}), ...(manifest.optionalDependencies ?? {}) };
    for (const name of Object.keys(deps)) {
      const child = resolvePackage(name, dir, root);
      if (child !== null) queue.push(child);
      else if (!(name in (manifest.optionalDependencies ?? {}))) {
        throw new Error(`${rel} depends on ${name}, which is not installed: run npm ci first`);
      }
    }
  }
  return found;
}

const root = process.argv[2] ?? join(__dirname, '..');
const lines = [...closure(root)].map(([dir, version]) => `${dir}\t${version}`).sort();
process.stdout.write(`${lines.join('\n')}\n`);
