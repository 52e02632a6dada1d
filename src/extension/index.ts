import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { WorkspaceError } from '../protocol/errors';
import { AGENT_NAME_RE } from '../protocol/principal';
import { LiveEditing, WebsocketDocumentSource } from './collab';
import { AuditLogPanel, AuditLogViewProvider, type AuditSource } from './auditPanel';
import { MessageNotifications } from './messages';
import { runOwnerOperation } from './ownerActions';
import { createPairLink, PAIR_COMMANDS, startPairGuest } from './pair';
import { SETTINGS_SECTION } from './settings';
import { WorkspaceSettingsGuard } from './settingsGuard';
import { ServerHost, type FolderServer } from './servers';
import { SessionsView, type SessionsNode } from './sessionsView';

/** Command ids, as contributed in package.json. */
export const COMMANDS = {
  start: 'mcpWorkspace.start',
  stop: 'mcpWorkspace.stop',
  restart: 'mcpWorkspace.restart',
  copyConnectionInfo: 'mcpWorkspace.copyConnectionInfo',
  createToken: 'mcpWorkspace.createToken',
  revokeToken: 'mcpWorkspace.revokeToken',
  showAuditLog: 'mcpWorkspace.showAuditLog',
  verifyAuditLog: 'mcpWorkspace.verifyAuditLog',
  editPolicy: 'mcpWorkspace.editPolicy',
  showMenu: 'mcpWorkspace.showMenu',
  cancelExecution: 'mcpWorkspace.cancelExecution',
  revokeSession: 'mcpWorkspace.revokeSession',
  refreshSessions: 'mcpWorkspace.refreshSessions',
  releaseLease: 'mcpWorkspace.releaseLease',
  ...PAIR_COMMANDS,
} as const;

let host: ServerHost | null = null;

