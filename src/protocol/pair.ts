/**
 * Pair sessions: a human partner's VS Code joins the host's workspace through a link carrying a
 * scoped, expiring token. The link format is shared by the server (which mints it) and the
 * extension (which opens it), so it is defined once, here.
 */

/** Principal names of pair guests start with this; the rest is an agent name. */
export const PAIR_PREFIX = 'pair:';

/** The extension's id (`publisher.name` of package.json): the authority of a `vscode://` link. */
export const EXTENSION_ID = 'mcp-workspace.mcp-workspace';

/** The path of the extension's URI handler that joins a pair session. */
export const PAIR_JOIN_PATH = '/join';

/** Default lifetime of a pair link, in seconds (one hour). */
export const PAIR_DEFAULT_TTL_SECONDS = 3600;

/** Longest lifetime of a pair link, in seconds (one day). */
export const PAIR_MAX_TTL_SECONDS = 86_400;

/**
 * Everything a pair guest may negotiate: file operations (live co-editing needs read_file, and
 * write_file to edit) and asking what it negotiated. Never commands, executions, typed tools,
 * policy, tokens, audit or coordination, whatever `allow exec`/`allow tool` rules exist.
 */
export const PAIR_OPERATIONS: readonly string[] = Object.freeze([
  'list_capabilities',
  'read_file',
  'write_file',
  'list_files',
  'file_info',
  'edit_file',
  'search_files',
  'create_directory',
  'delete_file',
  'move_file',
]);

/** What a guest may do: read and edit (role agent), or only read (role viewer). */
export type PairMode = 'read-write' | 'read-only';

/** What a pair link carries. */
export interface PairLink {
  /** Loopback host name of the host's server as the guest reaches it (e.g. through a forwarded port). */
  host: string;
  port: number;
  token: string;
  mode: PairMode;
  /** The guest's principal name without its {@link PAIR_PREFIX}. */
  name: string;
}

/** The `vscode://` URI the extension's URI handler opens (also accepted pasted as text). */
export function formatPairLink(link: PairLink, scheme = 'vscode'): string {
  const query = new URLSearchParams({
    host: link.host,
    port: String(link.port),
    mode: link.mode,
    name: link.name,
    token: link.token,
  });
  return `${scheme}://${EXTENSION_ID}${PAIR_JOIN_PATH}?${query.toString()}`;
}

/**
 * Reads a pair link: a `vscode://` (or code-server's, `vscode-insiders://`, ...) URI of the
 * extension's join handler, or just its query. Returns a reason string when it is not one.
 */
export function parsePairLink(text: string): PairLink | string {
  const trimmed = text.trim();
  const queryStart = trimmed.indexOf('?');
  const query = queryStart >= 0 ? trimmed.slice(queryStart + 1) : trimmed;
  if (queryStart >= 0) {
    const head = trimmed.slice(0, queryStart).toLowerCase();
    if (!head.endsWith(`${EXTENSION_ID}${PAIR_JOIN_PATH}`)) {
      return `not a pair link of this extension (expected …://${EXTENSION_ID}${PAIR_JOIN_PATH}?…)`;
    }
  }
  const params = new URLSearchParams(query);
  const host = params.get('host') ?? '';
  const port = Number(params.get('port'));
  const token = params.get('token') ?? '';
  const mode = params.get('mode') ?? 'read-write';
  const name = params.get('name') ?? 'guest';
  // The server answers loopback names only; a guest elsewhere reaches it through a forwarded port.
  if (!/^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])$/i.test(host)) {
    return 'the link must name a loopback host (127.0.0.1, localhost or [::1]; forward the port to reach another machine)';
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'the link names no valid port';
  if (!/^[\x21-\x7e]{16,1024}$/.test(token)) return 'the link carries no valid token';
  if (mode !== 'read-write' && mode !== 'read-only') return `unknown mode ${JSON.stringify(mode)}`;
  return { host, port, token, mode, name };
}
