import { createHmac, randomBytes, webcrypto } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, open, readFile, unlink } from 'node:fs/promises';
import { WorkspaceError } from '../../protocol/errors';
import { isErrno } from '../shared/fs';

/** Replacement for any secret value. */
export const REDACTED = '[REDACTED]';

/** Size of the redaction key (HMAC-SHA256) in bytes. */
export const REDACTION_KEY_BYTES = 32;

const MAX_DEPTH = 8;
const MAX_ARRAY = 100;
const MAX_STRING = 1024;

/**
 * Names whose values are secrets whatever they hold: object keys (env variables included) and the
 * names in `NAME=value`, `name: value` and `--name value` forms.
 */
const SECRET_NAME =
  /key|token|secret|passw|pwd|passphrase|credential|authoriz|auth(?!or)|cookie|private|signature|salt|dsn/i;

/** Keys whose string values are bulk data or edit texts: stored as a size and a keyed hash only. */
const SUMMARY_KEYS = new Set(['content', 'stdin', 'oldText', 'newText']);

/** A command-line flag that names a secret, whose value is the next argument (`--password x`). */
const SECRET_FLAG =
  /^--?[A-Za-z0-9_.-]*(?:key|token|secret|passw|pwd|passphrase|credential|authoriz|auth(?!or))[A-Za-z0-9_.-]*$/i;
/** Flags whose next argument is `user:password` (curl, wget and friends). */
const USER_FLAG = /^(?:-u|--user|--proxy-user|--http-user|--ftp-user)$/;

