import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { openConfinedRoot, type ConfinedRootHandle } from '../../src/core/resources/confined';
import { SearchPool, type SearchJob } from '../../src/core/resources/search';
import { WorkspaceError } from '../../src/protocol/errors';
import { makeTempDir, removeTempDir } from '../helpers/fixtures';

describe('search worker pool', function () {
  this.timeout(60_000);
  let base: string;
  let confined: ConfinedRootHandle;
  let pool: SearchPool | undefined;

  const job = (query: string, overrides: Partial<SearchJob> = {}): SearchJob => ({
    confined,
    startFd: confined.fd,
    startName: '',
    start: '.',
    startReal: '.',
    startIsFile: false,
    protectedRels: [],
    query,
    regex: true,
    caseSensitive: true,
    cap: 100,
    maxFileBytes: 20 * 1024 * 1024,
    deadline: Date.now() + 30_000,
    ...overrides,
  });

  beforeEach(async () => {
    base = await makeTempDir('pool');
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(base, `f${i}.txt`), `line\nneedle ${i}\n`);
    confined = openConfinedRoot(base);
  });

  afterEach(async () => {
    await pool?.close();
    pool = undefined;
    closeSync(confined.fd);
    await removeTempDir(base);
  });

  it('splits a search across shards and merges the matches in walk order', async () => {
    pool = new SearchPool({ shards: 2 });
    const result = await pool.run('a', job('needle \\d+'));
    assert.equal(result.matches.length, 20);
    assert.equal(result.filesScanned, 20);
    assert.deepEqual(
      result.matches.map((m) => m.path),
      Array.from({ length: 20 }, (_, i) => `f${i}.txt`).sort(),
    );
    assert.equal(result.truncated, false);
    const capped = await pool.run('a', job('needle', { cap: 5 }));
    assert.equal(capped.matches.length, 5);
    assert.equal(capped.reason, 'max_results');
  });

  it('ends a thread stuck past its deadline in one long engine call, answers truncated, and recovers', async () => {
    // One 48 MiB line: the regex engine gets it in a single call, which outlasts the deadline.
    await fs.writeFile(path.join(base, 'huge.txt'), `${'ab'.repeat(24 * 1024 * 1024)}\n`);
    pool = new SearchPool({ shards: 1, killGraceMs: 1 });
    // A warm thread reaches the long call well before the deadline; the call itself outlasts it.
    await pool.run('a', job('needle'));
    const stuck = await pool.run(
      'a',
      job('\\w+\\d{7}\\s*=\\s*\\w{30}', {
        deadline: Date.now() + 60,
        glob: 'huge.txt',
        maxFileBytes: 64 * 1024 * 1024,
      }),
    );
    assert.equal(stuck.truncated, true);
    assert.equal(stuck.reason, 'deadline');
    const after = await pool.run('a', job('needle 7'));
    assert.deepEqual(
      after.matches.map((m) => m.path),
      ['f7.txt'],
    );
  });

  it('refuses a caller past its limit with RATE_LIMITED, while other callers still run', async () => {
    await fs.writeFile(path.join(base, 'huge.txt'), `${'ab\n'.repeat(2 * 1024 * 1024)}`);
    pool = new SearchPool({ shards: 1, maxQueuedPerCaller: 1 });
    const first = pool.run('flood', job('\\w+\\d{7}\\s*=\\s*\\w{30}'));
    await assert.rejects(
      pool.run('flood', job('needle')),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'RATE_LIMITED',
    );
    const other = await pool.run('other', job('needle 3'));
    assert.deepEqual(
      other.matches.map((m) => m.path),
      ['f3.txt'],
    );
    await first;
  });

  it('reports an invalid pattern from the worker as INVALID_PATTERN', async () => {
    pool = new SearchPool({ shards: 2 });
    await assert.rejects(
      pool.run('a', job('(a)\\1')),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_PATTERN',
    );
  });
});
