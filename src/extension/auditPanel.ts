import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { OPERATION_NAMES } from '../protocol/operations';
import { AuditBridge, type AuditSource } from './webview/bridge';
import type { HostMessage } from './webview/protocol';

export type { AuditSource };

/** Operation names offered in the filter: the protocol's, plus the runner's execution and server lifecycle records. */
const FILTER_OPERATIONS = [
  ...OPERATION_NAMES,
  'execution_start',
  'execution_end',
  'server_start',
  'server_stop',
];

/** The webview's HTML: strict CSP, one nonce'd script, assets only from `media/`. */
function renderHtml(webview: vscode.Webview, extensionUri: vscode.Uri, kind: 'view' | 'editor'): string {
  const media = vscode.Uri.joinPath(extensionUri, 'media');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(media, 'audit.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'audit.css'));
  const nonce = randomBytes(16).toString('base64');
  const csp = [
    `default-src 'none'`,
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${style.toString()}" rel="stylesheet">
<title>MCP Audit Log</title>
</head>
<body class="in-${kind}">
<div id="app"></div>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')] };
}

/** Wires one webview (a panel's or a view's) to an {@link AuditBridge}. */
class AuditWebviewSession implements vscode.Disposable {
  private readonly bridge: AuditBridge;
  private readonly listener: vscode.Disposable;

  constructor(
    webview: vscode.Webview,
    extensionUri: vscode.Uri,
    kind: 'view' | 'editor',
    source: AuditSource | null,
  ) {
    const post = (message: HostMessage): void => {
      Promise.resolve(webview.postMessage(message)).catch(() => undefined);
    };
    this.bridge = new AuditBridge(post, source, { operations: FILTER_OPERATIONS });
    webview.options = webviewOptions(extensionUri);
    this.listener = webview.onDidReceiveMessage((raw: unknown) => void this.bridge.receive(raw));
    webview.html = renderHtml(webview, extensionUri, kind);
  }

  setSource(source: AuditSource | null): void {
    this.bridge.setSource(source);
  }

  setVisible(visible: boolean): void {
    this.bridge.setVisible(visible);
  }

  dispose(): void {
    this.bridge.dispose();
    this.listener.dispose();
  }
}

/** The audit log as an editor tab: one instance, revealed when it is already open. */
export class AuditLogPanel {
  static readonly viewType = 'mcpWorkspace.auditLogPanel';
  private static current: AuditLogPanel | undefined;

  private readonly session: AuditWebviewSession;
  private readonly disposables: vscode.Disposable[] = [];

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    source: AuditSource | null,
  ) {
    this.session = new AuditWebviewSession(panel.webview, extensionUri, 'editor', source);
    this.disposables.push(
      this.session,
      panel.onDidChangeViewState((e) => this.session.setVisible(e.webviewPanel.visible)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  /** Opens the audit log (or reveals the open one) reading from `source`; null shows "Server stopped". */
  static show(context: vscode.ExtensionContext, source: AuditSource | null): void {
    const existing = AuditLogPanel.current;
    if (existing) {
      existing.session.setSource(source);
      existing.panel.reveal(existing.panel.viewColumn);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      AuditLogPanel.viewType,
      'MCP Audit Log',
      vscode.ViewColumn.Active,
      { ...webviewOptions(context.extensionUri), retainContextWhenHidden: false },
    );
    AuditLogPanel.current = new AuditLogPanel(panel, context.extensionUri, source);
  }

  /**
   * Restores the panel VS Code kept across a window reload, once the servers are known: the
   * webview is re-rendered (fresh nonce) and re-queries the log.
   */
  static registerSerializer(
    context: vscode.ExtensionContext,
    source: () => AuditSource | null,
  ): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(AuditLogPanel.viewType, {
      deserializeWebviewPanel: async (panel) => {
        panel.webview.options = webviewOptions(context.extensionUri);
        AuditLogPanel.current?.panel.dispose();
        AuditLogPanel.current = new AuditLogPanel(panel, context.extensionUri, source());
      },
    });
  }

  /** Points the open panel, if any, at a new source (a restarted server) or at none (stopped). */
  static setSource(source: AuditSource | null): void {
    AuditLogPanel.current?.session.setSource(source);
  }

  /** Closes the open panel, if any (e.g. on deactivation). */
  static close(): void {
    AuditLogPanel.current?.panel.dispose();
  }

  private dispose(): void {
    if (AuditLogPanel.current === this) AuditLogPanel.current = undefined;
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** The audit log as a view (id `mcpWorkspace.auditLog`), e.g. in the panel area next to the terminal. */
export class AuditLogViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'mcpWorkspace.auditLog';

  private session: AuditWebviewSession | undefined;
  private viewDisposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private source: AuditSource | null = null,
  ) {}

  /** Registers the provider for {@link AuditLogViewProvider.viewType}; disposed with the extension. */
  static register(context: vscode.ExtensionContext, source: AuditSource | null): AuditLogViewProvider {
    const provider = new AuditLogViewProvider(context.extensionUri, source);
    context.subscriptions.push(
      vscode.window.registerWebviewViewProvider(AuditLogViewProvider.viewType, provider, {
        webviewOptions: { retainContextWhenHidden: false },
      }),
      provider,
    );
    return provider;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.disposeView();
    const session = new AuditWebviewSession(view.webview, this.extensionUri, 'view', this.source);
    this.session = session;
    this.viewDisposables = [
      session,
      view.onDidChangeVisibility(() => session.setVisible(view.visible)),
      view.onDidDispose(() => {
        if (this.session === session) this.disposeView();
      }),
    ];
  }

  /** Points the view at a new source (a restarted server) or at none (shows "Server stopped"). */
  setSource(source: AuditSource | null): void {
    this.source = source;
    this.session?.setSource(source);
  }

  dispose(): void {
    this.disposeView();
  }

  private disposeView(): void {
    for (const d of this.viewDisposables.splice(0)) d.dispose();
    this.session = undefined;
  }
}