/** Secret shapes found inside strings; group 1, when present, is context to keep. */
const SECRET_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
  // Credentials in a URL: everything between `scheme://` and `@` (user:password, or a token).
  /(\b[A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/)[^\s/?#@"'<>]{1,512}(?=@)/g,
  /\b((?:Bearer|Basic)\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi,
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g,
  /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b/g,
  /\bxox[abposrce]-[A-Za-z0-9-]{10,}/g,
  /\bxapp-[A-Za-z0-9-]{10,}/g,
  /\bsk-[A-Za-z0-9_-]{20,}/g,
  /\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}/g,
  /\bglpat-[A-Za-z0-9_-]{20,}/g,
  /\bnpm_[A-Za-z0-9]{36}\b/g,
  /\bAIza[0-9A-Za-z_-]{35}/g,
  /\bhf_[A-Za-z0-9]{30,}/g,
  // This product's own agent tokens.
  /\bmcpw_[A-Za-z0-9_-]{20,}/g,
  /\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  // `curl -u user:password`: the user stays, the password goes.
  /((?:^|\s)(?:-u|--user|--proxy-user)\s*["']?[^\s:"']{1,256}:)[^\s"']+/g,
  // `--password hunter2`: a secret-named flag and its separate value.
  /((?:^|\s)--?[A-Za-z0-9_.-]{0,64}(?:key|token|secret|passw|pwd|passphrase|credential|authoriz|auth(?!or))[A-Za-z0-9_.-]{0,64}[ \t]+)(?![-[])(?:"[^"\n]{0,1024}"|'[^'\n]{0,1024}'|[^\s"']{1,1024})/gi,
  // A 64-hex value after a secret-sounding word, with or without a separator.
  /((?:token|secret|key|passw|auth|bearer|credential)[A-Za-z0-9_-]{0,64}["']?[ \t]{0,8}[:=]?[ \t]{0,8}["']?)[0-9a-fA-F]{64}(?![0-9a-fA-F])/gi,
];

/** `NAME=value`, `name: value`, `"name": "value"`, `--name=value` where the name sounds secret. */
const SECRET_ASSIGNMENT =
  /((?:^|[^A-Za-z0-9_.-])[A-Za-z0-9_.-]{0,64}(?:key|token|secret|passw|pwd|passphrase|credential|authoriz|auth(?!or)|cookie|private|signature|salt|dsn)[A-Za-z0-9_.-]{0,64}["']?[ \t]{0,8}[:=][ \t]{0,8})(?!(?:Bearer|Basic)\s|\[REDACTED\])(?:"([^"\n]{0,1024})"|'([^'\n]{0,1024})'|([^\s"'&;|,})\]]{1,1024}))/gi;

/** Any `name=value` whose value is long and random-looking (hex, base64, base64url). */
const RANDOM_ASSIGNMENT =
  /(\b[A-Za-z_][A-Za-z0-9_.-]{0,128}[ \t]{0,8}=[ \t]{0,8}["']?)([A-Za-z0-9+/_-]{20,1024}={0,2})/g;

/** Whether `value` looks like key material rather than a word, a path or a number. */
function looksRandom(value: string): boolean {
  const bare = value.replace(/=+$/, '');
  if (/^[0-9a-fA-F]{32,}$/.test(bare)) return true;
  if (!/[0-9]/.test(bare) || !/[A-Za-z]/.test(bare)) return false;
  const counts = new Map<string, number>();
  for (const ch of bare) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let entropy = 0;
  for (const n of counts.values()) {
    const p = n / bare.length;
    entropy -= p * Math.log2(p);
  }
  return entropy >= 3.7;
}

/** Options of {@link createRedactor}. */
export interface RedactorOptions {
  /**
   * Key of the HMAC-SHA256 that summarises bulk data and edit texts: without it, a short secret
   * cannot be recovered from its summary by guessing. Keep it with the log it serves.
   */
  key: Uint8Array;
  /** Exact secrets to remove wherever they appear (for example the owner token); read on each call. */
  secrets?: () => Iterable<string>;
  /** Summaries of large strings computed ahead of time, off the event loop (see {@link createSummaryCache}). */
  summaries?: SummaryCache;
}

/** What a summarised string or byte array becomes: its length and keyed hash. */
export interface Summary {
  bytes: number;
  hmac: string;
}

/** Strings from this length on are summarised ahead of time by {@link SummaryCache.prepare}. */
const PREPARE_CHARS = 256 * 1024;

/**
 * Summaries of large strings computed before a record is sealed: the HMAC of a 10 MiB file
 * content runs on the thread pool (WebCrypto) instead of blocking the event loop while the
 * record is redacted. The redactor takes a prepared summary instead of computing it again.
 */
export interface SummaryCache {
  /** Computes the summaries of the large strings in `value` (objects and arrays, a few levels deep). */
  prepare(value: unknown): Promise<void>;
  /** The prepared summary of exactly this string, once; undefined when none was prepared. */
  take(data: string): Summary | undefined;
}

/** A {@link SummaryCache} for the HMAC key of a redactor (the same key, so the summaries agree). */
export function createSummaryCache(key: Uint8Array): SummaryCache {
  let cryptoKey: Promise<webcrypto.CryptoKey> | null = null;
  // Keyed by the string itself: V8 hashes long strings by length and compares the same string object
  // by identity, so a lookup costs nothing like a hash of the content.
  const ready = new Map<string, Summary>();
  const collect = (v: unknown, depth: number, out: string[]): void => {
    if (typeof v === 'string') {
      if (v.length >= PREPARE_CHARS) out.push(v);
    } else if (v !== null && typeof v === 'object' && depth < 4) {
      const items = Array.isArray(v)
        ? v.slice(0, 100)
        : Object.values(v as Record<string, unknown>).slice(0, 100);
      for (const item of items) collect(item, depth + 1, out);
    }
  };
  return {
    async prepare(value) {
      const found: string[] = [];
      collect(value, 0, found);
      if (found.length === 0) return;
      cryptoKey ??= webcrypto.subtle.importKey(
        'raw',
        Buffer.from(key),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['sign'],
      );
      const hmacKey = await cryptoKey;
      await Promise.all(
        found.map(async (text) => {
          const bytes = Buffer.from(text, 'utf8');
          const hmac = Buffer.from(await webcrypto.subtle.sign('HMAC', hmacKey, bytes)).toString('hex');
          // Summaries not taken (a record that was never sealed) must not pile up.
          if (ready.size >= 64) ready.clear();
          ready.set(text, { bytes: bytes.byteLength, hmac });
        }),
      );
    },
    take(data) {
      const summary = ready.get(data);
      if (summary) ready.delete(data);
      return summary;
    },
  };
}

/** Turns any value into a JSON-safe copy that holds no secret. */
export type Redact = (value: unknown) => unknown;

/**
 * A redactor: returns a JSON-safe deep copy of a value with secrets removed. Secret-named keys (env
 * variables included) and secret-looking substrings (credentials in URLs, provider key shapes, JWTs,
 * PEM private keys, `NAME=value` with a secret name or a random-looking value, `--password x`)
 * become "[REDACTED]"; `content`, `stdin`, `oldText`, `newText` and long strings become
 * `{bytes, hmac}`. Object keys are inserted sorted, so `JSON.stringify` of the result is canonical.
 */
export function createRedactor(options: RedactorOptions): Redact {
  if (options.key.byteLength < 16) {
    throw new WorkspaceError('INVALID_ARGUMENT', 'The redaction key must be at least 16 bytes.');
  }
  const key = Buffer.from(options.key);
  const secrets = options.secrets;
  const summaries = options.summaries;
  const summarize = (data: string | Uint8Array): Summary =>
    (typeof data === 'string' ? summaries?.take(data) : undefined) ?? {
      bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength,
      hmac: createHmac('sha256', key).update(data).digest('hex'),
    };
  const redactString = (s: string): string => {
    let out = s;
    if (secrets) {
      for (const secret of secrets()) {
        if (secret.length >= 8 && out.includes(secret)) out = out.split(secret).join(REDACTED);
      }
    }
    for (const pattern of SECRET_PATTERNS) {
      out = out.replace(pattern, (_match: string, keep: unknown) =>
        typeof keep === 'string' ? keep + REDACTED : REDACTED,
      );
    }
    out = out.replace(
      SECRET_ASSIGNMENT,
      (_m: string, keep: string, dq: string | undefined, sq: string | undefined) =>
        keep + (dq !== undefined ? `"${REDACTED}"` : sq !== undefined ? `'${REDACTED}'` : REDACTED),
    );
    return out.replace(RANDOM_ASSIGNMENT, (match: string, keep: string, value: string) =>
      looksRandom(value) ? keep + REDACTED : match,
    );
  };
  const value = (v: unknown, depth: number): unknown => {
    switch (typeof v) {
      case 'string':
        return v.length > MAX_STRING ? summarize(v) : redactString(v);
      case 'number':
        if (v === 0) return 0; // folds -0, which JSON cannot represent
        return Number.isFinite(v) ? v : null;
      case 'boolean':
        return v;
      case 'bigint':
        return v.toString();
      case 'object':
        return v === null ? null : object(v, depth);
      default:
        return undefined;
    }
  };
  const object = (v: object, depth: number): unknown => {
    if (depth >= MAX_DEPTH) return '[Truncated: max depth]';
    if (Array.isArray(v)) return array(v, depth);
    if (ArrayBuffer.isView(v)) return summarize(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    if (v instanceof Error) return fields(errorFields(v), depth);
    if (v instanceof Set) return array([...v], depth);
    if (v instanceof Map) return fields(Object.fromEntries(v), depth);
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return value(toJSON.call(v), depth + 1);
    return fields(v as Record<string, unknown>, depth);
  };
  const array = (v: readonly unknown[], depth: number): unknown[] => {
    const n = Math.min(v.length, MAX_ARRAY);
    const out: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const previous = i > 0 ? v[i - 1] : undefined;
      const item = v[i];
      if (typeof previous === 'string' && typeof item === 'string' && SECRET_FLAG.test(previous)) {
        out[i] = REDACTED; // argv: `--password`, `hunter2`
      } else if (typeof previous === 'string' && typeof item === 'string' && USER_FLAG.test(previous)) {
        const colon = item.indexOf(':');
        out[i] = colon >= 0 ? redactString(item.slice(0, colon)) + ':' + REDACTED : redactString(item);
      } else out[i] = value(item, depth + 1) ?? null;
    }
    if (v.length > MAX_ARRAY) out.push(`[Truncated: ${v.length - MAX_ARRAY} more items]`);
    return out;
  };
  const fields = (v: Record<string, unknown>, depth: number): Record<string, unknown> => {
    // Sorted insertion makes the JSON key order a function of the key set alone (integer-like keys
    // still come first, in numeric order, as the language orders them): canonical and fast to emit.
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(v).sort()) {
      const field = v[name];
      let redacted: unknown;
      if (field === undefined) continue;
      if (SECRET_NAME.test(name)) redacted = field === null ? null : REDACTED;
      else if (SUMMARY_KEYS.has(name) && (typeof field === 'string' || field instanceof Uint8Array)) {
        redacted = summarize(field);
      } else redacted = value(field, depth + 1);
      if (redacted === undefined) continue;
      if (name === '__proto__') {
        Object.defineProperty(out, name, {
          value: redacted,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else out[name] = redacted;
    }
    return out;
  };
  return (v: unknown) => value(v, 0);
}

/** The redactor of this process for logs that keep no key of their own (a fresh random key). */
const processRedactor = createRedactor({ key: randomBytes(REDACTION_KEY_BYTES) });

/**
 * Redacts with a key random to this process: summaries are consistent within one run only. The
 * audit log uses its own persistent key (see {@link loadRedactionKey}).
 */
export function redact(value: unknown): unknown {
  return processRedactor(value);
}

/**
 * Reads the redaction key kept in `file`, creating it once (32 random bytes, mode 0600) when absent.
 * Creation is atomic (a private temp file hard-linked into place), so concurrent starts agree on one key.
 * @throws WorkspaceError INTERNAL when the file exists but is not a key.
 */
export async function loadRedactionKey(file: string): Promise<Buffer> {
  const existing = await readKey(file);
  if (existing) return existing;
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(randomBytes(REDACTION_KEY_BYTES));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(temp, file);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  const key = await readKey(file);
  if (!key) throw badKey(file);
  return key;
}

async function readKey(file: string): Promise<Buffer | null> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  if (data.byteLength !== REDACTION_KEY_BYTES) throw badKey(file);
  await chmod(file, 0o600);
  return data;
}

function badKey(file: string): WorkspaceError {
  return new WorkspaceError(
    'INTERNAL',
    `${file} is not a ${REDACTION_KEY_BYTES}-byte redaction key. Restore it from a backup of the state directory; ` +
      'deleting it makes a new key, after which earlier summaries in the audit log can no longer be checked.',
  );
}

function errorFields(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  return out;
}
