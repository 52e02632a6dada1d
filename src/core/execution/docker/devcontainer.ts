/**
 * Reading devcontainer.json (JSONC) into what the Docker runtime needs: the image or build, the
 * in-container workspace folder, environment, user and the host-config fields the owner allowed.
 * Private to the Docker runtime.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { z } from 'zod';
import { WorkspaceError } from '../../../protocol/errors';
import { isDangerousEnv } from '../../policy';
import { parseEnvEntry } from '../../shared/env';
import { isErrno } from '../../shared/fs';

/** devcontainer.json fields that reach beyond the container and need the owner's permission. */
export type DevcontainerField =
  'privileged' | 'capAdd' | 'securityOpt' | 'mounts' | 'runArgs' | 'initializeCommand';

/** Host-config fields taken from devcontainer.json (only those the owner allowed). */
export interface ExtraHostConfig {
  Privileged?: boolean;
  CapAdd?: string[];
  SecurityOpt?: string[];
  Mounts?: object[];
}

/** A devcontainer.json file as found in the workspace. */
export interface DevcontainerFile {
  path: string;
  text: string;
}

/**
 * How to build the image of a devcontainer.json `build` section. Paths are workspace-relative posix
 * paths ('.' for the root): a build never reads anything outside the workspace.
 */
export interface BuildSpec {
  dockerfile: string;
  context: string;
  args: Record<string, string>;
  target: string | null;
}

/** The parsed, validated and permission-checked content of a devcontainer.json. */
export interface ParsedDevcontainer {
  image: string | null;
  build: BuildSpec | null;
  workspaceFolder: string;
  containerEnv: Record<string, string>;
  remoteEnv: Record<string, string>;
  user: string | null;
  extraHostConfig: ExtraHostConfig;
  /** Fields that were ignored, for the log. */
  warnings: string[];
}

/** Locations searched, in order, relative to the workspace root. */
const CONFIG_LOCATIONS = [join('.devcontainer', 'devcontainer.json'), '.devcontainer.json'];

/** Fields read but not acted on (they need the devcontainer CLI, a registry or the host). */
const IGNORED_FIELDS = [
  'features',
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'postAttachCommand',
  'forwardPorts',
  'appPort',
  'workspaceMount',
];

/** The shapes of devcontainer.json fields; null and absent both mean "not set". */
const FIELD = {
  /** `image`, `workspaceFolder`, `containerUser`, `build.dockerfile`... */
  string: z.string().min(1).nullish(),
  /** `capAdd`, `securityOpt`, `runArgs`. */
  stringList: z.array(z.string()).nullish(),
  /** `containerEnv`, `remoteEnv`, `build.args`: checked entry by entry with {@link ENV_ENTRY}. */
  object: z.record(z.string(), z.unknown()).nullish(),
  privileged: z.boolean(),
  mounts: z.array(z.unknown()),
  mountEntry: z.union([z.string(), z.record(z.string(), z.unknown())]),
};

/** One `NAME: value` entry of an environment map: a non-empty name without `=`, a string value. */
const ENV_ENTRY = z.tuple([
  z
    .string()
    .min(1)
    .refine((name) => !name.includes('=')),
  z.string(),
]);

/** What a mount must resolve to: a known type and an absolute in-container target. */
const MOUNT = z.object({ type: z.enum(['bind', 'volume', 'tmpfs']), target: z.string().startsWith('/') });

/** Reads the first non-empty devcontainer.json of `workspace`, or null when there is none. */
export async function findDevcontainer(workspace: string): Promise<DevcontainerFile | null> {
  for (const location of CONFIG_LOCATIONS) {
    const path = join(workspace, location);
    try {
      const text = await readFile(path, 'utf8');
      // An empty file is the read-only placeholder session containers get while it is missing.
      if (text.trim() === '') continue;
      return { path, text };
    } catch (error) {
      if (!isErrno(error, 'ENOENT', 'ENOTDIR')) throw error;
    }
  }
  return null;
}

