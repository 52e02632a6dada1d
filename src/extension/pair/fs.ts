import * as vscode from 'vscode';
import type { PairLink } from '../../protocol/pair';
import { RemotePoller, type RemoteChange } from './poller';
import { isPermissionError, PairRemote, RemoteError, UNREACHABLE } from './remote';

/** URI scheme of a pair guest's virtual folder: `mcpw-pair://<host>:<port>/<workspace path>`. */
export const PAIR_SCHEME = 'mcpw-pair';

/** The authority (`host:port`) a pair folder URI names for a link. */
export function pairAuthority(link: Pick<PairLink, 'host' | 'port'>): string {
  return `${link.host}:${link.port}`;
}

/** The workspace-relative path of a pair URI ('' is the root). */
export function remotePath(uri: vscode.Uri): string {
  return uri.path.replace(/^\/+|\/+$/g, '');
}

/** Maps a failure of the host to the FileSystemError VS Code understands. */
function toFsError(err: unknown, uri: vscode.Uri): Error {
  if (err instanceof vscode.FileSystemError) return err;
  const code = err instanceof RemoteError ? err.code : undefined;
  const message = `${uri.path}: ${(err as Error).message}`;
  switch (code) {
    case 'NOT_FOUND':
      return vscode.FileSystemError.FileNotFound(uri);
    case 'ALREADY_EXISTS':
      return vscode.FileSystemError.FileExists(uri);
    case 'NOT_A_DIRECTORY':
      return vscode.FileSystemError.FileNotADirectory(uri);
    case 'NOT_A_FILE':
      return vscode.FileSystemError.FileIsADirectory(uri);
    case UNREACHABLE:
      return vscode.FileSystemError.Unavailable(message);
    default:
      return isPermissionError(err)
        ? vscode.FileSystemError.NoPermissions(message)
        : new vscode.FileSystemError(message);
  }
}

function fileType(type: string): vscode.FileType {
  if (type === 'directory') return vscode.FileType.Directory;
  if (type === 'symlink') return vscode.FileType.File | vscode.FileType.SymbolicLink;
  return type === 'file' ? vscode.FileType.File : vscode.FileType.Unknown;
}

/** The joined pair sessions of this window, by authority. */
export interface PairLinks {
  get(authority: string): PairLink | undefined;
}

/**
 * A pair guest's virtual folder: a FileSystemProvider over the host server's REST API with the
 * pair token (stat, readDirectory, readFile, writeFile, delete, rename, createDirectory map to the
 * REST routes; the host decides and audits each). Host changes reach the guest by polling the
 * directories it has listed. Read-only links report every entry as read-only.
 */
export class PairFileSystem implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;
  private readonly remotes = new Map<string, { remote: PairRemote; poller: RemotePoller }>();

  constructor(
    private readonly links: PairLinks,
    private readonly onHostError: (authority: string, err: unknown) => void,
  ) {}

  watch(): vscode.Disposable {
    // Polling covers what the guest has listed, whatever is watched; nothing to set up per watch.
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const stat = await this.run(uri, (remote) => remote.stat(remotePath(uri) || '.'));
    return {
      type: fileType(stat.type),
      size: stat.size,
      mtime: stat.mtimeMs,
      ctime: stat.mtimeMs,
      ...(this.readOnly(uri) ? { permissions: vscode.FilePermission.Readonly } : {}),
    };
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const dir = remotePath(uri);
    const entries = await this.run(uri, (remote) => remote.list(dir || '.'));
    this.entry(uri).poller.remember(dir, entries);
    return entries.map((entry) => [entry.name, fileType(entry.type)]);
  }

  readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return this.run(uri, (remote) => remote.read(remotePath(uri)));
  }

  async writeFile(
    uri: vscode.Uri,
    content: Uint8Array,
    options: { create: boolean; overwrite: boolean },
  ): Promise<void> {
    const path = remotePath(uri);
    this.assertWritable(uri);
    await this.run(uri, async (remote) => {
      if (!options.create) await remote.stat(path);
      await remote.write(path, content, !options.overwrite);
    });
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  async delete(uri: vscode.Uri, options: { recursive: boolean }): Promise<void> {
    this.assertWritable(uri);
    await this.run(uri, (remote) => remote.delete(remotePath(uri), options.recursive));
    this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
  }

  async rename(oldUri: vscode.Uri, newUri: vscode.Uri, options: { overwrite: boolean }): Promise<void> {
    if (oldUri.authority !== newUri.authority) throw vscode.FileSystemError.NoPermissions(newUri);
    this.assertWritable(oldUri);
    await this.run(oldUri, (remote) =>
      remote.move(remotePath(oldUri), remotePath(newUri), options.overwrite),
    );
    this.changed.fire([
      { type: vscode.FileChangeType.Deleted, uri: oldUri },
      { type: vscode.FileChangeType.Created, uri: newUri },
    ]);
  }

  async createDirectory(uri: vscode.Uri): Promise<void> {
    this.assertWritable(uri);
    const created = await this.run(uri, (remote) => remote.mkdir(remotePath(uri)));
    if (!created) throw vscode.FileSystemError.FileExists(uri);
    this.changed.fire([{ type: vscode.FileChangeType.Created, uri }]);
  }

  /** Polls the host now (tests and the refresh command), returning what changed. */
  async pollNow(authority: string): Promise<RemoteChange[]> {
    return (await this.remotes.get(authority)?.poller.pollOnce()) ?? [];
  }

  /** Forgets a link's connection (it was left, revoked or replaced). */
  forget(authority: string): void {
    this.remotes.get(authority)?.poller.dispose();
    this.remotes.delete(authority);
  }

  dispose(): void {
    for (const authority of [...this.remotes.keys()]) this.forget(authority);
    this.changed.dispose();
  }

  private readOnly(uri: vscode.Uri): boolean {
    return this.links.get(uri.authority)?.mode === 'read-only';
  }

  private assertWritable(uri: vscode.Uri): void {
    if (this.readOnly(uri)) {
      throw vscode.FileSystemError.NoPermissions(`${uri.path}: this pair session is read-only.`);
    }
  }

  private entry(uri: vscode.Uri): { remote: PairRemote; poller: RemotePoller } {
    const authority = uri.authority;
    let entry = this.remotes.get(authority);
    if (!entry) {
      const link = this.links.get(authority);
      if (!link) {
        throw vscode.FileSystemError.Unavailable(
          `No pair session for ${authority} in this window; run "MCP Workspace: Join Pair Session" with the host's link.`,
        );
      }
      const remote = new PairRemote(link);
      const base = vscode.Uri.from({ scheme: PAIR_SCHEME, authority, path: '/' });
      const poller = new RemotePoller(
        (dir) => remote.list(dir || '.'),
        (changes) =>
          this.changed.fire(
            changes.map((change) => ({
              type:
                change.type === 'created'
                  ? vscode.FileChangeType.Created
                  : change.type === 'deleted'
                    ? vscode.FileChangeType.Deleted
                    : vscode.FileChangeType.Changed,
              uri: vscode.Uri.joinPath(base, change.path),
            })),
          ),
        (err) => this.onHostError(authority, err),
      );
      entry = { remote, poller };
      this.remotes.set(authority, entry);
    }
    return entry;
  }

  private async run<T>(uri: vscode.Uri, fn: (remote: PairRemote) => Promise<T>): Promise<T> {
    const { remote } = this.entry(uri);
    try {
      return await fn(remote);
    } catch (err) {
      throw toFsError(err, uri);
    }
  }
}
