import * as vscode from 'vscode';
import type { PresenceView } from '../core/presence';
import { PAIR_PREFIX } from '../protocol/pair';
import type { FolderServer, ServerHost } from './servers';

type PresenceEntry = PresenceView['agents'][number];
type PresenceLease = PresenceView['leases'][number];

/**
 * A node of the Sessions view: a server (folder); an agent or human with its activity; under it
 * the files it has open, the last file it touched, its running commands and its sessions; and the
 * Leases group with one node per lease.
 */
export type SessionsNode =
  | { kind: 'server'; server: FolderServer }
  | {
      kind: 'agent';
      server: FolderServer;
      entry: PresenceEntry;
      /** A pair guest's link expiry (ISO). */
      pairExpiresAt?: string;
    }
  | { kind: 'file'; server: FolderServer; agent: string; path: string; readOnly: boolean }
  | {
      kind: 'lastFile';
      server: FolderServer;
      agent: string;
      path: string;
      action: 'read' | 'write';
      at: string;
    }
  | {
      kind: 'session';
      server: FolderServer;
      sessionId: string;
      agent: string;
      role: string;
      transport: string;
      lastActivityAt: number;
      client?: string;
    }
  | {
      kind: 'execution';
      server: FolderServer;
      executionId: string;
      command: string;
      agent: string;
      startedAt: number;
    }
  | { kind: 'leases'; server: FolderServer; leases: PresenceLease[] }
  | { kind: 'lease'; server: FolderServer; lease: PresenceLease };

