/**
 * One sandboxed MCP server as this server's client sees it: the official SDK client over a
 * {@link SandboxStdioTransport}, declaring no client capabilities (sampling, elicitation and roots
 * requests are refused by the SDK as unknown methods), every request under a timeout, and the tool
 * list validated and capped before anything of it reaches an agent. Private to the component.
 */
import {
  Client,
  type CallToolResult,
  type JsonSchemaValidator,
  type jsonSchemaValidator,
  type Tool,
} from '@modelcontextprotocol/client';
import { WorkspaceError } from '../../protocol/errors';
import type { RegisteredMcpServer } from '../tools';
import { SandboxStdioTransport, type StdioProcess, type TransportLimits } from './transport';

/** Caps on what a sandboxed server's tool list may hold. */
export interface ToolListLimits {
  /** Most tools kept (the rest are skipped and reported). */
  maxTools: number;
  /** Largest input schema of one tool (bytes of its JSON). */
  maxSchemaBytes: number;
  /** Deepest nesting of an input schema. */
  maxSchemaDepth: number;
  /** Most pages of tools/list read. */
  maxPages: number;
}

/** A tool of a sandboxed server, as offered to agents (`NAME_TOOL`). */
export interface UpstreamTool {
  /** The name agents call: `SERVER_TOOL`. */
  name: string;
  /** The server's own name of the tool. */
  upstreamName: string;
  server: string;
  title: string;
  description: string;
  /** The tool's input schema, validated (an object schema within the size and depth caps). */
  inputSchema: Record<string, unknown>;
}

/** A tool the server listed that is not offered, and why. */
export interface SkippedTool {
  name: string;
  reason: string;
}

const UPSTREAM_TOOL_NAME_RE = /^[A-Za-z0-9_-]+$/;
const MAX_DESCRIPTION = 4000;
const MAX_TITLE = 200;

// Tool output is passed through as content: this server does not validate upstream output schemas
// (a hostile server's schema never reaches a schema compiler).
const noValidation: jsonSchemaValidator = {
  getValidator:
    <T>(): JsonSchemaValidator<T> =>
    (input) => ({ valid: true, data: input as T, errorMessage: undefined }),
};

/** Nesting depth of a JSON value (objects and arrays), stopping once past `limit`. */
function depthOf(value: unknown, limit: number, depth = 0): number {
  if (depth > limit || typeof value !== 'object' || value === null) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, limit, depth + 1));
    if (deepest > limit) break;
  }
  return deepest;
}

/**
 * Keeps the tools of a server's list that can be offered as `SERVER_TOOL`: valid names within 64
 * characters, object input schemas within the caps, no duplicates, at most `maxTools`.
 */
export function admitTools(
  server: string,
  listed: readonly Tool[],
  limits: ToolListLimits,
): { tools: UpstreamTool[]; skipped: SkippedTool[] } {
  const tools: UpstreamTool[] = [];
  const skipped: SkippedTool[] = [];
  const seen = new Set<string>();
  for (const tool of listed) {
    const name = `${server}_${tool.name}`;
    const shown = String(tool.name).slice(0, 80);
    let reason: string | null = null;
    if (!UPSTREAM_TOOL_NAME_RE.test(tool.name)) {
      reason = 'its name has characters other than letters, digits, "_" and "-"';
    } else if (name.length > 64) {
      reason = `${name} is longer than 64 characters`;
    } else if (seen.has(name.toLowerCase())) {
      reason = 'the server listed the name twice';
    } else if (tools.length >= limits.maxTools) {
      reason = `the server listed more than ${limits.maxTools} tools`;
    } else {
      const schema = tool.inputSchema as Record<string, unknown>;
      const bytes = Buffer.byteLength(JSON.stringify(schema));
      if (bytes > limits.maxSchemaBytes) {
        reason = `its input schema has ${bytes} bytes (the limit is ${limits.maxSchemaBytes})`;
      } else if (depthOf(schema, limits.maxSchemaDepth) > limits.maxSchemaDepth) {
        reason = `its input schema nests deeper than ${limits.maxSchemaDepth} levels`;
      } else if (schema['type'] !== 'object') {
        reason = 'its input schema is not an object schema';
      }
    }
    if (reason !== null) {
      skipped.push({ name: shown, reason });
      continue;
    }
    seen.add(name.toLowerCase());
    const description = tool.description ?? `${tool.name} of the sandboxed MCP server ${server}.`;
    tools.push({
      name,
      upstreamName: tool.name,
      server,
      title: (tool.title ?? tool.annotations?.title ?? name).slice(0, MAX_TITLE),
      description:
        description.length > MAX_DESCRIPTION ? `${description.slice(0, MAX_DESCRIPTION - 1)}…` : description,
      inputSchema: tool.inputSchema as Record<string, unknown>,
    });
  }
  return { tools, skipped };
}

/** Rejects with `onTimeout()` when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Options of one {@link UpstreamServer}. */
export interface UpstreamOptions {
  server: RegisteredMcpServer;
  /** The image the process runs in (for messages). */
  image: string;
  transport: TransportLimits;
  tools: ToolListLimits;
  /** Largest tool result passed back (bytes of its JSON). */
  maxResultBytes: number;
  /** The server said its tool list changed (after connect). */
  onToolsChanged: () => void;
  /** The connection ended (process exit, stop, a limit). */
  onClosed: (reason: string) => void;
}

/** A connected sandboxed MCP server. */
export class UpstreamServer {
  private readonly client: Client;
  private readonly transport: SandboxStdioTransport;
  private ended: string | null = null;

