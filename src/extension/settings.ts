import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { WorkspaceServerOptions } from '../server';
import { WorkspaceError } from '../protocol/errors';

/** The extension's settings (`mcpWorkspace.*`), validated. */
export interface ExtensionSettings {
  enabled: boolean;
  port: number;
  dockerHost: string;
  defaultImage: string;
  memoryMb: number;
  cpus: number;
  pidsLimit: number;
  commandTimeoutSeconds: number;
  policyFile: string;
  allowedOrigins: string[];
  /** Tool manifests (validated by the server like `.mcp-workspace/tools/*.json`). */
  tools: unknown[];
  /** Offer detected tools (package.json scripts, Makefile targets, pytest, cargo, go test). */
  detectTools: boolean;
  /** Bind open editors live to their shared documents (applied without a restart). */
  liveEditing: boolean;
}

/** Defaults, matching `contributes.configuration` in package.json. */
export const DEFAULT_SETTINGS: ExtensionSettings = {
  enabled: true,
  port: 0,
  dockerHost: '',
  defaultImage: '',
  memoryMb: 1024,
  cpus: 2,
  pidsLimit: 512,
  commandTimeoutSeconds: 120,
  policyFile: '',
  allowedOrigins: [],
  tools: [],
  detectTools: false,
  liveEditing: true,
};

/** The section of every setting of this extension. */
export const SETTINGS_SECTION = 'mcpWorkspace';

/**
 * Settings that widen what an agent can do (its policy, who may call the server, which engine and
 * image run its commands, how much they may use, where the server listens). They have `"scope":
 * "machine"` in package.json and are read from user settings only: a workspace is hostile input,
 * and an agent can write its `.vscode/settings.json`.
 */
export const USER_ONLY_SETTINGS = [
  'port',
  'dockerHost',
  'defaultImage',
  'memoryMb',
  'cpus',
  'pidsLimit',
  'commandTimeoutSeconds',
  'policyFile',
  'allowedOrigins',
  'tools',
  'detectTools',
] as const satisfies readonly (keyof ExtensionSettings)[];

/**
 * Settings whose change needs the servers restarted (everything but `enabled`, `tools` and
 * `liveEditing`, applied live).
 */
export const RESTART_SETTINGS = Object.keys(DEFAULT_SETTINGS).filter(
  (k) => k !== 'enabled' && k !== 'tools' && k !== 'liveEditing',
) as (keyof ExtensionSettings)[];

/** Settings a workspace may set only to `false` (that narrows what happens; it never widens). */
export const NARROW_ONLY_SETTINGS = [
  'enabled',
  'liveEditing',
] as const satisfies readonly (keyof ExtensionSettings)[];

