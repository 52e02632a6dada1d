import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callTool, connectMcp } from '../helpers/clients';
import { startTestServer, type TestServer } from '../helpers/server';
import { startSwapper } from '../helpers/swapper';

/**
 * Issue 9, classes 1 and 2: an agent that can run commands swaps a directory for a symbolic link
 * (to a folder outside the workspace, to `.git`, to the server's state dir) in a tight loop while it
 * calls the file tools. Nothing outside the workspace or inside a protected place may be read,
 * written, moved or deleted, and the audit log must still verify.
 */

const ATTEMPTS = 40;
const OUTSIDE_SECRET = 'OUTSIDE-SECRET-7f3a';
const GIT_CONFIG = '[core]\n\trepositoryformatversion = 0\n';

/** Every file below `dir` (links not followed) with a hash of its content, or the link target. */
async function snapshot(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    const stats = await lstat(path);
    if (stats.isSymbolicLink()) out[rel] = `link:${await readlink(path)}`;
    else if (stats.isDirectory()) Object.assign(out, { [rel]: 'dir' }, await snapshot(path, rel));
    else
      out[rel] = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
  }
  return out;
}

describe('attack: a directory swapped for a symlink while file tools run (issue 9, classes 1 and 2)', function () {
  this.timeout(180_000);
  let t: TestServer;
  let outside: string;
  let swapper: ChildProcess | undefined;

  beforeEach(async () => {
    t = await startTestServer(
      // The attack makes hundreds of writes; the rate limit is not what is tested here.
      { writeRateLimit: { capacity: 100_000, refillPerSec: 100_000 } },
      async (workspace) => {
        outside = join(workspace, '..', 'outside');
        await mkdir(join(outside, 'deep'), { recursive: true });
        await writeFile(join(outside, 'secret.txt'), `${OUTSIDE_SECRET}\n`);
        await writeFile(join(outside, 'file.txt'), `${OUTSIDE_SECRET} file\n`);
        await writeFile(join(outside, 'deep', 'x.txt'), `${OUTSIDE_SECRET} deep\n`);
        await mkdir(join(workspace, '.git', 'hooks'), { recursive: true });
        await writeFile(join(workspace, '.git', 'config'), GIT_CONFIG);
        await writeFile(join(workspace, '.git', 'file.txt'), 'git internal\n');
        await mkdir(join(workspace, 'a', 'deep'), { recursive: true });
        await writeFile(join(workspace, 'a', 'file.txt'), 'hello from a\n');
        await writeFile(join(workspace, 'a', 'deep', 'x.txt'), 'deep inside\n');
      },
    );
  });

  afterEach(async () => {
    if (swapper && swapper.exitCode === null) {
      const exited = new Promise((r) => swapper!.once('exit', r));
      swapper.kill('SIGTERM');
      await exited;
    }
    swapper = undefined;
    await t.close();
  });

  it('never reads, writes, moves or deletes outside the workspace, in .git or in the state dir', async () => {
    const agent = await t.api('/tokens', { method: 'POST', body: { name: 'attacker', role: 'agent' } });
    assert.equal(agent.status, 200, JSON.stringify(agent.body));
    const agentToken: string = agent.body.token;
    const ownerToken = t.token;
    const tokenFile = await readFile(join(t.stateDir, 'owner.token'), 'utf8');
    const outsideBefore = await snapshot(outside);
    const gitBefore = await snapshot(join(t.workspace, '.git'));
    const stateNamesBefore = Object.keys(await snapshot(t.stateDir));

    const mcp = await connectMcp(t.server.mcpUrl, agentToken);
    const outcomes = new Map<string, number>();
    const seen: string[] = [];
    const call = async (name: string, args: Record<string, unknown>): Promise<any> => {
      const result = await callTool(mcp.client, name, args);
      const text = JSON.stringify(result);
      seen.push(text);
      const code = result?.error?.code ?? 'ok';
      outcomes.set(`${name}:${code}`, (outcomes.get(`${name}:${code}`) ?? 0) + 1);
      return result;
    };
    swapper = startSwapper(t.workspace, [outside, '.git', t.stateDir, '../outside']);
    try {
      for (let i = 0; i < ATTEMPTS; i++) {
        await call('write_file', { path: 'a/file.txt', content: `written ${i}\n` });
        await call('write_file', { path: 'a/deep/new.txt', content: `new ${i}\n` });
        const read = await call('read_file', { path: 'a/file.txt' });
        if (read?.revision) {
          await call('write_file', {
            path: 'a/file.txt',
            content: `revised ${i}\n`,
            expectedRevision: read.revision,
          });
        }
        await call('edit_file', {
          path: 'a/file.txt',
          edits: [{ oldText: `${i}`, newText: `${i}e` }],
        });
        await call('read_file', { path: 'a/secret.txt' });
        await call('read_file', { path: 'a/owner.token' });
        await call('read_file', { path: 'a/deep/x.txt' });
        const moved = await call('move_file', { from: 'a/file.txt', to: 'a/moved.txt' });
        if (!moved?.error) await call('move_file', { from: 'a/moved.txt', to: 'a/file.txt' });
        await call('move_file', { from: 'a/deep/x.txt', to: 'stolen.txt' });
        await call('move_file', { from: 'stolen.txt', to: 'a/deep/x.txt' });
        await call('write_file', { path: 'a/tmp.txt', content: 'tmp' });
        await call('delete_file', { path: 'a/tmp.txt' });
        await call('delete_file', { path: 'a/config' });
        await call('delete_file', { path: 'a/deep', recursive: true });
        await call('create_directory', { path: 'a/deep' });
        await call('write_file', { path: 'a/deep/x.txt', content: 'deep inside\n' });
        await call('search_files', { query: 'SECRET' });
        await call('search_files', { query: 'SECRET', path: 'a' });
        await call('search_files', { query: ownerToken.slice(0, 12) });
        await call('list_files', { path: 'a', depth: 3 });
        await call('list_files', { path: '.', depth: 5 });
        const resources = await mcp.client.listResources();
        seen.push(JSON.stringify(resources));
      }
    } finally {
      await mcp.close();
      const exited = new Promise((r) => swapper!.once('exit', r));
      swapper.kill('SIGTERM');
      await exited;
    }

    // Nothing outside the workspace or from the state dir reached the agent.
    for (const text of seen) {
      assert.ok(
        !text.includes(OUTSIDE_SECRET),
        `a file outside the workspace was read: ${text.slice(0, 300)}`,
      );
      assert.ok(!text.includes(ownerToken), 'the owner token was read');
      assert.ok(!text.includes(tokenFile.trim()), 'the owner token file was read');
    }
    // Nothing outside the workspace, in .git or in the state dir was written, moved or deleted.
    assert.deepEqual(await snapshot(outside), outsideBefore, 'the folder outside the workspace changed');
    assert.deepEqual(await snapshot(join(t.workspace, '.git')), gitBefore, '.git changed');
    assert.equal(await readFile(join(t.stateDir, 'owner.token'), 'utf8'), tokenFile);
    const agentNames = ['file.txt', 'moved.txt', 'new.txt', 'tmp.txt', 'x.txt', 'stolen.txt', 'deep'];
    const stateNamesAfter = Object.keys(await snapshot(t.stateDir));
    for (const name of stateNamesAfter) {
      assert.ok(
        stateNamesBefore.includes(name) || !agentNames.includes(name.split('/').pop()!),
        `the agent wrote ${name} into the state dir`,
      );
    }
    // The race was really run: some calls met the swapped link and were refused, others went through.
    const refused = [...outcomes].filter(([k]) => !k.endsWith(':ok')).reduce((n, [, v]) => n + v, 0);
    const succeeded = [...outcomes].filter(([k]) => k.endsWith(':ok')).reduce((n, [, v]) => n + v, 0);
    assert.ok(refused > 0, `no call ever met the swapped link: ${JSON.stringify([...outcomes])}`);
    assert.ok(succeeded > 0, `no call ever succeeded: ${JSON.stringify([...outcomes])}`);
    const verify = await t.server.audit.verify();
    assert.equal(verify.ok, true, JSON.stringify(verify));
  });

  it('keeps a write inside the workspace when the parent is swapped during the expectedRevision hash', async () => {
    // A large file makes the revision hash (and so the window between check and rename) long.
    const big = 'x'.repeat(4 * 1024 * 1024);
    await writeFile(join(t.workspace, 'a', 'big.txt'), big);
    const agent = await t.api('/tokens', { method: 'POST', body: { name: 'attacker', role: 'agent' } });
    const mcp = await connectMcp(t.server.mcpUrl, agent.body.token);
    const outsideBefore = await snapshot(outside);
    const gitBefore = await snapshot(join(t.workspace, '.git'));
    swapper = startSwapper(t.workspace, [outside, '.git']);
    const codes: string[] = [];
    try {
      // At least ATTEMPTS rounds, and on (bounded) until one write went through: a loaded machine
      // can let the swapper win every round of the first ATTEMPTS.
      for (let i = 0; i < ATTEMPTS || (!codes.includes('ok') && i < 4 * ATTEMPTS); i++) {
        const read = await callTool(mcp.client, 'file_info', { path: 'a/big.txt' });
        const res = await callTool(mcp.client, 'write_file', {
          path: 'a/big.txt',
          content: big,
          ...(read?.revision ? { expectedRevision: read.revision } : {}),
        });
        codes.push(res?.error?.code ?? 'ok');
      }
    } finally {
      await mcp.close();
      const exited = new Promise((r) => swapper!.once('exit', r));
      swapper.kill('SIGTERM');
      await exited;
    }
    assert.deepEqual(await snapshot(outside), outsideBefore);
    assert.deepEqual(await snapshot(join(t.workspace, '.git')), gitBefore);
    assert.ok(codes.includes('ok'), codes.join(','));
    assert.equal((await t.server.audit.verify()).ok, true);
  });

  it('deletes recursively only inside the folder it checked', async () => {
    const agent = await t.api('/tokens', { method: 'POST', body: { name: 'attacker', role: 'agent' } });
    const mcp = await connectMcp(t.server.mcpUrl, agent.body.token);
    const outsideBefore = await snapshot(outside);
    const gitBefore = await snapshot(join(t.workspace, '.git'));
    try {
      for (let i = 0; i < ATTEMPTS; i++) {
        await mkdir(join(t.workspace, 'victim', 'inner', 'deep'), { recursive: true });
        await writeFile(join(t.workspace, 'victim', 'inner', 'deep', 'f.txt'), 'x');
        // Swap `victim/inner` for a link the moment the delete starts.
        const deleting = callTool(mcp.client, 'delete_file', { path: 'victim', recursive: true });
        await rename(join(t.workspace, 'victim', 'inner'), join(t.workspace, `inner-${i}`)).catch(
          () => undefined,
        );
        await import('node:fs/promises').then((fs) =>
          fs
            .symlink(i % 2 ? outside : join(t.workspace, '.git'), join(t.workspace, 'victim', 'inner'))
            .catch(() => undefined),
        );
        await deleting;
        await unlink(join(t.workspace, 'victim', 'inner')).catch(() => undefined);
      }
    } finally {
      await mcp.close();
    }
    assert.deepEqual(await snapshot(outside), outsideBefore);
    assert.deepEqual(await snapshot(join(t.workspace, '.git')), gitBefore);
    assert.equal((await t.server.audit.verify()).ok, true);
  });
});
