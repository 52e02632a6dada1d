/**
 * What an agent may never get from a broad rule: writes to protected workspace paths, the
 * `devcontainer.*` grants and environment variables that change how programs are found or loaded.
 * Each needs an owner rule that names it; `allow write(**)`, `allow tool(*)` or `allow env(*)` is
 * never enough. Private to the policy engine (its index re-exports what others need).
 */
import { foldPathName } from '../shared/fold';

/** A protected path class: which workspace-relative paths it covers and which patterns name it. */
interface ProtectedClass {
  /** How the class reads in messages and docs, e.g. `.vscode/**`. */
  shown: string;
  /** Whether a lower-cased, NFC workspace-relative path lies in the class. */
  covers: (path: string) => boolean;
  /** Whether a lower-cased rule pattern names the class explicitly. */
  named: (pattern: string) => boolean;
  /** The rule that would name it, for messages. */
  example: string;
}

/** The first `/`-separated segment of a pattern or path, after any leading `./`. */
function firstSegment(value: string): string {
  let v = value;
  while (v.startsWith('./')) v = v.slice(2);
  const slash = v.indexOf('/');
  return slash === -1 ? v : v.slice(0, slash);
}

/** A class for a top-level folder (`NAME/**`, the folder itself included). */
function rootFolder(name: string): ProtectedClass {
  return {
    shown: `${name}/**`,
    covers: (path) => path === name || path.startsWith(name + '/'),
    named: (pattern) => firstSegment(pattern) === name,
    example: `allow write(${name}/**)`,
  };
}

/** A class for one top-level file. */
function rootFile(name: string): ProtectedClass {
  return {
    shown: name,
    covers: (path) => path === name,
    named: (pattern) => firstSegment(pattern) === name,
    example: `allow write(${name})`,
  };
}

/**
 * Top-level folders protected by default: editor, dev-container, other agents' and git-hook
 * configuration, and the tool manifests. Exported for the container side, which mounts them read-only.
 */
export const PROTECTED_ROOT_FOLDERS: readonly string[] = Object.freeze([
  '.vscode',
  '.devcontainer',
  '.cursor',
  '.claude',
  '.husky',
  '.githooks',
  '.mcp-workspace',
]);

/** Top-level files protected by default (exported for the container side). */
export const PROTECTED_ROOT_FILES: readonly string[] = Object.freeze([
  '.devcontainer.json',
  '.mcp.json',
  '.envrc',
]);

/** File suffix of VS Code workspace files, protected at any name in the root. */
export const CODE_WORKSPACE_SUFFIX = '.code-workspace';

const BUILT_IN_CLASSES: readonly ProtectedClass[] = Object.freeze([
  {
    shown: '**/.git/**',
    covers: (path: string) => path.split('/').includes('.git'),
    named: (pattern: string) => pattern.split('/').includes('.git'),
    example: 'allow write(.git/**)',
  },
  ...PROTECTED_ROOT_FOLDERS.map(rootFolder),
  ...PROTECTED_ROOT_FILES.map(rootFile),
  {
    shown: `*${CODE_WORKSPACE_SUFFIX}`,
    covers: (path: string) => !path.includes('/') && path.endsWith(CODE_WORKSPACE_SUFFIX),
    named: (pattern: string) => firstSegment(pattern).endsWith(CODE_WORKSPACE_SUFFIX),
    example: `allow write(*${CODE_WORKSPACE_SUFFIX})`,
  },
]);

/**
 * Folds a path or pattern for protected-path checks (see {@link foldPathName}): `.GIT/config` or
 * `.vs\u200bcode` on a folding file system is still caught.
 */
export function foldForProtection(value: string): string {
  return foldPathName(value);
}

/** The protected-path classes in force: the built-in ones plus owner-configured folders (e.g. core.hooksPath). */
export class ProtectedPaths {
  private readonly classes: readonly ProtectedClass[];