/** Activates on startup: starts the embedded server(s) for the open folder(s) and wires the UI. */
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const activatedAt = performance.now();
  const log = vscode.window.createOutputChannel('MCP Workspace', { log: true });
  const servers = new ServerHost(context, log);
  host = servers;
  context.subscriptions.push(log, servers);
  // A pair guest's virtual folder must be readable before the window asks for it.
  const pairGuest = await startPairGuest(context, log);

  // The panel area view follows the first folder; the editor panel shows the folder last picked.
  let panelFolder: string | null = null;
  const auditSource = (folder: string | null = null): AuditSource | null => {
    const target = servers.list().find((s) => s.folder.name === folder) ?? servers.list()[0];
    return target ? auditSourceOf(target) : null;
  };
  const auditView = AuditLogViewProvider.register(context, null);
  context.subscriptions.push(AuditLogPanel.registerSerializer(context, () => auditSource(panelFolder)));
  const sessionsView = new SessionsView(servers);
  const statusBar = vscode.window.createStatusBarItem(
    'mcpWorkspace.status',
    vscode.StatusBarAlignment.Left,
    100,
  );
  statusBar.name = 'MCP Workspace';
  statusBar.command = COMMANDS.showMenu;
  statusBar.show();
  const mcpChanged = new vscode.EventEmitter<void>();
  context.subscriptions.push(
    sessionsView,
    new MessageNotifications(servers, COMMANDS.showAuditLog),
    auditView,
    statusBar,
    mcpChanged,
    vscode.window.registerTreeDataProvider('mcpWorkspace.sessions', sessionsView),
    vscode.lm.registerMcpServerDefinitionProvider('mcpWorkspace.servers', {
      onDidChangeMcpServerDefinitions: mcpChanged.event,
      provideMcpServerDefinitions: () =>
        servers
          .list()
          .map(
            (s) =>
              new vscode.McpHttpServerDefinition(
                `MCP Workspace (${s.folder.name})`,
                vscode.Uri.parse(s.server.mcpUrl),
                { Authorization: `Bearer ${s.agentToken}` },
                context.extension.packageJSON.version as string,
              ),
          ),
    }),
  );

  // Live co-editing: the user's editors join the shared documents as the owner (see README).
  const liveEditing = new LiveEditing(log, () => servers.settings().liveEditing);
  servers.isLive = (uri) => liveEditing.isBound(uri);
  let liveSources: vscode.Disposable[] = [];
  const registerLiveSources = (): void => {
    for (const d of liveSources.splice(0)) d.dispose();
    liveSources = servers.list().map((s) =>
      liveEditing.register({
        source: new WebsocketDocumentSource({
          serverUrl: `${s.server.url.replace(/^http/, 'ws')}/collab`,
          token: s.ownerToken,
        }),
        relativePath: (uri) => relativeToFolder(s.folder.uri, uri),
      }),
    );
  };
  context.subscriptions.push(liveEditing, { dispose: () => liveSources.forEach((d) => d.dispose()) });
  // A pair guest's folders are bound the same way, to the host's documents with the pair token.
  context.subscriptions.push(pairGuest.bindLiveEditing(liveEditing));

  let lastServers = '';
  const render = (): void => {
    renderStatusBar(statusBar, servers);
    const current = servers
      .list()
      .map((s) => s.server.mcpUrl)
      .join(',');
    if (current !== lastServers) {
      lastServers = current;
      mcpChanged.fire();
      registerLiveSources();
      auditView.setSource(auditSource());
      AuditLogPanel.setSource(auditSource(panelFolder));
    }
  };
  servers.onDidChange(render, undefined, context.subscriptions);
  render();

  const run = (id: string, fn: (...args: never[]) => unknown): void => {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: never[]) => {
        try {
          await fn(...args);
        } catch (err) {
          const message = err instanceof WorkspaceError ? err.message : (err as Error).message;
          void vscode.window.showErrorMessage(`MCP Workspace: ${message}`);
        }
      }),
    );
  };
  run(COMMANDS.start, () => servers.start());
  run(COMMANDS.stop, () => servers.stop('stop command'));
  run(COMMANDS.restart, () => servers.restart('restart command'));
  run(COMMANDS.copyConnectionInfo, () => copyConnectionInfo(servers));
  run(COMMANDS.createToken, () => createToken(servers));
  run(COMMANDS.revokeToken, () => revokeToken(servers));
  run(COMMANDS.showAuditLog, async () => {
    const target = servers.list().length > 1 ? await pickServer(servers) : servers.list()[0];
    panelFolder = target?.folder.name ?? null;
    AuditLogPanel.show(context, target ? auditSourceOf(target) : null);
  });
  run(COMMANDS.verifyAuditLog, () => verifyAuditLog(servers));
  run(COMMANDS.editPolicy, () => editPolicy(context, servers));
  run(COMMANDS.showMenu, () => showMenu(servers));
  run(COMMANDS.refreshSessions, () => sessionsView.refresh());
  run(COMMANDS.createPairLink, async () => createPairLink(await pickServer(servers)));
  run(COMMANDS.joinPairSession, (link?: string) =>
    pairGuest.join(typeof link === 'string' ? link : undefined),
  );
  run(COMMANDS.cancelExecution, async (node: SessionsNode) => {
    if (node?.kind !== 'execution') return;
    await runOwnerOperation(node.server.server, 'cancel_execution', { executionId: node.executionId });
    sessionsView.refresh();
  });
  run(COMMANDS.revokeSession, (node: SessionsNode) =>
    revokeSession(node).finally(() => sessionsView.refresh()),
  );
  run(COMMANDS.releaseLease, (node: SessionsNode) =>
    releaseLease(node).finally(() => sessionsView.refresh()),
  );

  // A start that fails (a refused setting, a port in use) is shown, not only logged.
  const showStartError = (err: unknown): void => {
    const message = err instanceof WorkspaceError ? err.message : (err as Error).message;
    void vscode.window.showErrorMessage(`MCP Workspace could not start: ${message}`);
  };
  // Workspace-level values of user-only settings are never applied: the user is warned instead.
  const settingsGuard = new WorkspaceSettingsGuard(log, () => {
    const { enabled, liveEditing: live } = servers.settings();
    return { enabled, liveEditing: live };
  });
  context.subscriptions.push(
    settingsGuard,
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SETTINGS_SECTION)) return;
      if (e.affectsConfiguration(`${SETTINGS_SECTION}.liveEditing`)) liveEditing.refresh();
      settingsGuard.schedule();
      servers.applySettings().catch(showStartError);
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() =>
      servers.settings().enabled
        ? servers.restart('workspace folders changed').catch(showStartError)
        : undefined,
    ),
  );
  settingsGuard.schedule();

  if (servers.settings().enabled) {
    servers.start(activatedAt).catch(showStartError);
  }
}

