/**
 * Tool manifests: the owner's declaration of a typed tool (name, JSON Schema subset of its
 * arguments, argv template with no shell, cwd, timeout, env, output parser). Manifests are hostile
 * input until validated: strict schema, size caps, placeholders that are whole argv items, path
 * arguments only after the template's `--`, and patterns compiled by the linear-time engine.
 * Private to the tools component (its index re-exports what others need).
 */
import type { RRegex } from 'rregex';
import { z } from 'zod';

/** Largest manifest file read (bytes). */
export const MAX_MANIFEST_BYTES = 64 * 1024;
/** Tool names clients and model APIs accept. */
export const TOOL_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Default and largest timeout of a tool run (ms). */
export const DEFAULT_TOOL_TIMEOUT_MS = 120_000;
const MAX_TOOL_TIMEOUT_MS = 3_600_000;
/** A string argument longer than this is refused unless the schema sets maxLength. */
export const DEFAULT_MAX_STRING = 4096;
/** An array argument with more items is refused unless the schema sets maxItems. */
export const DEFAULT_MAX_ITEMS = 256;

/** A whole-item placeholder: `{name}` or `{name...}`. */
const PLACEHOLDER_RE = /^\{([A-Za-z_][A-Za-z0-9_]{0,63})(\.\.\.)?\}$/;
/** A placeholder spliced into a longer item, which is refused. */
const EMBEDDED_PLACEHOLDER_RE = /\{[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.\.\.)?\}/;
const PROPERTY_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

const description = z.string().max(2000).optional();
const pattern = z.string().min(1).max(1000).optional();
const allowOptionLike = z
  .boolean()
  .optional()
  .describe('Accept values starting with "-" (refused by default: they would read as options).');
const access = z.enum(['read', 'write']).optional();

const stringItem = z.strictObject({
  type: z.literal('string'),
  description,
  enum: z.array(z.string().max(DEFAULT_MAX_STRING)).min(1).max(256).optional(),
  pattern,
  minLength: z.number().int().min(0).optional(),
  maxLength: z.number().int().min(1).max(100_000).optional(),
  format: z.literal('workspace-path').optional(),
  access,
  allowOptionLike,
});

const propertySchema = z.discriminatedUnion('type', [
  stringItem,
  z.strictObject({
    type: z.enum(['number', 'integer']),
    description,
    minimum: z.number().optional(),
    maximum: z.number().optional(),
  }),
  z.strictObject({
    type: z.literal('boolean'),
    description,
    flag: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('The argv item a `{name}` placeholder becomes when true (nothing when false).'),
  }),
  z.strictObject({
    type: z.literal('array'),
    description,
    items: stringItem,
    minItems: z.number().int().min(0).optional(),
    maxItems: z.number().int().min(1).max(10_000).optional(),
  }),
]);

const annotationsSchema = z.strictObject({
  readOnlyHint: z.boolean().optional(),
  destructiveHint: z.boolean().optional(),
  idempotentHint: z.boolean().optional(),
  openWorldHint: z.boolean().optional(),
});

/** The linear-time regex engine, loaded on first need (its WebAssembly takes ~0.2 s to start). */
let engine: typeof import('rregex') | null = null;

/** Loads the linear-time engine that `pattern` fields need (once); call before compiling such manifests. */
export async function loadPatternEngine(): Promise<void> {
  engine ??= await import('rregex');
}

/** Whether a manifest value declares any `pattern` (and so needs {@link loadPatternEngine}). */
export function mayDeclarePatterns(value: unknown): boolean {
  return JSON.stringify(value ?? null).includes('"pattern"');
}

/** The manifest file format (unknown fields are refused). */
export const manifestSchema = z.strictObject({
  $schema: z.string().max(500).optional(),
  name: z.string().regex(TOOL_NAME_RE, 'letters, digits, "_" and "-", 1 to 64 characters'),
  title: z.string().min(1).max(200).optional(),
  description: z.string().min(1).max(4000),
  inputSchema: z
    .strictObject({
      type: z.literal('object'),
      properties: z.record(z.string().regex(PROPERTY_NAME_RE), propertySchema).default({}),
      required: z.array(z.string()).max(100).optional(),
      additionalProperties: z.literal(false).optional(),
    })
    .default({ type: 'object', properties: {} }),
  argv: z.array(z.string().min(1).max(4096)).min(1).max(256),
  cwd: z.string().min(1).max(1000).optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TOOL_TIMEOUT_MS).optional(),
  env: z.record(z.string().regex(ENV_NAME_RE), z.string().max(100_000)).optional(),
  parser: z.looseObject({ type: z.string().min(1).max(100) }).optional(),
  annotations: annotationsSchema.optional(),
});