  private constructor(
    private readonly process: StdioProcess,
    private readonly options: UpstreamOptions,
  ) {
    this.transport = new SandboxStdioTransport(process, options.transport);
    this.client = new Client(
      { name: 'mcp-workspace', version: '1' },
      {
        capabilities: {},
        jsonSchemaValidator: noValidation,
        listMaxPages: options.tools.maxPages,
        inputRequired: { autoFulfill: false },
      },
    );
    this.client.onerror = () => undefined;
    this.client.setNotificationHandler('notifications/tools/list_changed', () => options.onToolsChanged());
    this.client.onclose = () => {
      const reason = this.closeReason();
      this.ended ??= reason;
      options.onClosed(reason);
    };
  }

  /**
   * Connects the SDK client to a started process (initialize within the manifest's timeout).
   * @throws WorkspaceError TOOL_UNAVAILABLE naming the program and image when it does not answer.
   */
  static async connect(process: StdioProcess, options: UpstreamOptions): Promise<UpstreamServer> {
    const upstream = new UpstreamServer(process, options);
    try {
      await within(upstream.client.connect(upstream.transport), options.server.timeoutMs, () =>
        upstream.unavailable(
          `did not complete the MCP initialize handshake within ${options.server.timeoutMs} ms`,
        ),
      );
    } catch (err) {
      // Let the process's end (and its reason) arrive before the connection is torn down.
      await within(process.exited, 200, () => new Error('still running')).catch(() => undefined);
      const reason =
        upstream.ended ?? (upstream.transport.exit ? upstream.closeReason() : (err as Error).message);
      await upstream.close();
      throw err instanceof WorkspaceError ? err : upstream.unavailable(`could not start: ${reason}`);
    }
    return upstream;
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.ended !== null;
  }

  /** The server's tools (validated and capped), and those skipped with why. */
  async listTools(): Promise<{ tools: UpstreamTool[]; skipped: SkippedTool[] }> {
    const { server } = this.options;
    const listed = await this.request('list its tools', (signal) =>
      this.client.listTools(undefined, { signal, cacheMode: 'bypass' }),
    );
    return admitTools(server.name, listed.tools, this.options.tools);
  }

  /**
   * Calls one tool; the result's content is passed back as the server gave it.
   * @throws WorkspaceError TOOL_TIMEOUT (the server is stopped), MESSAGE_TOO_LARGE, TOOL_UNAVAILABLE.
   */
  async callTool(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    const result = await this.request(
      `answer a call of ${tool}`,
      (requestSignal) => this.client.callTool({ name: tool, arguments: args }, { signal: requestSignal }),
      signal,
    );
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes > this.options.maxResultBytes) {
      throw new WorkspaceError(
        'MESSAGE_TOO_LARGE',
        `The result of ${this.options.server.name}_${tool} has ${bytes} bytes, over the limit of ${this.options.maxResultBytes}; ask for less.`,
        { limit: this.options.maxResultBytes },
      );
    }
    return result as CallToolResult;
  }

  /** Ends the connection and stops the process. */
  async close(): Promise<void> {
    this.ended ??= 'stopped';
    await this.client.close().catch(() => undefined);
    this.process.stop();
  }

  /**
   * One request under the manifest's timeout: a server that does not answer in time is stopped
   * (it starts again on the next use), and the caller gets TOOL_TIMEOUT.
   */
  private async request<T>(
    what: string,
    send: (signal: AbortSignal) => Promise<T>,
    callerSignal?: AbortSignal,
  ): Promise<T> {
    const { server } = this.options;
    if (this.ended !== null) throw this.unavailable(`has stopped (${this.ended})`);
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    callerSignal?.addEventListener('abort', abort, { once: true });
    try {
      return await within(send(controller.signal), server.timeoutMs, () => {
        controller.abort();
        void this.close();
        return new WorkspaceError(
          'TOOL_TIMEOUT',
          `The sandboxed MCP server ${server.name} did not ${what} within ${server.timeoutMs} ms; it was stopped and starts again on the next call. Raise mcpServer.timeoutMs in its manifest if it needs longer.`,
          { server: server.name, timeoutMs: server.timeoutMs },
        );
      });
    } catch (err) {
      if (err instanceof WorkspaceError) throw err;
      if (this.ended !== null) throw this.unavailable(`stopped while asked to ${what} (${this.ended})`);
      // A JSON-RPC error the server answered with (unknown tool, bad arguments): passed on as such.
      throw new WorkspaceError(
        'TOOL_UNAVAILABLE',
        `The sandboxed MCP server ${server.name} could not ${what}: ${(err as Error).message}`,
        { server: server.name },
      );
    } finally {
      callerSignal?.removeEventListener('abort', abort);
    }
  }

  private closeReason(): string {
    const stderr = this.transport.stderrTail.trim().split('\n').slice(-3).join(' | ');
    const exit = this.transport.exit;
    const why =
      this.transport.stoppedBecause ??
      (exit?.error
        ? `its process could not run (${exit.error})`
        : exit
          ? `its process ended (exit code ${exit.exitCode ?? 'none'}${exit.signal ? `, ${exit.signal}` : ''})`
          : 'its connection closed');
    return stderr ? `${why}; its stderr ends: ${stderr}` : why;
  }

  private unavailable(what: string): WorkspaceError {
    const { server, image } = this.options;
    return new WorkspaceError(
      'TOOL_UNAVAILABLE',
      `The sandboxed MCP server ${server.name} (program "${server.command[0]}" in image ${image}) ${what}. ` +
        `Check its manifest (${server.source}) and that the image has the program.`,
      { server: server.name, program: server.command[0], image },
    );
  }
}
