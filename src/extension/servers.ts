import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { startWorkspaceServer, type RunningWorkspaceServer } from '../server';
import { WorkspaceError } from '../protocol/errors';
import { redact } from '../core/audit';
import type { Logger } from '../core/log';
import { cleanStaleDiscoveryFiles, discoveryDir, removeDiscoveryFile, writeDiscoveryFile } from './discovery';
import { runOwnerOperation, VSCODE_TRANSPORT } from './ownerActions';
import { ToolProblems } from './problemsPanel';
import {
  changedSettings,
  readUserSettings,
  SETTINGS_SECTION,
  settingsAction,
  toServerOptions,
  type ExtensionSettings,
} from './settings';

/** The agent token VS Code's own MCP client (Copilot agent mode) uses: never the owner token. */
export const VSCODE_AGENT = 'vscode-agent';
const OWNER_TOKEN_SECRET = 'mcpWorkspace.ownerToken';

/** A server bound to one workspace folder. */
export interface FolderServer {
  folder: vscode.WorkspaceFolder;
  server: RunningWorkspaceServer;
  /** Token of the VS Code agent, for the MCP server definition. */
  agentToken: string;
  /** The owner token: the VS Code user's own live editing connects with it. */
  ownerToken: string;
  /** Activation (or start command) to ready, in ms. */
  readyMs: number;
}

/** What the status bar and the views show. */
export type HostState = 'stopped' | 'starting' | 'running' | 'error';

/**
 * Starts, stops and restarts one embedded server per workspace folder (each confined to its
 * folder), keeps the owner token in SecretStorage, publishes the servers to VS Code's MCP support
 * and to a discovery file, and tells listeners when anything changes.
 */
