import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import {
  constants as fsConstants,
  closeSync,
  linkSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  assertConfinementSupported,
  confinementFlags,
  createExclusiveAt,
  fdPath,
  openConfinedRoot,
  openFileAt,
  renameAt,
  resolveConfined,
  walkConfined,
  walkHeldEntries,
  type ConfinedRootHandle,
  type WalkEntry,
} from '../../src/core/resources/confined';
import { WorkspaceError, type ErrorCode } from '../../src/protocol/errors';
import { makeTempDir, removeTempDir } from '../helpers/fixtures';

function throwsCode(fn: () => unknown, code: ErrorCode | string): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, (err as Error).message);
    if (err instanceof WorkspaceError) assert.ok(err.message.length > 0);
    return true;
  });
}

describe('confined file-system primitive', () => {
  let base: string;
  let root: string;
  let outside: string;
  let handle: ConfinedRootHandle;

  beforeEach(async () => {
    base = await makeTempDir('confined');
    root = path.join(base, 'ws');
    outside = path.join(base, 'outside');
    mkdirSync(path.join(root, 'sub', 'deep'), { recursive: true });
    mkdirSync(path.join(root, 'state'));
    mkdirSync(outside);
    writeFileSync(path.join(root, 'sub', 'deep', 'f.txt'), 'inside');
    writeFileSync(path.join(root, 'state', 'owner.token'), 'TOKEN');
    writeFileSync(path.join(outside, 'secret.txt'), 'SECRET');
    handle = openConfinedRoot(root, [path.join(root, 'state')]);
  });

  afterEach(async () => {
    closeSync(handle.fd);
    await removeTempDir(base);
  });

  it('reports the supported platform and its flags, all non-zero', () => {
    const flags = assertConfinementSupported();
    for (const [name, value] of Object.entries(flags)) {
      if (name !== 'O_RDONLY') assert.ok(value > 0, name);
    }
  });

  it('fails closed on other platforms and when a flag is missing, never treating it as 0', () => {
    const linux = { ...fsConstants } as Record<string, number>;
    assert.equal(confinementFlags('linux', linux, true).O_NOFOLLOW, fsConstants.O_NOFOLLOW);
    for (const [platform, constants, procFd, why] of [
      ['darwin', linux, true, /platform darwin.*macOS is not supported yet/],
      ['win32', linux, true, /platform win32.*Remote-WSL/],
      ['linux', { ...linux, O_NOFOLLOW: undefined }, true, /O_NOFOLLOW flag is missing/],
      ['linux', { ...linux, O_DIRECTORY: 0 }, true, /O_DIRECTORY flag is missing/],
      ['linux', linux, false, /\/proc\/self\/fd/],
    ] as const) {
      assert.throws(
        () => confinementFlags(platform, constants as Record<string, number | undefined>, procFd),
        (err: unknown) => {
          assert.ok(err instanceof WorkspaceError);
          assert.equal(err.code, 'UNSUPPORTED_PLATFORM');
          assert.match(err.message, why);
          return true;
        },
      );
    }
  });

  it('resolves component by component and follows in-workspace links by hand', () => {
    symlinkSync('sub/deep', path.join(root, 'link'));
    symlinkSync(path.join(root, 'sub'), path.join(root, 'abs'));
    const viaLink = resolveConfined(handle, 'link/f.txt', { followFinal: true });
    try {
      assert.equal(viaLink.realRel, 'sub/deep/f.txt');
      assert.equal(viaLink.name, 'f.txt');
      assert.ok(viaLink.stats?.isFile());
    } finally {
      viaLink.close();
    }
    const viaAbs = resolveConfined(handle, 'abs/deep/f.txt', { followFinal: true });
    assert.equal(viaAbs.realRel, 'sub/deep/f.txt');
    viaAbs.close();
    const missing = resolveConfined(handle, 'sub/new/dir/file.txt', { followFinal: true });
    assert.deepEqual(missing.missingDirs, ['new', 'dir']);
    assert.equal(missing.stats, undefined);
    missing.makeParents();
    assert.deepEqual(missing.missingDirs, []);
    missing.close();
    assert.ok(realpathSync(path.join(root, 'sub', 'new', 'dir')));
  });

  it('refuses links that leave the workspace and protected entries, whatever their name', () => {
    symlinkSync(outside, path.join(root, 'out'));
    symlinkSync('../outside/secret.txt', path.join(root, 'rel-out'));
    throwsCode(
      () => resolveConfined(handle, 'out/secret.txt', { followFinal: true }),
      'PATH_OUTSIDE_WORKSPACE',
    );
    throwsCode(() => resolveConfined(handle, 'rel-out', { followFinal: true }), 'PATH_OUTSIDE_WORKSPACE');
    // Acting on the link itself (delete, move) is fine.
    const link = resolveConfined(handle, 'rel-out', { followFinal: false });
    assert.ok(link.stats?.isSymbolicLink());
    link.close();
    throwsCode(() => resolveConfined(handle, 'state/owner.token', { followFinal: true }), 'PROTECTED_PATH');
    // The state dir renamed by an agent is still protected: identity is (dev, ino).
    renameSync(path.join(root, 'state'), path.join(root, 'renamed'));
    throwsCode(() => resolveConfined(handle, 'renamed/owner.token', { followFinal: true }), 'PROTECTED_PATH');
    throwsCode(() => resolveConfined(handle, 'renamed', { followFinal: false }), 'PROTECTED_PATH');
    symlinkSync('loop', path.join(root, 'loop'));
    throwsCode(() => resolveConfined(handle, 'loop/x', { followFinal: true }), 'ELOOP');
  });

  it('keeps I/O on the held parent after the directory is swapped for a link', () => {
    const target = resolveConfined(handle, 'sub/deep/f.txt', { followFinal: true });
    try {
      // The agent swaps the directory for a link to outside after the check.
      renameSync(path.join(root, 'sub', 'deep'), path.join(root, 'sub', 'moved'));
      symlinkSync(outside, path.join(root, 'sub', 'deep'));
      const fd = createExclusiveAt(target.parentFd, '.tmp-write');
      closeSync(fd);
      renameAt(target.parentFd, '.tmp-write', target.parentFd, 'secret.txt');
      const { fd: readFd } = openFileAt(handle, target.parentFd, target.name, target.rel);
      assert.equal(readFileSync(readFd, 'utf8'), 'inside');
      closeSync(readFd);
    } finally {
      target.close();
    }
    assert.equal(readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'SECRET', 'outside untouched');
    assert.equal(readFileSync(path.join(root, 'sub', 'moved', 'secret.txt'), 'utf8'), '');
  });

  it('never opens a FIFO or a link as a file', () => {
    symlinkSync('sub/deep/f.txt', path.join(root, 'file-link'));
    const parent = resolveConfined(handle, '.', { followFinal: true });
    throwsCode(() => openFileAt(handle, parent.parentFd, 'file-link', 'file-link'), 'ELOOP');
    throwsCode(() => openFileAt(handle, parent.parentFd, 'sub', 'sub'), 'NOT_A_FILE');
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    // O_NONBLOCK: opening a FIFO with no writer returns at once, and it is refused as not a file.
    throwsCode(() => openFileAt(handle, parent.parentFd, 'pipe', 'pipe'), 'NOT_A_FILE');
    parent.close();
  });

  it('walks without following links or entering protected directories', () => {
    symlinkSync(outside, path.join(root, 'sub', 'out'));
    const seen: Array<[string, string]> = [];
    const result = walkConfined(handle, '.', {
      maxDepth: 10,
      onEntry: (e: WalkEntry) => {
        seen.push([e.rel, e.type]);
      },
    });
    assert.equal(result.stopped, false);
    assert.deepEqual(seen, [
      ['sub', 'directory'],
      ['sub/deep', 'directory'],
      ['sub/deep/f.txt', 'file'],
      ['sub/out', 'symlink'],
    ]);
    const first: string[] = [];
    walkConfined(handle, 'sub', { maxDepth: 1, onEntry: (e) => void first.push(e.rel) });
    assert.deepEqual(first, ['sub/deep', 'sub/out']);
    const stopped = walkConfined(handle, '.', { maxDepth: 10, onEntry: () => 'stop' });
    assert.equal(stopped.stopped, true);
  });

  it('walks on listed kinds without trusting them: swaps after listing and protected entries fail at open', () => {
    // A protected file (the policy file) and a hard link to it under an innocent name.
    writeFileSync(path.join(root, 'policy.txt'), 'POLICY');
    linkSync(path.join(root, 'policy.txt'), path.join(root, 'sub', 'alias.txt'));
    writeFileSync(path.join(root, 'sub', 'plain.txt'), 'plain');
    mkdirSync(path.join(root, 'swapme'));
    writeFileSync(path.join(root, 'swapme', 'inner.txt'), 'inner');
    closeSync(handle.fd);
    handle = openConfinedRoot(root, [path.join(root, 'state'), path.join(root, 'policy.txt')]);
    const seen: Array<[string, string]> = [];
    const read: Array<[string, string]> = [];
    const refused: Array<[string, string]> = [];
    const stopped = walkHeldEntries(handle, handle.fd, '.', {
      maxDepth: 10,
      onEntry: (e) => {
        seen.push([e.rel, e.type]);
        if (e.rel === 'sub/alias.txt') {
          // 'sub' is listed by now, plain.txt as a file: swap it for a link to outside before use.
          renameSync(path.join(root, 'sub', 'plain.txt'), path.join(root, 'plain-moved.txt'));
          symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'sub', 'plain.txt'));
        }
        if (e.rel === 'state') {
          renameSync(path.join(root, 'swapme'), path.join(root, 'swapped'));
          symlinkSync(outside, path.join(root, 'swapme'));
        }
        if (e.type !== 'file') return;
        try {
          const { fd } = openFileAt(handle, e.dirFd, e.name, e.rel);
          read.push([e.rel, readFileSync(fd, 'utf8')]);
          closeSync(fd);
        } catch (err) {
          refused.push([e.rel, (err as { code?: string }).code ?? '']);
        }
      },
    });
    assert.equal(stopped, false);
    // The protected state dir is listed but never entered; the swapped folder is not followed.
    assert.ok(seen.some(([rel, type]) => rel === 'state' && type === 'directory'));
    assert.ok(seen.some(([rel, type]) => rel === 'swapme' && type === 'directory'));
    assert.ok(
      !seen.some(([rel]) => rel.startsWith('state/') || rel.startsWith('swapme/')),
      JSON.stringify(seen),
    );
    assert.deepEqual(read, [['sub/deep/f.txt', 'inside']]);
    assert.deepEqual(refused, [
      ['policy.txt', 'PROTECTED_PATH'],
      ['sub/alias.txt', 'PROTECTED_PATH'],
      ['sub/plain.txt', 'ELOOP'],
    ]);
    for (const [, text] of read) assert.ok(!['SECRET', 'POLICY', 'TOKEN'].includes(text));
  });

  it('walks from a worker thread given the root descriptor number', async () => {
    const script = `
      const { workerData, parentPort } = require('node:worker_threads');
      require('tsx/cjs');
      const { walkConfined, openFileAt } = require(workerData.module);
      const { readFileSync, closeSync } = require('node:fs');
      const files = [];
      walkConfined(workerData.handle, '.', { maxDepth: 10, onEntry: (e) => {
        if (e.type !== 'file') return;
        const { fd } = openFileAt(workerData.handle, e.dirFd, e.name, e.rel);
        files.push([e.rel, readFileSync(fd, 'utf8')]);
        closeSync(fd);
      } });
      parentPort.postMessage(files);
    `;
    const worker = new Worker(script, {
      eval: true,
      workerData: { handle, module: path.resolve(__dirname, '../../src/core/resources/confined.ts') },
    });
    const files = await new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    assert.deepEqual(files, [['sub/deep/f.txt', 'inside']]);
    assert.equal(fdPath(handle.fd), `/proc/${process.pid}/fd/${handle.fd}`);
  });
});
