import { randomUUID } from 'node:crypto';
import { WorkspaceError } from '../../protocol/errors';
import { redact as redactWithProcessKey, type Redact } from '../audit';

/** Log severity. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Structured logger: one JSON object per line, secrets redacted from fields. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Creates a logger writing JSON lines (`{ts, level, msg, ...fields}`) to `sink`, redacted by `redact`. */
export function createLogger(sink: (line: string) => void, redact: Redact = redactWithProcessKey): Logger {
  const inner: Logger = {
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
  function write(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    sink(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...(fields ?? {}) }));
  }
  return redactingLogger(inner, redact);
}

/**
 * Wraps any logger so that its message and fields are redacted before it sees them: secrets never
 * reach a log, whoever supplied the logger.
 */
export function redactingLogger(inner: Logger, redact: Redact): Logger {
  const clean = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    const text = redact(String(msg));
    const safe = fields ? redact(fields) : undefined;
    inner[level](
      typeof text === 'string' ? text : `[message redacted: ${JSON.stringify(text)}]`,
      safe && typeof safe === 'object' ? (safe as Record<string, unknown>) : undefined,
    );
  };
  return { info: clean('info'), warn: clean('warn'), error: clean('error') };
}

/**
 * The answer to an error nobody expected: a WorkspaceError passes through unchanged; anything else
 * is logged with its stack, the caller's `fields` (session id, operation) and a new correlation id,
 * and becomes `INTERNAL` carrying that id, so a client can quote it and the owner can find the cause.
 */
export function unexpectedError(
  log: Logger,
  err: unknown,
  fields: Record<string, unknown> = {},
): WorkspaceError {
  if (err instanceof WorkspaceError) return err;
  const correlationId = randomUUID();
  log.error('unexpected error', {
    ...fields,
    correlationId,
    error: err instanceof Error ? err.message : String(err),
    ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
  });
  return new WorkspaceError(
    'INTERNAL',
    `Internal server error (correlation id ${correlationId}); the server log has the cause under that id.`,
    { correlationId },
  );
}