/** The `/`-separated path of `uri` inside `folder` (same scheme), or null when it is outside. */
function relativeToFolder(folder: vscode.Uri, uri: vscode.Uri): string | null {
  if (uri.scheme !== folder.scheme || uri.authority !== folder.authority) return null;
  const root = folder.path.endsWith('/') ? folder.path : `${folder.path}/`;
  return uri.path.startsWith(root) && uri.path.length > root.length ? uri.path.slice(root.length) : null;
}

/**
 * Revoke from the Sessions view, on a session or on an agent: end its session(s), or revoke the
 * agent's token (every session ends and it cannot reconnect). Either goes through the runner and is
 * audited.
 */
async function revokeSession(node: SessionsNode): Promise<void> {
  if (node?.kind !== 'session' && node?.kind !== 'agent') return;
  const { server } = node.server;
  const agent = node.kind === 'agent' ? node.entry.agent : node.agent;
  const role = node.kind === 'agent' ? node.entry.role : node.role;
  const sessionIds =
    node.kind === 'agent'
      ? node.entry.sessions.flatMap((s) => (s.sessionId !== undefined ? [s.sessionId] : []))
      : [node.sessionId];
  const hasToken = role !== 'owner' && server.sessions.listTokens().some((t) => t.name === agent);
  const one = sessionIds.length === 1;
  const endSessions = one ? 'End This Session' : `End All ${sessionIds.length} Sessions`;
  const revokeAgentToken = 'Revoke Token';
  const what = one ? `this session of '${agent}'` : `the ${sessionIds.length} sessions of '${agent}'`;
  const answer = await vscode.window.showWarningMessage(
    hasToken
      ? `End ${what}, or revoke its token? Revoking ends all its sessions and it cannot reconnect.`
      : `End ${what}?`,
    { modal: true },
    ...(hasToken ? [endSessions, revokeAgentToken] : [endSessions]),
  );
  if (answer === endSessions) {
    for (const sessionId of sessionIds) await runOwnerOperation(server, 'revoke_session', { sessionId });
  } else if (answer === revokeAgentToken) {
    await runOwnerOperation(server, 'revoke_token', { name: agent });
  }
}

/** Release from the Sessions view: the owner ends an agent's lease (audited as release_lease). */
async function releaseLease(node: SessionsNode): Promise<void> {
  if (node?.kind !== 'lease') return;
  const { lease } = node;
  const release = 'Release';
  const answer = await vscode.window.showWarningMessage(
    `Release the lease of '${lease.holder}' on ${lease.paths.join(', ')} (${lease.reason})? Others may then write there without a warning.`,
    { modal: true },
    release,
  );
  if (answer === release) {
    await runOwnerOperation(node.server.server, 'release_lease', { leaseId: lease.id });
  }
}

const auditSources = new WeakMap<FolderServer, AuditSource>();

/**
 * The audit webview's view of a server: it reads the log directly, and its Verify button is an
 * owner action run through the operation runner (audited), like the Verify command.
 */
function auditSourceOf(target: FolderServer): AuditSource {
  let source = auditSources.get(target);
  if (!source) {
    const { audit } = target.server;
    source = {
      query: (q) => audit.query(q),
      subscribe: (listener) => audit.subscribe(listener),
      verify: async () => {
        const result = await runOwnerOperation(target.server, 'verify_audit', {});
        return result.ok
          ? { ok: true, records: result.records, head: result.head ?? '' }
          : {
              ok: false,
              records: result.records,
              badSeq: result.badSeq ?? 0,
              reason: result.reason ?? 'unknown',
            };
      },
    };
    auditSources.set(target, source);
  }
  return source;
}

/** Deactivation stops the servers (sessions end, containers go, the audit log is flushed). */
export async function deactivate(): Promise<void> {
  await host?.stop('extension deactivated');
  host = null;
}

