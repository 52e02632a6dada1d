/**
 * Stable error codes shared by every component and transport. Each code maps once to an HTTP
 * status (REST), an MCP tool error (`isError` with `code`) and, later, a gRPC status.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  FORBIDDEN_HOST: 403,
  FORBIDDEN_ORIGIN: 403,
  OWNER_ONLY: 403,
  POLICY_DENIED: 403,
  CAPABILITY_NOT_NEGOTIATED: 403,
  PROTECTED_PATH: 403,
  PATH_OUTSIDE_WORKSPACE: 403,
  INVALID_PATH: 400,
  INVALID_ARGUMENT: 400,
  INVALID_POLICY: 400,
  INVALID_ENCODING: 400,
  INVALID_PATTERN: 400,
  NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  NOT_A_FILE: 409,
  NOT_A_DIRECTORY: 409,
  DIRECTORY_NOT_EMPTY: 409,
  REVISION_CONFLICT: 409,
  EDIT_NO_MATCH: 409,
  EDIT_AMBIGUOUS: 409,
  LEASE_CONFLICT: 409,
  LEASE_NOT_FOUND: 404,
  MESSAGE_TOO_LARGE: 413,
  LEASE_LIMIT: 429,
  FILE_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  SESSION_LIMIT: 429,
  SANDBOX_LIMIT: 429,
  INTERNAL: 500,
  SANDBOX_UNAVAILABLE: 503,
  EXECUTION_NOT_FOUND: 404,
  UNSUPPORTED_PLATFORM: 501,
  TOOL_UNAVAILABLE: 503,
  TOOL_TIMEOUT: 504,
} as const;

/** One of the stable error codes above. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * An expected failure with a stable code and a message that tells the user what to do.
 * `details` carries machine-readable extras (for example `retryAfterMs`, `currentRevision`).
 */
export class WorkspaceError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'WorkspaceError';
    this.code = code;
    this.details = details;
  }

  /** HTTP status for this error's code. */
  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  /** The wire shape every transport uses: `{code, message, ...details}`. */
  toJSON(): { code: ErrorCode; message: string; [key: string]: unknown } {
    return { code: this.code, message: this.message, ...(this.details ?? {}) };
  }
}

/** Wraps any thrown value as a WorkspaceError; unknown errors become INTERNAL without leaking internals. */
export function toWorkspaceError(err: unknown): WorkspaceError {
  if (err instanceof WorkspaceError) return err;
  return new WorkspaceError('INTERNAL', 'Internal server error; see the server log for details.');
}