export class ServerHost implements vscode.Disposable {
  private readonly servers: FolderServer[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly cleanups: (() => void)[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private busy: Promise<void> = Promise.resolve();
  private readonly progress = new Map<string, { report: (text: string) => void }>();
  /** The settings last acted on (started with, or found while stopped). */
  private current: ExtensionSettings | null = null;
  state: HostState = 'stopped';
  lastError: string | null = null;
  /** Fires (debounced) on start, stop, and session, execution or audit activity. */
  readonly onDidChange = this.changed.event;
  /**
   * Whether a document is bound live to its shared document: its unsaved text is already shared and
   * reaches the disk through the server, so agents' writes to it are merged, not refused.
   */
  isLive: (uri: vscode.Uri) => boolean = () => false;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Running servers, one per folder. */
  list(): readonly FolderServer[] {
    return this.servers;
  }

  /**
   * Calls `attach` for each server running now and each one that starts later, and the function it
   * returned when that server stops; disposing stops following and detaches from every server.
   */
  follow(attach: (target: FolderServer) => () => void): vscode.Disposable {
    const attached = new Map<FolderServer, () => void>();
    const sync = (): void => {
      const running = new Set(this.servers);
      for (const [target, detach] of attached) {
        if (running.has(target)) continue;
        detach();
        attached.delete(target);
      }
      for (const target of running) if (!attached.has(target)) attached.set(target, attach(target));
    };
    const watching = this.onDidChange(sync);
    sync();
    return new vscode.Disposable(() => {
      watching.dispose();
      for (const detach of attached.values()) detach();
      attached.clear();
    });
  }

  /**
   * The settings in force: from user settings only (user value, else default), never from the
   * workspace or a folder, which agents can write.
   */
  settings(): ExtensionSettings {
    const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    return readUserSettings((key) => config.inspect(key));
  }

  /** Acts on a settings change (see {@link settingsAction}); an ignored workspace value changes nothing. */
  async applySettings(): Promise<void> {
    const next = this.settings();
    const before = this.current;
    this.current = next;
    const action = settingsAction(before, next, {
      running: this.servers.length > 0,
      failed: this.state === 'error',
    });
    // Tool manifests from the settings apply to running servers without a restart.
    if (before && this.servers.length > 0 && changedSettings(before, next).includes('tools')) {
      this.log.info(`settings changed (${SETTINGS_SECTION}.tools): reloading tools`);
      await Promise.all(this.servers.map((s) => s.server.tools.setSettingsManifests(next.tools)));
    }
    if (action === 'none') return;
    if (before) {
      const changed = changedSettings(before, next).map((k) => `${SETTINGS_SECTION}.${k}`);
      this.log.info(`settings changed (${changed.join(', ')}): ${action}`);
    }
    if (action === 'stop') await this.stop('disabled in settings');
    else if (action === 'restart') await this.restart('settings changed');
    else await this.start();
  }

  /** Starts a server for every local workspace folder (no-op when running). */
  start(startedAt = performance.now()): Promise<void> {
    return this.serialize(async () => {
      if (this.servers.length > 0) return;
      const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
      if (folders.length === 0) {
        this.setState('stopped', null);
        return;
      }
      this.setState('starting', null);
      try {
        const ownerToken = await this.ownerToken();
        const settings = this.settings();
        this.current = settings;
        for (const folder of folders)
          this.servers.push(await this.startOne(folder, settings, ownerToken, startedAt));
        await this.publish();
        this.setState('running', null);
      } catch (err) {
        const message =
          err instanceof WorkspaceError ? `${err.code}: ${err.message}` : (err as Error).message;
        this.log.error(`could not start: ${message}`);
        await this.stopAll('start failed');
        this.setState('error', message);
        throw err;
      }
    });
  }

  /**
   * Stops every server (sessions end, containers are removed, the audit log is flushed); `reason`
   * goes into each server's server_stop audit record.
   */
  stop(reason = 'stop command'): Promise<void> {
    return this.serialize(async () => {
      await this.stopAll(reason);
      this.setState('stopped', null);
    });
  }

  /** Stop, then start. */
  async restart(reason = 'restart command'): Promise<void> {
    await this.stop(reason);
    await this.start();
  }

  /** Disposes: stops the servers and removes the discovery file. */
  dispose(): void {
    void this.stop('extension deactivated');
    this.changed.dispose();
  }

  private serialize(task: () => Promise<void>): Promise<void> {
    const next = this.busy.then(task, task);
    this.busy = next.catch(() => undefined);
    return next;
  }

  private async startOne(
    folder: vscode.WorkspaceFolder,
    settings: ExtensionSettings,
    ownerToken: string,
    startedAt: number,
  ): Promise<FolderServer> {
    const path = folder.uri.fsPath;
    const id = createHash('sha256').update(path).digest('hex').slice(0, 12);
    const stateDir = join(this.context.globalStorageUri.fsPath, 'state', `${folder.name}-${id}`);
    const server = await startWorkspaceServer({
      ...toServerOptions(settings, { path, index: folder.index }, stateDir, ownerToken),
      logger: this.serverLogger(folder.name),
      startedFrom: VSCODE_TRANSPORT,
      writeGuard: (rel) => this.refuseDirty(folder, rel),
      onSandboxProgress: (event) => {
        if (event.phase === 'build' || event.phase === 'pull') this.showProgress(folder.name, event.message);
      },
    });
    const readyMs = Math.round(performance.now() - startedAt);
    this.log.info(`${folder.name}: serving ${server.mcpUrl} (ready ${readyMs} ms after activation)`);
    const agentToken = await this.agentToken(server, id);
    const notify = (): void => this.fireChanged();
    // Manifests that do not load are shown to the owner (the server keeps the other tools).
    const reportTools = (): void => {
      const problems = server.tools.problems;
      for (const p of problems)
        this.log.warn(`${folder.name}: tool manifest ${p.source} not loaded: ${p.message}`);
      if (problems.length > 0) {
        void vscode.window.showWarningMessage(
          `MCP Workspace (${folder.name}): ${problems.length} tool manifest(s) not loaded, e.g. ${problems[0]!.source}. See the output log.`,
        );
      }
    };
    reportTools();
    // What each typed-tool run found shows in the Problems panel under the tool's name.
    const problems = new ToolProblems(folder, this.log);
    this.cleanups.push(
      server.audit.subscribe(notify),
      server.sessions.onSessionEnded(notify),
      server.tools.onChange(reportTools),
      server.toolRuns.onRun((report) => problems.show(report)),
      server.tools.onChange((change) => problems.forget(change.removed)),
      () => problems.dispose(),
    );
    return { folder, server, agentToken, ownerToken, readyMs };
  }

  private async stopAll(reason: string): Promise<void> {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    const running = this.servers.splice(0);
    await Promise.allSettled(running.map((s) => s.server.close(reason)));
    await removeDiscoveryFile(discoveryDir(), process.pid).catch(() => undefined);
    if (running.length > 0) this.log.info('stopped');
  }

  /** The owner token: kept in SecretStorage, generated (256-bit) on first use. */
  private async ownerToken(): Promise<string> {
    const stored = await this.context.secrets.get(OWNER_TOKEN_SECRET);
    if (stored) return stored;
    const token = randomBytes(32).toString('base64url');
    await this.context.secrets.store(OWNER_TOKEN_SECRET, token);
    return token;
  }

  /**
   * VS Code's agent token for this folder: reused from SecretStorage while valid, else minted anew
   * (revoking and minting are owner actions, audited through the runner).
   */
  private async agentToken(server: RunningWorkspaceServer, id: string): Promise<string> {
    const key = `mcpWorkspace.agentToken.${id}`;
    const stored = await this.context.secrets.get(key);
    if (stored && server.sessions.authenticate(stored)?.name === VSCODE_AGENT) return stored;
    if (server.sessions.listTokens().some((t) => t.name === VSCODE_AGENT)) {
      await runOwnerOperation(server, 'revoke_token', { name: VSCODE_AGENT });
    }
    const { token } = await runOwnerOperation(server, 'create_token', { name: VSCODE_AGENT, role: 'agent' });
    await this.context.secrets.store(key, token);
    return token;
  }

  /**
   * Long sandbox work (an image build or pull for an agent's first command) shows as one progress
   * notification per folder, closed a few seconds after the last step.
   */
  private showProgress(folder: string, message: string): void {
    const open = this.progress.get(folder);
    if (open) {
      open.report(message);
      return;
    }
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `MCP Workspace (${folder}): preparing the dev container`,
      },
      (progress) =>
        new Promise<void>((resolve) => {
          let timer: NodeJS.Timeout;
          const entry = {
            report: (text: string): void => {
              progress.report({ message: text.slice(0, 200) });
              clearTimeout(timer);
              timer = setTimeout(() => {
                this.progress.delete(folder);
                resolve();
              }, 3000);
            },
          };
          this.progress.set(folder, entry);
          entry.report(message);
        }),
    );
  }