function renderStatusBar(item: vscode.StatusBarItem, servers: ServerHost): void {
  const running = servers.list();
  item.backgroundColor = undefined;
  if (servers.state === 'starting') {
    item.text = '$(loading~spin) MCP starting';
    item.tooltip = 'MCP Workspace is starting';
    return;
  }
  if (servers.state === 'error') {
    item.text = '$(error) MCP error';
    item.tooltip = `MCP Workspace could not start: ${servers.lastError ?? 'unknown error'}\nClick for actions.`;
    item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    return;
  }
  if (running.length === 0) {
    item.text = '$(circle-slash) MCP stopped';
    item.tooltip = 'MCP Workspace is stopped. Click for actions.';
    return;
  }
  const sessions = running.reduce((n, s) => n + s.server.sessions.list().length, 0);
  const executions = running.reduce((n, s) => n + s.server.executions.running, 0);
  const ports = running.map((s) => `:${s.server.port}`).join(' ');
  item.text = `$(radio-tower) MCP ${ports} · ${sessions} session${sessions === 1 ? '' : 's'}${executions ? ` · ${executions} running` : ''}`;
  item.tooltip = running
    .map(
      (s) =>
        `${s.folder.name}: ${s.server.mcpUrl}\n${s.server.sessions.list().length} sessions, ${s.server.executions.running} running commands`,
    )
    .join('\n\n');
}

async function pickServer(servers: ServerHost): Promise<FolderServer | undefined> {
  const running = servers.list();
  if (running.length === 0) {
    throw new WorkspaceError(
      'NOT_FOUND',
      'The server is not running; start it with "MCP Workspace: Start Server".',
    );
  }
  if (running.length === 1) return running[0];
  const picked = await vscode.window.showQuickPick(
    running.map((s) => ({ label: s.folder.name, description: s.server.url, server: s })),
    { placeHolder: 'Which workspace folder?' },
  );
  return picked?.server;
}

async function showMenu(servers: ServerHost): Promise<void> {
  const running = servers.list().length > 0;
  const items: { label: string; command: string }[] = [
    ...(running
      ? [
          { label: '$(copy) Copy Connection Info', command: COMMANDS.copyConnectionInfo },
          { label: '$(key) Create Agent Token', command: COMMANDS.createToken },
          { label: '$(circle-slash) Revoke Agent Token', command: COMMANDS.revokeToken },
          { label: '$(live-share) Create Pair Link', command: COMMANDS.createPairLink },
          { label: '$(list-flat) Show Audit Log', command: COMMANDS.showAuditLog },
          { label: '$(verified) Verify Audit Log', command: COMMANDS.verifyAuditLog },
          { label: '$(shield) Edit Policy', command: COMMANDS.editPolicy },
          { label: '$(debug-restart) Restart Server', command: COMMANDS.restart },
          { label: '$(debug-stop) Stop Server', command: COMMANDS.stop },
        ]
      : [{ label: '$(play) Start Server', command: COMMANDS.start }]),
    { label: '$(remote) Join Pair Session', command: COMMANDS.joinPairSession },
  ];
  const picked = await vscode.window.showQuickPick(items, { placeHolder: 'MCP Workspace' });
  if (picked) await vscode.commands.executeCommand(picked.command);
}

const CLIENTS = [
  { label: 'Claude Code', token: 'claude-code' },
  { label: 'Cursor', token: 'cursor' },
  { label: 'VS Code (mcp.json)', token: 'vscode-mcp-json' },
  { label: 'Other MCP client (JSON)', token: 'mcp-client' },
] as const;

/** Connection snippets for a client; a fresh agent token is minted for it (the old one is revoked). */
async function copyConnectionInfo(servers: ServerHost): Promise<void> {
  const target = await pickServer(servers);
  if (!target) return;
  const client = await vscode.window.showQuickPick(
    CLIENTS.map((c) => ({ label: c.label, description: `agent token '${c.token}'`, client: c })),
    { placeHolder: 'Connection info for which client? A new agent token is created for it.' },
  );
  if (!client) return;
  const { sessions, mcpUrl } = target.server;
  const name = client.client.token;
  if (sessions.listTokens().some((t) => t.name === name)) {
    await runOwnerOperation(target.server, 'revoke_token', { name });
  }
  const { token } = await runOwnerOperation(target.server, 'create_token', { name, role: 'agent' });
  const serverName = `mcp-workspace-${target.folder.name}`;
  const json = (key: string): string =>
    JSON.stringify(
      {
        [key]: { [serverName]: { type: 'http', url: mcpUrl, headers: { Authorization: `Bearer ${token}` } } },
      },
      null,
      2,
    );
  const text =
    client.client.token === 'claude-code'
      ? `claude mcp add --transport http ${serverName} ${mcpUrl} --header "Authorization: Bearer ${token}"`
      : client.client.token === 'cursor'
        ? json('mcpServers')
        : client.client.token === 'vscode-mcp-json'
          ? json('servers')
          : JSON.stringify({ url: mcpUrl, headers: { Authorization: `Bearer ${token}` } }, null, 2);
  await vscode.env.clipboard.writeText(text);
  void vscode.window.showInformationMessage(
    `Copied ${client.label} connection info for ${mcpUrl} with a new agent token '${name}' (revoke it with "MCP Workspace: Revoke Agent Token").`,
  );
}

