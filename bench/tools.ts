import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startInProcessServer } from './inprocess';
import { percentile } from './stats';

const IMAGE = 'mcpw-test-busybox:1';
const TOOLS = '.mcp-workspace/tools';

function manifest(name: string, description: string): string {
  return JSON.stringify({
    name,
    description,
    inputSchema: { type: 'object', properties: { words: { type: 'array', items: { type: 'string' } } } },
    argv: ['echo', '{words...}'],
  });
}

/**
 * Typed tool figures on a real engine (DOCKER_HOST), server in process: the overhead of a manifest
 * tool over a bare run_command of the same argv (warm session, interleaved, p50 of each and of the
 * paired difference), and the time from a manifest change on disk to a 2025-era session's
 * list_changed notification, to its tools/list answer showing the tool, and to the SDK client's
 * listTools result.
 */
export async function benchTools(): Promise<Record<string, number>> {
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-tools-'));
  const workspace = join(root, 'ws');
  await mkdir(join(workspace, TOOLS), { recursive: true });
  await writeFile(join(workspace, TOOLS, 'say.json'), manifest('say', 'Prints its words.'));
  const { server, post } = await startInProcessServer(root, workspace, IMAGE);
  const client = new Client({ name: 'bench-tools', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(server.mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${server.ownerToken}` } },
  });
  try {
    await server.policy.set({
      id: 'bench',
      rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)', 'allow tool(*)'],
    });
    // Warm the session container and both paths.
    for (let i = 0; i < 5; i++) {
      await post('/execute', { command: 'echo', args: ['x'] });
      await post('/tools/say', { words: ['x'] });
    }
    const bare: number[] = [];
    const typed: number[] = [];
    for (let i = 0; i < 100; i++) {
      let t0 = performance.now();
      await post('/execute', { command: 'echo', args: ['x'] });
      bare.push(performance.now() - t0);
      t0 = performance.now();
      await post('/tools/say', { words: ['x'] });
      typed.push(performance.now() - t0);
    }
    await client.connect(transport);
    let notified: () => void = () => undefined;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => notified());
    // The client's own tools/list request, raw on its session: what the server answers after the change.
    const rawList = async (): Promise<string> => {
      const res = await fetch(server.mcpUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${server.ownerToken}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': transport.sessionId ?? '',
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'bench', method: 'tools/list' }),
      });
      return res.text();
    };
    const toNotification: number[] = [];
    const toServerList: number[] = [];
    const toSdkList: number[] = [];
    for (let i = 0; i < 15; i++) {
      const name = `t${i}`;
      const heard = new Promise<void>((resolve) => (notified = resolve));
      const t0 = performance.now();
      await writeFile(join(workspace, TOOLS, `${name}.json`), manifest(name, 'A tool.'));
      await heard;
      toNotification.push(performance.now() - t0);
      while (!(await rawList()).includes(`"name":"${name}"`)) {
        await new Promise<void>((resolve) => (notified = resolve));
      }
      toServerList.push(performance.now() - t0);
      const { tools } = await client.listTools();
      if (!tools.some((tool) => tool.name === name))
        throw new Error(`${name} missing from the SDK client's list`);
      toSdkList.push(performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      tools_bare_run_command_p50_ms: percentile(bare, 50),
      tools_manifest_tool_p50_ms: percentile(typed, 50),
      // Paired: each tool call minus the run_command just before it.
      tools_overhead_p50_ms: percentile(
        typed.map((ms, i) => ms - bare[i]!),
        50,
      ),
      tools_change_to_list_changed_p50_ms: percentile(toNotification, 50),
      tools_change_to_tool_list_p50_ms: percentile(toServerList, 50),
      tools_change_to_tool_list_max_ms: percentile(toServerList, 100),
      // The same, through the SDK v1 client's listTools (it compiles a validator per output schema).
      tools_change_to_sdk_client_list_p50_ms: percentile(toSdkList, 50),
    };
  } finally {
    await client.close().catch(() => undefined);
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
}
