import { hash } from 'node:crypto';

/** Replacement for any secret value. */
export const REDACTED = '[REDACTED]';

const MAX_DEPTH = 8;
const MAX_ARRAY = 100;
const MAX_STRING = 1024;

/** Keys whose values are secrets whatever they hold. */
const SECRET_KEY = /token|secret|passw|apikey|api_key|authorization|credential|private_?key|cookie/i;

/** Keys whose string values are bulk data: stored as a size and digest only. */
const SUMMARY_KEYS = new Set(['content', 'stdin']);

/** Cheap pre-check: a string that matches none of these cannot contain a secret pattern below. */
const SECRET_HINT = /PRIVATE KEY|bearer|gh[pousr]_|github_pat_|A[KS]IA|xox[abpr]-|sk-|eyJ|[0-9a-f]{64}/i;

/** Secret shapes found inside strings; group 1, when present, is context to keep. */
const SECRET_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
  /\b(Bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi,
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g,
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\bxox[abpr]-[A-Za-z0-9-]{10,}/g,
  /\bsk-[A-Za-z0-9_-]{20,}/g,
  /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /(\b[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*["']?)[0-9a-fA-F]{64}(?![0-9a-fA-F])/g,
  /((?:token|secret|key|passw|auth|bearer|credential)[A-Za-z0-9_-]*["']?\s*[:=]?\s*["']?)[0-9a-fA-F]{64}(?![0-9a-fA-F])/gi,
];

/**
 * Returns a JSON-safe deep copy of `value` with secrets removed: secret-named keys and secret-looking
 * substrings become "[REDACTED]", `content`/`stdin` and long strings become `{bytes, sha256}`.
 * Object keys are inserted sorted, so `JSON.stringify` of the result is canonical.
 */
export function redact(value: unknown): unknown {
  return redactValue(value, 0);
}

/** Size and sha256 of bulk data, so the audit proves what was written without storing it. */
function summarize(data: string | Uint8Array): { bytes: number; sha256: string } {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  return { bytes, sha256: hash('sha256', data) };
}

/** Replaces every secret-looking part of `s`, keeping the surrounding text. */
function redactString(s: string): string {
  if (!SECRET_HINT.test(s)) return s;
  let out = s;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (_match: string, keep: unknown) =>
      typeof keep === 'string' ? keep + REDACTED : REDACTED,
    );
  }
  return out;
}

function redactValue(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      return value.length > MAX_STRING ? summarize(value) : redactString(value);
    case 'number':
      if (value === 0) return 0; // folds -0, which JSON cannot represent
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'object':
      return value === null ? null : redactObject(value, depth);
    default:
      return undefined;
  }
}

function redactObject(value: object, depth: number): unknown {
  if (depth >= MAX_DEPTH) return '[Truncated: max depth]';
  if (Array.isArray(value)) return redactArray(value, depth);
  if (ArrayBuffer.isView(value)) {
    return summarize(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Error) return redactFields(errorFields(value), depth);
  if (value instanceof Set) return redactArray([...value], depth);
  if (value instanceof Map) return redactFields(Object.fromEntries(value), depth);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redactValue(toJSON.call(value), depth + 1);
  return redactFields(value as Record<string, unknown>, depth);
}

function redactArray(value: readonly unknown[], depth: number): unknown[] {
  const n = Math.min(value.length, MAX_ARRAY);
  const out: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = redactValue(value[i], depth + 1) ?? null;
  if (value.length > MAX_ARRAY) out.push(`[Truncated: ${value.length - MAX_ARRAY} more items]`);
  return out;
}

function redactFields(value: Record<string, unknown>, depth: number): Record<string, unknown> {
  // Sorted insertion makes the JSON key order a function of the key set alone (integer-like keys
  // still come first, in numeric order, as the language orders them): canonical and fast to emit.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const field = value[key];
    let redacted: unknown;
    if (field === undefined) continue;
    if (SECRET_KEY.test(key)) redacted = field === null ? null : REDACTED;
    else if (SUMMARY_KEYS.has(key) && (typeof field === 'string' || field instanceof Uint8Array)) {
      redacted = summarize(field);
    } else redacted = redactValue(field, depth + 1);
    if (redacted === undefined) continue;
    if (key === '__proto__') {
      Object.defineProperty(out, key, {
        value: redacted,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[key] = redacted;
  }
  return out;
}

function errorFields(err: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) fields.code = code;
  return fields;
}
