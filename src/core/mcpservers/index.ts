/**
 * Sandboxed MCP servers: stdio MCP servers declared by the owner's manifests, run inside a
 * session's sandbox (never on the host) and reached through the official SDK client. Started at a
 * session's first use (listing or calling their tools), stopped when the session ends, when their
 * manifest changes, or after an idle time; their tools are validated and capped before they are
 * offered as `NAME_TOOL`. The dispatcher decides, audits and launches; this component keeps the
 * connections.
 */
import type { CallToolResult } from '@modelcontextprotocol/client';
import { WorkspaceError } from '../../protocol/errors';
import type { Logger } from '../log';
import type { RegisteredMcpServer } from '../tools';
import type { StdioProcess, TransportLimits } from './transport';
import { UpstreamServer, type SkippedTool, type ToolListLimits, type UpstreamTool } from './upstream';

export type { StdioProcess } from './transport';
export { admitTools, type SkippedTool, type UpstreamTool } from './upstream';

/** Starts a server's process in the caller's sandbox (the dispatcher decides and audits it). */
export type Launcher = (server: RegisteredMcpServer) => Promise<{ process: StdioProcess; image: string }>;

/** Limits of every sandboxed MCP server. */
export interface McpServerLimits extends TransportLimits, ToolListLimits {
  /** A server not called for this long is stopped (its tool list is kept; it starts again on use). */
  idleMs: number;
  /** Largest tool result passed back (bytes of its JSON). */
  maxResultBytes: number;
  /** After a failed start, listing does not try again for this long (calls always do). */
  retryAfterMs: number;
}

/** Defaults: 2 MiB messages, 200 unsolicited messages per 10 s, 128 tools, 64 KiB / 16 levels of schema. */
export const DEFAULT_MCP_SERVER_LIMITS: McpServerLimits = {
  maxMessageBytes: 2 * 1024 * 1024,
  maxUnsolicited: 200,
  unsolicitedWindowMs: 10_000,
  maxTools: 128,
  maxSchemaBytes: 64 * 1024,
  maxSchemaDepth: 16,
  maxPages: 8,
  idleMs: 5 * 60_000,
  maxResultBytes: 1024 * 1024,
  retryAfterMs: 30_000,
};

/** Options of a {@link McpServerHost}. */
export interface McpServerHostOptions {
  log: Logger;
  limits?: Partial<McpServerLimits>;
}

/** A server's tools as last listed in one session. */
interface Listing {
  digest: string;
  tools: UpstreamTool[];
  skipped: SkippedTool[];
}

/** One server in one session. */
interface Entry {
  sessionId: string;
  server: RegisteredMcpServer;
  upstream: UpstreamServer | null;
  starting: Promise<UpstreamServer> | null;
  idle: NodeJS.Timeout | null;
  relist: NodeJS.Timeout | null;
  inFlight: number;
  failed: { at: number; error: unknown } | null;
}

const RELIST_DEBOUNCE_MS = 50;

/** The sandboxed MCP servers running (or listed) per session. */
export class McpServerHost {
  private readonly limits: McpServerLimits;
  private readonly entries = new Map<string, Entry>();
  private readonly listings = new Map<string, Listing>();
  private readonly listeners = new Set<(sessionId: string) => void>();
  private closed = false;

  constructor(private readonly options: McpServerHostOptions) {
    this.limits = { ...DEFAULT_MCP_SERVER_LIMITS, ...options.limits };
  }

