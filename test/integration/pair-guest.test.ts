import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPermissionError, PairRemote, RemoteError } from '../../src/extension/pair/remote';
import { RemotePoller, type RemoteChange } from '../../src/extension/pair/poller';
import { parsePairLink } from '../../src/protocol/pair';
import { startTestServer, type TestServer } from '../helpers/server';

/** A pair guest's remote, built from the link the host minted (as the extension does). */
async function guestRemote(t: TestServer, mode: 'read-write' | 'read-only', ttlSeconds = 600) {
  const res = await t.api('/pair-links', { method: 'POST', body: { mode, ttlSeconds } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const link = parsePairLink(res.body.link);
  assert.ok(typeof link !== 'string', String(link));
  return { remote: new PairRemote(link), id: res.body.id as string };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<RemoteError> {
  let caught: unknown;
  await promise.catch((err: unknown) => (caught = err));
  assert.ok(caught instanceof RemoteError, `expected a RemoteError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

describe('pair guest: the virtual folder’s REST client and change poller against a real host', function () {
  this.timeout(30_000);
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer({}, async (ws) => {
      await mkdir(join(ws, 'src'));
      await writeFile(join(ws, 'src', 'a.ts'), 'export const a = 1;\n');
      await writeFile(join(ws, 'README.md'), '# hi\n');
      await writeFile(join(ws, 'space name.txt'), 'spaced\n');
      await writeFile(join(ws, '.env'), 'SECRET=1\n');
      await mkdir(join(ws, '.git'));
      await writeFile(join(ws, '.git', 'config'), '[core]\n');
    });
  });

  afterEach(async () => {
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true, 'the audit log must still verify');
    await t.close();
  });

  it('maps stat, list, read, write, mkdir, move and delete to the host, confined and decided there', async () => {
    const { remote } = await guestRemote(t, 'read-write');
    const root = await remote.list('.');
    assert.deepEqual(root.map((e) => e.name).sort(), ['.env', '.git', 'README.md', 'space name.txt', 'src']);
    assert.equal((await remote.stat('src')).type, 'directory');
    assert.equal((await remote.stat('.')).type, 'directory');
    assert.equal(Buffer.from(await remote.read('space name.txt')).toString(), 'spaced\n');
    await rejectsWith(remote.read('missing.txt'), 'NOT_FOUND');

    await remote.write('src/b.ts', Buffer.from('export const b = 2;\n'));
    assert.equal(await readFile(join(t.workspace, 'src', 'b.ts'), 'utf8'), 'export const b = 2;\n');
    await rejectsWith(remote.write('src/b.ts', Buffer.from('again'), true), 'ALREADY_EXISTS');
    assert.equal(await remote.mkdir('docs'), true);
    assert.equal(await remote.mkdir('docs'), false);
    await remote.move('src/b.ts', 'docs/b.ts', false);
    assert.deepEqual(await readdir(join(t.workspace, 'docs')), ['b.ts']);
    await rejectsWith(remote.move('README.md', 'docs/b.ts', false), 'ALREADY_EXISTS');
    await remote.delete('docs', true);
    assert.ok(!(await readdir(t.workspace)).includes('docs'));

    // The host's policy and confinement hold for the guest like for any agent.
    const hidden = await rejectsWith(remote.read('.env'), 'POLICY_DENIED');
    assert.ok(isPermissionError(hidden));
    await rejectsWith(remote.write('.git/config', Buffer.from('[evil]')), 'POLICY_DENIED');
    await assert.rejects(remote.read('../outside'));
    assert.equal(await readFile(join(t.workspace, '.git', 'config'), 'utf8'), '[core]\n');
  });

  it('a read-only guest lists and reads but every change is refused as a permission error', async () => {
    const { remote } = await guestRemote(t, 'read-only');
    assert.ok(!(await remote.capabilities()).includes('write_file'));
    assert.equal(Buffer.from(await remote.read('README.md')).toString(), '# hi\n');
    for (const attempt of [
      () => remote.write('README.md', Buffer.from('x')),
      () => remote.write('new.txt', Buffer.from('x'), true),
      () => remote.delete('README.md', false),
      () => remote.move('README.md', 'moved.md', false),
      () => remote.mkdir('made'),
    ]) {
      let caught: unknown;
      await attempt().catch((err: unknown) => (caught = err));
      assert.ok(isPermissionError(caught), `expected a permission error, got ${String(caught)}`);
    }
    assert.deepEqual((await readdir(t.workspace)).sort(), [
      '.env',
      '.git',
      'README.md',
      'space name.txt',
      'src',
    ]);
    assert.equal(await readFile(join(t.workspace, 'README.md'), 'utf8'), '# hi\n');
  });

  it('the poller reports the host’s changes in the directories the guest listed, and the end of the link', async () => {
    const { remote, id } = await guestRemote(t, 'read-write');
    const seen: RemoteChange[] = [];
    const errors: unknown[] = [];
    const poller = new RemotePoller(
      (dir) => remote.list(dir || '.'),
      (changes) => seen.push(...changes),
      (err) => errors.push(err),
      60_000,
    );
    try {
      poller.remember('', await remote.list('.'));
      poller.remember('src', await remote.list('src'));
      assert.deepEqual(await poller.pollOnce(), []);
      await writeFile(join(t.workspace, 'src', 'new.ts'), 'new\n');
      await writeFile(join(t.workspace, 'README.md'), '# changed by the host, longer\n');
      await rm(join(t.workspace, 'space name.txt'));
      const changes = await poller.pollOnce();
      const sorted = changes.map((c) => `${c.type} ${c.path}`).sort();
      assert.ok(sorted.includes('created src/new.ts'), sorted.join());
      assert.ok(sorted.includes('changed README.md'), sorted.join());
      assert.ok(sorted.includes('deleted space name.txt'), sorted.join());
      assert.deepEqual(seen, changes);
      await rm(join(t.workspace, 'src'), { recursive: true });
      const gone = await poller.pollOnce();
      assert.ok(gone.some((c) => c.type === 'deleted' && c.path === 'src'));
      assert.deepEqual(await poller.pollOnce(), [], 'a vanished directory is no longer polled');

      const revoked = await t.api(`/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });
      assert.equal(revoked.status, 200);
      await poller.pollOnce();
      await poller.pollOnce();
      assert.equal(errors.length, 1, 'the end of the link is reported once');
      assert.equal((errors[0] as RemoteError).code, 'UNAUTHORIZED');
      assert.match((errors[0] as RemoteError).message, /expired or was revoked/);
    } finally {
      poller.dispose();
    }
  });

  it('an unreachable host is reported as such, not as a permission problem', async () => {
    const { remote } = await guestRemote(t, 'read-write');
    const port = t.server.port;
    const stopped = t;
    await stopped.close();
    const err = await rejectsWith(remote.stat('.'), 'UNREACHABLE');
    assert.ok(!isPermissionError(err));
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    t = await startTestServer();
  });
});