async function createToken(servers: ServerHost): Promise<void> {
  const target = await pickServer(servers);
  if (!target) return;
  const name = await vscode.window.showInputBox({
    prompt: 'Agent name (shown in the audit log)',
    placeHolder: 'e.g. claude, builder',
    validateInput: (v) => (AGENT_NAME_RE.test(v) ? null : 'Letters, digits, . _ - (up to 64)'),
  });
  if (!name) return;
  const role = await vscode.window.showQuickPick(
    [
      { label: 'agent', description: 'reads, writes and runs commands as the policy allows' },
      { label: 'viewer', description: 'reads only' },
    ],
    { placeHolder: 'Role' },
  );
  if (!role) return;
  const { token } = await runOwnerOperation(target.server, 'create_token', {
    name,
    role: role.label as 'agent' | 'viewer',
  });
  const copy = await vscode.window.showInformationMessage(
    `Token for '${name}' (${role.label}) created. It is shown only once.`,
    { modal: true, detail: token },
    'Copy Token',
  );
  if (copy === 'Copy Token') await vscode.env.clipboard.writeText(token);
}

async function revokeToken(servers: ServerHost): Promise<void> {
  const target = await pickServer(servers);
  if (!target) return;
  const tokens = target.server.sessions.listTokens();
  if (tokens.length === 0) {
    void vscode.window.showInformationMessage('There are no agent tokens to revoke.');
    return;
  }
  const picked = await vscode.window.showQuickPick(
    tokens.map((t) => ({ label: t.name, description: `${t.role}, created ${t.createdAt}` })),
    { placeHolder: 'Revoke which agent token? Its sessions end at once.' },
  );
  if (!picked) return;
  await runOwnerOperation(target.server, 'revoke_token', { name: picked.label });
  void vscode.window.showInformationMessage(`Revoked '${picked.label}'; its sessions have ended.`);
}

async function verifyAuditLog(servers: ServerHost): Promise<void> {
  const target = await pickServer(servers);
  if (!target) return;
  const result = await runOwnerOperation(target.server, 'verify_audit', {});
  if (result.ok) {
    void vscode.window.showInformationMessage(
      `Audit log intact: ${result.records} records, head ${(result.head ?? '').slice(0, 12)}…`,
    );
  } else {
    void vscode.window.showErrorMessage(
      `Audit log TAMPERED at record ${result.badSeq}: ${result.reason} (${result.records} records intact before it).`,
    );
  }
}

/**
 * Opens the policy as JSON; saving the document applies it through SetPolicy as the owner
 * (validated, persisted and audited). Invalid policies are refused with the reason.
 */
async function editPolicy(context: vscode.ExtensionContext, servers: ServerHost): Promise<void> {
  const target = await pickServer(servers);
  if (!target) return;
  const { server } = target;
  const file = vscode.Uri.joinPath(context.globalStorageUri, `policy-${target.folder.name}.json`);
  const policy = server.policy.policy;
  await vscode.workspace.fs.writeFile(file, Buffer.from(JSON.stringify(policy, null, 2) + '\n'));
  const document = await vscode.workspace.openTextDocument(file);
  await vscode.window.showTextDocument(document);
  const watcher = vscode.workspace.onDidSaveTextDocument(async (saved) => {
    if (saved.uri.toString() !== file.toString()) return;
    try {
      const result = await runOwnerOperation(server, 'set_policy', JSON.parse(saved.getText()));
      void vscode.window.showInformationMessage(result.message);
    } catch (err) {
      const message = err instanceof SyntaxError ? `not valid JSON (${err.message})` : (err as Error).message;
      void vscode.window.showErrorMessage(`Policy not applied: ${message}`);
    }
  });
  context.subscriptions.push(
    watcher,
    vscode.workspace.onDidCloseTextDocument((closed) => {
      if (closed.uri.toString() === file.toString()) watcher.dispose();
    }),
  );
}
