/**
 * The tool registry: manifests from the owner's settings and from `.mcp-workspace/tools/*.json`
 * (read through the confined file layer, size-capped, validated one by one), plus detected tools
 * when the owner opted in. Watches the folder and the project files and reloads on change; a broken
 * manifest is reported without taking the other tools down. Private to the tools component.
 */
import { createHash } from 'node:crypto';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log';
import type { ResourceManager } from '../resources';
import type { ToolAnnotations } from '../../protocol/tools';
import type { OutputParsers, ParserSpec } from './index';
import { detectTools, DETECTION_FILES } from './detect';
import {
  compileManifest,
  compileMcpServerManifest,
  declaresMcpServer,
  DEFAULT_MCP_CALL_TIMEOUT_MS,
  isPathProperty,
  loadPatternEngine,
  mayDeclarePatterns,
  ManifestError,
  MAX_MANIFEST_BYTES,
  releaseManifest,
  type CompiledManifest,
  type PropertySchema,
} from './manifest';

/** The workspace folder of tool manifests (protected: agents cannot write it by default). */
export const TOOLS_FOLDER = '.mcp-workspace/tools';
const MANIFEST_ROOT = '.mcp-workspace';
/** Largest project file read for detection (bytes). */
const MAX_DETECTION_BYTES = 1024 * 1024;
/** Changes closer together than this are loaded once. */
const RELOAD_DEBOUNCE_MS = 15;
/** Most manifest files read from the folder. */
const MAX_MANIFEST_FILES = 500;

/** A usable tool: its compiled manifest, where it came from, and what clients are shown. */
export interface RegisteredTool {
  name: string;
  title: string;
  description: string;
  compiled: CompiledManifest;
  /** `settings[0]`, `.mcp-workspace/tools/eslint.json`, `detected:package.json`. */
  source: string;
  /** Offered by a project file, not declared by the owner: never granted by a wildcard rule. */
  detected: boolean;
  /** JSON Schema (draft-07) of the arguments, as clients see it. */
  inputSchema: Record<string, unknown>;
  /** Annotations as the manifest declares them (read-only is further narrowed per caller). */
  annotations: ToolAnnotations;
  /** A digest of the manifest: a change of it is a change of the tool. */
  digest: string;
}

/**
 * A sandboxed MCP server declared by the owner: its stdio command runs in a session's sandbox and
 * its tools are offered as `NAME_TOOL`.
 */
export interface RegisteredMcpServer {
  name: string;
  title: string;
  description: string;
  /** The argv of the stdio server (no shell). */
  command: string[];
  /** Workspace-relative working directory. */
  cwd: string;
  env: Record<string, string>;
  /** Starting it, listing its tools, or one call may take this long (ms). */
  timeoutMs: number;
  source: string;
  /** A digest of the manifest: a change of it restarts the server. */
  digest: string;
}

/** A manifest that was not loaded, and why. */
export interface ToolProblem {
  source: string;
  message: string;
}

/** What one reload changed. */
export interface ToolSetChange {
  added: string[];
  removed: string[];
  changed: string[];
  problems: ToolProblem[];
}

/** Options of a {@link ToolRegistry}. */
export interface ToolRegistryOptions {
  resources: ResourceManager;
  /** Names tools may not take (the built-in operations), compared case-insensitively. */
  reserved: Iterable<string>;
  /** Manifests from the owner's settings (e.g. the VS Code `mcpWorkspace.tools` machine setting). */
  settingsManifests?: readonly unknown[];
  /** Offer detected tools (package.json scripts, Makefile targets, pytest, cargo, go test). */
  detect?: boolean;
  /** Checks manifests' parser specs (a manifest naming a parser is refused without it). */
  parsers?: Pick<OutputParsers, 'validate'>;
  log: Logger;
}

