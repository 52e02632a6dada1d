import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorkspaceServer, type RunningWorkspaceServer } from '../../src/server';
import { callTool, connectMcp } from '../helpers/clients';

/**
 * Issue 9, "Case and Unicode": on a case-insensitive file system `.GIT/config` IS `.git/config`.
 * The workspace lives on a real case-insensitive mount (an exFAT image through FUSE, as on a USB
 * stick or a Windows-formatted disk). It needs root, losetup, mkfs.exfat and mount.exfat-fuse
 * (Debian's exfatprogs and exfat-fuse, which `npm test` installs).
 */

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

describe('case-insensitive workspace (exFAT mount): protection holds for every spelling', function () {
  this.timeout(120_000);
  let base: string;
  let mountPoint: string;
  let loop: string | undefined;
  let mounted = false;
  let server: RunningWorkspaceServer | undefined;

  before(async function () {
    // `npm test` provisions the tools (Debian's exfatprogs and exfat-fuse) and runs as root.
    const missing = ['losetup', 'mkfs.exfat', 'mount.exfat-fuse'].filter((c) => !has(c));
    assert.deepEqual(missing, [], 'the tools for an exFAT mount are installed (scripts/test.sh does it)');
    assert.equal(process.getuid?.(), 0, 'mounting a case-insensitive file system needs root');
    base = await mkdtemp(join(tmpdir(), 'mcpw-ci-'));
    mountPoint = join(base, 'mnt');
    await mkdir(mountPoint);
    const image = join(base, 'fs.img');
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('mkfs.exfat', [image], { stdio: 'ignore' });
    loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
    execFileSync('mount.exfat-fuse', [loop, mountPoint], { stdio: 'ignore' });
    mounted = true;
    await mkdir(join(mountPoint, 'Probe'));
    const insensitive = await stat(join(mountPoint, 'PROBE')).then(
      () => true,
      () => false,
    );
    assert.ok(insensitive, 'the exFAT mount is case-insensitive');
  });

  after(async () => {
    await server?.close();
    if (mounted) spawnSync('umount', [mountPoint]);
    if (loop) spawnSync('losetup', ['-d', loop]);
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('refuses .GIT, .Git/hooks and .ENV like .git and .env, and still serves ordinary files', async () => {
    const ws = join(mountPoint, 'ws');
    await mkdir(join(ws, '.git', 'hooks'), { recursive: true });
    await writeFile(join(ws, '.git', 'config'), '[core]\n');
    await writeFile(join(ws, '.env'), 'DB_PASSWORD=hunter2\n');
    await writeFile(join(ws, 'readme.md'), 'hello\n');
    server = await startWorkspaceServer({
      workspace: ws,
      stateDir: join(base, 'state'),
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    const minted = await fetch(`${server.url}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'agent-ci', role: 'agent' }),
    });
    const { token } = (await minted.json()) as { token: string };
    const mcp = await connectMcp(server.mcpUrl, token);
    try {
      const code = async (name: string, args: Record<string, unknown>): Promise<string> =>
        ((await callTool(mcp.client, name, args)) as { error?: { code: string } })?.error?.code ?? 'ok';
      for (const spelling of ['.GIT/config', '.Git/CONFIG', '.g\u200cit/config']) {
        assert.equal(
          await code('write_file', { path: spelling, content: '[core]\n\tfsmonitor = evil\n' }),
          'POLICY_DENIED',
          spelling,
        );
        assert.equal(
          await code('edit_file', { path: spelling, edits: [{ oldText: '[core]', newText: '[x]' }] }),
          'POLICY_DENIED',
        );
        assert.equal(await code('delete_file', { path: spelling }), 'POLICY_DENIED');
      }
      assert.equal(
        await code('write_file', { path: '.GIT/hooks/pre-commit', content: '#!/bin/sh\n' }),
        'POLICY_DENIED',
      );
      assert.equal(
        await code('move_file', { from: 'readme.md', to: '.GIT/hooks/post-checkout' }),
        'POLICY_DENIED',
      );
      assert.equal(await code('create_directory', { path: '.Git/hooks/new' }), 'POLICY_DENIED');
      for (const spelling of ['.ENV', '.Env', '.e\u00adnv']) {
        assert.equal(await code('read_file', { path: spelling }), 'POLICY_DENIED', spelling);
      }
      const found = await callTool(mcp.client, 'search_files', { query: 'hunter2' });
      assert.deepEqual(found.matches, [], 'a read-denied file does not show in search results');
      // Ordinary work on the same mount goes through the confined layer as usual.
      assert.equal(await code('write_file', { path: 'Docs/Guide.md', content: 'guide\n' }), 'ok');
      const read = await callTool(mcp.client, 'read_file', { path: 'DOCS/GUIDE.MD' });
      assert.equal(read.content, 'guide\n');
      assert.equal(await code('move_file', { from: 'docs/guide.md', to: 'Docs/Renamed.md' }), 'ok');
      assert.equal(await code('delete_file', { path: 'DOCS', recursive: true }), 'ok');
    } finally {
      await mcp.close();
    }
    assert.equal(await readFile(join(ws, '.git', 'config'), 'utf8'), '[core]\n');
    assert.deepEqual(await readdir(join(ws, '.git', 'hooks')), []);
    assert.equal((await server.audit.verify()).ok, true);
  });
});
