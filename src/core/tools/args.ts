/**
 * Arguments of a typed tool call: checked against the manifest's schema subset by a small checker
 * (no code generation, no eval; patterns on the linear-time engine), then expanded into whole argv
 * items. Private to the tools component.
 */
import { WorkspaceError } from '../../protocol/errors';
import {
  DEFAULT_MAX_ITEMS,
  DEFAULT_MAX_STRING,
  isPathProperty,
  type CompiledManifest,
  type PropertySchema,
  type StringSchema,
} from './manifest';

/** A checked argument value. */
export type ArgumentValue = string | number | boolean | string[];

/** A path argument to confine before the run: which property, which item, the value and the access. */
export interface PathArgument {
  name: string;
  index: number | null;
  path: string;
  access: 'read' | 'write';
}

function invalid(message: string, field: string): WorkspaceError {
  return new WorkspaceError('INVALID_ARGUMENT', message, { field });
}

/** Checks one string (or array item) against its schema. */
function checkString(
  compiled: CompiledManifest,
  name: string,
  field: string,
  schema: StringSchema,
  value: unknown,
): string {
  if (typeof value !== 'string') throw invalid(`${field} must be a string.`, field);
  const max = schema.maxLength ?? DEFAULT_MAX_STRING;
  if (value.length > max) throw invalid(`${field} is longer than ${max} characters.`, field);
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    throw invalid(`${field} is shorter than ${schema.minLength} characters.`, field);
  }
  if (schema.enum && !schema.enum.includes(value)) {
    throw invalid(`${field} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}.`, field);
  }
  const re = compiled.patterns.get(name);
  if (re && !re.isMatch(value)) {
    throw invalid(`${field} does not match the pattern ${JSON.stringify(schema.pattern)}.`, field);
  }
  if (value.startsWith('-') && schema.allowOptionLike !== true && schema.format !== 'workspace-path') {
    throw invalid(
      `${field} starts with "-", so the program could read it as an option; values like this are refused ` +
        'unless the tool manifest sets allowOptionLike for this argument.',
      field,
    );
  }
  return value;
}

/** Checks one argument against its property schema. */
function checkValue(
  compiled: CompiledManifest,
  name: string,
  schema: PropertySchema,
  value: unknown,
): ArgumentValue {
  switch (schema.type) {
    case 'string':
      return checkString(compiled, name, name, schema, value);
    case 'number':
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw invalid(`${name} must be a finite number.`, name);
      }
      if (schema.type === 'integer' && !Number.isSafeInteger(value)) {
        throw invalid(`${name} must be an integer.`, name);
      }
      if (schema.minimum !== undefined && value < schema.minimum) {
        throw invalid(`${name} must be at least ${schema.minimum}.`, name);
      }
      if (schema.maximum !== undefined && value > schema.maximum) {
        throw invalid(`${name} must be at most ${schema.maximum}.`, name);
      }
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(`${name} must be true or false.`, name);
      return value;
    case 'array': {
      if (!Array.isArray(value)) throw invalid(`${name} must be an array of strings.`, name);
      const max = schema.maxItems ?? DEFAULT_MAX_ITEMS;
      if (value.length > max) throw invalid(`${name} has more than ${max} items.`, name);
      if (schema.minItems !== undefined && value.length < schema.minItems) {
        throw invalid(`${name} needs at least ${schema.minItems} items.`, name);
      }
      return value.map((item, i) => checkString(compiled, name, `${name}[${i}]`, schema.items, item));
    }
  }
}

/**
 * Checks a call's arguments: an object with only declared properties, every required one present,
 * each value of its declared type and within its limits. Throws INVALID_ARGUMENT naming the field.
 */
export function checkArguments(compiled: CompiledManifest, raw: unknown): Record<string, ArgumentValue> {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw invalid(`Arguments of ${compiled.manifest.name} must be a JSON object.`, '');
  }
  const { properties, required = [] } = compiled.manifest.inputSchema;
  const values: Record<string, ArgumentValue> = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    const schema = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (!schema) {
      const known = Object.keys(properties);
      throw invalid(
        `${compiled.manifest.name} has no argument "${key}"` +
          (known.length > 0 ? ` (its arguments: ${known.join(', ')}).` : ' (it takes no arguments).'),
        key,
      );
    }
    if (value === undefined) continue;
    values[key] = checkValue(compiled, key, schema, value);
  }
  for (const key of required) {
    if (!(key in values)) throw invalid(`${compiled.manifest.name} needs the argument "${key}".`, key);
  }
  return values;
}

/** The workspace paths among checked arguments, to confine and authorise before the run. */
export function pathArguments(
  compiled: CompiledManifest,
  values: Record<string, ArgumentValue>,
): PathArgument[] {
  const paths: PathArgument[] = [];
  for (const [name, value] of Object.entries(values)) {
    const schema = compiled.manifest.inputSchema.properties[name]!;
    if (!isPathProperty(schema)) continue;
    const access =
      (schema.type === 'array' ? schema.items.access : (schema as StringSchema).access) ?? 'read';
    if (Array.isArray(value)) value.forEach((path, index) => paths.push({ name, index, path, access }));
    else paths.push({ name, index: null, path: String(value), access });
  }
  return paths;
}

/**
 * The argv of a call: literals as written, each placeholder replaced by whole items (absent
 * arguments expand to nothing; booleans to their `flag` when true). `paths` maps each path
 * argument to what is passed instead (its confined workspace-relative form).
 */
export function expandArgv(
  compiled: CompiledManifest,
  values: Record<string, ArgumentValue>,
  paths: ReadonlyMap<PathArgument, string>,
): string[] {
  const confined = new Map<string, string>();
  for (const [arg, rel] of paths) confined.set(`${arg.name}\u0000${arg.index ?? ''}`, rel);
  // A path argument is only ever passed in its confined form: one that was not confined is a bug.
  const confinedPath = (name: string, index: number | null): string => {
    const rel = confined.get(`${name}\u0000${index ?? ''}`);
    if (rel === undefined) throw new Error(`path argument ${name} was not confined before expansion`);
    return rel;
  };
  const argv: string[] = [];
  for (const item of compiled.template) {
    if (item.kind === 'literal') {
      argv.push(item.value);
      continue;
    }
    const value = values[item.name];
    if (value === undefined) continue;
    const schema = compiled.manifest.inputSchema.properties[item.name]!;
    const path = isPathProperty(schema);
    if (Array.isArray(value)) {
      value.forEach((v, i) => argv.push(path ? confinedPath(item.name, i) : v));
    } else if (typeof value === 'boolean') {
      if (schema.type === 'boolean' && schema.flag !== undefined) {
        if (value) argv.push(schema.flag);
      } else {
        argv.push(String(value));
      }
    } else {
      argv.push(path ? confinedPath(item.name, null) : String(value));
    }
  }
  return argv;
}
