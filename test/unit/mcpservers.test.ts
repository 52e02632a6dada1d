import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tool } from '@modelcontextprotocol/client';
import { admitTools } from '../../src/core/mcpservers';
import { ResourceManager } from '../../src/core/resources';
import { compileMcpServerManifest, ToolRegistry } from '../../src/core/tools';

const RESERVED = new Set(['read_file', 'write_file', 'run_command', 'tool']);
const LIMITS = { maxTools: 3, maxSchemaBytes: 200, maxSchemaDepth: 4, maxPages: 1 };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function tool(name: string, inputSchema: Record<string, unknown> = { type: 'object' }): Tool {
  return { name, inputSchema } as Tool;
}

describe('Sandboxed MCP server manifests', () => {
  it('accepts a stdio command and fills in defaults', () => {
    const manifest = compileMcpServerManifest(
      { name: 'fx', mcpServer: { command: ['node', 'server.js'] } },
      RESERVED,
    );
    assert.deepEqual(manifest.mcpServer.command, ['node', 'server.js']);
  });

  it('refuses bad names, unknown fields, an empty command and names that shadow built-ins', () => {
    const refused: [unknown, RegExp][] = [
      [{ name: 'has space', mcpServer: { command: ['node'] } }, /letters, digits/],
      [{ name: 'x'.repeat(49), mcpServer: { command: ['node'] } }, /1 to 48 characters/],
      [{ name: 'fx', mcpServer: { command: [] } }, /command/],
      [{ name: 'fx', mcpServer: { command: ['node'], shell: true } }, /shell/],
      [{ name: 'fx', argv: ['x'], mcpServer: { command: ['node'] } }, /argv/],
      [{ name: 'tool', mcpServer: { command: ['node'] } }, /built-in operation/],
      [{ name: 'read', mcpServer: { command: ['node'] } }, /like the built-in operation "read_file"/],
      [{ name: 'fx', mcpServer: { command: ['node'], timeoutMs: 0 } }, /timeoutMs/],
    ];
    for (const [value, message] of refused) {
      assert.throws(() => compileMcpServerManifest(value, RESERVED), message, JSON.stringify(value));
    }
  });
});

describe('Sandboxed MCP server tool lists', () => {
  it('offers valid tools as SERVER_TOOL and skips what cannot be offered, saying why', () => {
    let deep: Record<string, unknown> = { type: 'object' };
    for (let i = 0; i < 3; i++) deep = { properties: { a: deep } };
    const { tools, skipped } = admitTools(
      'fx',
      [
        tool('echo'),
        tool('bad name'),
        tool('x'.repeat(62)),
        tool('echo'),
        tool('deep', deep),
        tool('big', { type: 'object', description: 'y'.repeat(300) }),
        tool('notobject', { type: 'string' }),
        tool('two'),
        tool('three'),
        tool('four'),
      ],
      LIMITS,
    );
    assert.deepEqual(
      tools.map((t) => t.name),
      ['fx_echo', 'fx_two', 'fx_three'],
    );
    const why = Object.fromEntries(skipped.map((s) => [s.name.slice(0, 10), s.reason]));
    assert.match(why['bad name']!, /characters other than/);
    assert.match(why['xxxxxxxxxx']!, /longer than 64/);
    assert.match(why['echo']!, /twice/);
    assert.match(why['deep']!, /deeper than 4/);
    assert.match(why['big']!, /bytes/);
    assert.match(why['notobject']!, /not an object schema/);
    assert.match(why['four']!, /more than 3 tools/);
    assert.ok(tools.every((t) => /^[A-Za-z0-9_-]{1,64}$/.test(t.name)));
  });
});

describe('Tool registry with MCP servers', () => {
  let root: string;
  let resources: ResourceManager;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcpw-mcpservers-'));
    resources = await ResourceManager.create({ root });
  });

  afterEach(async () => {
    await resources.close();
    await rm(root, { recursive: true, force: true });
  });

  it('never lets a server prefix collide with a typed tool or another server', async () => {
    const say = { description: 'Says.', argv: ['echo'] };
    const registry = new ToolRegistry({
      resources,
      reserved: RESERVED,
      settingsManifests: [
        { name: 'fx', mcpServer: { command: ['node', 's.js'] } },
        { ...say, name: 'fx_echo' },
        { ...say, name: 'fx' },
        { name: 'fx_more', mcpServer: { command: ['node'] } },
        { name: 'lint', ...say },
        { name: 'lint', mcpServer: { command: ['node'] } },
        { name: 'ok', mcpServer: { command: ['node'] } },
      ],
      log: silent,
    });
    try {
      await registry.reload();
      assert.deepEqual(
        registry.mcpServers().map((s) => s.name),
        ['fx', 'ok'],
      );
      assert.deepEqual(
        registry.list().map((t) => t.name),
        ['lint'],
      );
      const problems = Object.fromEntries(registry.problems.map((p) => [p.source, p.message]));
      assert.match(problems['settings[1]']!, /falls among the tools of the MCP server "fx"/);
      assert.match(problems['settings[2]']!, /already taken|falls among/);
      assert.match(problems['settings[3]']!, /overlaps the tool names of the MCP server "fx"/);
      assert.match(problems['settings[5]']!, /tool "lint"/);
      assert.deepEqual(registry.mcpServerOf('fx_echo')?.tool, 'echo');
      assert.equal(registry.mcpServerOf('fx_')?.tool, undefined);
      assert.equal(registry.mcpServerOf('lint'), null);
    } finally {
      registry.close();
    }
  });
});
