import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AUDIT_FILE, verifyAuditLog } from '../core/audit';
import { WorkspaceError } from '../protocol/errors';
import { defaultStateDir, startWorkspaceServer, SERVER_VERSION } from '../server';

const USAGE = `mcp-workspace ${SERVER_VERSION}: a secure workspace server for AI coding agents

Usage:
  mcp-workspace serve DIR [--port N] [--host 127.0.0.1] [--state-dir D] [--policy FILE]
                          [--allow-origin ORIGIN]... [--image IMAGE]
                          [--max-sessions-per-agent N] [--max-containers-per-agent N]
                          [--detect-tools]
  mcp-workspace audit verify DIR [--state-dir D]
  mcp-workspace --help | --version

serve prints one JSON line when ready: {"url", "mcp", "tokenFile"}. The owner token is taken from
MCP_WORKSPACE_TOKEN when set, else generated and kept in tokenFile (mode 0600). Commands run in the
workspace's dev container (.devcontainer/devcontainer.json), else in --image; the Docker engine is
DOCKER_HOST or the default socket. Typed tools come from DIR/.mcp-workspace/tools/*.json;
--detect-tools also offers package.json scripts, Makefile targets, pytest, cargo and go tests
(each granted only by a policy rule naming it, allow tool(NAME)).`;

/** Output streams of the CLI (injectable for tests). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};

/** Runs the CLI; resolves with the exit code (serve resolves only after a signal stops it). */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'state-dir': { type: 'string' },
        policy: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        image: { type: 'string' },
        'max-sessions-per-agent': { type: 'string' },
        'max-containers-per-agent': { type: 'string' },
        'detect-tools': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.out(SERVER_VERSION);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    if (command === 'serve' && rest.length === 1) {
      const port = values.port === undefined ? 0 : Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        io.err(`--port must be an integer from 0 to 65535, got ${values.port}`);
        return 2;
      }
      const caps: { maxSessionsPerAgent?: number; maxContainersPerAgent?: number } = {};
      for (const [flag, key] of [
        ['max-sessions-per-agent', 'maxSessionsPerAgent'],
        ['max-containers-per-agent', 'maxContainersPerAgent'],
      ] as const) {
        const raw = values[flag];
        if (raw === undefined) continue;
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 1) {
          io.err(`--${flag} must be a positive integer, got ${raw}`);
          return 2;
        }
        caps[key] = n;
      }
      return await serve(
        rest[0]!,
        {
          port,
          ...caps,
          ...(values.host !== undefined ? { host: values.host } : {}),
          ...(values['state-dir'] !== undefined ? { stateDir: values['state-dir'] } : {}),
          ...(values.policy !== undefined ? { policyFile: values.policy } : {}),
          ...(values['allow-origin'] !== undefined ? { allowedOrigins: values['allow-origin'] } : {}),
          ...(values.image !== undefined ? { defaultImage: values.image } : {}),
          ...(values['detect-tools'] ? { detectTools: true } : {}),
        },
        io,
      );
    }
    if (command === 'audit' && rest[0] === 'verify' && rest.length === 2) {
      const stateDir = values['state-dir'] ?? defaultStateDir(await realpath(rest[1]!));
      const log = join(stateDir, 'audit', AUDIT_FILE);
      if (
        !(await stat(log).then(
          (s) => s.isFile(),
          () => false,
        ))
      ) {
        // A missing log is not an empty intact one: the state dir may have been moved away.
        io.out(`audit log MISSING: no ${log}; check --state-dir (a server that ever ran has a log there)`);
        return 1;
      }
      const result = await verifyAuditLog(join(stateDir, 'audit'));
      if (result.ok) {
        io.out(`audit log intact: ${result.records} records, head ${result.head}`);
        return 0;
      }
      io.out(
        `audit log TAMPERED at record ${result.badSeq}: ${result.reason} (${result.records} records intact before it)`,
      );
      return 1;
    }
  } catch (err) {
    const message = err instanceof WorkspaceError ? `${err.code}: ${err.message}` : (err as Error).message;
    io.err(`mcp-workspace: ${message}`);
    return 1;
  }
  io.err(USAGE);
  return 2;
}

async function serve(
  dir: string,
  options: {
    port: number;
    host?: string;
    stateDir?: string;
    policyFile?: string;
    allowedOrigins?: string[];
    defaultImage?: string;
    maxSessionsPerAgent?: number;
    maxContainersPerAgent?: number;
  },
  io: CliIo,
): Promise<number> {
  const envToken = process.env['MCP_WORKSPACE_TOKEN'];
  const server = await startWorkspaceServer({
    workspace: dir,
    ...options,
    ...(envToken ? { ownerToken: envToken } : {}),
    startedFrom: 'cli',
  });
  io.out(JSON.stringify({ url: server.url, mcp: server.mcpUrl, tokenFile: server.tokenFile }));
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.close(signal).then(
        () => resolve(0),
        (err: unknown) => {
          io.err(`mcp-workspace: shutdown failed: ${(err as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`mcp-workspace: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
