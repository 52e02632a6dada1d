import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startWorkspaceServer,
  type RunningWorkspaceServer,
  type WorkspaceServerOptions,
} from '../../src/server';

/** A server on a fresh temporary workspace and state dir, with a silent logger. */
export interface TestServer {
  server: RunningWorkspaceServer;
  url: string;
  token: string;
  workspace: string;
  stateDir: string;
  logs: string[];
  /** fetch against the server with the owner token (or `token`) and JSON handling. */
  api: (
    path: string,
    init?: { method?: string; body?: unknown; token?: string | null; headers?: Record<string, string> },
  ) => Promise<{ status: number; body: any; headers: Headers }>;
  /** Replaces the policy through PUT /policies as the owner; fails the test unless it is accepted. */
  setRules: (id: string, ...rules: string[]) => Promise<void>;
  /** Fails the test unless the audit log verifies, then closes the server. */
  closeVerified: () => Promise<void>;
  close: () => Promise<void>;
}

/** Starts a server for a test; `setup` may populate the workspace first. */
export async function startTestServer(
  options: Partial<WorkspaceServerOptions> = {},
  setup?: (workspace: string) => Promise<void>,
): Promise<TestServer> {
  const root = await mkdtemp(join(tmpdir(), 'mcpw-test-'));
  const workspace = join(root, 'workspace');
  const stateDir = join(root, 'state');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(workspace);
  if (setup) await setup(workspace);
  const logs: string[] = [];
  const server = await startWorkspaceServer({
    workspace,
    stateDir,
    logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
    ...options,
  });
  const api: TestServer['api'] = async (path, init = {}) => {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    const token = init.token === undefined ? server.ownerToken : init.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(server.url + path, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body !== undefined
        ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) }
        : {}),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body, headers: res.headers };
  };
  const close = async (): Promise<void> => {
    await server.close();
    await rm(root, { recursive: true, force: true });
  };
  return {
    server,
    url: server.url,
    token: server.ownerToken,
    workspace: server.workspace,
    stateDir,
    logs,
    api,
    setRules: async (id, ...rules) => {
      const res = await api('/policies', { method: 'PUT', body: { id, rules } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    },
    closeVerified: async () => {
      const verified = await server.audit.verify();
      assert.equal(verified.ok, true, 'the audit log still verifies');
      await close();
    },
    close,
  };
}
