import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fsModule, { promises as fs } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { ResourceManager } from '../../src/core/resources';
import { type ErrorCode, WorkspaceError } from '../../src/protocol/errors';
import { makeTempWorkspace, type TempWorkspace } from '../helpers/fixtures';

async function rejectsWith(
  promise: Promise<unknown>,
  code: ErrorCode,
  check?: (err: WorkspaceError) => void,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, `expected a WorkspaceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    check?.(err);
    return true;
  });
}

function throwsWith(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, `expected a WorkspaceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

describe('ResourceManager', () => {
  let ws: TempWorkspace;
  let base: string;
  let root: string;
  let outside: string;
  let rm: ResourceManager;

  const abs = (rel: string): string => ws.abs(rel);
  const put = (rel: string, data: string | Buffer): Promise<void> => ws.put(rel, data);
  const read = (rel: string): Promise<string> => ws.read(rel);
  const exists = (p: string): Promise<boolean> => ws.exists(p);

  beforeEach(async () => {
    ws = await makeTempWorkspace('res', { outsideFiles: { 'secret.txt': 'TOP SECRET needle\n' } });
    ({ base, root, outside } = ws);
    rm = await ResourceManager.create({ root });
  });

  afterEach(async () => {
    await rm.close();
    await ws.remove();
  });

  describe('create', () => {
    it('realpaths the root', async () => {
      await fs.symlink(root, path.join(base, 'alias'));
      const viaAlias = await ResourceManager.create({ root: path.join(base, 'alias') });
      assert.equal(viaAlias.root, root);
      assert.equal(viaAlias.normalize(path.join(base, 'alias', 'a.txt')), 'a.txt');
    });

    it('rejects a missing root or a file as root', async () => {
      await rejectsWith(ResourceManager.create({ root: path.join(base, 'nope') }), 'INVALID_PATH');
      await rejectsWith(ResourceManager.create({ root: path.join(outside, 'secret.txt') }), 'INVALID_PATH');
    });
  });

  describe('normalize', () => {
    it('normalises relative and absolute-inside paths', () => {
      assert.equal(rm.normalize('a/./b//c/'), 'a/b/c');
      assert.equal(rm.normalize('a/x/../b'), 'a/b');
      assert.equal(rm.normalize('.'), '.');
      assert.equal(rm.normalize('./'), '.');
      assert.equal(rm.normalize(root), '.');
      assert.equal(rm.normalize(`${root}/`), '.');
      assert.equal(rm.normalize(path.join(root, 'src', 'x.ts')), 'src/x.ts');
      assert.equal(rm.normalize('a\\..\\..\\b'), 'a\\..\\..\\b');
    });

    it('refuses the escape corpus', () => {
      for (const p of [
        '../x',
        'a/../../x',
        '..',
        '/etc/passwd',
        `${root}/../outside/secret.txt`,
        `${root}x/a`,
      ]) {
        throwsWith(() => rm.normalize(p), 'PATH_OUTSIDE_WORKSPACE');
      }
    });

    it('refuses malformed paths', () => {
      const bad: unknown[] = [
        '',
        'a\0b',
        'a\nb',
        'a\x1bb',
        'a'.repeat(5000),
        `d/${'x'.repeat(300)}`,
        42,
        null,
      ];
      for (const p of bad) throwsWith(() => rm.normalize(p as string), 'INVALID_PATH');
      throwsWith(() => rm.normalize('é'.repeat(128)), 'INVALID_PATH');
      assert.equal(rm.normalize('é'.repeat(127)), 'é'.repeat(127));
    });
  });

  describe('readFile / writeFile', () => {
    it('round-trips utf8 text with a sha256 revision', async () => {
      const text = 'héllo wörld\n✓\n';
      const w = await rm.writeFile('dir/a.txt', text);
      assert.deepEqual(w, {
        path: 'dir/a.txt',
        revision: sha256(text),
        bytes: Buffer.byteLength(text),
        created: true,
      });
      const r = await rm.readFile('dir/a.txt');
      assert.deepEqual(r, {
        path: 'dir/a.txt',
        content: text,
        encoding: 'utf8',
        revision: sha256(text),
        size: Buffer.byteLength(text),
      });
      assert.equal(ResourceManager.revisionOf(Buffer.from(text)), sha256(text));
      const again = await rm.writeFile('dir/a.txt', 'x');
      assert.equal(again.created, false);
    });

    it('round-trips base64 and auto-detects binary content', async () => {
      const bin = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10]);
      const w = await rm.writeFile('b.bin', bin.toString('base64'), { encoding: 'base64' });
      assert.equal(w.bytes, bin.length);
      assert.deepEqual(await fs.readFile(abs('b.bin')), bin);
      const auto = await rm.readFile('b.bin');
      assert.equal(auto.encoding, 'base64');
      assert.deepEqual(Buffer.from(auto.content, 'base64'), bin);
      assert.equal(auto.revision, sha256(bin));
      const explicit = await rm.readFile('b.bin', { encoding: 'base64' });
      assert.equal(explicit.content, bin.toString('base64'));
      await rejectsWith(rm.readFile('b.bin', { encoding: 'utf8' }), 'INVALID_ENCODING');
      await put('t.txt', 'plain');
      assert.equal(
        (await rm.readFile('t.txt', { encoding: 'base64' })).content,
        Buffer.from('plain').toString('base64'),
      );
    });

    it('rejects invalid base64 and unknown encodings', async () => {
      for (const bad of ['abc', 'ab c', 'ab==cd==', 'a$==', 'YQ', 'YQ=\n']) {
        await rejectsWith(rm.writeFile('x.bin', bad, { encoding: 'base64' }), 'INVALID_ENCODING');
      }
      await rejectsWith(rm.writeFile('x.bin', 'x', { encoding: 'latin1' as 'utf8' }), 'INVALID_ENCODING');
      assert.equal(await exists(abs('x.bin')), false);
    });

    it('writes atomically and leaves no temp files behind', async () => {
      await put('f.txt', 'old');
      await fs.chmod(abs('f.txt'), 0o640);
      await rm.writeFile('f.txt', 'new');
      assert.equal(await read('f.txt'), 'new');
      assert.equal((await fs.stat(abs('f.txt'))).mode & 0o777, 0o640);
      await rejectsWith(
        rm.writeFile('f.txt', 'again', { expectedRevision: sha256('wrong') }),
        'REVISION_CONFLICT',
      );
      await Promise.all(Array.from({ length: 5 }, (_, n) => rm.writeFile(`g${n}.txt`, 'x'.repeat(1000))));
      await rm.writeFile('g0.txt', 'rewritten');
      assert.deepEqual((await fs.readdir(root)).sort(), [
        'f.txt',
        'g0.txt',
        'g1.txt',
        'g2.txt',
        'g3.txt',
        'g4.txt',
      ]);
    });

    it('cleans up the temp file when the rename fails', async () => {
      await fs.mkdir(abs('d'));
      // The rename goes through the held directory descriptor with node:fs renameSync.
      const realRename = fsModule.renameSync;
      fsModule.renameSync = () => {
        throw Object.assign(new Error('boom'), { code: 'EIO' });
      };
      syncBuiltinESMExports();
      try {
        await assert.rejects(rm.writeFile('d/f.txt', 'data'));
      } finally {
        fsModule.renameSync = realRename;
        syncBuiltinESMExports();
      }
      assert.deepEqual(await fs.readdir(abs('d')), []);
    });

    it('aborts if the directory is swapped outside while the temp file is written', async () => {
      await fs.mkdir(abs('d'));
      // Just before the temp file is put in place, the directory really moves outside the workspace
      // (the server checks where its held descriptor now is through /proc/<pid>/fd).
      const realReadlink = fsModule.readlinkSync;
      let swapped = false;
      fsModule.readlinkSync = ((p: string, ...rest: []) => {
        if (!swapped && /^\/proc\/(?:self|\d+)\/fd\/\d+$/.test(p)) {
          if (fsModule.readdirSync(abs('d')).some((n) => n.endsWith('.tmp'))) {
            fsModule.renameSync(abs('d'), path.join(outside, 'd'));
            swapped = true;
          }
        }
        return realReadlink(p, ...rest);
      }) as typeof fsModule.readlinkSync;
      syncBuiltinESMExports();
      try {
        await rejectsWith(rm.writeFile('d/f.txt', 'data'), 'PATH_OUTSIDE_WORKSPACE');
      } finally {
        fsModule.readlinkSync = realReadlink;
        syncBuiltinESMExports();
        if (swapped) await fs.rename(path.join(outside, 'd'), abs('d'));
      }
      assert.equal(swapped, true);
      assert.deepEqual(await fs.readdir(abs('d')), []);
    });

    it('honours expectedRevision and leaves the file unchanged on conflict', async () => {
      const first = await rm.writeFile('r.txt', 'one');
      const second = await rm.writeFile('r.txt', 'two', { expectedRevision: first.revision });
      assert.equal(second.revision, sha256('two'));
      await rejectsWith(
        rm.writeFile('r.txt', 'three', { expectedRevision: first.revision }),
        'REVISION_CONFLICT',
        (e) => assert.deepEqual(e.details, { currentRevision: sha256('two') }),
      );
      assert.equal(await read('r.txt'), 'two');
      await rejectsWith(
        rm.writeFile('missing.txt', 'x', { expectedRevision: first.revision }),
        'REVISION_CONFLICT',
        (e) => assert.deepEqual(e.details, { currentRevision: null }),
      );
      assert.equal(await exists(abs('missing.txt')), false);
      await rejectsWith(rm.writeFile('r.txt', 'x', { expectedRevision: '' }), 'INVALID_ARGUMENT');
    });

    it("treats expectedRevision 'none' as must-not-exist", async () => {
      const created = await rm.writeFile('n.txt', 'first', { expectedRevision: 'none' });
      assert.equal(created.created, true);
      await rejectsWith(
        rm.writeFile('n.txt', 'second', { expectedRevision: 'none' }),
        'REVISION_CONFLICT',
        (e) => assert.deepEqual(e.details, { currentRevision: sha256('first') }),
      );
      assert.equal(await read('n.txt'), 'first');
      assert.deepEqual(await fs.readdir(root), ['n.txt']);
    });

    it('lets exactly one of several concurrent writers with the same expectedRevision win', async () => {
      const { revision } = await rm.writeFile('c.txt', 'base');
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          rm.writeFile('c.txt', `writer ${i}`, { expectedRevision: revision }),
        ),
      );
      const winners = results.filter((r) => r.status === 'fulfilled');
      assert.equal(winners.length, 1);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as WorkspaceError).code, 'REVISION_CONFLICT');
      }
      const content = await read('c.txt');
      assert.equal(
        sha256(content),
        (winners[0] as PromiseFulfilledResult<{ revision: string }>).value.revision,
      );
      const creators = await Promise.allSettled(
        Array.from({ length: 5 }, (_, i) => rm.writeFile('fresh.txt', `c${i}`, { expectedRevision: 'none' })),
      );
      assert.equal(creators.filter((r) => r.status === 'fulfilled').length, 1);
    });

    it('enforces the size cap on reads and writes', async () => {
      const small = await ResourceManager.create({ root, maxFileBytes: 10 });
      await rejectsWith(small.writeFile('big.txt', 'x'.repeat(11)), 'FILE_TOO_LARGE', (e) =>
        assert.deepEqual(e.details, { limit: 10 }),
      );
      await rejectsWith(
        small.writeFile('big.bin', Buffer.alloc(11).toString('base64'), { encoding: 'base64' }),
        'FILE_TOO_LARGE',
      );
      await small.writeFile('ok.bin', Buffer.alloc(10).toString('base64'), { encoding: 'base64' });
      assert.equal(await exists(abs('big.txt')), false);
      await put('large.txt', 'y'.repeat(11));
      await rejectsWith(small.readFile('large.txt'), 'FILE_TOO_LARGE');
      assert.equal((await rm.readFile('large.txt')).size, 11);
    });

    it('maps type errors: directories, missing files and parents', async () => {
      await fs.mkdir(abs('dir'));
      await rejectsWith(rm.readFile('dir'), 'NOT_A_FILE');
      await rejectsWith(rm.writeFile('dir', 'x'), 'NOT_A_FILE');
      await rejectsWith(rm.writeFile('.', 'x'), 'NOT_A_FILE');
      await rejectsWith(rm.readFile('nope.txt'), 'NOT_FOUND', (e) => assert.match(e.message, /nope\.txt/));
      await rejectsWith(rm.writeFile('a/b/c.txt', 'x', { createParents: false }), 'NOT_FOUND');
      assert.equal(await exists(abs('a')), false);
      await rm.writeFile('a/b/c.txt', 'x');
      assert.equal(await read('a/b/c.txt'), 'x');
      await put('file.txt', 'f');
      await rejectsWith(rm.writeFile('file.txt/child.txt', 'x'), 'NOT_A_DIRECTORY');
    });
  });

  describe('confinement', () => {
    it('refuses escaping paths on every operation', async () => {
      for (const p of [
        '../outside/secret.txt',
        'a/../../outside/secret.txt',
        path.join(outside, 'secret.txt'),
      ]) {
        await rejectsWith(rm.readFile(p), 'PATH_OUTSIDE_WORKSPACE');
        await rejectsWith(rm.writeFile(p, 'pwned'), 'PATH_OUTSIDE_WORKSPACE');
        await rejectsWith(rm.stat(p), 'PATH_OUTSIDE_WORKSPACE');
        await rejectsWith(rm.delete(p), 'PATH_OUTSIDE_WORKSPACE');
      }
      await rejectsWith(rm.readFile('/etc/passwd'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.readFile('a\0b'), 'INVALID_PATH');
      await rejectsWith(rm.readFile('x'.repeat(5000)), 'INVALID_PATH');
      await rejectsWith(rm.writeFile('y'.repeat(300), 'x'), 'INVALID_PATH');
      assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'TOP SECRET needle\n');
    });

    it('accepts an absolute path inside the root', async () => {
      await rm.writeFile(path.join(root, 'in.txt'), 'inside');
      const r = await rm.readFile(path.join(root, 'in.txt'));
      assert.equal(r.path, 'in.txt');
      assert.equal(r.content, 'inside');
    });

    it('never follows a symlink to /etc', async () => {
      await fs.symlink('/etc', abs('etc'));
      await rejectsWith(rm.readFile('etc/passwd'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.writeFile('etc/mcpw-test-should-not-exist', 'x'), 'PATH_OUTSIDE_WORKSPACE');
      assert.equal(await exists('/etc/mcpw-test-should-not-exist'), false);
      await rejectsWith(rm.listFiles('etc'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.search('root', { path: 'etc' }), 'PATH_OUTSIDE_WORKSPACE');
      const list = await rm.listFiles('.', { depth: 5 });
      assert.deepEqual(
        list.entries.map((e) => [e.path, e.type]),
        [['etc', 'symlink']],
      );
      const found = await rm.search('root');
      assert.equal(found.matches.length, 0);
      assert.equal(found.filesScanned, 0);
    });

    it('refuses to write through a file symlink pointing outside', async () => {
      await fs.symlink(path.join(outside, 'secret.txt'), abs('link.txt'));
      await rejectsWith(rm.writeFile('link.txt', 'pwned'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(
        rm.edit('link.txt', [{ oldText: 'TOP', newText: 'BOTTOM' }]),
        'PATH_OUTSIDE_WORKSPACE',
      );
      assert.equal(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8'), 'TOP SECRET needle\n');
    });

    it('refuses a new file under a symlinked parent directory pointing outside', async () => {
      await fs.symlink(outside, abs('out'));
      await rejectsWith(rm.writeFile('out/new.txt', 'x'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.writeFile('out/deeper/new.txt', 'x'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.mkdir('out/sub'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.move('out/secret.txt', 'stolen.txt'), 'PATH_OUTSIDE_WORKSPACE');
      await put('mine.txt', 'm');
      await rejectsWith(rm.move('mine.txt', 'out/mine.txt'), 'PATH_OUTSIDE_WORKSPACE');
      assert.deepEqual(await fs.readdir(outside), ['secret.txt']);
      assert.equal(await exists(abs('mine.txt')), true);
    });

    it('refuses dangling symlinks that point outside', async () => {
      await fs.symlink(path.join(outside, 'new.txt'), abs('dangling.txt'));
      await fs.symlink(path.join(outside, 'newdir'), abs('danglingdir'));
      await rejectsWith(rm.writeFile('dangling.txt', 'x'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.writeFile('danglingdir/f.txt', 'x'), 'PATH_OUTSIDE_WORKSPACE');
      await rejectsWith(rm.readFile('dangling.txt'), 'PATH_OUTSIDE_WORKSPACE');
      assert.deepEqual(await fs.readdir(outside), ['secret.txt']);
    });

    it('follows symlinks that stay inside', async () => {
      await put('real/target.txt', 'inside');
      await fs.symlink('real', abs('alias'));
      await fs.symlink('real/target.txt', abs('link.txt'));
      assert.equal((await rm.readFile('alias/target.txt')).content, 'inside');
      await rm.writeFile('link.txt', 'updated');
      assert.equal(await read('real/target.txt'), 'updated');
      assert.equal((await fs.lstat(abs('link.txt'))).isSymbolicLink(), true);
      await fs.symlink('real/later.txt', abs('pending.txt'));
      await rm.writeFile('pending.txt', 'created through link');
      assert.equal(await read('real/later.txt'), 'created through link');
      const list = await rm.listFiles('alias');
      assert.deepEqual(
        list.entries.map((e) => e.path),
        ['alias/later.txt', 'alias/target.txt'],
      );
    });

    it('does the I/O on the resolution policy saw, even after its folder is swapped for a link', async () => {
      await put('d/f.txt', 'inside');
      await put('d/g.txt', 'gone soon');
      const early = rm.resolve('d/f.txt', { followFinal: true });
      assert.equal((await rm.readFile(early)).content, 'inside', 'the I/O uses the resolution');
      early.close();
      const read = rm.resolve('d/f.txt', { followFinal: true });
      const write = rm.resolve('d/new.txt', { followFinal: true });
      const del = rm.resolve('d/g.txt', { followFinal: false });
      try {
        assert.equal(read.realRel, 'd/f.txt');
        // The agent swaps the folder for a link to outside after the decision.
        await fs.rename(abs('d'), abs('d-held'));
        await fs.symlink(outside, abs('d'));
        // The held folder is no longer where the policy saw it: every operation refuses.
        await rejectsWith(rm.readFile(read), 'INVALID_PATH');
        await rejectsWith(rm.writeFile(write, 'x'), 'INVALID_PATH');
        await rejectsWith(rm.delete(del), 'INVALID_PATH');
      } finally {
        read.close();
        write.close();
        del.close();
      }
      assert.deepEqual((await fs.readdir(outside)).sort(), ['secret.txt']);
      assert.deepEqual((await fs.readdir(abs('d-held'))).sort(), ['f.txt', 'g.txt']);
      await rejectsWith(rm.readFile('d/secret.txt'), 'PATH_OUTSIDE_WORKSPACE');
    });

    it('refuses protected paths and hides them from listings and searches', async () => {
      await put('.state/tokens.json', 'needle');
      await put('policy.json', 'needle');
      await put('src/a.ts', 'needle');
      const guarded = await ResourceManager.create({
        root,
        protectedPaths: [abs('.state'), abs('policy.json')],
      });
      await rejectsWith(guarded.readFile('.state/tokens.json'), 'PROTECTED_PATH');
      await rejectsWith(guarded.readFile('policy.json'), 'PROTECTED_PATH');
      await rejectsWith(guarded.writeFile('policy.json', '{}'), 'PROTECTED_PATH');
      await rejectsWith(guarded.writeFile('.state/new.json', '{}'), 'PROTECTED_PATH');
      await rejectsWith(guarded.listFiles('.state'), 'PROTECTED_PATH');
      await rejectsWith(guarded.stat('.state'), 'PROTECTED_PATH');
      await rejectsWith(guarded.delete('policy.json'), 'PROTECTED_PATH');
      await rejectsWith(guarded.delete('.state', { recursive: true }), 'PROTECTED_PATH');
      await rejectsWith(guarded.move('policy.json', 'p2.json'), 'PROTECTED_PATH');
      await rejectsWith(guarded.move('src/a.ts', 'policy.json', { overwrite: true }), 'PROTECTED_PATH');
      await rejectsWith(guarded.edit('policy.json', [{ oldText: 'needle', newText: 'x' }]), 'PROTECTED_PATH');
      await rejectsWith(guarded.search('needle', { path: '.state' }), 'PROTECTED_PATH');
      await fs.symlink('.state', abs('sneaky'));
      await rejectsWith(guarded.readFile('sneaky/tokens.json'), 'PROTECTED_PATH');
      const list = await guarded.listFiles('.', { depth: 3 });
      assert.deepEqual(
        list.entries.map((e) => e.path),
        ['sneaky', 'src', 'src/a.ts'],
      );
      const found = await guarded.search('needle');
      assert.deepEqual(
        found.matches.map((m) => m.path),
        ['src/a.ts'],
      );
      assert.equal(await read('policy.json'), 'needle');
      assert.equal(await read('.state/tokens.json'), 'needle');
    });

    it('refuses to delete or move the root', async () => {
      await rejectsWith(rm.delete('.', { recursive: true }), 'INVALID_PATH');
      await rejectsWith(rm.delete(root, { recursive: true }), 'INVALID_PATH');
      await rejectsWith(rm.move('.', 'elsewhere'), 'INVALID_PATH');
      await put('a.txt', 'a');
      await rejectsWith(rm.move('a.txt', '.', { overwrite: true }), 'INVALID_PATH');
      await fs.symlink('..', abs('up'));
      await rejectsWith(rm.delete('up/ws', { recursive: true }), 'INVALID_PATH');
      assert.equal(await exists(abs('a.txt')), true);
    });
  });

  describe('listFiles', () => {
    beforeEach(async () => {
      await put('a.txt', 'aaaa');
      await put('src/b.ts', 'b');
      await put('src/deep/c.ts', 'c');
      await put('.git/HEAD', 'ref');
      await put('node_modules/pkg/index.js', 'x');
    });

    it('lists one level by default with types and sizes', async () => {
      const list = await rm.listFiles('.');
      assert.equal(list.path, '.');
      assert.equal(list.truncated, false);
      assert.deepEqual(
        list.entries.map((e) => [e.path, e.name, e.type, e.size]),
        [
          ['.git', '.git', 'directory', undefined],
          ['a.txt', 'a.txt', 'file', 4],
          ['node_modules', 'node_modules', 'directory', undefined],
          ['src', 'src', 'directory', undefined],
        ],
      );
      assert.ok(list.entries.every((e) => typeof e.mtimeMs === 'number' && e.mtimeMs > 0));
    });

    it('descends to depth but not into .git or node_modules unless asked', async () => {
      const deep = await rm.listFiles('.', { depth: 5 });
      const paths = deep.entries.map((e) => e.path);
      assert.ok(paths.includes('src/deep/c.ts'));
      assert.ok(!paths.some((p) => p.startsWith('.git/') || p.startsWith('node_modules/')));
      const two = await rm.listFiles('.', { depth: 2 });
      assert.ok(two.entries.some((e) => e.path === 'src/deep'));
      assert.ok(!two.entries.some((e) => e.path === 'src/deep/c.ts'));
      const all = await rm.listFiles('.', { depth: 5, includeIgnored: true });
      const allPaths = all.entries.map((e) => e.path);
      assert.ok(allPaths.includes('.git/HEAD'));
      assert.ok(allPaths.includes('node_modules/pkg/index.js'));
      const sub = await rm.listFiles('src');
      assert.deepEqual(
        sub.entries.map((e) => e.path),
        ['src/b.ts', 'src/deep'],
      );
    });

    it('truncates at maxEntries', async () => {
      const list = await rm.listFiles('.', { depth: 5, maxEntries: 3 });
      assert.equal(list.entries.length, 3);
      assert.equal(list.truncated, true);
      await rejectsWith(rm.listFiles('.', { depth: 0 }), 'INVALID_ARGUMENT');
    });

    it('rejects files and missing paths', async () => {
      await rejectsWith(rm.listFiles('a.txt'), 'NOT_A_DIRECTORY');
      await rejectsWith(rm.listFiles('missing'), 'NOT_FOUND');
    });
  });

  describe('stat', () => {
    it('reports files with revision and directories without', async () => {
      await put('s/f.txt', 'stat me');
      const file = await rm.stat('s/f.txt');
      assert.equal(file.path, 's/f.txt');
      assert.equal(file.type, 'file');
      assert.equal(file.size, 7);
      assert.equal(file.revision, sha256('stat me'));
      const dir = await rm.stat('s');
      assert.equal(dir.type, 'directory');
      assert.equal(dir.revision, undefined);
      await rejectsWith(rm.stat('s/missing'), 'NOT_FOUND');
    });
  });

  describe('mkdir / delete / move', () => {
    it('creates directories and reports existing ones', async () => {
      assert.deepEqual(await rm.mkdir('x/y/z'), { path: 'x/y/z', created: true });
      assert.ok((await fs.stat(abs('x/y/z'))).isDirectory());
      assert.deepEqual(await rm.mkdir('x/y/z'), { path: 'x/y/z', created: false });
      await rejectsWith(rm.mkdir('x/y/z', { recursive: false }), 'ALREADY_EXISTS');
      await rejectsWith(rm.mkdir('p/q', { recursive: false }), 'NOT_FOUND');
      await put('file.txt', 'f');
      await rejectsWith(rm.mkdir('file.txt'), 'ALREADY_EXISTS');
      await rejectsWith(rm.mkdir('file.txt/sub'), 'NOT_A_DIRECTORY');
    });

    it('deletes files, empty and non-empty directories', async () => {
      await put('d/f.txt', 'x');
      await rejectsWith(rm.delete('d'), 'DIRECTORY_NOT_EMPTY');
      assert.equal(await exists(abs('d/f.txt')), true);
      await rejectsWith(rm.delete('d/f.txt', { expectedRevision: sha256('other') }), 'REVISION_CONFLICT');
      assert.deepEqual(await rm.delete('d/f.txt', { expectedRevision: sha256('x') }), {
        path: 'd/f.txt',
        deleted: true,
      });
      assert.equal(await exists(abs('d/f.txt')), false);
      await rm.delete('d');
      assert.equal(await exists(abs('d')), false);
      await put('e/g/h.txt', 'x');
      await rm.delete('e', { recursive: true });
      assert.equal(await exists(abs('e')), false);
      await rejectsWith(rm.delete('e'), 'NOT_FOUND');
    });

    it('deletes a symlink, not its target', async () => {
      await put('t/keep.txt', 'keep');
      await fs.symlink('t', abs('tlink'));
      await fs.symlink(outside, abs('outlink'));
      await rm.delete('tlink', { recursive: true });
      await rm.delete('outlink', { recursive: true });
      assert.equal(await exists(abs('tlink')), false);
      assert.equal(await exists(abs('outlink')), false);
      assert.equal(await read('t/keep.txt'), 'keep');
      assert.deepEqual(await fs.readdir(outside), ['secret.txt']);
    });

    it('moves files and directories, creating parents', async () => {
      await put('m/a.txt', 'A');
      assert.deepEqual(await rm.move('m/a.txt', 'n/b.txt'), { from: 'm/a.txt', to: 'n/b.txt' });
      assert.equal(await read('n/b.txt'), 'A');
      assert.equal(await exists(abs('m/a.txt')), false);
      await rm.move('n', 'o');
      assert.equal(await read('o/b.txt'), 'A');
      await rejectsWith(rm.move('missing', 'z'), 'NOT_FOUND');
      await rejectsWith(rm.move('o', 'o/inner'), 'INVALID_PATH');
    });

    it('refuses to overwrite without overwrite: true and checks expectedRevision', async () => {
      await put('src.txt', 'source');
      await put('dst.txt', 'dest');
      await rejectsWith(rm.move('src.txt', 'dst.txt'), 'ALREADY_EXISTS');
      assert.equal(await read('dst.txt'), 'dest');
      await rejectsWith(
        rm.move('src.txt', 'dst.txt', { overwrite: true, expectedRevision: sha256('nope') }),
        'REVISION_CONFLICT',
      );
      assert.equal(await read('src.txt'), 'source');
      await rm.move('src.txt', 'dst.txt', { overwrite: true, expectedRevision: sha256('source') });
      assert.equal(await read('dst.txt'), 'source');
      assert.equal(await exists(abs('src.txt')), false);
      await fs.mkdir(abs('dir'));
      await rejectsWith(rm.move('dst.txt', 'dir', { overwrite: true }), 'NOT_A_FILE');
    });
  });

  describe('edit', () => {
    const original = 'line 1\nline 2\nfoo\nline 4\nline 5\nline 6\nline 7\nline 8\nfoo bar\nend\n';

    beforeEach(async () => {
      await put('e.txt', original);
    });

    it('applies a single replacement and returns the diff and new revision', async () => {
      const res = await rm.edit('e.txt', [{ oldText: 'line 2', newText: 'LINE TWO' }]);
      const expected = original.replace('line 2', 'LINE TWO');
      assert.equal(await read('e.txt'), expected);
      assert.equal(res.revision, sha256(expected));
      assert.equal(res.applied, 1);
      assert.equal(res.dryRun, false);
      assert.equal(
        res.diff,
        [
          '--- a/e.txt',
          '+++ b/e.txt',
          '@@ -1,5 +1,5 @@',
          ' line 1',
          '-line 2',
          '+LINE TWO',
          ' foo',
          ' line 4',
          ' line 5',
          '',
        ].join('\n'),
      );
    });

    it('supports replaceAll and reports the replacement count', async () => {
      const res = await rm.edit('e.txt', [{ oldText: 'foo', newText: 'baz', replaceAll: true }]);
      assert.equal(res.applied, 2);
      assert.equal(await read('e.txt'), original.split('foo').join('baz'));
    });

    it('takes $ patterns literally', async () => {
      await rm.edit('e.txt', [{ oldText: 'line 1', newText: "$& $' $1" }]);
      assert.ok((await read('e.txt')).startsWith("$& $' $1\n"));
    });

    it('fails with EDIT_NO_MATCH or EDIT_AMBIGUOUS and changes nothing', async () => {
      await rejectsWith(rm.edit('e.txt', [{ oldText: 'absent', newText: 'x' }]), 'EDIT_NO_MATCH', (e) =>
        assert.deepEqual(e.details, { index: 0 }),
      );
      await rejectsWith(
        rm.edit('e.txt', [
          { oldText: 'line 1', newText: 'first' },
          { oldText: 'foo', newText: 'x' },
        ]),
        'EDIT_AMBIGUOUS',
        (e) => assert.deepEqual(e.details, { index: 1, matches: 2 }),
      );
      await rejectsWith(
        rm.edit('e.txt', [
          { oldText: 'line 1', newText: 'first' },
          { oldText: 'line 1', newText: 'again' },
        ]),
        'EDIT_NO_MATCH',
        (e) => assert.deepEqual(e.details, { index: 1 }),
      );
      assert.equal(await read('e.txt'), original);
      await rejectsWith(rm.edit('e.txt', [{ oldText: '', newText: 'x' }]), 'INVALID_ARGUMENT');
      await rejectsWith(rm.edit('e.txt', []), 'INVALID_ARGUMENT');
    });

    it('dry-runs without writing and produces a multi-hunk unified diff', async () => {
      const res = await rm.edit(
        'e.txt',
        [
          { oldText: 'line 1\n', newText: '' },
          { oldText: 'end\n', newText: 'end\nappended\n' },
        ],
        { dryRun: true },
      );
      assert.equal(res.dryRun, true);
      assert.equal(res.revision, sha256(original));
      assert.equal(await read('e.txt'), original);
      assert.equal(
        res.diff,
        [
          '--- a/e.txt',
          '+++ b/e.txt',
          '@@ -1,4 +1,3 @@',
          '-line 1',
          ' line 2',
          ' foo',
          ' line 4',
          '@@ -8,3 +7,4 @@',
          ' line 8',
          ' foo bar',
          ' end',
          '+appended',
          '',
        ].join('\n'),
      );
    });

    it('marks a missing final newline in the diff', async () => {
      await put('nl.txt', 'a\nb');
      const res = await rm.edit('nl.txt', [{ oldText: 'b', newText: 'c' }], { dryRun: true });
      assert.equal(
        res.diff,
        '--- a/nl.txt\n+++ b/nl.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n',
      );
    });

    it('honours expectedRevision and refuses binary files', async () => {
      await rejectsWith(
        rm.edit('e.txt', [{ oldText: 'line 1', newText: 'x' }], { expectedRevision: sha256('stale') }),
        'REVISION_CONFLICT',
        (e) => assert.deepEqual(e.details, { currentRevision: sha256(original) }),
      );
      assert.equal(await read('e.txt'), original);
      await rm.edit('e.txt', [{ oldText: 'line 1', newText: 'x' }], { expectedRevision: sha256(original) });
      assert.ok((await read('e.txt')).startsWith('x\n'));
      await put('bin.dat', Buffer.from([0xff, 0xfe, 0x00]));
      await rejectsWith(rm.edit('bin.dat', [{ oldText: 'a', newText: 'b' }]), 'INVALID_ENCODING');
      await rejectsWith(rm.edit('missing.txt', [{ oldText: 'a', newText: 'b' }]), 'NOT_FOUND');
    });
  });

  describe('search', () => {
    beforeEach(async () => {
      await put('src/app.ts', 'const Needle = 1;\nlet other = 2;\nneedle again\n');
      await put('src/util/helpers.js', 'function needle() {}\n');
      await put('docs/readme.md', 'A NEEDLE in docs\r\n');
      await put('.git/config', 'needle\n');
      await put('node_modules/x/index.js', 'needle\n');
      await put('bin.dat', Buffer.concat([Buffer.from('needle'), Buffer.from([0, 1, 2])]));
    });

    it('finds literal text case-sensitively by default, with line and column', async () => {
      const res = await rm.search('needle');
      assert.deepEqual(res.matches, [
        { path: 'src/app.ts', line: 3, column: 1, text: 'needle again' },
        { path: 'src/util/helpers.js', line: 1, column: 10, text: 'function needle() {}' },
      ]);
      assert.equal(res.truncated, false);
      assert.equal(res.filesScanned, 3);
    });

    it('can ignore case', async () => {
      const res = await rm.search('needle', { caseSensitive: false });
      assert.deepEqual(
        res.matches.map((m) => `${m.path}:${m.line}:${m.column}`),
        ['docs/readme.md:1:3', 'src/app.ts:1:7', 'src/app.ts:3:1', 'src/util/helpers.js:1:10'],
      );
      assert.equal(res.matches[0].text, 'A NEEDLE in docs');
    });

    it('treats literal queries literally and supports regex', async () => {
      await put('re.txt', 'a.c\nabc\n');
      assert.deepEqual(
        (await rm.search('a.c', { path: 're.txt' })).matches.map((m) => m.line),
        [1],
      );
      assert.deepEqual(
        (await rm.search('a.c', { path: 're.txt', regex: true })).matches.map((m) => m.line),
        [1, 2],
      );
      const res = await rm.search('^(let|const) \\w+', { regex: true });
      assert.deepEqual(
        res.matches.map((m) => m.line),
        [1, 2],
      );
      await rejectsWith(rm.search('(unclosed', { regex: true }), 'INVALID_PATTERN');
      await rejectsWith(rm.search(''), 'INVALID_ARGUMENT');
    });

    it('filters by glob', async () => {
      const ts = await rm.search('needle', { glob: '*.ts', caseSensitive: false });
      assert.deepEqual([...new Set(ts.matches.map((m) => m.path))], ['src/app.ts']);
      const deep = await rm.search('needle', { glob: 'src/**/*.{js,md}' });
      assert.deepEqual(
        deep.matches.map((m) => m.path),
        ['src/util/helpers.js'],
      );
      const q = await rm.search('needle', { glob: 'src/app.?s' });
      assert.deepEqual(
        q.matches.map((m) => m.path),
        ['src/app.ts'],
      );
      const none = await rm.search('needle', { glob: 'src/*.js' });
      assert.equal(none.matches.length, 0);
      await rejectsWith(rm.search('needle', { glob: '{a,b' }), 'INVALID_PATTERN');
    });

    it('caps results and reports truncation', async () => {
      await put('many.txt', 'hit\n'.repeat(50));
      const res = await rm.search('hit', { maxResults: 10 });
      assert.equal(res.matches.length, 10);
      assert.equal(res.truncated, true);
      const small = await ResourceManager.create({ root, maxSearchResults: 5 });
      const capped = await small.search('hit');
      assert.equal(capped.matches.length, 5);
      assert.equal(capped.truncated, true);
      const exact = await rm.search('hit', { maxResults: 50 });
      assert.equal(exact.matches.length, 50);
      assert.equal(exact.truncated, false);
    });

    it('skips files the reader may not read, and searches a path', async () => {
      const res = await rm.search('needle', {
        caseSensitive: false,
        access: {
          policy: { id: 't', rules: ['allow read(**)', 'deny read(src/util/**)'] },
          principal: { kind: 'agent', name: 'bob', role: 'agent' },
        },
      });
      assert.ok(res.matches.some((m) => m.path === 'src/app.ts'));
      assert.ok(!res.matches.some((m) => m.path.startsWith('src/util/')));
      const scoped = await rm.search('needle', { path: 'src/util' });
      assert.deepEqual(
        scoped.matches.map((m) => m.path),
        ['src/util/helpers.js'],
      );
      await rejectsWith(rm.search('needle', { path: 'nope' }), 'NOT_FOUND');
    });

    it('trims long lines, skips oversized files and symlinks', async () => {
      await put('long.txt', `${'x'.repeat(500)}needle${'y'.repeat(500)}\n`);
      await fs.symlink(abs('src/app.ts'), abs('alias.ts'));
      const res = await rm.search('needle', { glob: '{long.txt,alias.ts}' });
      assert.equal(res.matches.length, 1);
      assert.equal(res.matches[0].column, 501);
      assert.equal(res.matches[0].text.length, 300);
      const small = await ResourceManager.create({ root, maxFileBytes: 100 });
      const skipped = await small.search('needle', { glob: 'long.txt' });
      assert.equal(skipped.matches.length, 0);
      assert.equal(skipped.filesScanned, 0);
    });
  });
});