/** A manifest as written (validated). */
export type ToolManifest = z.output<typeof manifestSchema>;
/** One argument's schema. */
export type PropertySchema = z.output<typeof propertySchema>;
/** A string (or array item) argument's schema. */
export type StringSchema = z.output<typeof stringItem>;

/** One item of a compiled argv template. */
export type TemplateItem =
  { kind: 'literal'; value: string } | { kind: 'arg'; name: string; spread: boolean; afterDashDash: boolean };

/** A validated manifest with its template compiled and its patterns built by the linear-time engine. */
export interface CompiledManifest {
  manifest: ToolManifest;
  template: TemplateItem[];
  /** Linear-time matchers of `pattern` fields, by property name (array items use the item pattern). */
  patterns: Map<string, RRegex>;
}

/** A manifest that cannot be used, with what is wrong in words the owner can act on. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Whether a property is a workspace path (a string, or an array of strings, with format workspace-path). */
export function isPathProperty(schema: PropertySchema): boolean {
  if (schema.type === 'string') return schema.format === 'workspace-path';
  if (schema.type === 'array') return schema.items.format === 'workspace-path';
  return false;
}

/**
 * Validates a manifest and compiles its template and patterns. `reserved` holds names it must not
 * take (the built-in operations). Throws ManifestError naming the problem.
 */
export function compileManifest(value: unknown, reserved: ReadonlySet<string>): CompiledManifest {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) throw new ManifestError(z.prettifyError(parsed.error));
  const manifest = parsed.data;
  if (reserved.has(manifest.name.toLowerCase())) {
    throw new ManifestError(`the name "${manifest.name}" is a built-in operation; choose another name.`);
  }
  const properties = manifest.inputSchema.properties;
  for (const name of manifest.inputSchema.required ?? []) {
    if (!(name in properties)) throw new ManifestError(`required names "${name}", which is not a property.`);
  }
  const template = compileTemplate(manifest);
  const patterns = new Map<string, RRegex>();
  const sources = patternsOf(manifest);
  if (sources.length > 0 && !engine) {
    throw new Error('compileManifest: call loadPatternEngine() before compiling a manifest with patterns');
  }
  try {
    for (const [name, source] of sources) {
      try {
        patterns.set(name, new engine!.RRegex(source));
      } catch (err) {
        throw new ManifestError(
          `the pattern of "${name}" cannot be used (${String((err as Error).message ?? err)}): patterns use a ` +
            'linear-time engine (Rust regex syntax; no backreferences or look-around).',
        );
      }
    }
  } catch (err) {
    for (const re of patterns.values()) re.free();
    throw err;
  }
  return { manifest, template, patterns };
}

/** The `pattern` fields of a manifest's properties (array items use the item's), by property name. */
function patternsOf(manifest: ToolManifest): [string, string][] {
  const found: [string, string][] = [];
  for (const [name, schema] of Object.entries(manifest.inputSchema.properties)) {
    const source =
      schema.type === 'string' ? schema.pattern : schema.type === 'array' ? schema.items.pattern : undefined;
    if (source !== undefined) found.push([name, source]);
  }
  return found;
}

/**
 * Compiles the argv template: the program is a literal; each `{name}` / `{name...}` item is a whole
 * placeholder (never spliced into a longer item); every path placeholder comes after a literal `--`
 * (a template that puts one before its `--` is refused rather than rewritten, so what runs is exactly
 * what the owner wrote); every property is used.
 */
