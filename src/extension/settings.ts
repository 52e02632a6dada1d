import { isAbsolute, join } from 'node:path';
import type { WorkspaceServerOptions } from '../gateway';

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
};

/** Settings whose change needs the servers restarted (everything but `enabled`). */
export const RESTART_SETTINGS = Object.keys(DEFAULT_SETTINGS).filter((k) => k !== 'enabled');

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
  };
}

/**
 * The server options for one workspace folder. With several folders, only the first gets the
 * configured port (the others pick free ports: one port serves one folder).
 */
export function toServerOptions(
  settings: ExtensionSettings,
  folder: { path: string; index: number },
  stateDir: string,
  ownerToken: string,
): WorkspaceServerOptions {
  const policyFile = settings.policyFile
    ? isAbsolute(settings.policyFile)
      ? settings.policyFile
      : join(folder.path, settings.policyFile)
    : undefined;
  return {
    workspace: folder.path,
    host: '127.0.0.1',
    port: folder.index === 0 ? settings.port : 0,
    stateDir,
    ownerToken,
    allowedOrigins: settings.allowedOrigins,
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