  /** Calls `listener` with a session whose offered server tools changed; returns the unsubscribe. */
  onChange(listener: (sessionId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The tools of `server` as last listed in the session (none before its first listing). */
  tools(sessionId: string, server: RegisteredMcpServer): UpstreamTool[] {
    const listing = this.listings.get(key(sessionId, server.name));
    return listing && listing.digest === server.digest ? listing.tools : [];
  }

  /** Whether the session has listed `server` (under its current manifest). */
  listed(sessionId: string, server: RegisteredMcpServer): boolean {
    return this.listings.get(key(sessionId, server.name))?.digest === server.digest;
  }

  /** Whether listing `server` failed in the session a short while ago (listing then waits). */
  recentlyFailed(sessionId: string, server: RegisteredMcpServer): boolean {
    const failed = this.entries.get(key(sessionId, server.name))?.failed;
    return failed !== null && failed !== undefined && Date.now() - failed.at < this.limits.retryAfterMs;
  }

  /**
   * Lists `server`'s tools in the session, starting it with `launch` when it is not running; the
   * tools and the skipped ones are returned and kept for the session's tool list.
   */
  async discover(
    sessionId: string,
    server: RegisteredMcpServer,
    launch: Launcher,
  ): Promise<{ tools: UpstreamTool[]; skipped: SkippedTool[] }> {
    const entry = this.entry(sessionId, server);
    entry.inFlight++;
    try {
      const upstream = await this.connected(entry, launch);
      return await this.list(entry, upstream);
    } catch (err) {
      entry.failed = { at: Date.now(), error: err };
      throw err;
    } finally {
      this.release(entry);
    }
  }

  /**
   * Calls `tool` (the server's own name) of `server` in the session, starting the server first when
   * it is not running. Returns the server's result; an unknown tool is a NOT_FOUND WorkspaceError.
   */
  async call(
    sessionId: string,
    server: RegisteredMcpServer,
    tool: string,
    args: Record<string, unknown>,
    launch: Launcher,
  ): Promise<{ result: CallToolResult; upstream: UpstreamTool }> {
    const entry = this.entry(sessionId, server);
    entry.inFlight++;
    try {
      const upstream = await this.connected(entry, launch);
      const known = this.listed(sessionId, server)
        ? this.tools(sessionId, server)
        : (await this.list(entry, upstream)).tools;
      const offered = known.find((t) => t.upstreamName === tool);
      if (!offered) {
        const skipped = this.listings.get(key(sessionId, server.name))?.skipped.find((s) => s.name === tool);
        throw new WorkspaceError(
          'NOT_FOUND',
          skipped
            ? `The sandboxed MCP server ${server.name} lists ${tool}, but it is not offered: ${skipped.reason}.`
            : `The sandboxed MCP server ${server.name} has no tool ${tool}; list the tools again to see its current ones.`,
          { server: server.name },
        );
      }
      return { result: await upstream.callTool(tool, args), upstream: offered };
    } finally {
      this.release(entry);
    }
  }

  /** Stops the servers of an ended session and forgets their tool lists. */
  endSession(sessionId: string): void {
    for (const [k, entry] of this.entries) {
      if (entry.sessionId !== sessionId) continue;
      this.drop(k, entry);
      this.listings.delete(k);
    }
  }

  /**
   * Manifests changed: servers that are gone or whose manifest changed are stopped everywhere and
   * their tool lists forgotten (they start again, under the new manifest, on the next use).
   */
  retire(current: readonly RegisteredMcpServer[]): void {
    const digests = new Map(current.map((s) => [s.name, s.digest]));
    const touched = new Set<string>();
    for (const [k, entry] of this.entries) {
      if (digests.get(entry.server.name) === entry.server.digest) continue;
      this.drop(k, entry);
      touched.add(entry.sessionId);
    }
    for (const [k, listing] of this.listings) {
      const [sessionId, name] = splitKey(k);
      if (digests.get(name) === listing.digest) continue;
      this.listings.delete(k);
      touched.add(sessionId);
    }
    for (const sessionId of touched) this.emit(sessionId);
  }

  /** Number of servers running now (all sessions). */
  get running(): number {
    return [...this.entries.values()].filter((e) => e.upstream !== null && !e.upstream.closed).length;
  }

  /** Stops every server. */
  close(): void {
    this.closed = true;
    for (const [k, entry] of this.entries) this.drop(k, entry);
    this.listings.clear();
    this.listeners.clear();
  }

  private entry(sessionId: string, server: RegisteredMcpServer): Entry {
    const k = key(sessionId, server.name);
    let entry = this.entries.get(k);
    if (entry && entry.server.digest !== server.digest) {
      this.drop(k, entry);
      entry = undefined;
    }
    if (!entry) {
      entry = {
        sessionId,
        server,
        upstream: null,
        starting: null,
        idle: null,
        relist: null,
        inFlight: 0,
        failed: null,
      };
      this.entries.set(k, entry);
    }
    if (entry.idle) {
      clearTimeout(entry.idle);
      entry.idle = null;
    }
    return entry;
  }

  /** The entry's running server, started (once, whoever asks first) when there is none. */
  private async connected(entry: Entry, launch: Launcher): Promise<UpstreamServer> {
    if (this.closed) throw new Error('McpServerHost is closed');
    if (entry.upstream && !entry.upstream.closed) return entry.upstream;
    entry.starting ??= (async () => {
      const { process, image } = await launch(entry.server);
      const upstream = await UpstreamServer.connect(process, {
        server: entry.server,
        image,
        transport: this.limits,
        tools: this.limits,
        maxResultBytes: this.limits.maxResultBytes,
        onToolsChanged: () => this.scheduleRelist(entry),
        onClosed: (reason) => {
          if (entry.upstream === upstream) entry.upstream = null;
          this.options.log.info('sandboxed MCP server stopped', {
            server: entry.server.name,
            sessionId: entry.sessionId,
            reason,
          });
        },
      });
      if (this.entries.get(key(entry.sessionId, entry.server.name)) !== entry || this.closed) {
        // Retired while it started: it never serves.
        await upstream.close();
        throw new Error(`the manifest of ${entry.server.name} changed while it started; call again`);
      }
      entry.upstream = upstream;
      entry.failed = null;
      return upstream;
    })().finally(() => {
      entry.starting = null;
    });
    return entry.starting;
  }

  private async list(
    entry: Entry,
    upstream: UpstreamServer,
  ): Promise<{ tools: UpstreamTool[]; skipped: SkippedTool[] }> {
    const found = await upstream.listTools();
    const k = key(entry.sessionId, entry.server.name);
    if (this.entries.get(k) !== entry) return found;
    const before = this.listings.get(k);
    this.listings.set(k, { digest: entry.server.digest, ...found });
    if (found.skipped.length > 0 && JSON.stringify(before?.skipped) !== JSON.stringify(found.skipped)) {
      this.options.log.warn('sandboxed MCP server tools not offered', {
        server: entry.server.name,
        sessionId: entry.sessionId,
        skipped: found.skipped.slice(0, 20),
        skippedCount: found.skipped.length,
      });
    }
    if (
      !before ||
      before.digest !== entry.server.digest ||
      JSON.stringify(before.tools) !== JSON.stringify(found.tools)
    ) {
      this.emit(entry.sessionId);
    }
    return found;
  }

  private scheduleRelist(entry: Entry): void {
    if (entry.relist || this.closed) return;
    entry.relist = setTimeout(() => {
      entry.relist = null;
      const upstream = entry.upstream;
      if (!upstream || upstream.closed) return;
      this.list(entry, upstream).catch((err: unknown) =>
        this.options.log.warn('could not list the tools of a sandboxed MCP server again', {
          server: entry.server.name,
          error: (err as Error).message,
        }),
      );
    }, RELIST_DEBOUNCE_MS);
    entry.relist.unref();
  }

  /** One use ended: the server is stopped after the idle time unless used again. */
  private release(entry: Entry): void {
    entry.inFlight--;
    if (
      entry.inFlight > 0 ||
      this.closed ||
      this.entries.get(key(entry.sessionId, entry.server.name)) !== entry
    )
      return;
    if (entry.idle) clearTimeout(entry.idle);
    entry.idle = setTimeout(() => {
      entry.idle = null;
      if (entry.inFlight > 0) return;
      const upstream = entry.upstream;
      entry.upstream = null;
      void upstream?.close();
    }, this.limits.idleMs);
    entry.idle.unref();
  }

  private drop(k: string, entry: Entry): void {
    this.entries.delete(k);
    if (entry.idle) clearTimeout(entry.idle);
    if (entry.relist) clearTimeout(entry.relist);
    const upstream = entry.upstream;
    entry.upstream = null;
    void upstream?.close();
    // One still starting is closed when it finishes (it is no longer the entry of its key).
  }

  private emit(sessionId: string): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(sessionId);
      } catch (err) {
        this.options.log.error('sandboxed MCP server change listener failed', {
          error: (err as Error).message,
        });
      }
    }
  }
}

function key(sessionId: string, server: string): string {
  return `${sessionId}\u0000${server}`;
}

function splitKey(k: string): [string, string] {
  const at = k.indexOf('\u0000');
  return [k.slice(0, at), k.slice(at + 1)];
}