/** The default in-container workspace folder: `/workspaces/<basename of workspace>`. */
export function defaultWorkspaceFolder(workspace: string): string {
  return posix.join('/workspaces', basename(workspace));
}

/**
 * Parses `file` and checks it against `allows`. Throws INVALID_ARGUMENT for malformed JSONC or
 * fields, PATH_OUTSIDE_WORKSPACE for a build context or Dockerfile outside the workspace,
 * POLICY_DENIED for a privileged field the owner did not allow (and always for initializeCommand,
 * which would run on the host) and for a containerEnv/remoteEnv key that changes how programs are
 * found or loaded (PATH, LD_*, NODE_OPTIONS...) unless `allowsEnv` grants that key.
 */
export function parseDevcontainer(
  file: DevcontainerFile,
  workspace: string,
  allows: (field: DevcontainerField) => boolean,
  allowsEnv: (key: string) => boolean = () => false,
): ParsedDevcontainer {
  const config = parseJsonc(file);
  const configDir = dirname(file.path);
  const warnings: string[] = [];
  const local = { folder: workspace, basename: basename(workspace) };

  const substituteLocal = (value: string) => substitute(value, local, null, warnings);
  const workspaceFolder = readWorkspaceFolder(config, substituteLocal, workspace);
  const vars = (value: string) =>
    substitute(
      value,
      local,
      { folder: workspaceFolder, basename: posix.basename(workspaceFolder) },
      warnings,
    );

  checkPermissions(config, allows);

  for (const field of IGNORED_FIELDS) {
    if (config[field] !== undefined)
      warnings.push(`devcontainer.json "${field}" is not supported and was ignored`);
  }
  if (config.dockerComposeFile !== undefined) {
    throw invalid(
      'devcontainer.json "dockerComposeFile" is not supported; use "image" or "build.dockerfile".',
    );
  }

  const image = optionalString(config, 'image');
  const build = readBuild(config, configDir, workspace, vars);
  if (image === null && build === null) {
    throw invalid(`${file.path} must set "image" or "build.dockerfile".`);
  }

  const containerEnv = stringMap(config, 'containerEnv', vars);
  const remoteEnv = stringMap(config, 'remoteEnv', vars);
  const user = optionalString(config, 'containerUser') ?? optionalString(config, 'remoteUser');
  const extraHostConfig: ExtraHostConfig = {};

  if (config.privileged !== undefined) {
    const privileged = FIELD.privileged.safeParse(config.privileged);
    if (!privileged.success) throw invalid('devcontainer.json "privileged" must be a boolean.');
    if (privileged.data) extraHostConfig.Privileged = true;
  }
  const capAdd = stringList(config, 'capAdd', vars);
  if (capAdd.length > 0) extraHostConfig.CapAdd = capAdd;
  const securityOpt = stringList(config, 'securityOpt', vars);
  if (securityOpt.length > 0) extraHostConfig.SecurityOpt = securityOpt;
  const mounts = readMounts(config, vars);
  if (mounts.length > 0) extraHostConfig.Mounts = mounts;
  applyRunArgs(stringList(config, 'runArgs', vars), extraHostConfig, containerEnv, warnings);
  checkEnvKeys('containerEnv', containerEnv, allowsEnv);
  checkEnvKeys('remoteEnv', remoteEnv, allowsEnv);

  return {
    image: image === null ? null : vars(image),
    build: image === null ? build : null,
    workspaceFolder,
    containerEnv,
    remoteEnv,
    user: user === null ? null : vars(user),
    extraHostConfig,
    warnings,
  };
}

/**
 * Resolves `${containerEnv:NAME}` references left in remoteEnv values against the container's
 * environment (image Env overlaid with containerEnv); unknown names become ''.
 */
export function resolveRemoteEnv(
  remoteEnv: Record<string, string>,
  containerEnvironment: Record<string, string>,
): Record<string, string> {
  const resolved: Record<string, string> = {};
  for (const [key, value] of Object.entries(remoteEnv)) {
    resolved[key] = value.replace(
      /\$\{containerEnv:([^}:]+)(?::([^}]*))?\}/g,
      (_match, name: string, fallback: string | undefined) => containerEnvironment[name] ?? fallback ?? '',
    );
  }
  return resolved;
}

