/**
 * The host end of the audit-log webview: answers the webview's commands from an audit source and
 * forwards live records. No `vscode` import: src/extension/auditPanel.ts only wires it to a webview,
 * so it is tested under plain Node against a real AuditLog.
 */
import {
  parseWebviewMessage,
  toAuditQuery,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type HostMessage,
  type QueryCommand,
  type VerifyResult,
} from './protocol';

/**
 * Where the audit-log webview reads from: the running server's `AuditLog` satisfies it as is. Replace it
 * with `setSource` when the server restarts, or pass null while it is stopped.
 */
export interface AuditSource {
  query(q: AuditQuery): Promise<AuditPage>;
  subscribe(listener: (record: AuditRecord) => void): () => void;
  verify(): Promise<VerifyResult>;
}

/** Options of an {@link AuditBridge}: the operations offered in the filter and how live records are batched. */
export interface AuditBridgeOptions {
  /** Operation names offered in the filter. */
  operations: readonly string[];
  /** Live records are posted at most this often (default 100 ms). */
  batchMs?: number;
  /** More live records than this in one batch: post none, flagged `truncated`, so the webview re-queries. */
  maxBatch?: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The host end of one audit webview: validates its commands, answers them from the current source and
 * forwards newly committed records in batches while the webview is loaded and visible.
 */
export class AuditBridge {
  /** Bumped on every source change, so answers from a replaced source are dropped. */
  private generation = 0;
  private ready = false;
  private visible = true;
  private disposed = false;
  private unsubscribe: (() => void) | null = null;
  private pending: AuditRecord[] = [];
  private truncated = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly batchMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly post: (message: HostMessage) => void,
    private source: AuditSource | null,
    private readonly options: AuditBridgeOptions,
  ) {
    this.batchMs = options.batchMs ?? 100;
    this.maxBatch = options.maxBatch ?? 1000;
  }

  /** Whether live records are being collected (for tests and diagnostics). */
  get live(): boolean {
    return this.unsubscribe !== null;
  }

  /** Handles one raw message from the webview; resolves once it is answered. */
  async receive(raw: unknown): Promise<void> {
    if (this.disposed) return;
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.send({
        type: 'error',
        message: `Ignored an invalid message from the audit view: ${parsed.error}.`,
      });
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.visible = true;
        this.stopLive();
        this.sendStatus();
        this.startLive();
        return;
      case 'query':
        return this.query(message);
      case 'verify':
        return this.verify();
    }
  }

  setSource(source: AuditSource | null): void {
    if (source === this.source) return;
    this.stopLive();
    this.source = source;
    this.generation++;
    if (this.ready) {
      this.sendStatus();
      this.startLive();
    }
  }

  /** A hidden webview loses its content; it sends `ready` again when shown. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (!visible) {
      this.ready = false;
      this.stopLive();
    }
  }

  dispose(): void {
    this.disposed = true;
    this.ready = false;
    this.stopLive();
  }

  private async query(command: QueryCommand): Promise<void> {
    const { source, generation } = this;
    if (source === null) {
      this.send({
        type: 'error',
        message: 'The MCP Workspace server is stopped.',
        requestId: command.requestId,
      });
      return;
    }
    try {
      const page = await source.query(toAuditQuery(command));
      if (generation !== this.generation) return;
      this.send({
        type: 'records',
        requestId: command.requestId,
        records: page.records,
        nextBefore: page.nextBefore,
        replace: command.before === undefined,
      });
    } catch (err) {
      if (generation !== this.generation) return;
      this.send({ type: 'error', message: errorMessage(err), requestId: command.requestId });
    }
  }

  private async verify(): Promise<void> {
    const { source, generation } = this;
    if (source === null) {
      this.send({ type: 'error', message: 'The MCP Workspace server is stopped: nothing to verify.' });
      return;
    }
    try {
      const result = await source.verify();
      if (generation === this.generation) this.send({ type: 'verified', result });
    } catch (err) {
      if (generation === this.generation) {
        this.send({ type: 'error', message: `Could not verify the audit log: ${errorMessage(err)}` });
      }
    }
  }

  private sendStatus(): void {
    this.send({ type: 'status', running: this.source !== null, operations: [...this.options.operations] });
  }

  private startLive(): void {
    if (this.disposed || !this.ready || !this.visible || this.source === null || this.unsubscribe) return;
    this.unsubscribe = this.source.subscribe((record) => this.collect(record));
  }

  private stopLive(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pending = [];
    this.truncated = false;
  }

  private collect(record: AuditRecord): void {
    if (this.truncated) return;
    if (this.pending.length >= this.maxBatch) {
      // A flood: the webview queries again instead, cheaper than shipping it record by record.
      this.truncated = true;
      this.pending = [];
    } else {
      this.pending.push(record);
    }
    this.timer ??= setTimeout(() => this.flush(), this.batchMs);
  }

  private flush(): void {
    this.timer = null;
    const records = this.pending.reverse();
    const truncated = this.truncated;
    this.pending = [];
    this.truncated = false;
    if (records.length > 0 || truncated) this.send({ type: 'appended', records, truncated });
  }

  private send(message: HostMessage): void {
    if (!this.disposed) this.post(message);
  }
}