  /** `extraFolders` are workspace-relative folders protected like `.githooks/**`. */
  constructor(extraFolders: readonly string[] = []) {
    const extra = extraFolders
      .map((folder) =>
        foldForProtection(folder)
          .replace(/^(?:\.\/)+/, '')
          .replace(/\/+$/, ''),
      )
      .filter(
        (folder) => folder !== '' && folder !== '.' && !folder.startsWith('../') && !folder.startsWith('/'),
      )
      .map((folder): ProtectedClass => ({
        shown: `${folder}/**`,
        // Its parent folders too: renaming `tools` would let anything become `tools/hooks`.
        covers: (path) =>
          path === folder || path.startsWith(folder + '/') || (path !== '' && folder.startsWith(path + '/')),
        named: (pattern) => pattern === folder || pattern.startsWith(folder + '/'),
        example: `allow write(${folder}/**)`,
      }));
    this.classes = [...BUILT_IN_CLASSES, ...extra];
  }

  /** The class covering a normalized workspace-relative path, or null when it is not protected. */
  classify(path: string): { shown: string; example: string; named: (pattern: string) => boolean } | null {
    const folded = foldForProtection(path);
    for (const cls of this.classes) {
      if (cls.covers(folded)) {
        return {
          shown: cls.shown,
          example: cls.example,
          named: (pattern) => cls.named(foldForProtection(pattern)),
        };
      }
    }
    return null;
  }
}

/**
 * Tool-permission prefixes that weaken the sandbox or reach the host: a wildcard such as
 * `allow tool(*)` never grants them; each needs a rule with its exact name.
 */
export const OWNER_DANGEROUS_TOOL_PREFIXES: readonly string[] = Object.freeze(['devcontainer.']);

/** Whether a tool permission is owner-dangerous (granted only by a rule naming it exactly). */
export function isDangerousTool(name: string): boolean {
  const lower = name.toLowerCase();
  return OWNER_DANGEROUS_TOOL_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/** Environment variables that change how a program is found, loaded or configured at start. */
const DANGEROUS_ENV_NAMES = new Set([
  'PATH',
  'HOME',
  'ENV',
  'BASH_ENV',
  'IFS',
  'CDPATH',
  'SHELL',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'PROMPT_COMMAND',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_EXTRA_CA_CERTS',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'CLASSPATH',
  'GCONV_PATH',
  'LOCPATH',
  'MALLOC_CHECK_',
  'HOSTALIASES',
  'RES_OPTIONS',
  'TMPDIR',
  'EDITOR',
  'VISUAL',
  'PAGER',
  'GEM_HOME',
  'GEM_PATH',
  'BUNDLE_GEMFILE',
  'GOFLAGS',
  'CARGO_HOME',
  'RUSTC_WRAPPER',
  'RUSTFLAGS',
  'CC',
  'CXX',
  'LESSOPEN',
  'SSH_ASKPASS',
  'DOTNET_STARTUP_HOOKS',
]);

/** Prefixes (compared case-insensitively) of variables that load code or configuration. */
const DANGEROUS_ENV_PREFIXES = [
  'LD_',
  'DYLD_',
  'GIT_',
  'NPM_CONFIG_',
  'YARN_',
  'PNPM_',
  'PYTHON',
  'PERL5',
  'PERLLIB',
  'RUBY',
  'BASH_FUNC_',
  'GLIBC_',
  'MAVEN_',
  'GRADLE_',
  'XDG_',
  'DOCKER_',
  'COREPACK_',
];

/**
 * Whether an environment variable changes how a program is found or loaded (PATH, LD_*, BASH_ENV,
 * NODE_OPTIONS, GIT_*, npm_config_*, PYTHON*, ...): such a key needs `allow env(KEY)` naming it.
 */
export function isDangerousEnv(key: string): boolean {
  const upper = key.toUpperCase();
  return DANGEROUS_ENV_NAMES.has(upper) || DANGEROUS_ENV_PREFIXES.some((prefix) => upper.startsWith(prefix));
}
