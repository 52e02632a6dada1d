import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** Connects the official MCP SDK (v1 line, protocol 2025-11-25) client with a bearer token. */
export async function connectMcp(
  mcpUrl: string,
  token: string,
  tools?: string[],
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; close: () => Promise<void> }> {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client(
    { name: 'integration-test', version: '1.0.0' },
    { capabilities: tools ? { experimental: { 'mcp-workspace': { tools } } } : {} },
  );
  await client.connect(transport);
  return {
    client,
    transport,
    close: async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}

/** Calls a tool and returns its structured result, or `{error}` parsed from a tool error. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<any> {
  const result = (await client.callTool({ name, arguments: args })) as {
    isError?: boolean;
    structuredContent?: unknown;
    content: { type: string; text?: string }[];
  };
  if (result.isError) {
    const text = result.content[0]?.text ?? '';
    try {
      return JSON.parse(text);
    } catch {
      return { error: { code: 'UNPARSED', message: text } };
    }
  }
  return result.structuredContent;
}

/** A raw HTTP request (lets tests set Host and Origin, which fetch does not). */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; path?: string },
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: options.path ?? target.pathname,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
      },
    );
    req.on('error', reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}
