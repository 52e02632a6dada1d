/**
 * Detected tools: with the owner's opt-in, well-known project files offer tools without a manifest
 * (package.json scripts, Makefile targets, pytest, cargo test, go test). They take no arguments, and
 * their descriptions never quote the project files (which agents may write). Each needs a policy
 * rule naming it exactly: `allow tool(*)` never grants them. Private to the tools component.
 */

/** Workspace-root files whose change can change the detected tools. */
export const DETECTION_FILES: readonly string[] = Object.freeze([
  'package.json',
  'Makefile',
  'makefile',
  'GNUmakefile',
  'pyproject.toml',
  'pytest.ini',
  'conftest.py',
  'Cargo.toml',
  'go.mod',
]);

/** Most tools detected from one file. */
const MAX_PER_FILE = 100;
const SUFFIX_RE = /^[A-Za-z0-9_-]{1,48}$/;

/** The targets of a Makefile rule line `target [target...]:` (not `:=` or `::=` assignments, not recipes). */
function ruleTargets(line: string): string[] {
  const colon = line.indexOf(':');
  if (colon <= 0 || line[colon + 1] === '=' || line[colon + 1] === ':') return [];
  if (line[0] === '\t' || line[0] === ' ' || line[0] === '.' || line[0] === '#') return [];
  const head = line.slice(0, colon);
  if (head.includes('=')) return [];
  return head.split(' ').filter((target) => target !== '');
}

/** A detected tool: a manifest value (validated like any other) and the file it came from. */
export interface DetectedTool {
  source: string;
  manifest: Record<string, unknown>;
}

function tool(source: string, name: string, description: string, argv: string[]): DetectedTool {
  return {
    source,
    manifest: {
      name,
      title: argv.join(' '),
      description:
        `${description} Detected from ${source}, which anyone allowed to write it can change: the ` +
        'command runs whatever the project file says at the time of the call.',
      argv,
    },
  };
}

/**
 * The tools offered by the workspace's project files. `read` returns a root file's text (confined,
 * size-capped), or null when it is missing or unusable.
 */
export async function detectTools(read: (name: string) => Promise<string | null>): Promise<DetectedTool[]> {
  const found: DetectedTool[] = [];
  const pkg = await read('package.json');
  if (pkg !== null) {
    let scripts: unknown;
    try {
      scripts = (JSON.parse(pkg) as { scripts?: unknown } | null)?.scripts;
    } catch {
      scripts = undefined;
    }
    if (scripts && typeof scripts === 'object' && !Array.isArray(scripts)) {
      for (const name of Object.keys(scripts)
        .filter((n) => SUFFIX_RE.test(n))
        .slice(0, MAX_PER_FILE)) {
        found.push(
          tool('package.json', `npm_run_${name}`, `Runs the package.json script "${name}".`, [
            'npm',
            'run',
            name,
          ]),
        );
      }
    }
  }
  for (const makefile of ['GNUmakefile', 'makefile', 'Makefile']) {
    const text = await read(makefile);
    if (text === null) continue;
    const targets = new Set<string>();
    for (const line of text.split('\n')) {
      for (const target of ruleTargets(line)) {
        if (SUFFIX_RE.test(target) && targets.size < MAX_PER_FILE) targets.add(target);
      }
    }
    for (const target of targets) {
      found.push(tool(makefile, `make_${target}`, `Runs the Makefile target "${target}".`, ['make', target]));
    }
    break;
  }
  const pyproject = await read('pyproject.toml');
  const pytestSource =
    pyproject !== null && pyproject.includes('[tool.pytest')
      ? 'pyproject.toml'
      : (await read('pytest.ini')) !== null
        ? 'pytest.ini'
        : (await read('conftest.py')) !== null
          ? 'conftest.py'
          : null;
  if (pytestSource)
    found.push(tool(pytestSource, 'pytest', 'Runs the Python tests with pytest.', ['pytest']));
  if ((await read('Cargo.toml')) !== null) {
    found.push(tool('Cargo.toml', 'cargo_test', 'Runs the Rust tests (cargo test).', ['cargo', 'test']));
  }
  if ((await read('go.mod')) !== null) {
    found.push(tool('go.mod', 'go_test', 'Runs the Go tests (go test ./...).', ['go', 'test', './...']));
  }
  return found;
}
