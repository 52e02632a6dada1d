import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callTool, connectMcp } from '../helpers/clients';
import { startTestServer, type TestServer } from '../helpers/server';
import { startSwapper } from '../helpers/swapper';

/**
 * Issue 9, class 7 and the search part of class 2: search_files never stalls the server (a regex with
 * catastrophic backtracking, many at once from one viewer), is audited when its deadline cuts it,
 * honours .gitignore, and a directory swapped for a symlink mid-walk never yields content from
 * outside the workspace or from the server's state dir.
 */

const HOSTILE = '^(.+)+Z$';
/** A regex with no literal every match must contain: the engine reads every byte of the tree. */
const NO_LITERAL = '\\w+\\d{7}\\s*=\\s*\\w{30}';
const OUTSIDE_SECRET = 'OUTSIDE-SECRET-5e1d';
const SWAP_ATTEMPTS = 30;

/** An ordinary text line, long enough that `^(.+)+Z$` backtracks forever in a backtracking engine. */
const ORDINARY = 'const value = computeSomething(alpha, beta, gamma); // an ordinary line of code\n';

async function mint(t: TestServer, name: string, role: 'agent' | 'viewer'): Promise<string> {
  const res = await t.api('/tokens', { method: 'POST', body: { name, role } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.token as string;
}

/** The audit records of `op` by `agent`, polled until one shows (reads are recorded without waiting). */
async function auditRecords(t: TestServer, op: string, agent: string): Promise<any[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const res = await t.api(`/audit?op=${op}&agent=${agent}&limit=100`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (res.body.records.length > 0) return res.body.records;
    await new Promise((r) => setTimeout(r, 20));
  }
  return [];
}

describe('search_files: no request stalls the server (issue 9, class 7)', function () {
  this.timeout(120_000);
  let t: TestServer | undefined;

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers /health while a catastrophic-backtracking regex runs, and audits the search', async () => {
    t = await startTestServer({}, async (ws) => {
      await writeFile(join(ws, 'ordinary.ts'), ORDINARY.repeat(2000));
    });
    const viewer = await mint(t, 'hostile-viewer', 'viewer');
    const search = t.api('/search', {
      method: 'POST',
      token: viewer,
      body: { query: HOSTILE, regex: true, path: 'ordinary.ts' },
    });
    // Asked while the search is in flight; a stalled event loop would never answer.
    const health = await t.api('/health', { token: null });
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { ok: true });
    const result = await search;
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.deepEqual(result.body.matches, []);

    const records = await auditRecords(t, 'search_files', 'hostile-viewer');
    assert.equal(records.length, 1, 'the hostile search has its audit record');
    assert.equal(records[0].params.query, HOSTILE);
    assert.equal(records[0].outcome.ok, true);
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
  });

  it('refuses what the linear-time engine cannot express with INVALID_PATTERN', async () => {
    t = await startTestServer({}, async (ws) => {
      await writeFile(join(ws, 'a.txt'), 'abab\n');
    });
    for (const query of ['(a)\\1', 'a(?=b)', '(?<=a)b', '(unclosed']) {
      const res = await t.api('/search', { method: 'POST', body: { query, regex: true } });
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'INVALID_PATTERN', query);
    }
    const ok = await t.api('/search', { method: 'POST', body: { query: '(ab)+', regex: true } });
    assert.deepEqual(
      ok.body.matches.map((m: any) => [m.path, m.line, m.column]),
      [['a.txt', 1, 1]],
    );
  });

  it('returns what it found with truncated and reason "deadline" when its time runs out, audited', async () => {
    t = await startTestServer({ searchTimeoutMs: 1 }, async (ws) => {
      for (let i = 0; i < 400; i++) {
        await writeFile(join(ws, `f${i}.txt`), ORDINARY.repeat(200));
      }
    });
    const res = await t.api('/search', { method: 'POST', body: { query: NO_LITERAL, regex: true } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.truncated, true);
    assert.equal(res.body.truncatedReason, 'deadline');
    const records = await auditRecords(t, 'search_files', 'owner');
    const record = records.find((r) => r.params.query === NO_LITERAL);
    assert.ok(record, 'the search cut by its deadline is audited');
    assert.equal(record.outcome.ok, true);
    assert.equal(record.outcome.truncated, true);
    assert.equal(record.outcome.truncatedReason, 'deadline');
  });

  it("does not let one viewer's 8 concurrent hostile searches block another token's search", async () => {
    t = await startTestServer({}, async (ws) => {
      await mkdir(join(ws, 'tree'));
      for (let i = 0; i < 300; i++) {
        await writeFile(join(ws, 'tree', `f${i}.txt`), ORDINARY.repeat(800));
      }
      await writeFile(join(ws, 'needle.txt'), 'the other token looks for this needle\n');
    });
    const hostile = await mint(t, 'flooding-viewer', 'viewer');
    const other = await mint(t, 'other-viewer', 'viewer');
    let settled = 0;
    const flood = Array.from({ length: 8 }, () =>
      t!
        .api('/search', { method: 'POST', token: hostile, body: { query: HOSTILE, regex: true } })
        .finally(() => settled++),
    );
    const mine = await t.api('/search', { method: 'POST', token: other, body: { query: 'needle' } });
    const floodSettledFirst = settled;
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assert.deepEqual(
      mine.body.matches.map((m: any) => m.path),
      ['needle.txt'],
    );
    const done = await Promise.all(flood);
    for (const res of done) assert.ok([200, 429].includes(res.status), JSON.stringify(res.body));
    assert.ok(
      floodSettledFirst < flood.length,
      `the other token's search waited for all ${flood.length} hostile searches`,
    );
    const health = await t.api('/health', { token: null });
    assert.equal(health.status, 200);
  });

  it('honours .gitignore: root and nested files, negation, directory patterns', async () => {
    t = await startTestServer({}, async (ws) => {
      const put = async (rel: string, text: string): Promise<void> => {
        await mkdir(join(ws, rel, '..'), { recursive: true });
        await writeFile(join(ws, rel), text);
      };
      await put('.gitignore', 'build/\n*.log\n!keep.log\n/rootonly.txt\n# a comment\ndocs/**/gen-*\n');
      await put('src/.gitignore', 'secret-*.txt\n!secret-ok.txt\n');
      for (const rel of [
        'src/app.ts',
        'src/secret-a.txt',
        'src/secret-ok.txt',
        'src/deep/rootonly.txt',
        'rootonly.txt',
        'build/out.js',
        'lib/build/out.js',
        'debug.log',
        'keep.log',
        'docs/a/b/gen-x.md',
        'docs/a/b/hand.md',
        '.github/workflow.yml',
        'node_modules/pkg/index.js',
      ]) {
        await put(rel, 'needle\n');
      }
    });
    const res = await t.api('/search', { method: 'POST', body: { query: 'needle' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.matches.map((m: any) => m.path),
      [
        '.github/workflow.yml',
        'docs/a/b/hand.md',
        'keep.log',
        'src/app.ts',
        'src/deep/rootonly.txt',
        'src/secret-ok.txt',
      ],
    );
    const scoped = await t.api('/search', { method: 'POST', body: { query: 'needle', path: 'src' } });
    assert.deepEqual(
      scoped.body.matches.map((m: any) => m.path),
      ['src/app.ts', 'src/deep/rootonly.txt', 'src/secret-ok.txt'],
    );
  });
});

describe('search_files walks through the confined layer (issue 9, class 2)', function () {
  this.timeout(180_000);
  let t: TestServer | undefined;
  let swapper: ChildProcess | undefined;

  afterEach(async () => {
    if (swapper && swapper.exitCode === null) {
      const exited = new Promise((r) => swapper!.once('exit', r));
      swapper.kill('SIGTERM');
      await exited;
    }
    swapper = undefined;
    await t?.close();
    t = undefined;
  });

  it('never yields content from outside the workspace or the state dir while a folder is swapped for links', async () => {
    let outside = '';
    t = await startTestServer({}, async (ws) => {
      outside = join(ws, '..', 'outside');
      await mkdir(join(outside, 'deep'), { recursive: true });
      await writeFile(join(outside, 'secret.txt'), `${OUTSIDE_SECRET} needle\n`);
      await writeFile(join(outside, 'deep', 'x.txt'), `${OUTSIDE_SECRET} needle deep\n`);
      await mkdir(join(ws, '.git'), { recursive: true });
      await writeFile(join(ws, '.git', 'config'), '[core]\n\tneedle = git-internal\n');
      await mkdir(join(ws, 'a', 'deep'), { recursive: true });
      await writeFile(join(ws, 'a', 'file.txt'), 'needle in a\n');
      await writeFile(join(ws, 'a', 'deep', 'x.txt'), 'needle deep in a\n');
    });
    const server = t;
    const ownerToken = (await readFile(join(server.stateDir, 'owner.token'), 'utf8')).trim();
    const agent = await mint(server, 'walker', 'agent');
    swapper = startSwapper(
      server.workspace,
      [outside, server.stateDir, join(server.workspace, '.git'), '/'],
      500,
    );
    const mcp = await connectMcp(server.server.mcpUrl, agent);
    const seen: string[] = [];
    // A search of the whole tree never enters .git (a search of `a` while it is a link to .git may:
    // reading .git is allowed by the default policy, like read_file of .git/config).
    const fromRoot: string[] = [];
    let found = 0;
    try {
      for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        for (const args of [
          { query: 'needle' },
          { query: 'needle', path: 'a' },
          { query: ownerToken },
          { query: OUTSIDE_SECRET.slice(0, 8), caseSensitive: false },
          { query: '[a-f0-9]{32,}', regex: true },
        ]) {
          const result = await callTool(mcp.client, 'search_files', args);
          seen.push(JSON.stringify(result));
          if (!('path' in args)) fromRoot.push(JSON.stringify(result));
          if (!result?.error) found += result.matches.length;
        }
      }
    } finally {
      await mcp.close();
    }
    const everything = seen.join('\n');
    assert.ok(!everything.includes(OUTSIDE_SECRET), 'content from outside the workspace was returned');
    assert.ok(!everything.includes(ownerToken), 'the owner token from the state dir was returned');
    assert.ok(!fromRoot.join('\n').includes('git-internal'), 'a walk of the whole tree entered .git');
    assert.ok(found > 0, 'the searches did find the workspace files');
    const verified = await server.api('/audit/verify');
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
  });
});
