import * as vscode from 'vscode';
import { formatPairLink, parsePairLink, PAIR_JOIN_PATH, type PairLink } from '../../protocol/pair';
import { WebsocketDocumentSource, type LiveEditing } from '../collab';
import { pairAuthority, PairFileSystem, PAIR_SCHEME, remotePath, type PairLinks } from './fs';
import { PairRemote } from './remote';

/** Where the joined links (with their tokens) are kept: SecretStorage, never settings or state. */
const LINKS_SECRET = 'mcpWorkspace.pairLinks';

/** A join whose folder is being added (globalState; no token): `{authority, name, at}`. */
const PENDING_JOIN_KEY = 'mcpWorkspace.pairJoinPending';
/** How long after a join its folder is looked for, and added again if VS Code lost it. */
const PENDING_JOIN_MS = 120_000;
/** How long the restarted window is given to list its folders before a lost one is added again. */
const PENDING_JOIN_SETTLE_MS = 1500;

/** A join whose folder was being added when the window restarted. */
interface PendingJoin {
  authority: string;
  name: string;
  at: number;
}

/** Joined links kept at most (the most recent): older ones are dropped as new ones are joined. */
const MAX_KEPT_LINKS = 16;

/**
 * The pair sessions this guest has joined, by authority (`host:port`), kept in SecretStorage so the
 * virtual folder still opens after VS Code restarts the window to add it. A link is forgotten when
 * its folder is removed from the window (see {@link PairGuest}); the store keeps the
 * {@link MAX_KEPT_LINKS} most recent.
 */
export class PairLinkStore implements PairLinks {
  private links = new Map<string, PairLink>();

  private constructor(private readonly secrets: vscode.SecretStorage) {}

  /**
   * Loads the stored links. All of them: the extension host that VS Code restarts to add a folder
   * may start before the window lists that folder, so what is open now decides nothing here.
   */
  static async load(secrets: vscode.SecretStorage): Promise<PairLinkStore> {
    const store = new PairLinkStore(secrets);
    const text = await secrets.get(LINKS_SECRET);
    let stored: unknown = [];
    try {
      stored = text ? JSON.parse(text) : [];
    } catch {
      // Unreadable: the guest joins again with a link; nothing else depends on it.
    }
    for (const item of Array.isArray(stored) ? stored.slice(-MAX_KEPT_LINKS) : []) {
      const link = typeof item === 'string' ? parsePairLink(item) : 'not a link';
      if (typeof link !== 'string') store.links.set(pairAuthority(link), link);
    }
    return store;
  }

  get(authority: string): PairLink | undefined {
    return this.links.get(authority);
  }

  /** Every joined link. */
  all(): PairLink[] {
    return [...this.links.values()];
  }

  /** Whether every pair folder of this window is read-only (then the whole scheme is). */
  allReadOnly(): boolean {
    const links = [...this.links.values()];
    return links.length > 0 && links.every((link) => link.mode === 'read-only');
  }

  async add(link: PairLink): Promise<void> {
    const authority = pairAuthority(link);
    this.links.delete(authority);
    this.links.set(authority, link);
    while (this.links.size > MAX_KEPT_LINKS) this.links.delete(this.links.keys().next().value!);
    await this.save();
  }

  /** Forgets the link of `authority` (its folder left the window). */
  async remove(authority: string): Promise<void> {
    if (this.links.delete(authority)) await this.save();
  }

  private async save(): Promise<void> {
    await this.secrets.store(
      LINKS_SECRET,
      JSON.stringify([...this.links.values()].map((l) => formatPairLink(l))),
    );
  }
}

/**
 * The guest side of pair sessions: the virtual folder's FileSystemProvider (registered read-only
 * when every joined link is), the "Join Pair Session" command and the `vscode://…/join` URI handler.
 * Joining starts no server: the host's server does everything, under its policy and audit.
 */
export class PairGuest implements vscode.Disposable {
  readonly fs: PairFileSystem;
  private registration: vscode.Disposable | null = null;
  private registeredReadOnly = false;
  private readonly disposables: vscode.Disposable[] = [];
  private live: LiveEditing | null = null;
  private readonly liveSources = new Map<string, vscode.Disposable>();

  constructor(
    readonly links: PairLinkStore,
    private readonly log: vscode.LogOutputChannel,
    /** Where a join in progress is remembered across the window's restart. */
    private readonly state: vscode.Memento,
  ) {
    const warned = new Set<string>();
    this.fs = new PairFileSystem(links, (authority, err) => {
      this.log.warn(`pair session ${authority}: ${(err as Error).message}`);
      if (warned.has(authority)) return;
      warned.add(authority);
      void vscode.window.showWarningMessage(
        `MCP Workspace pair session ${authority}: ${(err as Error).message}`,
      );
    });
    this.register();
    this.disposables.push(
      // Leaving a pair session (its folder removed from the window) forgets its link and token.
      vscode.workspace.onDidChangeWorkspaceFolders((event) => {
        for (const folder of event.removed) {
          if (folder.uri.scheme !== PAIR_SCHEME) continue;
          const authority = folder.uri.authority;
          this.liveSources.get(authority)?.dispose();
          this.liveSources.delete(authority);
          this.fs.forget(authority);
          void this.links.remove(authority).then(() => this.register());
        }
      }),
      vscode.window.registerUriHandler({
        handleUri: (uri) => {
          if (uri.path !== PAIR_JOIN_PATH) return;
          this.join(uri.toString(true)).catch((err: unknown) =>
            vscode.window.showErrorMessage(`MCP Workspace: ${(err as Error).message}`),
          );
        },
      }),
    );
  }