/** What `WorkspaceConfiguration.inspect(key)` reports for one setting, level by level. */
export interface SettingLevels {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

function int(value: unknown, fallback: number, min: number, max: number): number {
  return typeof value === 'number' && Number.isFinite(value)
    ? Math.min(max, Math.max(min, Math.round(value)))
    : fallback;
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value.trim() : fallback;
}

/**
 * Reads and validates the settings through `get` (e.g. `WorkspaceConfiguration.get`): wrong types
 * fall back to defaults and numbers are clamped to their allowed ranges.
 */
export function readSettings(get: (key: keyof ExtensionSettings) => unknown): ExtensionSettings {
  const d = DEFAULT_SETTINGS;
  const origins = get('allowedOrigins');
  return {
    enabled: typeof get('enabled') === 'boolean' ? (get('enabled') as boolean) : d.enabled,
    port: int(get('port'), d.port, 0, 65535),
    dockerHost: text(get('dockerHost'), d.dockerHost),
    defaultImage: text(get('defaultImage'), d.defaultImage),
    memoryMb: int(get('memoryMb'), d.memoryMb, 64, 1024 * 1024),
    cpus: Math.min(256, Math.max(0.1, typeof get('cpus') === 'number' ? (get('cpus') as number) : d.cpus)),
    pidsLimit: int(get('pidsLimit'), d.pidsLimit, 16, 1_000_000),
    commandTimeoutSeconds: int(get('commandTimeoutSeconds'), d.commandTimeoutSeconds, 1, 3600),
    policyFile: text(get('policyFile'), d.policyFile),
    allowedOrigins: Array.isArray(origins) ? origins.filter((o): o is string => typeof o === 'string') : [],
    tools: Array.isArray(get('tools')) ? [...(get('tools') as unknown[])] : [],
    detectTools: get('detectTools') === true,
    liveEditing: typeof get('liveEditing') === 'boolean' ? (get('liveEditing') as boolean) : d.liveEditing,
  };
}

function isUserOnly(key: string): key is (typeof USER_ONLY_SETTINGS)[number] {
  return (USER_ONLY_SETTINGS as readonly string[]).includes(key);
}

function isNarrowOnly(key: string): key is (typeof NARROW_ONLY_SETTINGS)[number] {
  return (NARROW_ONLY_SETTINGS as readonly string[]).includes(key);
}

/**
 * The settings in force, from the levels `inspect` reports: a user-only setting takes the user
 * value, else the default, and never a workspace or folder value. `enabled` and `liveEditing` are
 * the user's, and a workspace may only turn them off (that narrows what happens).
 */
export function readUserSettings(
  inspect: (key: keyof ExtensionSettings) => SettingLevels | undefined,
): ExtensionSettings {
  return readSettings((key) => {
    const levels = inspect(key) ?? {};
    const user = levels.globalValue !== undefined ? levels.globalValue : levels.defaultValue;
    if (isNarrowOnly(key)) {
      const on = typeof user === 'boolean' ? user : DEFAULT_SETTINGS[key];
      return on && levels.workspaceValue !== false && levels.workspaceFolderValue !== false;
    }
    return user;
  });
}

/** A workspace-level setting this extension ignores, and the file that holds it. */
export interface IgnoredSetting {
  /** Full key, e.g. `mcpWorkspace.policyFile`. */
  key: string;
  /** The settings file (`.vscode/settings.json` or a `.code-workspace` file). */
  file: string;
  /** The value found there. */
  value: unknown;
}

/** The user's values of the settings a workspace may only turn off. */
export type UserNarrowOnly = Record<(typeof NARROW_ONLY_SETTINGS)[number], boolean>;

/**
 * The settings of this extension that a workspace-level settings object (a parsed
 * `.vscode/settings.json`, or the `settings` of a `.code-workspace` file) sets but that are ignored:
 * every user-only setting, and `enabled: true` or `liveEditing: true` while the user has it off.
 * Accepts both dotted keys and a nested `mcpWorkspace` object.
 */
export function ignoredWorkspaceSettings(
  settings: unknown,
  file: string,
  user: UserNarrowOnly,
): IgnoredSetting[] {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return [];
  const found = new Map<string, unknown>();
  for (const [key, value] of Object.entries(settings as Record<string, unknown>)) {
    if (key === SETTINGS_SECTION && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>)) {
        found.set(inner, innerValue);
      }
    } else if (key.startsWith(`${SETTINGS_SECTION}.`)) {
      found.set(key.slice(SETTINGS_SECTION.length + 1), value);
    }
  }
  const ignored: IgnoredSetting[] = [];
  for (const [name, value] of found) {
    if (value === undefined) continue;
    if (isUserOnly(name) || (isNarrowOnly(name) && value === true && !user[name])) {
      ignored.push({ key: `${SETTINGS_SECTION}.${name}`, file, value });
    }
  }
  return ignored.sort((a, b) => a.key.localeCompare(b.key));
}