/** Refreshes of the tree are coalesced over this long (ms). */
const REFRESH_DEBOUNCE_MS = 150;

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function until(ms: number): string {
  const s = Math.max(0, Math.round((ms - Date.now()) / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** What an agent is doing, in a few words: "editing src/a.ts", "running `npm test`", "idle". */
export function activityText(activity: PresenceEntry['activity']): string {
  if (activity.state === 'editing') return activity.path ? `editing ${activity.path}` : 'editing';
  if (activity.state === 'running') return `running \`${activity.command ?? 'a command'}\``;
  return 'idle';
}

function activityIcon(entry: PresenceEntry): vscode.ThemeIcon {
  if (entry.activity.state === 'editing') return new vscode.ThemeIcon('edit');
  if (entry.activity.state === 'running') return new vscode.ThemeIcon('loading~spin');
  return new vscode.ThemeIcon(entry.role === 'owner' ? 'account' : entry.role === 'viewer' ? 'eye' : 'hubot');
}

/**
 * The Sessions view: who is working in each served folder (agents and humans), what each is doing
 * (editing, running a command, idle), the files each has open, the sessions it has, and the live
 * leases (the owner can release them). It follows the server's presence events, coalesced, and
 * never polls.
 */
export class SessionsView implements vscode.TreeDataProvider<SessionsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<SessionsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly stopHost: vscode.Disposable;
  private readonly following: vscode.Disposable;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly host: ServerHost) {
    this.stopHost = host.onDidChange(() => this.schedule());
    // Follows the presence events of the servers running now.
    this.following = host.follow((target) => target.server.presence.onChange(() => this.schedule()));
  }

  /** Re-reads everything now. */
  refresh(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.changed.fire(undefined);
  }

  dispose(): void {
    this.stopHost.dispose();
    this.following.dispose();
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
  }

  getChildren(node?: SessionsNode): SessionsNode[] {
    if (!node) {
      const servers = this.host.list();
      if (servers.length === 1) return this.childrenOf(servers[0]!);
      return servers.map((server) => ({ kind: 'server', server }));
    }
    switch (node.kind) {
      case 'server':
        return this.childrenOf(node.server);
      case 'agent':
        return this.agentChildren(node.server, node.entry);
      case 'leases':
        return node.leases.map((lease) => ({ kind: 'lease', server: node.server, lease }));
      default:
        return [];
    }
  }

  getTreeItem(node: SessionsNode): vscode.TreeItem {
    const folder = node.server.folder;
    switch (node.kind) {
      case 'server': {
        const item = new vscode.TreeItem(folder.name, vscode.TreeItemCollapsibleState.Expanded);
        item.description = node.server.server.url;
        item.iconPath = new vscode.ThemeIcon('server');
        return item;
      }
      case 'agent': {
        const { entry } = node;
        const busy = entry.openFiles.length > 0 || entry.running.length > 0;
        const item = new vscode.TreeItem(
          entry.agent,
          busy ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed,
        );
        item.id = `${folder.name}/agent/${entry.role === 'owner' ? 'owner' : 'agent'}/${entry.agent}`;
        const transports = [...new Set(entry.sessions.map((s) => s.transport))].join(', ');
        item.description = `${activityText(entry.activity)} · ${transports}`;
        item.iconPath = activityIcon(entry);
        if (node.pairExpiresAt !== undefined) {
          const mode = entry.role === 'viewer' ? 'read-only' : 'read-write';
          item.description = `pair guest (${mode}) · ${activityText(entry.activity)}`;
          item.iconPath = new vscode.ThemeIcon('live-share');
          item.tooltip = `Pair guest ${entry.agent}, ${mode}; the link expires ${new Date(node.pairExpiresAt).toLocaleString()}.\nRevoke ends the guest's access at once.`;
          item.contextValue = 'mcpWorkspace.agent';
          return item;
        }
        const tooltip = new vscode.MarkdownString(undefined, false);
        tooltip.appendText(
          `${entry.agent} (${entry.role})${entry.joined ? ', joined the workspace' : ''}\n` +
            `${activityText(entry.activity)}\n` +
            `${entry.sessions.length} session(s): ${transports}\n` +
            `Last activity ${new Date(entry.lastActivityAt).toLocaleString()}`,
        );
        item.tooltip = tooltip;
        // Agents can be revoked from here (all their sessions, or the token); the owner cannot.
        item.contextValue = entry.role === 'owner' ? 'mcpWorkspace.owner' : 'mcpWorkspace.agent';
        return item;
      }
      case 'file': {
        const item = new vscode.TreeItem(node.path, vscode.TreeItemCollapsibleState.None);
        const uri = vscode.Uri.joinPath(folder.uri, node.path);
        item.id = `${folder.name}/file/${node.agent}/${node.path}`;
        item.resourceUri = uri;
        item.description = node.readOnly ? 'open, read-only' : 'open';
        item.iconPath = vscode.ThemeIcon.File;
        item.command = { command: 'vscode.open', title: 'Open File', arguments: [uri] };
        item.contextValue = 'mcpWorkspace.presenceFile';
        return item;
      }
      case 'lastFile': {
        const item = new vscode.TreeItem(node.path, vscode.TreeItemCollapsibleState.None);
        const uri = vscode.Uri.joinPath(folder.uri, node.path);
        item.id = `${folder.name}/last/${node.agent}`;
        item.description = `last ${node.action === 'write' ? 'written' : 'read'} ${ago(Date.parse(node.at))}`;
        item.iconPath = new vscode.ThemeIcon('history');
        item.command = { command: 'vscode.open', title: 'Open File', arguments: [uri] };
        return item;
      }
      case 'session': {
        const item = new vscode.TreeItem(
          node.client ? `${node.transport} · ${node.client}` : node.transport,
          vscode.TreeItemCollapsibleState.None,
        );
        item.id = `${folder.name}/session/${node.sessionId}`;
        item.description = `session · ${ago(node.lastActivityAt)}`;
        item.tooltip = `${node.agent} (${node.role}) ${node.client ?? node.transport} session ${node.sessionId}\nLast activity ${new Date(node.lastActivityAt).toLocaleString()}`;
        item.iconPath = new vscode.ThemeIcon('plug');
        item.contextValue = node.role === 'owner' ? 'mcpWorkspace.ownerSession' : 'mcpWorkspace.session';
        return item;
      }
      case 'execution': {
        const item = new vscode.TreeItem(node.command, vscode.TreeItemCollapsibleState.None);
        item.id = `${folder.name}/execution/${node.executionId}`;
        item.description = `running ${ago(node.startedAt).replace(' ago', '')}`;
        item.tooltip = `Execution ${node.executionId} of ${node.agent}`;
        item.iconPath = new vscode.ThemeIcon('terminal');
        item.contextValue = 'mcpWorkspace.execution';
        return item;
      }
      case 'leases': {
        const item = new vscode.TreeItem('Leases', vscode.TreeItemCollapsibleState.Expanded);
        item.id = `${folder.name}/leases`;
        item.description = `${node.leases.length}`;
        item.iconPath = new vscode.ThemeIcon('lock');
        return item;
      }
      case 'lease': {
        const { lease } = node;
        const expiresAt = Date.parse(lease.expiresAt);
        const item = new vscode.TreeItem(lease.paths.join(', '), vscode.TreeItemCollapsibleState.None);
        item.id = `${folder.name}/lease/${lease.id}`;
        item.description = `${lease.holder} · ${lease.reason} · expires in ${until(expiresAt)}${lease.idle ? ' · idle' : ''}`;
        item.tooltip = `Lease ${lease.id}\nHolder: ${lease.holder}\nPaths: ${lease.paths.join(', ')}\nReason: ${lease.reason}\nExpires ${new Date(expiresAt).toLocaleString()}${lease.idle ? '\nIts holder has gone idle: another agent may take it over.' : ''}`;
        item.iconPath = new vscode.ThemeIcon('lock');
        item.contextValue = 'mcpWorkspace.lease';
        return item;
      }
    }
  }

  /** One refresh for a burst of events. */
  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.refresh(), REFRESH_DEBOUNCE_MS);
  }

  private childrenOf(server: FolderServer): SessionsNode[] {
    const presence = server.server.presence.view();
    // Pair guests are agents with an expiring link token: shown as such.
    const expiries = new Map(
      server.server.sessions
        .listTokens()
        .filter((t) => t.name.startsWith(PAIR_PREFIX) && t.expiresAt !== undefined)
        .map((t) => [t.name, t.expiresAt!]),
    );
    const agents: SessionsNode[] = presence.agents.map((entry) => {
      const pairExpiresAt = entry.role !== 'owner' ? expiries.get(entry.agent) : undefined;
      return { kind: 'agent', server, entry, ...(pairExpiresAt !== undefined ? { pairExpiresAt } : {}) };
    });
    return presence.leases.length > 0
      ? [{ kind: 'leases', server, leases: presence.leases }, ...agents]
      : agents;
  }

  private agentChildren(server: FolderServer, entry: PresenceEntry): SessionsNode[] {
    const agent = entry.agent;
    const files: SessionsNode[] = entry.openFiles.map((f) => ({
      kind: 'file',
      server,
      agent,
      path: f.path,
      readOnly: f.readOnly,
    }));
    const last = entry.lastFile;
    const lastFile: SessionsNode[] =
      last && !entry.openFiles.some((f) => f.path === last.path)
        ? [{ kind: 'lastFile', server, agent, path: last.path, action: last.action, at: last.at }]
        : [];
    const executions: SessionsNode[] = entry.running.map((e) => ({
      kind: 'execution',
      server,
      executionId: e.executionId,
      command: e.command,
      agent,
      startedAt: Date.parse(e.startedAt),
    }));
    const sessions: SessionsNode[] = entry.sessions
      .filter((s) => s.sessionId !== undefined)
      .map((s) => ({
        kind: 'session',
        server,
        sessionId: s.sessionId!,
        agent,
        role: entry.role,
        transport: s.transport,
        lastActivityAt: Date.parse(s.lastActivityAt),
        ...(s.clientName ? { client: s.clientName } : {}),
      }));
    return [...executions, ...files, ...lastFile, ...sessions];
  }
}
