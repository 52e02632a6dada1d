import * as vscode from 'vscode';
import { PAIR_PREFIX } from '../protocol/pair';
import type { FolderServer, ServerHost } from './servers';

/** A node of the Sessions view: a server (folder), a session, or a running execution. */
export type SessionsNode =
  | { kind: 'server'; server: FolderServer }
  | {
      kind: 'session';
      server: FolderServer;
      sessionId: string;
      agent: string;
      role: string;
      transport: string;
      lastActivityAt: number;
      client?: string;
      /** A pair guest's link expiry (ISO). */
      pairExpiresAt?: string;
    }
  | {
      kind: 'execution';
      server: FolderServer;
      executionId: string;
      command: string;
      agent: string;
      startedAt: number;
    };

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** The Sessions view: connected agents with role and last activity, running executions. */
export class SessionsView implements vscode.TreeDataProvider<SessionsNode> {
  private readonly changed = new vscode.EventEmitter<SessionsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly host: ServerHost) {
    host.onDidChange(() => this.changed.fire(undefined));
  }

  /** Re-reads everything. */
  refresh(): void {
    this.changed.fire(undefined);
  }

  getChildren(node?: SessionsNode): SessionsNode[] {
    if (!node) {
      const servers = this.host.list();
      if (servers.length === 1) return this.childrenOf(servers[0]!);
      return servers.map((server) => ({ kind: 'server', server }));
    }
    return node.kind === 'server' ? this.childrenOf(node.server) : [];
  }

  getTreeItem(node: SessionsNode): vscode.TreeItem {
    if (node.kind === 'server') {
      const item = new vscode.TreeItem(node.server.folder.name, vscode.TreeItemCollapsibleState.Expanded);
      item.description = node.server.server.url;
      item.iconPath = new vscode.ThemeIcon('server');
      return item;
    }
    if (node.kind === 'session') {
      const item = new vscode.TreeItem(node.agent, vscode.TreeItemCollapsibleState.None);
      item.description = `${node.role} · ${node.transport} · ${ago(node.lastActivityAt)}`;
      if (node.pairExpiresAt !== undefined) {
        const mode = node.role === 'viewer' ? 'read-only' : 'read-write';
        item.description = `pair guest (${mode}) · ${node.transport} · ${ago(node.lastActivityAt)}`;
        item.tooltip = `Pair guest ${node.agent}, ${mode}; the link expires ${new Date(node.pairExpiresAt).toLocaleString()}.\nRevoke ends the guest's access at once.`;
        item.iconPath = new vscode.ThemeIcon('live-share');
        item.contextValue = 'mcpWorkspace.session';
        return item;
      }
      item.tooltip = `${node.client ?? node.transport} session ${node.sessionId}\nLast activity ${new Date(node.lastActivityAt).toLocaleString()}`;
      item.iconPath = new vscode.ThemeIcon(node.role === 'owner' ? 'account' : 'hubot');
      item.contextValue = node.role === 'owner' ? 'mcpWorkspace.ownerSession' : 'mcpWorkspace.session';
      return item;
    }
    const item = new vscode.TreeItem(node.command, vscode.TreeItemCollapsibleState.None);
    item.description = `${node.agent} · running ${ago(node.startedAt).replace(' ago', '')}`;
    item.tooltip = `Execution ${node.executionId}`;
    item.iconPath = new vscode.ThemeIcon('loading~spin');
    item.contextValue = 'mcpWorkspace.execution';
    return item;
  }

  private childrenOf(server: FolderServer): SessionsNode[] {
    const owner = { kind: 'owner' as const, name: 'owner', role: 'owner' as const };
    const expiries = new Map(
      server.server.sessions
        .listTokens()
        .filter((t) => t.name.startsWith(PAIR_PREFIX) && t.expiresAt !== undefined)
        .map((t) => [t.name, t.expiresAt!]),
    );
    const sessions: SessionsNode[] = server.server.sessions
      .list()
      .sort((a, b) => b.lastActivityAt - a.lastActivityAt)
      .map((s) => ({
        kind: 'session',
        server,
        sessionId: s.sessionId,
        agent: s.principal.name,
        role: s.principal.role,
        transport: s.transport,
        lastActivityAt: s.lastActivityAt,
        ...(s.clientName ? { client: s.clientName } : {}),
        ...(expiries.has(s.principal.name) ? { pairExpiresAt: expiries.get(s.principal.name)! } : {}),
      }));
    const executions: SessionsNode[] = server.server.executions
      .list(owner)
      .filter((e) => e.status === 'running')
      .map((e) => ({
        kind: 'execution',
        server,
        executionId: e.id,
        command: e.args ? [e.command, ...e.args].join(' ') : e.command,
        agent: e.agent,
        startedAt: e.startedAt,
      }));
    return [...executions, ...sessions];
  }
}