/** The client-facing JSON Schema of one property (server-only keys removed). */
function propertyJson(schema: PropertySchema): Record<string, unknown> {
  const path = isPathProperty(schema);
  const note = path ? ' (workspace-relative path)' : '';
  const base = (description: string | undefined): Record<string, unknown> =>
    description !== undefined || path ? { description: `${description ?? 'Path'}${note}` } : {};
  switch (schema.type) {
    case 'string':
      return {
        type: 'string',
        ...base(schema.description),
        ...(schema.enum ? { enum: schema.enum } : {}),
        ...(schema.pattern !== undefined ? { pattern: schema.pattern } : {}),
        ...(schema.minLength !== undefined ? { minLength: schema.minLength } : {}),
        ...(schema.maxLength !== undefined ? { maxLength: schema.maxLength } : {}),
      };
    case 'number':
    case 'integer':
      return {
        type: schema.type,
        ...base(schema.description),
        ...(schema.minimum !== undefined ? { minimum: schema.minimum } : {}),
        ...(schema.maximum !== undefined ? { maximum: schema.maximum } : {}),
      };
    case 'boolean':
      return { type: 'boolean', ...base(schema.description) };
    case 'array': {
      const { description: _itemDescription, ...item } = propertyJson(schema.items);
      return {
        type: 'array',
        ...base(schema.description),
        items: item,
        ...(schema.minItems !== undefined ? { minItems: schema.minItems } : {}),
        ...(schema.maxItems !== undefined ? { maxItems: schema.maxItems } : {}),
      };
    }
  }
}

/** The JSON Schema clients are given for a manifest's arguments. */
function inputJsonSchema(compiled: CompiledManifest): Record<string, unknown> {
  const { properties, required } = compiled.manifest.inputSchema;
  return {
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, schema]) => [name, propertyJson(schema)]),
    ),
    ...(required && required.length > 0 ? { required } : {}),
    additionalProperties: false,
  };
}

/** A manifest source value and its origin, before validation. */
interface Candidate {
  source: string;
  value: unknown;
  detected: boolean;
}

/**
 * Typed tools in force, reloaded when their manifests or project files change. Listeners hear of
 * every reload that changed the tool set or its problems.
 */
export class ToolRegistry {
  private tools = new Map<string, RegisteredTool>();
  private servers = new Map<string, RegisteredMcpServer>();
  private problemList: ToolProblem[] = [];
  private readonly reserved: ReadonlySet<string>;
  private settings: readonly unknown[];
  private readonly listeners = new Set<(change: ToolSetChange) => void>();
  private readonly watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  private timer: NodeJS.Timeout | null = null;
  private loading: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private generation = 0;

  constructor(private readonly options: ToolRegistryOptions) {
    this.reserved = new Set([...options.reserved].map((name) => name.toLowerCase()));
    this.settings = options.settingsManifests ?? [];
  }

  /** Bumped by every reload that changed something (for caches of derived documents). */
  get version(): number {
    return this.generation;
  }