  /** Agents must not silently overwrite what the user is still editing. */
  private refuseDirty(folder: vscode.WorkspaceFolder, rel: string): void {
    const uri = vscode.Uri.joinPath(folder.uri, rel);
    if (this.isLive(uri)) return;
    const target = uri.toString();
    const dirty = vscode.workspace.textDocuments.some((d) => d.isDirty && d.uri.toString() === target);
    if (dirty) {
      throw new WorkspaceError(
        'REVISION_CONFLICT',
        `${rel} has unsaved changes in the user's editor; try again after they save it.`,
      );
    }
  }

  private async publish(): Promise<void> {
    const dir = discoveryDir();
    await cleanStaleDiscoveryFiles(dir);
    await writeDiscoveryFile(
      dir,
      process.pid,
      this.servers.map((s) => ({
        folder: s.folder.uri.fsPath,
        url: s.server.url,
        mcp: s.server.mcpUrl,
        tokenFile: s.server.tokenFile,
      })),
    );
  }

  private serverLogger(name: string): Logger {
    const line = (msg: string, fields?: Record<string, unknown>): string =>
      `${name}: ${msg}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(redact(fields)) : ''}`;
    return {
      info: (msg, fields) => this.log.info(line(msg, fields)),
      warn: (msg, fields) => this.log.warn(line(msg, fields)),
      error: (msg, fields) => this.log.error(line(msg, fields)),
    };
  }

  private setState(state: HostState, error: string | null): void {
    this.state = state;
    this.lastError = error;
    this.changed.fire();
  }

  private fireChanged(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.changed.fire();
    }, 250);
  }
}
