import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { callTool, connectMcp } from '../helpers/clients';
import { startTestServer, type TestServer } from '../helpers/server';

describe('MCP over Streamable HTTP (official SDK clients)', () => {
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer({}, async (ws) => {
      await writeFile(join(ws, 'README.md'), '# hello\nworld\n');
      await mkdir(join(ws, 'src'));
      await writeFile(join(ws, 'src', 'a.ts'), 'export const a = 1;\nexport const b = 2;\n');
      await writeFile(join(ws, '.env'), 'API_KEY=supersecret\n');
      await mkdir(join(ws, '.git'));
      await writeFile(join(ws, '.git', 'config'), '[core]\n');
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('lists the tools with honest annotations and output schemas', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const { tools } = await mcp.client.listTools();
      const names = tools.map((tool) => tool.name).sort();
      for (const expected of [
        'read_file',
        'write_file',
        'list_files',
        'edit_file',
        'search_files',
        'file_info',
        'get_policies',
        'list_capabilities',
        'set_policy',
      ]) {
        assert.ok(names.includes(expected), `missing tool ${expected}`);
      }
      const read = tools.find((tool) => tool.name === 'read_file')!;
      assert.equal(read.annotations?.readOnlyHint, true);
      assert.deepEqual(read.inputSchema.required, ['path']);
      assert.ok(read.outputSchema, 'read_file declares an output schema');
      for (const tool of tools) {
        // VS Code drops tools whose schema names a meta-schema it cannot load (draft 2020-12 offline).
        assert.equal((tool.inputSchema as Record<string, unknown>)['$schema'], undefined, tool.name);
        assert.equal((tool.outputSchema as Record<string, unknown>)['$schema'], undefined, tool.name);
      }
      const write = tools.find((tool) => tool.name === 'write_file')!;
      assert.equal(write.annotations?.readOnlyHint, false);
      assert.equal(write.annotations?.destructiveHint, true);
      assert.equal(mcp.client.getServerVersion()?.name, 'mcp-workspace');
    } finally {
      await mcp.close();
    }
  });

  it('reads, writes, edits, lists, searches and stats files', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const read = await callTool(mcp.client, 'read_file', { path: 'README.md' });
      assert.equal(read.content, '# hello\nworld\n');
      assert.equal(read.encoding, 'utf8');
      assert.match(read.revision, /^[0-9a-f]{64}$/);

      const written = await callTool(mcp.client, 'write_file', {
        path: 'src/new/b.ts',
        content: 'export const c = 3;\n',
      });
      assert.equal(written.created, true);
      assert.equal(written.bytes, 20);
      assert.equal(await readFile(join(t.workspace, 'src/new/b.ts'), 'utf8'), 'export const c = 3;\n');

      const dry = await callTool(mcp.client, 'edit_file', {
        path: 'src/a.ts',
        edits: [{ oldText: 'const b = 2', newText: 'const b = 42' }],
        dryRun: true,
      });
      assert.equal(dry.dryRun, true);
      assert.match(dry.diff, /-export const b = 2;/);
      assert.match(dry.diff, /\+export const b = 42;/);
      assert.equal(
        await readFile(join(t.workspace, 'src/a.ts'), 'utf8'),
        'export const a = 1;\nexport const b = 2;\n',
      );

      const edited = await callTool(mcp.client, 'edit_file', {
        path: 'src/a.ts',
        edits: [{ oldText: 'const b = 2', newText: 'const b = 42' }],
      });
      assert.equal(edited.applied, 1);
      assert.equal(
        await readFile(join(t.workspace, 'src/a.ts'), 'utf8'),
        'export const a = 1;\nexport const b = 42;\n',
      );

      const listing = await callTool(mcp.client, 'list_files', { path: '.', depth: 3 });
      const paths = listing.entries.map((e: { path: string }) => e.path);
      assert.ok(paths.includes('src/new/b.ts'));
      assert.ok(!paths.includes('.git/config'), '.git contents are skipped');

      const found = await callTool(mcp.client, 'search_files', { query: 'export const' });
      assert.equal(found.matches.length, 3);
      const secret = await callTool(mcp.client, 'search_files', { query: 'supersecret' });
      assert.equal(secret.matches.length, 0, 'files the policy forbids reading never show up');

      const info = await callTool(mcp.client, 'file_info', { path: 'src/a.ts' });
      assert.equal(info.type, 'file');
      assert.equal(info.revision, edited.revision);

      await callTool(mcp.client, 'create_directory', { path: 'docs' });
      await callTool(mcp.client, 'move_file', { from: 'README.md', to: 'docs/README.md' });
      const moved = await callTool(mcp.client, 'read_file', { path: 'docs/README.md' });
      assert.equal(moved.content, '# hello\nworld\n');
      await callTool(mcp.client, 'delete_file', { path: 'docs', recursive: true });
      const gone = await callTool(mcp.client, 'file_info', { path: 'docs' });
      assert.equal(gone.error.code, 'NOT_FOUND');
    } finally {
      await mcp.close();
    }
  });

  it('reports errors as tool results with stable codes', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      assert.equal((await callTool(mcp.client, 'read_file', { path: 'nope.txt' })).error.code, 'NOT_FOUND');
      assert.equal((await callTool(mcp.client, 'read_file', {})).error.code, 'INVALID_ARGUMENT');
      assert.equal((await callTool(mcp.client, 'read_file', { path: 42 })).error.code, 'INVALID_ARGUMENT');
      assert.equal((await callTool(mcp.client, 'read_file', { path: '.env' })).error.code, 'POLICY_DENIED');
      const git = await callTool(mcp.client, 'write_file', { path: '.git/config', content: 'x' });
      assert.equal(git.error.code, 'POLICY_DENIED');
      assert.match(git.error.message, /deny write\(\.git\/\*\*\)/);
      assert.equal(await readFile(join(t.workspace, '.git/config'), 'utf8'), '[core]\n');
      const escape = await callTool(mcp.client, 'read_file', { path: '../../../etc/passwd' });
      assert.equal(escape.error.code, 'PATH_OUTSIDE_WORKSPACE');
    } finally {
      await mcp.close();
    }
  });

  it('refuses a stale expectedRevision and changes nothing', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const first = await callTool(mcp.client, 'read_file', { path: 'README.md' });
      await callTool(mcp.client, 'write_file', {
        path: 'README.md',
        content: 'v2',
        expectedRevision: first.revision,
      });
      const stale = await callTool(mcp.client, 'write_file', {
        path: 'README.md',
        content: 'v3',
        expectedRevision: first.revision,
      });
      assert.equal(stale.error.code, 'REVISION_CONFLICT');
      assert.equal(await readFile(join(t.workspace, 'README.md'), 'utf8'), 'v2');
      const staleEdit = await callTool(mcp.client, 'edit_file', {
        path: 'README.md',
        edits: [{ oldText: 'v2', newText: 'v4' }],
        expectedRevision: first.revision,
      });
      assert.equal(staleEdit.error.code, 'REVISION_CONFLICT');
      assert.equal(await readFile(join(t.workspace, 'README.md'), 'utf8'), 'v2');
    } finally {
      await mcp.close();
    }
  });

  it('refuses symlinks that leave the workspace', async () => {
    await symlink('/etc', join(t.workspace, 'etc-link'));
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const read = await callTool(mcp.client, 'read_file', { path: 'etc-link/hostname' });
      assert.equal(read.error.code, 'PATH_OUTSIDE_WORKSPACE');
      const write = await callTool(mcp.client, 'write_file', { path: 'etc-link/mcpw-test', content: 'x' });
      assert.equal(write.error.code, 'PATH_OUTSIDE_WORKSPACE');
      // A link inside the workspace cannot launder a target the policy protects.
      await symlink('.git', join(t.workspace, 'innocent'));
      const laundered = await callTool(mcp.client, 'write_file', { path: 'innocent/config', content: 'x' });
      assert.equal(laundered.error.code, 'POLICY_DENIED');
      assert.equal(await readFile(join(t.workspace, '.git/config'), 'utf8'), '[core]\n');
      await symlink('.env', join(t.workspace, 'env-link'));
      assert.equal(
        (await callTool(mcp.client, 'read_file', { path: 'env-link' })).error.code,
        'POLICY_DENIED',
      );
    } finally {
      await mcp.close();
    }
  });

  it('negotiates capabilities at initialize: the session gets the intersection', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token, [
      'read_file',
      'list_capabilities',
      'no_such_tool',
    ]);
    try {
      const { tools } = await mcp.client.listTools();
      assert.deepEqual(tools.map((tool) => tool.name).sort(), ['list_capabilities', 'read_file']);
      const caps = await callTool(mcp.client, 'list_capabilities');
      assert.deepEqual(caps.tools, ['list_capabilities', 'read_file']);
      await assert.rejects(
        mcp.client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } }),
      );
    } finally {
      await mcp.close();
    }
  });

  it('serves files and the audit tail as resources', async () => {
    const mcp = await connectMcp(t.server.mcpUrl, t.token);
    try {
      const { resourceTemplates } = await mcp.client.listResourceTemplates();
      assert.ok(resourceTemplates.some((r) => r.uriTemplate === 'workspace://files/{+path}'));
      const file = await mcp.client.readResource({ uri: 'workspace://files/src/a.ts' });
      assert.equal((file.contents[0] as { text: string }).text, 'export const a = 1;\nexport const b = 2;\n');
      const listed = await mcp.client.listResources();
      assert.ok(listed.resources.some((r) => r.uri === 'workspace://files/src/a.ts'));
      assert.ok(listed.resources.some((r) => r.uri === 'audit://tail'));
      const tail = await mcp.client.readResource({ uri: 'audit://tail' });
      const page = JSON.parse((tail.contents[0] as { text: string }).text);
      assert.ok(page.records.some((r: { op: string }) => r.op === 'read_file'));
      await assert.rejects(
        mcp.client.readResource({ uri: 'workspace://files/.env' }),
        /POLICY_DENIED|denies/,
      );
    } finally {
      await mcp.close();
    }
  });

  it('limits agents: no set_policy, viewers read only, revocation ends the session', async () => {
    const agent = await t.api('/tokens', { method: 'POST', body: { name: 'builder', role: 'agent' } });
    assert.equal(agent.status, 200);
    const viewer = await t.api('/tokens', { method: 'POST', body: { name: 'watcher', role: 'viewer' } });
    const mcp = await connectMcp(t.server.mcpUrl, agent.body.token);
    const view = await connectMcp(t.server.mcpUrl, viewer.body.token);
    try {
      const agentTools = (await mcp.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(!agentTools.includes('set_policy'));
      assert.ok(agentTools.includes('write_file'));
      const viewerTools = (await view.client.listTools()).tools.map((tool) => tool.name);
      assert.ok(!viewerTools.includes('write_file'));
      assert.ok(viewerTools.includes('read_file'));
      assert.equal(
        (await callTool(mcp.client, 'write_file', { path: 'by-agent.txt', content: 'hi' })).created,
        true,
      );

      const revoked = await t.api('/tokens/builder', { method: 'DELETE' });
      assert.equal(revoked.status, 200);
      await assert.rejects(callTool(mcp.client, 'read_file', { path: 'README.md' }));
    } finally {
      await mcp.close();
      await view.close();
    }
  });

  it('negotiates protocol 2025-06-18 with a client that asks for it', async () => {
    const res = await fetch(t.server.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'old', version: '1' },
        },
      }),
    });
    assert.equal(res.status, 200);
    const session = res.headers.get('mcp-session-id');
    assert.match(String(session), /^[0-9a-f-]{36}$/);
    const text = await res.text();
    const message = JSON.parse(/data: (.*)/.exec(text)?.[1] ?? text) as {
      result: { protocolVersion: string };
    };
    assert.equal(message.result.protocolVersion, '2025-06-18');
    const list = await fetch(t.server.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session!,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    assert.match(await list.text(), /"read_file"/);

    // Another token cannot ride on this session.
    const other = await t.api('/tokens', { method: 'POST', body: { name: 'hijacker', role: 'agent' } });
    const hijack = await fetch(t.server.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${other.body.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session!,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    assert.equal(hijack.status, 404);
  });

  it('answers a 2026-07-28 client (SDK v2) statelessly, keyed on the agent', async () => {
    const client = new ClientV2(
      { name: 'v2-test', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    const transport = new TransportV2(new URL(t.server.mcpUrl), {
      requestInit: { headers: { Authorization: `Bearer ${t.token}` } },
    });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((tool) => tool.name === 'read_file'));
      const result = (await client.callTool({ name: 'read_file', arguments: { path: 'README.md' } })) as {
        structuredContent: { content: string };
      };
      assert.equal(result.structuredContent.content, '# hello\nworld\n');
      await t.server.audit.flush();
      const records = await t.server.audit.query({ op: 'read_file', limit: 10 });
      assert.ok(
        records.records.some((r) => r.transport === 'mcp-2026'),
        'the 2026 call was audited',
      );
    } finally {
      await client.close();
    }
  });
});