type Config = Record<string, unknown>;

function invalid(message: string, details?: Record<string, unknown>): WorkspaceError {
  return new WorkspaceError('INVALID_ARGUMENT', message, details);
}

/** Parses JSONC (comments and trailing commas allowed); errors name the line and column. */
function parseJsonc(file: DevcontainerFile): Config {
  const errors: ParseError[] = [];
  const value: unknown = parse(file.text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const first = errors[0];
    const before = file.text.slice(0, first.offset);
    const line = before.split('\n').length;
    const column = first.offset - before.lastIndexOf('\n');
    throw invalid(
      `${file.path} is not valid JSONC: ${printParseErrorCode(first.error)} at line ${line}, column ${column} (offset ${first.offset}).`,
      { path: file.path, line, column, offset: first.offset },
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`${file.path} must contain a JSON object.`, { path: file.path });
  }
  return value as Config;
}

/** Refuses fields that reach the host unless the owner allowed them; initializeCommand always. */
function checkPermissions(config: Config, allows: (field: DevcontainerField) => boolean): void {
  if (config.initializeCommand !== undefined) {
    throw new WorkspaceError(
      'POLICY_DENIED',
      'devcontainer.json sets "initializeCommand", which runs on the host; MCP Workspace never runs it. ' +
        'Remove it from devcontainer.json (run it yourself if needed) to use this dev container.',
      { field: 'initializeCommand' },
    );
  }
  const present: Record<Exclude<DevcontainerField, 'initializeCommand'>, boolean> = {
    privileged: config.privileged !== undefined && config.privileged !== false,
    capAdd: nonEmpty(config.capAdd),
    securityOpt: nonEmpty(config.securityOpt),
    mounts: nonEmpty(config.mounts),
    runArgs: nonEmpty(config.runArgs),
  };
  for (const [field, isSet] of Object.entries(present) as [DevcontainerField, boolean][]) {
    if (!isSet || allows(field)) continue;
    const rule = `allow tool(devcontainer.${field})`;
    throw new WorkspaceError(
      'POLICY_DENIED',
      `devcontainer.json sets "${field}", which weakens the sandbox and needs the owner's permission: ` +
        `add the policy rule \`${rule}\` to use it.`,
      { field, rule },
    );
  }
}

/** Refuses keys that change how programs are found or loaded unless the owner named them. */
function checkEnvKeys(field: string, env: Record<string, string>, allowsEnv: (key: string) => boolean): void {
  for (const key of Object.keys(env)) {
    if (!isDangerousEnv(key) || allowsEnv(key)) continue;
    const rule = `allow env(${key})`;
    throw new WorkspaceError(
      'POLICY_DENIED',
      `devcontainer.json "${field}" sets ${key}, which changes how programs are found or loaded in every ` +
        `command: add the policy rule \`${rule}\` to use it, or remove it.`,
      { field, key, rule },
    );
  }
}

function nonEmpty(value: unknown): boolean {
  return value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0);
}

/** `config[field]` checked against `schema`; INVALID_ARGUMENT with `message` when it does not fit. */
function read<T>(config: Config, field: string, schema: z.ZodType<T>, message: string): T {
  const parsed = schema.safeParse(config[field]);
  if (!parsed.success) throw invalid(`devcontainer.json "${field}" ${message}`, { field });
  return parsed.data;
}

function optionalString(config: Config, field: string): string | null {
  return read(config, field, FIELD.string, 'must be a non-empty string.') ?? null;
}

function stringList(config: Config, field: string, vars: (value: string) => string): string[] {
  return (read(config, field, FIELD.stringList, 'must be an array of strings.') ?? []).map(vars);
}

