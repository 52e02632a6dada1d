import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WorkspaceError, toWorkspaceError } from '../protocol/errors';
import { OPERATIONS, type OperationName } from '../protocol/operations';
import { toolCallSchema } from '../protocol/tools';
import type { Principal } from '../protocol/principal';
import type { OperationDispatcher } from '../core/operations';
import type { SessionManager } from '../core/session';
import { assertJsonDepth } from './jsonDepth';
import { refuseUpgrade } from './upgrade';

/** Path of the WebSocket endpoint. */
export const WS_PATH = '/ws';

/** Everything the WebSocket adapter needs from the server. */
export interface WsGatewayDeps {
  dispatcher: OperationDispatcher;
  /** Session lifetimes: a connection holds its session busy and closes when it ends. */
  sessions: SessionManager;
  /** Host, Origin and bearer-token checks shared with HTTP: a principal, or the error to refuse with. */
  admit: (req: IncomingMessage) => Principal | WorkspaceError;
  maxMessageBytes: number;
}

interface ClientMessage {
  id?: unknown;
  op?: unknown;
  params?: unknown;
}

/**
 * WebSocket streams at `/ws`: each message `{id, op, params}` runs one operation (any of the REST
 * surface's, plus `attach` to an execution); replies carry the same `id`: `output` events while a
 * command runs, then one `result` or `error`. After `join_workspace`, broadcast messages arrive as
 * `{type: 'message', message}` events. Authenticated and Origin/Host-checked at upgrade.
 */
export class WsGateway {
  private readonly wss: WebSocketServer;

  constructor(private readonly deps: WsGatewayDeps) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxMessageBytes });
  }

  /** Takes an upgrade request for {@link WS_PATH} (routed here by the server's upgrade router). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const admitted = this.deps.admit(req);
    if (admitted instanceof WorkspaceError) return refuseUpgrade(socket, admitted);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, admitted));
  }

  /** Open connections. */
  get connections(): number {
    return this.wss.clients.size;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private serve(ws: WebSocket, principal: Principal): void {
    const { dispatcher } = this.deps;
    let sessionId: Promise<string> = dispatcher.resolveSession(principal, 'ws');
    let ownSession: string | null = null;
    // An open connection keeps its session busy (never ended to admit another of its token).
    let releaseHold: () => void = () => undefined;
    const holdSession = (id: string): void => {
      releaseHold();
      releaseHold = ws.readyState === ws.OPEN ? this.deps.sessions.hold(id) : () => undefined;
    };
    const cleanups = new Set<() => void>();
    const send = (message: unknown): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    // Once the connection's session joins the workspace, broadcast messages arrive as events.
    let detachDeliveries: () => void = () => undefined;
    const deliverTo = (id: string): void => {
      detachDeliveries();
      detachDeliveries =
        ws.readyState === ws.OPEN
          ? dispatcher.attachDeliveries(id, (message) => send({ type: 'message', message }))
          : () => undefined;
    };
    // A refused default session (SESSION_LIMIT) is reported to the first message that needs it.
    sessionId.then(
      (id) => {
        holdSession(id);
        deliverTo(id);
      },
      () => undefined,
    );
    const stopSessionWatch = this.deps.sessions.onSessionEnded((s, reason) => {
      // Its token revoked or expired: the connection ends too, whichever session it was using.
      const tokenGone =
        (reason === 'revoked' || reason === 'expired') &&
        principal.kind === 'agent' &&
        s.principal.name === principal.name &&
        !this.deps.sessions.listTokens().some((token) => token.name === principal.name);
      if (s.sessionId === ownSession || tokenGone) ws.close(4001, 'session ended');
    });
    ws.on('close', () => {
      releaseHold();
      detachDeliveries();
      stopSessionWatch();
      for (const cleanup of cleanups) cleanup();
      if (ownSession) this.deps.sessions.end(ownSession, 'closed');
    });
    ws.on('message', (raw, isBinary) => {
      let message: ClientMessage;
      try {
        if (Buffer.isBuffer(raw)) assertJsonDepth(raw);
        message = JSON.parse(isBinary ? '' : raw.toString()) as ClientMessage;
        if (typeof message !== 'object' || message === null) throw new Error('not an object');
      } catch {
        send({
          id: null,
          type: 'error',
          error: { code: 'INVALID_ARGUMENT', message: 'Send JSON text: {"id", "op", "params"}.' },
        });
        return;
      }
      const id = typeof message.id === 'string' || typeof message.id === 'number' ? message.id : null;
      const reply = (body: Record<string, unknown>): void => send({ id, ...body });
      const fail = (err: unknown): void => reply({ type: 'error', error: toWorkspaceError(err).toJSON() });
      const op = message.op;
      const params = message.params ?? {};
      void (async () => {
        if (op === 'init_session') {
          const session = await dispatcher.initSession(principal, params, { transport: 'ws' });
          if (ownSession) this.deps.sessions.end(ownSession, 'closed');
          ownSession = session.sessionId;
          sessionId = Promise.resolve(session.sessionId);
          holdSession(session.sessionId);
          deliverTo(session.sessionId);
          reply({ type: 'result', result: dispatcher.sessionReply(session) });
          return;
        }
        const ctx = { principal, sessionId: await sessionId, transport: 'ws' };
        if (op === 'attach') {
          const executionId = String((params as { executionId?: unknown }).executionId ?? '');
          const detach = await dispatcher.attachExecution(executionId, ctx, {
            output: (event) => reply({ type: 'output', executionId, ...event }),
            result: (result) => reply({ type: 'result', result }),
          });
          cleanups.add(detach);
          return;
        }
        // A typed tool: `{op: "tool", params: {name, arguments}}`, or the tool's own name as op.
        const typedTool =
          op === 'tool'
            ? toolCallSchema.safeParse(params)
            : typeof op === 'string' && !(op in OPERATIONS) && dispatcher.hasTool(op)
              ? { success: true as const, data: { name: op, arguments: params as Record<string, unknown> } }
              : null;
        if (typedTool) {
          if (!typedTool.success) {
            throw new WorkspaceError(
              'INVALID_ARGUMENT',
              'op "tool" takes params {"name": TOOL, "arguments": {...}}.',
            );
          }
          const result = await dispatcher.runTool(typedTool.data.name, typedTool.data.arguments ?? {}, {
            ...ctx,
            onOutput: (event) => reply({ type: 'output', ...event }),
          });
          reply({ type: 'result', result });
          return;
        }
        if (typeof op !== 'string' || !(op in OPERATIONS)) {
          throw new WorkspaceError(
            'INVALID_ARGUMENT',
            `Unknown op ${JSON.stringify(op)}; see /openapi.json.`,
          );
        }
        const result = await dispatcher.run(op as OperationName, params, {
          ...ctx,
          onOutput: (event) => reply({ type: 'output', ...event }),
        });
        reply({ type: 'result', result });
      })().catch(fail);
    });
  }
}
