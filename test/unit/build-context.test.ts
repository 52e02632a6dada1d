import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextStream, planOffThread } from '../../src/core/execution/docker/context-client';
import { MAX_IN_FLIGHT_BYTES } from '../../src/core/execution/docker/context-task';
import type { BuildSpec } from '../../src/core/execution/docker/devcontainer';
import { openConfinedRoot } from '../../src/core/resources/confined';

const build: BuildSpec = { dockerfile: 'ctx/Dockerfile', context: 'ctx', args: {}, target: null };

/** Open descriptors of this process. */
const openFds = () => readdirSync('/proc/self/fd').length;

describe('devcontainer build context on a worker thread', function () {
  this.timeout(60_000);
  let root: string;
  let outside: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcpw-ctx-'));
    outside = await mkdtemp(join(tmpdir(), 'mcpw-ctx-outside-'));
    const ws = join(root, 'ws');
    await mkdir(join(ws, 'ctx', 'deep', 'er'), { recursive: true });
    await writeFile(join(ws, 'ctx', 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(ws, 'ctx', 'deep', 'er', 'ok.txt'), 'ok\n');
    await writeFile(join(ws, 'ctx', 'secret.env'), 'TOKEN=1\n');
    await writeFile(join(outside, 'outside.txt'), 'outside\n');
    await symlink(outside, join(ws, 'ctx', 'out'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('streams a tar of what the agent may read; links ship as links, the denied file never', async () => {
    const handle = openConfinedRoot(join(root, 'ws'));
    try {
      const asked: string[] = [];
      const source = {
        root: handle,
        mayRead: (path: string) => {
          asked.push(path);
          return path !== 'ctx/secret.env';
        },
      };
      const plan = await planOffThread(build, source, false);
      assert.deepEqual(plan.inputs, ['ctx/Dockerfile', 'ctx/deep/er/ok.txt', 'ctx/out']);
      assert.match(plan.tag, /^mcpw-build-[0-9a-f]{16}:latest$/);
      assert.ok(asked.includes('ctx/secret.env'), 'the main thread decided on every entry');
      const chunks: Buffer[] = [];
      for await (const chunk of contextStream(build, source, false)) chunks.push(chunk as Buffer);
      await writeFile(join(root, 'ctx.tar'), Buffer.concat(chunks));
      const listing = execFileSync('tar', ['-tvf', join(root, 'ctx.tar')], { encoding: 'utf8' });
      assert.match(listing, / Dockerfile$/m);
      assert.match(listing, / deep\/er\/ok\.txt$/m);
      assert.match(listing, new RegExp(` out -> ${outside}$`, 'm'));
      assert.doesNotMatch(listing, /secret/);
      assert.doesNotMatch(listing, /outside\.txt/, 'nothing behind the link was read');
    } finally {
      closeSync(handle.fd);
    }
  });

  it('stops packing when the stream is destroyed, with every descriptor it opened closed', async () => {
    const ws = join(root, 'ws');
    // More than the in-flight bound, so the worker must wait for a reader that never comes.
    const piece = Buffer.alloc(1024 * 1024, 7);
    const files = Math.ceil((4 * MAX_IN_FLIGHT_BYTES) / piece.length);
    for (let i = 0; i < files; i++) {
      await writeFile(join(ws, 'ctx', 'deep', 'er', `big-${i}.bin`), piece);
    }
    const handle = openConfinedRoot(ws);
    try {
      let asked = 0;
      const source = {
        root: handle,
        mayRead: () => {
          asked++;
          return true;
        },
      };
      // A first job leaves its thread parked for the next: its own descriptors are counted in `before`.
      await planOffThread(build, source, false);
      asked = 0;
      const before = openFds();
      const stream = contextStream(build, source, false);
      let received = 0;
      stream.once('data', (chunk: Buffer) => {
        received += chunk.length;
        stream.pause();
      });
      // The worker fills the bound and waits: the asks stop well short of all the files.
      let settled = -1;
      for (let attempt = 0; attempt < 200 && settled !== asked; attempt++) {
        settled = asked;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(received > 0);
      // (Three entries before the large files; at most about 8 MiB in flight plus the stream's buffer.)
      assert.ok(asked <= 3 + files / 2 + 4, `asked about ${asked} of ${files + 6} entries`);
      const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
      stream.destroy();
      await closed;
      // The abandoned walk unwinds and closes its directories (bounded wait for the worker).
      let now = openFds();
      for (let attempt = 0; attempt < 100 && now > before; attempt++) {
        await new Promise((r) => setTimeout(r, 50));
        now = openFds();
      }
      assert.ok(now <= before, `descriptors left open: ${now - before}`);
    } finally {
      closeSync(handle.fd);
    }
  });
});
