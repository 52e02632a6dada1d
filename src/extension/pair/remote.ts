import { ERROR_CODES, WorkspaceError, type ErrorCode } from '../../protocol/errors';
import type { OperationOutput } from '../../protocol/operations';
import type { PairLink } from '../../protocol/pair';

/** One entry of a remote directory listing. */
export type RemoteEntry = OperationOutput<'list_files'>['entries'][number];
/** A remote file's metadata. */
export type RemoteStat = OperationOutput<'file_info'>;

/** Answers of a server that cannot be reached, read or understood (not one of the server's codes). */
export const UNREACHABLE = 'UNREACHABLE';

/** A failure talking to the host: the server's WorkspaceError, or {@link UNREACHABLE}. */
export class RemoteError extends Error {
  constructor(
    readonly code: ErrorCode | typeof UNREACHABLE,
    message: string,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** The URL path of a workspace-relative path: each segment percent-encoded. */
function encodePath(path: string): string {
  const clean = path.replace(/^\/+|\/+$/g, '');
  return clean === '' ? '' : '/' + clean.split('/').map(encodeURIComponent).join('/');
}

/**
 * A pair guest's view of the host's workspace: the host server's REST API with the pair token
 * (no `vscode` import, so it runs and is tested under plain Node). Every call is one request,
 * decided and audited on the host like any agent's.
 */
export class PairRemote {
  /** `http://host:port` of the host's server. */
  readonly baseUrl: string;

  constructor(
    private readonly link: Pick<PairLink, 'host' | 'port' | 'token'>,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.baseUrl = `http://${link.host}:${link.port}`;
  }

  /** The operations the pair token negotiated (and so whether it may write). */
  async capabilities(): Promise<string[]> {
    const caps = await this.call<OperationOutput<'list_capabilities'>>('GET', '/capabilities');
    return caps.tools;
  }

  /** Type, size and modification time of a path. */
  stat(path: string): Promise<RemoteStat> {
    return this.call('GET', `/stat${encodePath(path)}`);
  }

  /** The entries of one directory. */
  async list(path: string): Promise<RemoteEntry[]> {
    const listed = await this.call<OperationOutput<'list_files'>>('GET', `/list${encodePath(path)}?depth=1`);
    return listed.entries;
  }

  /** A file's bytes. */
  async read(path: string): Promise<Uint8Array> {
    const file = await this.call<OperationOutput<'read_file'>>(
      'GET',
      `/files${encodePath(path)}?encoding=base64`,
    );
    return Buffer.from(file.content, 'base64');
  }

  /** Writes a file atomically; `mustNotExist` refuses (ALREADY_EXISTS) when it does. */
  async write(path: string, bytes: Uint8Array, mustNotExist = false): Promise<void> {
    try {
      await this.call('PUT', `/files${encodePath(path)}`, {
        content: Buffer.from(bytes).toString('base64'),
        encoding: 'base64',
        ...(mustNotExist ? { expectedRevision: 'none' } : {}),
      });
    } catch (err) {
      if (mustNotExist && err instanceof RemoteError && err.code === 'REVISION_CONFLICT') {
        throw new RemoteError('ALREADY_EXISTS', `${path} already exists.`);
      }
      throw err;
    }
  }

  /** Deletes a file or (with recursive) a directory tree. */
  async delete(path: string, recursive: boolean): Promise<void> {
    await this.call('DELETE', `/files${encodePath(path)}${recursive ? '?recursive=true' : ''}`);
  }

  /** Moves or renames inside the workspace. */
  async move(from: string, to: string, overwrite: boolean): Promise<void> {
    await this.call('POST', '/move', { from, to, overwrite });
  }

  /** Creates a directory; false when it existed already. */
  async mkdir(path: string): Promise<boolean> {
    const made = await this.call<OperationOutput<'create_directory'>>('POST', '/mkdir', { path });
    return made.created;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${this.link.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new RemoteError(
        UNREACHABLE,
        `The host at ${this.baseUrl} cannot be reached (${(err as Error).message}); is its server still running and its port forwarded?`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new RemoteError(UNREACHABLE, `The host answered ${res.status} with something that is not JSON.`);
    }
    if (res.ok) return parsed as T;
    const error = (parsed as { error?: { code?: string; message?: string } }).error;
    const code = error?.code && error.code in ERROR_CODES ? (error.code as ErrorCode) : UNREACHABLE;
    throw new RemoteError(
      code,
      code === 'UNAUTHORIZED'
        ? 'The pair link has expired or was revoked; ask the host for a new one.'
        : (error?.message ?? `The host answered ${res.status}.`),
    );
  }
}

/** Whether an error means the guest may not do this (so VS Code shows "no permissions"). */
export function isPermissionError(err: unknown): boolean {
  const code = err instanceof RemoteError || err instanceof WorkspaceError ? err.code : undefined;
  return (
    code !== undefined &&
    code !== UNREACHABLE &&
    (ERROR_CODES[code as ErrorCode] === 401 || ERROR_CODES[code as ErrorCode] === 403)
  );
}