function stringMap(config: Config, field: string, vars: (value: string) => string): Record<string, string> {
  const value = read(config, field, FIELD.object, 'must be an object of strings.') ?? {};
  const result: Record<string, string> = {};
  for (const entry of Object.entries(value)) {
    const parsed = ENV_ENTRY.safeParse(entry);
    if (!parsed.success) {
      throw invalid(`devcontainer.json "${field}.${entry[0]}" must be a string with a valid name.`, {
        field,
      });
    }
    const [key, item] = parsed.data;
    result[key] = vars(item);
  }
  return result;
}

function readWorkspaceFolder(config: Config, vars: (value: string) => string, workspace: string): string {
  const value = optionalString(config, 'workspaceFolder');
  if (value === null) return defaultWorkspaceFolder(workspace);
  const folder = posix.normalize(vars(value));
  if (!folder.startsWith('/') || folder === '/') {
    throw invalid('devcontainer.json "workspaceFolder" must be an absolute path other than "/".', {
      field: 'workspaceFolder',
    });
  }
  return folder.replace(/\/+$/, '');
}

/**
 * Reads `build` (or the legacy top-level `dockerFile`/`context`), resolving paths from the config
 * dir. A path written as absolute, or one that resolves outside the workspace, is refused.
 */
function readBuild(
  config: Config,
  configDir: string,
  workspace: string,
  vars: (value: string) => string,
): BuildSpec | null {
  let build: Config;
  if (config.build !== undefined) {
    const parsed = FIELD.object.safeParse(config.build);
    if (!parsed.success || !parsed.data) {
      throw invalid('devcontainer.json "build" must be an object.', { field: 'build' });
    }
    build = parsed.data;
  } else if (config.dockerFile !== undefined) {
    build = { dockerfile: config.dockerFile, context: config.context };
  } else {
    return null;
  }
  const dockerfile = optionalString(build, 'dockerfile');
  if (dockerfile === null) {
    if (config.image !== undefined) return null;
    throw invalid('devcontainer.json "build.dockerfile" is required.', { field: 'build.dockerfile' });
  }
  const context = optionalString(build, 'context') ?? '.';
  const target = optionalString(build, 'target');
  const args = stringMap(build, 'args', vars);
  const inWorkspace = (field: string, value: string): string => {
    if (isAbsolute(value) || /^[A-Za-z]:[\\/]/.test(value)) {
      throw new WorkspaceError(
        'PATH_OUTSIDE_WORKSPACE',
        `devcontainer.json "build.${field}" is the absolute path ${JSON.stringify(value)}; write it relative ` +
          'to the devcontainer.json, inside the workspace.',
        { field: `build.${field}` },
      );
    }
    const path = vars(value);
    const rel = relative(workspace, isAbsolute(path) ? resolve(path) : resolve(configDir, path));
    if (rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) {
      throw new WorkspaceError(
        'PATH_OUTSIDE_WORKSPACE',
        `devcontainer.json "build.${field}" ${JSON.stringify(value)} resolves outside the workspace; a build ` +
          'may only read files inside the workspace.',
        { field: `build.${field}` },
      );
    }
    return rel === '' ? '.' : rel.split(sep).join('/');
  };
  return {
    dockerfile: inWorkspace('dockerfile', dockerfile),
    context: inWorkspace('context', context),
    args,
    target: target && vars(target),
  };
}