function compileTemplate(manifest: ToolManifest): TemplateItem[] {
  const properties = manifest.inputSchema.properties;
  const used = new Set<string>();
  let afterDashDash = false;
  const items = manifest.argv.map((item, index): TemplateItem => {
    const match = PLACEHOLDER_RE.exec(item);
    if (!match) {
      if (EMBEDDED_PLACEHOLDER_RE.test(item)) {
        throw new ManifestError(
          `argv[${index}] "${item}" splices a placeholder into a longer item; placeholders must be whole ` +
            'argv items (write "--out", "{out}" instead of "--out={out}").',
        );
      }
      if (item === '--') afterDashDash = true;
      return { kind: 'literal', value: item };
    }
    const name = match[1]!;
    const spread = match[2] !== undefined;
    if (index === 0) throw new ManifestError('argv[0] must be the program, not a placeholder.');
    const schema = properties[name];
    if (!schema) throw new ManifestError(`argv[${index}] uses {${name}}, which is not a property.`);
    if (spread !== (schema.type === 'array')) {
      throw new ManifestError(
        spread
          ? `argv[${index}] spreads {${name}...}, but "${name}" is not an array.`
          : `argv[${index}] uses {${name}} for the array "${name}"; write {${name}...}.`,
      );
    }
    if (isPathProperty(schema) && !afterDashDash) {
      throw new ManifestError(
        `argv[${index}] places the path argument {${name}${spread ? '...' : ''}} before a "--" item; put ` +
          '"--" before path arguments so that no path can be read as an option.',
      );
    }
    used.add(name);
    return { kind: 'arg', name, spread, afterDashDash };
  });
  for (const name of Object.keys(properties)) {
    if (!used.has(name)) throw new ManifestError(`property "${name}" is never used in argv.`);
  }
  return items;
}

/** Frees the engine memory held by a compiled manifest's patterns. */
export function releaseManifest(compiled: CompiledManifest): void {
  for (const re of compiled.patterns.values()) re.free();
  compiled.patterns.clear();
}

/** Names of sandboxed MCP servers: their tools are offered as `NAME_TOOL`, within 64 characters. */
export const MCP_SERVER_NAME_RE = /^[A-Za-z0-9_-]{1,48}$/;
/** Default and largest time one call to a sandboxed MCP server may take (ms). */
export const DEFAULT_MCP_CALL_TIMEOUT_MS = 60_000;
const MAX_MCP_CALL_TIMEOUT_MS = 600_000;

/** The manifest of a sandboxed MCP server: a stdio command run inside the session's sandbox. */
export const mcpServerManifestSchema = z.strictObject({
  $schema: z.string().max(500).optional(),
  name: z
    .string()
    .regex(MCP_SERVER_NAME_RE, 'letters, digits, "_" and "-", 1 to 48 characters (tools are NAME_TOOL)'),
  title: z.string().min(1).max(200).optional(),
  description: z.string().min(1).max(4000).optional(),
  mcpServer: z.strictObject({
    command: z
      .array(z.string().min(1).max(4096))
      .min(1)
      .max(256)
      .describe('The stdio server as an argv (no shell): program first, e.g. ["node", "tools/server.js"].'),
    cwd: z.string().min(1).max(1000).optional(),
    env: z.record(z.string().regex(ENV_NAME_RE), z.string().max(100_000)).optional(),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .max(MAX_MCP_CALL_TIMEOUT_MS)
      .optional()
      .describe('How long starting the server, listing its tools or one tool call may take.'),
  }),
});

/** A sandboxed MCP server's manifest as written (validated). */
export type McpServerManifest = z.output<typeof mcpServerManifestSchema>;

/** Whether a manifest value declares an MCP server (`mcpServer`) rather than a typed tool. */
export function declaresMcpServer(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'mcpServer' in value;
}

/**
 * Validates a sandboxed MCP server's manifest. Its tools become `NAME_TOOL`, so neither NAME nor any
 * name it could produce may shadow a built-in operation (`reserved`, lower case). Throws ManifestError.
 */
export function compileMcpServerManifest(value: unknown, reserved: ReadonlySet<string>): McpServerManifest {
  const parsed = mcpServerManifestSchema.safeParse(value);
  if (!parsed.success) throw new ManifestError(z.prettifyError(parsed.error));
  const manifest = parsed.data;
  const lower = manifest.name.toLowerCase();
  if (reserved.has(lower)) {
    throw new ManifestError(`the name "${manifest.name}" is a built-in operation; choose another name.`);
  }
  const shadowed = [...reserved].find((name) => name.startsWith(`${lower}_`));
  if (shadowed !== undefined) {
    throw new ManifestError(
      `the name "${manifest.name}" would offer tools named like the built-in operation "${shadowed}"; ` +
        'choose another name.',
    );
  }
  return manifest;
}