/** The warning shown (and logged) when a workspace settings file sets settings that are ignored. */
export function ignoredSettingsMessage(file: string, keys: readonly string[]): string {
  const names = keys.join(', ');
  const they = keys.length === 1 ? 'It' : 'They';
  return (
    `MCP Workspace ignored ${names} in ${file}. ${they} can widen what agents may do, so MCP Workspace ` +
    `reads ${keys.length === 1 ? 'it' : 'them'} from your user settings only: a workspace, or an agent ` +
    `writing into it, cannot change ${keys.length === 1 ? 'it' : 'them'}. Set ${keys.length === 1 ? 'it' : 'them'} ` +
    `in your user settings if you meant to.`
  );
}

/** The settings whose value differs between `before` and `after` (arrays compared by content). */
export function changedSettings(
  before: ExtensionSettings,
  after: ExtensionSettings,
): (keyof ExtensionSettings)[] {
  return (Object.keys(DEFAULT_SETTINGS) as (keyof ExtensionSettings)[]).filter(
    (key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
  );
}

/** What a settings change calls for. */
export type SettingsAction = 'none' | 'start' | 'stop' | 'restart';

/**
 * What to do when settings change, from the settings acted on before (null: none yet) and the
 * settings in force now: stop when disabled; restart running servers only when a setting they were
 * started with changed; start stopped ones when turned on, or after a failed start. A change that
 * leaves the settings in force as they were (an ignored workspace value) calls for nothing.
 */
export function settingsAction(
  before: ExtensionSettings | null,
  next: ExtensionSettings,
  host: { running: boolean; failed: boolean },
): SettingsAction {
  if (!next.enabled) return host.running ? 'stop' : 'none';
  const changed = before ? changedSettings(before, next) : RESTART_SETTINGS;
  if (changed.length === 0) return 'none';
  if (host.running) return changed.some((key) => RESTART_SETTINGS.includes(key)) ? 'restart' : 'none';
  return changed.includes('enabled') || host.failed ? 'start' : 'none';
}

/**
 * The policy file as an absolute path (`~/` is the home directory), or undefined when none is set.
 * A relative path is refused: it would resolve inside every workspace opened, where agents write.
 */
export function resolvePolicyFile(policyFile: string, home = homedir()): string | undefined {
  if (!policyFile) return undefined;
  if (policyFile === '~' || policyFile.startsWith('~/')) return join(home, policyFile.slice(1));
  if (isAbsolute(policyFile)) return policyFile;
  throw new WorkspaceError(
    'INVALID_ARGUMENT',
    `The setting mcpWorkspace.policyFile is the relative path '${policyFile}', which would resolve inside ` +
      'every workspace you open, where agents can write. Set an absolute path (or one starting with ~/) ' +
      'to a file outside your workspaces in your user settings.',
  );
}

/**
 * The server options for one workspace folder. With several folders, only the first gets the
 * configured port (the others pick free ports: one port serves one folder). Throws a WorkspaceError
 * for a relative policy file.
 */
export function toServerOptions(
  settings: ExtensionSettings,
  folder: { path: string; index: number },
  stateDir: string,
  ownerToken: string,
): WorkspaceServerOptions {
  const policyFile = resolvePolicyFile(settings.policyFile);
  return {
    workspace: folder.path,
    host: '127.0.0.1',
    port: folder.index === 0 ? settings.port : 0,
    stateDir,
    ownerToken,
    allowedOrigins: settings.allowedOrigins,
    tools: settings.tools,
    detectTools: settings.detectTools,
    ...(policyFile ? { policyFile } : {}),
    ...(settings.dockerHost ? { dockerHost: settings.dockerHost } : {}),
    ...(settings.defaultImage ? { defaultImage: settings.defaultImage } : {}),
    sandboxLimits: {
      memoryBytes: settings.memoryMb * 1024 * 1024,
      nanoCpus: Math.round(settings.cpus * 1e9),
      pidsLimit: settings.pidsLimit,
    },
    executionLimits: { defaultTimeoutMs: settings.commandTimeoutSeconds * 1000 },
  };
}