  /**
   * Joins through a link (asked for when not given; the clipboard is offered when it holds one):
   * checks it with the host, keeps it, and opens the host's workspace as a virtual folder.
   */
  async join(text?: string): Promise<void> {
    let input = text;
    if (input === undefined) {
      // A browser's clipboard may ask for permission (or never answer): offer it only if it does quickly.
      const clipboard = await Promise.race([
        vscode.env.clipboard.readText().then(
          (text) => text,
          () => '',
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve(''), 500)),
      ]);
      input = await vscode.window.showInputBox({
        prompt: 'Paste the pair link the host sent you',
        placeHolder: 'vscode://mcp-workspace.mcp-workspace/join?host=…&port=…&token=…',
        value: typeof parsePairLink(clipboard) === 'string' ? '' : clipboard.trim(),
        ignoreFocusOut: true,
        validateInput: (value) => {
          const parsed = parsePairLink(value);
          return typeof parsed === 'string' ? `Not a pair link: ${parsed}.` : null;
        },
      });
      if (!input) return;
    }
    const parsed = parsePairLink(input);
    if (typeof parsed === 'string') throw new Error(`Not a pair link: ${parsed}.`);
    const tools = await new PairRemote(parsed).capabilities();
    // What the token may do decides the mode, not what the link says.
    const writable = tools.includes('write_file');
    const link: PairLink = { ...parsed, mode: writable ? 'read-write' : 'read-only' };
    const authority = pairAuthority(link);
    this.fs.forget(authority);
    await this.links.add(link);
    this.register();
    this.registerLive(link);
    const uri = vscode.Uri.from({ scheme: PAIR_SCHEME, authority, path: '/' });
    const folders = vscode.workspace.workspaceFolders ?? [];
    this.log.info(
      `joined pair session ${authority} as ${link.name} (${writable ? 'read-write' : 'read-only'})`,
    );
    if (folders.some((folder) => folder.uri.toString() === uri.toString())) {
      await vscode.commands.executeCommand('workbench.view.explorer');
      return;
    }
    // Adding the first folder to a window restarts its extension host; the link is stored already,
    // and the join is remembered so that the restarted window can finish it (see resumeJoin).
    const name = `Pair: ${authority}${writable ? '' : ' (read-only)'}`;
    await this.state.update(PENDING_JOIN_KEY, { authority, name, at: Date.now() } satisfies PendingJoin);
    vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri, name });
  }

  /**
   * Finishes a join the window restarted in the middle of. VS Code (code-server in particular)
   * sometimes comes back from adding a window's first folder with an empty workspace: the folder of
   * a join made in the last two minutes, whose link is kept, is then added again, once.
   */
  async resumeJoin(): Promise<void> {
    const pending = this.state.get<PendingJoin>(PENDING_JOIN_KEY);
    if (!pending) return;
    const isOpen = (): boolean =>
      (vscode.workspace.workspaceFolders ?? []).some(
        (folder) => folder.uri.scheme === PAIR_SCHEME && folder.uri.authority === pending.authority,
      );
    if (!isOpen()) await new Promise((resolve) => setTimeout(resolve, PENDING_JOIN_SETTLE_MS));
    await this.state.update(PENDING_JOIN_KEY, undefined);
    if (isOpen() || Date.now() - pending.at > PENDING_JOIN_MS || !this.links.get(pending.authority)) return;
    this.log.info(`adding the pair folder ${pending.authority} again: the window came back without it`);
    const folders = vscode.workspace.workspaceFolders ?? [];
    vscode.workspace.updateWorkspaceFolders(folders.length, 0, {
      uri: vscode.Uri.from({ scheme: PAIR_SCHEME, authority: pending.authority, path: '/' }),
      name: pending.name,
    });
  }

  /**
   * Binds the open editors of every pair folder live through the collab binding: one document
   * source per joined link (the host's `/collab` endpoint with the pair token). Disposing unbinds.
   */
  bindLiveEditing(live: LiveEditing): vscode.Disposable {
    this.live = live;
    for (const link of this.links.all()) this.registerLive(link);
    return new vscode.Disposable(() => {
      for (const source of this.liveSources.values()) source.dispose();
      this.liveSources.clear();
      this.live = null;
    });
  }

  dispose(): void {
    for (const source of this.liveSources.values()) source.dispose();
    this.liveSources.clear();
    this.registration?.dispose();
    for (const d of this.disposables) d.dispose();
    this.fs.dispose();
  }

  private registerLive(link: PairLink): void {
    if (!this.live) return;
    const authority = pairAuthority(link);
    this.liveSources.get(authority)?.dispose();
    this.liveSources.set(
      authority,
      this.live.register({
        source: new WebsocketDocumentSource({ serverUrl: `ws://${authority}/collab`, token: link.token }),
        relativePath: (uri) =>
          uri.scheme === PAIR_SCHEME && uri.authority === authority ? remotePath(uri) || null : null,
      }),
    );
  }

  /** (Re-)registers the provider, read-only exactly when every joined link is. */
  private register(): void {
    const readOnly = this.links.allReadOnly();
    if (this.registration && readOnly === this.registeredReadOnly) return;
    this.registration?.dispose();
    this.registeredReadOnly = readOnly;
    this.registration = vscode.workspace.registerFileSystemProvider(PAIR_SCHEME, this.fs, {
      isCaseSensitive: true,
      ...(readOnly
        ? {
            isReadonly: new vscode.MarkdownString(
              'This pair session is **read-only**: the host shares it for reading.',
            ),
          }
        : {}),
    });
  }
}
