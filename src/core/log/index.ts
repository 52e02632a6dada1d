import { redact } from '../audit';

/** Log severity. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Structured logger: one JSON object per line, secrets redacted from fields. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Creates a logger writing JSON lines (`{ts, level, msg, ...fields}`) to `sink`. */
export function createLogger(sink: (line: string) => void): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    const safe = fields ? (redact(fields) as Record<string, unknown>) : {};
    sink(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...safe }));
  };
  return {
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
}