  /** The tools in force, by name order. */
  list(): RegisteredTool[] {
    return [...this.tools.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The tool with this name, if any. */
  get(name: string): RegisteredTool | undefined {
    return this.tools.get(name);
  }

  /** Sandboxed MCP servers in force, by name order. */
  mcpServers(): RegisteredMcpServer[] {
    return [...this.servers.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * The sandboxed MCP server whose tools a name like `NAME_TOOL` belongs to, and the upstream tool's
   * own name; null when no server's prefix matches.
   */
  mcpServerOf(toolName: string): { server: RegisteredMcpServer; tool: string } | null {
    for (const server of this.servers.values()) {
      if (toolName.startsWith(`${server.name}_`) && toolName.length > server.name.length + 1) {
        return { server, tool: toolName.slice(server.name.length + 1) };
      }
    }
    return null;
  }

  /** Names of the detected tools in force (granted only by a rule that names them). */
  detectedNames(): string[] {
    return this.list()
      .filter((t) => t.detected)
      .map((t) => t.name);
  }

  /** Manifests that were not loaded at the last reload, and why. */
  get problems(): ToolProblem[] {
    return [...this.problemList];
  }

  /** Subscribes to changes of the tool set or its problems; returns the unsubscribe. */
  onChange(listener: (change: ToolSetChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the manifests from the owner's settings and reloads. */
  async setSettingsManifests(manifests: readonly unknown[]): Promise<void> {
    this.settings = [...manifests];
    await this.reload();
  }

  /**
   * Loads every source again and swaps the tool set in one step; concurrent calls share the load in
   * flight and ask for one more after it.
   */
  async reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          await this.loadOnce();
        } while (this.again && !this.closed);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** Starts watching the manifest folder and the project files (reloading on change). */
  watch(): void {
    if (this.closed) return;
    const root = this.options.resources.root;
    const rootNames = new Set([MANIFEST_ROOT, ...(this.options.detect ? DETECTION_FILES : [])]);
    this.watchDir('.', root, (name) => name === null || rootNames.has(name));
    this.watchDir(MANIFEST_ROOT, join(root, MANIFEST_ROOT), (name) => name === null || name === 'tools');
    this.watchDir(TOOLS_FOLDER, join(root, TOOLS_FOLDER), () => true);
  }

  /** Stops watching and releases every compiled manifest. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    for (const tool of this.tools.values()) releaseManifest(tool.compiled);
    this.tools.clear();
    this.servers.clear();
    this.listeners.clear();
  }

  /** Watches a folder unless the one already watched is still the folder at that path. */
  private watchDir(key: string, path: string, relevant: (name: string | null) => boolean): void {
    const ino = statSync(path, { throwIfNoEntry: false })?.ino;
    const current = this.watchers.get(key);
    if (current && current.ino === ino) return;
    current?.watcher.close();
    this.watchers.delete(key);
    // Missing for now: the parent's watcher sees it appear and this runs again.
    if (ino === undefined) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(path, { persistent: false }, (_event, name) => {
        if (relevant(name === null ? null : String(name))) this.schedule();
      });
    } catch {
      return;
    }
    watcher.on('error', () => {
      watcher.close();
      if (this.watchers.get(key)?.watcher === watcher) this.watchers.delete(key);
      this.schedule();
    });
    this.watchers.set(key, { watcher, ino });
    // Whatever changed before the watch began is loaded now.
    if (current) this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      // Folders created or replaced since the last look are watched (again) before loading.
      this.watch();
      void this.reload();
    }, RELOAD_DEBOUNCE_MS);
    this.timer.unref();
  }

  private async loadOnce(): Promise<void> {
    const problems: ToolProblem[] = [];
    const candidates: Candidate[] = this.settings.map((value, i) => ({
      source: `settings[${i}]`,
      value,
      detected: false,
    }));
    candidates.push(...(await this.readManifestFiles(problems)));
    if (this.options.detect) {
      const read = (name: string): Promise<string | null> => this.readRootFile(name);
      for (const found of await detectTools(read)) {
        candidates.push({ source: `detected:${found.source}`, value: found.manifest, detected: true });
      }
    }
    if (candidates.some((c) => mayDeclarePatterns(c.value))) await loadPatternEngine();
    const next = new Map<string, RegisteredTool>();
    const nextServers = new Map<string, RegisteredMcpServer>();
    const taken = new Set<string>();
    // A server NAME takes every name `NAME_...`: no tool and no other server may fall in it.
    const clash = (lower: string): string | null => {
      for (const server of nextServers.values()) {
        const prefix = `${server.name.toLowerCase()}_`;
        if (lower.startsWith(prefix) || `${lower}_`.startsWith(prefix) || prefix.startsWith(`${lower}_`)) {
          return `the MCP server "${server.name}" of ${server.source} (its tools are ${server.name}_TOOL)`;
        }
      }
      return null;
    };
    for (const candidate of candidates) {
      if (!candidate.detected && declaresMcpServer(candidate.value)) {
        const problem = this.addMcpServer(candidate, nextServers, next, taken, clash);
        if (problem) problems.push({ source: candidate.source, message: problem });
        continue;
      }
      let compiled: CompiledManifest;
      try {
        compiled = compileManifest(candidate.value, this.reserved);
      } catch (err) {
        if (!(err instanceof ManifestError)) throw err;
        problems.push({ source: candidate.source, message: err.message });
        continue;
      }
      const { manifest } = compiled;
      const lower = manifest.name.toLowerCase();
      let problem: string | null = null;
      const server = clash(lower);
      if (taken.has(lower)) {
        const first = [...next.values()].find((t) => t.name.toLowerCase() === lower);
        problem = `the name "${manifest.name}" is already taken by ${first?.source ?? 'another tool'}.`;
      } else if (server !== null) {
        problem = `the name "${manifest.name}" falls among the tools of ${server}.`;
      } else if (manifest.parser) {
        problem = this.parserProblem(manifest.parser);
      }
      if (problem) {
        releaseManifest(compiled);
        if (!candidate.detected) problems.push({ source: candidate.source, message: problem });
        continue;
      }
      taken.add(lower);
      const given = manifest.annotations ?? {};
      next.set(manifest.name, {
        name: manifest.name,
        title: manifest.title ?? manifest.name,
        description: manifest.description,
        compiled,
        source: candidate.source,
        detected: candidate.detected,
        inputSchema: inputJsonSchema(compiled),
        annotations: {
          readOnlyHint: given.readOnlyHint === true && !candidate.detected,
          destructiveHint: given.destructiveHint ?? true,
          idempotentHint: given.idempotentHint ?? false,
          openWorldHint: given.openWorldHint ?? false,
        },
        digest: createHash('sha256')
          .update(JSON.stringify([candidate.source, manifest]))
          .digest('hex'),
      });
    }
    if (this.closed) {
      for (const tool of next.values()) releaseManifest(tool.compiled);
      return;
    }
    const previous = this.tools;
    const change: ToolSetChange = { added: [], removed: [], changed: [], problems };
    const compare = (now: Map<string, { digest: string }>, before: Map<string, { digest: string }>): void => {
      for (const [name, entry] of now) {
        const old = before.get(name);
        if (!old) change.added.push(name);
        else if (old.digest !== entry.digest) change.changed.push(name);
      }
      for (const name of before.keys()) if (!now.has(name)) change.removed.push(name);
    };
    compare(next, previous);
    compare(nextServers, this.servers);
    const problemsChanged = JSON.stringify(problems) !== JSON.stringify(this.problemList);
    this.tools = next;
    this.servers = nextServers;
    this.problemList = problems;
    for (const tool of previous.values()) releaseManifest(tool.compiled);
    if (change.added.length + change.removed.length + change.changed.length === 0 && !problemsChanged) return;
    this.generation++;
    for (const problem of problems) {
      this.options.log.warn('tool manifest not loaded', { source: problem.source, problem: problem.message });
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.options.log.error('tool change listener failed', { error: (err as Error).message });
      }
    }
  }

  /** Validates and adds a sandboxed MCP server's manifest; returns the problem when it is not added. */
  private addMcpServer(
    candidate: Candidate,
    servers: Map<string, RegisteredMcpServer>,
    tools: Map<string, RegisteredTool>,
    taken: Set<string>,
    clash: (lower: string) => string | null,
  ): string | null {
    let manifest;
    try {
      manifest = compileMcpServerManifest(candidate.value, this.reserved);
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      return err.message;
    }
    const lower = manifest.name.toLowerCase();
    const server = clash(lower);
    if (server !== null) return `the name "${manifest.name}" overlaps the tool names of ${server}.`;
    const tool = [...tools.values()].find((t) => {
      const name = t.name.toLowerCase();
      return name === lower || name.startsWith(`${lower}_`);
    });
    if (tool) {
      return `the name "${manifest.name}" would offer tools named like the tool "${tool.name}" of ${tool.source}.`;
    }
    taken.add(lower);
    const { command, cwd, env, timeoutMs } = manifest.mcpServer;
    servers.set(manifest.name, {
      name: manifest.name,
      title: manifest.title ?? manifest.name,
      description: manifest.description ?? `Tools of the sandboxed MCP server ${manifest.name}.`,
      command,
      cwd: cwd ?? '.',
      env: env ?? {},
      timeoutMs: timeoutMs ?? DEFAULT_MCP_CALL_TIMEOUT_MS,
      source: candidate.source,
      digest: createHash('sha256')
        .update(JSON.stringify([candidate.source, manifest]))
        .digest('hex'),
    });
    return null;
  }

  /** Why a manifest's parser cannot be used, or null when it can. */
  private parserProblem(spec: ParserSpec): string | null {
    const parsers = this.options.parsers;
    if (!parsers) return `names the output parser "${spec.type}", but this server has no output parsers.`;
    try {
      parsers.validate(spec);
      return null;
    } catch (err) {
      return `its parser cannot be used: ${(err as Error).message}`;
    }
  }

  /** Reads `.mcp-workspace/tools/*.json` through the confined file layer; problems are collected. */
  private async readManifestFiles(problems: ToolProblem[]): Promise<Candidate[]> {
    const { resources } = this.options;
    let folder;
    try {
      folder = resources.resolve(TOOLS_FOLDER, { followFinal: true });
    } catch {
      return [];
    }
    let entries;
    try {
      if (folder.stats === undefined) return [];
      if (folder.realRel !== TOOLS_FOLDER) {
        problems.push({
          source: TOOLS_FOLDER,
          message: `is a link to ${folder.realRel}; the manifest folder must be a real folder.`,
        });
        return [];
      }
      entries = (await resources.listFiles(folder, { depth: 1, maxEntries: MAX_MANIFEST_FILES + 1 })).entries;
    } catch (err) {
      problems.push({ source: TOOLS_FOLDER, message: `cannot be read: ${(err as Error).message}` });
      return [];
    } finally {
      folder.close();
    }
    const out: Candidate[] = [];
    for (const entry of entries.filter((e) => e.name.endsWith('.json')).slice(0, MAX_MANIFEST_FILES)) {
      const source = `${TOOLS_FOLDER}/${entry.name}`;
      if (entry.type !== 'file') {
        problems.push({ source, message: `is a ${entry.type}, not a regular file; it was not read.` });
        continue;
      }
      if ((entry.size ?? 0) > MAX_MANIFEST_BYTES) {
        problems.push({ source, message: `is larger than ${MAX_MANIFEST_BYTES} bytes; it was not read.` });
        continue;
      }
      try {
        const file = await resources.readFile(source, { encoding: 'utf8' });
        if (file.size > MAX_MANIFEST_BYTES) {
          problems.push({ source, message: `is larger than ${MAX_MANIFEST_BYTES} bytes; it was not read.` });
          continue;
        }
        out.push({ source, value: JSON.parse(file.content) as unknown, detected: false });
      } catch (err) {
        const message =
          err instanceof SyntaxError ? `is not valid JSON (${err.message})` : (err as Error).message;
        problems.push({ source, message });
      }
    }
    return out;
  }

  /** A workspace-root project file's text (confined, size-capped), or null. */
  private async readRootFile(name: string): Promise<string | null> {
    const { resources } = this.options;
    try {
      const info = await resources.stat(name);
      if (info.type !== 'file' || info.size > MAX_DETECTION_BYTES) return null;
      const file = await resources.readFile(name, { encoding: 'utf8' });
      return file.size > MAX_DETECTION_BYTES ? null : file.content;
    } catch {
      return null;
    }
  }
}