/** Parses `mounts` entries (strings `type=bind,source=...,target=...[,readonly]` or objects). */
function readMounts(config: Config, vars: (value: string) => string): object[] {
  const value = config.mounts;
  if (value === undefined || value === null) return [];
  const entries = read(config, 'mounts', FIELD.mounts, 'must be an array.');
  return entries.map((entry: unknown) => {
    const shape = FIELD.mountEntry.safeParse(entry);
    if (!shape.success) {
      throw invalid('devcontainer.json "mounts" entries must be strings or objects.', { field: 'mounts' });
    }
    const fields: Record<string, string | boolean> = {};
    if (typeof shape.data === 'string') {
      for (const part of vars(shape.data).split(',')) {
        const eq = part.indexOf('=');
        if (eq < 0) fields[part.trim()] = true;
        else fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
      }
    } else {
      for (const [key, item] of Object.entries(shape.data)) {
        fields[key] = typeof item === 'string' ? vars(item) : item === true;
      }
    }
    const source = fields.source ?? fields.src;
    const mount = MOUNT.safeParse({
      type: typeof fields.type === 'string' ? fields.type : 'volume',
      target: fields.target ?? fields.destination ?? fields.dst,
    });
    if (!mount.success) {
      throw invalid(
        `devcontainer.json mount ${JSON.stringify(entry)} needs a type (bind, volume, tmpfs) and an absolute target.`,
        {
          field: 'mounts',
        },
      );
    }
    const readOnly =
      fields.readonly === true || fields.readonly === 'true' || fields.ro === true || fields.ro === 'true';
    const { type, target } = mount.data;
    return {
      Type: type,
      Target: target,
      ReadOnly: readOnly,
      ...(typeof source === 'string' && source !== '' ? { Source: source } : {}),
    };
  });
}

/** Applies the supported `runArgs` flags (--privileged, --cap-add, --security-opt, -e/--env). */
function applyRunArgs(
  args: string[],
  extra: ExtraHostConfig,
  containerEnv: Record<string, string>,
  warnings: string[],
): void {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const takeValue = (): string => {
      if (arg.startsWith('--') && eq > 0) return arg.slice(eq + 1);
      if (arg.startsWith('-e') && arg.length > 2 && !arg.startsWith('--')) return arg.slice(2);
      const next = args[++i];
      if (next === undefined)
        throw invalid(`devcontainer.json runArgs "${arg}" needs a value.`, { field: 'runArgs' });
      return next;
    };
    if (flag === '--privileged') {
      extra.Privileged = true;
    } else if (flag === '--cap-add') {
      extra.CapAdd = [...(extra.CapAdd ?? []), takeValue()];
    } else if (flag === '--security-opt') {
      extra.SecurityOpt = [...(extra.SecurityOpt ?? []), takeValue()];
    } else if (flag === '--env' || flag.startsWith('-e')) {
      const pair = takeValue();
      const entry = parseEnvEntry(pair);
      if (entry !== undefined) containerEnv[entry[0]] = entry[1];
      else warnings.push(`runArgs "${arg}" would copy a host variable into the container and was ignored`);
    } else {
      throw invalid(
        `devcontainer.json runArgs "${arg}" is not supported (only --privileged, --cap-add, --security-opt and -e/--env are).`,
        { field: 'runArgs', arg },
      );
    }
  }
}

/**
 * Substitutes `${localWorkspaceFolder}`, `${localWorkspaceFolderBasename}`,
 * `${containerWorkspaceFolder}` and `${containerWorkspaceFolderBasename}`. `${localEnv:...}` is
 * never read from the server's environment (an agent may edit devcontainer.json): it becomes its
 * default or ''. `${containerEnv:...}` is kept for {@link resolveRemoteEnv}.
 */
function substitute(
  value: string,
  local: { folder: string; basename: string },
  container: { folder: string; basename: string } | null,
  warnings: string[],
): string {
  return value.replace(/\$\{([^}]+)\}/g, (match, expression: string) => {
    switch (expression) {
      case 'localWorkspaceFolder':
        return local.folder;
      case 'localWorkspaceFolderBasename':
        return local.basename;
      case 'containerWorkspaceFolder':
        return container ? container.folder : match;
      case 'containerWorkspaceFolderBasename':
        return container ? container.basename : match;
    }
    if (expression.startsWith('localEnv:')) {
      const rest = expression.slice('localEnv:'.length);
      const colon = rest.indexOf(':');
      const name = colon < 0 ? rest : rest.slice(0, colon);
      const fallback = colon < 0 ? undefined : rest.slice(colon + 1);
      warnings.push(`\${localEnv:${name}} is not read from the server's environment`);
      return fallback ?? '';
    }
    return match;
  });
}
