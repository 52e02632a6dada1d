import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/** Every path under `dir` (relative), depth first. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    out.push(rel);
    if (entry.isDirectory()) out.push(...(await walk(join(dir, entry.name), rel + '/')));
  }
  return out;
}

/**
 * The create guard in the session container (issue 9: what a file tool may not create, a command
 * may not create either): no command can make a `.git` or a `*.code-workspace` anywhere in the
 * workspace, even by racing the check, while ordinary creation keeps working.
 */
describe('Security: commands cannot create names host tools trust (real engine)', function () {
  this.timeout(300_000);
  let t: TestServer;
  let agent: string;

  before(async function () {
    this.timeout(600_000);
    ensureDocker();
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await mkdir(join(ws, 'src'));
    });
    const set = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'guard', rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)'] },
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'mallory', role: 'agent' } })).body.token;
  });
  after(async () => {
    await t?.close();
  });

  async function sh(command: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const res = await t.api('/execute', { method: 'POST', body: { command }, token: agent });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  }

  const forbidden = (path: string): boolean =>
    path
      .split('/')
      .some((part) => part.toLowerCase() === '.git' || part.toLowerCase().endsWith('.code-workspace'));

  it('refuses every way of creating .git or *.code-workspace, at any depth and in any case', async () => {
    // The container is up (its protected placeholders, such as an empty root .git, are in place).
    assert.equal((await sh('true')).exitCode, 0);
    const before = new Set((await walk(t.workspace)).filter(forbidden));
    const attempts = [
      'mkdir sub && mkdir sub/.git',
      'mkdir -p deep/a/b/.git/hooks',
      'mkdir .GiT',
      'touch sub/.git',
      'echo "gitdir: /tmp/evil" > sub/.git',
      'echo x > team.code-workspace',
      'echo x >> sub/Team.CODE-WORKSPACE',
      'echo data > sub/plain && mv sub/plain sub/.git',
      'mkdir sub/repo && mv sub/repo sub/.git',
      'ln -s /tmp sub/.git',
      'echo data > sub/f && ln sub/f sub/.git',
      'echo data > sub/g && cp sub/g sub/.git',
      'mkdir -p /tmp/src/.git && cp -r /tmp/src/.git sub/',
      'mkdir -p /tmp/tree/x/.git && tar -C /tmp/tree -cf /tmp/t.tar x && tar -C sub -xf /tmp/t.tar',
      'ln -s .git sub/dangling && echo "gitdir: /tmp" > sub/dangling',
      'ln -s ../other/.git sub/up && mkdir -p other && touch sub/up',
      'cd sub && mkdir .git',
    ];
    for (const command of attempts) {
      const result = await sh(command);
      // Some tools (busybox tar) report the refusal but still exit 0: the walk below is the proof.
      assert.ok(
        result.exitCode !== 0 || /not permitted/.test(result.stderr),
        `${command} must be refused: ${JSON.stringify(result)}`,
      );
    }
    const made = (await walk(t.workspace)).filter((path) => forbidden(path) && !before.has(path));
    assert.deepEqual(made, [], 'nothing host tools trust was created');
    const denied = await sh('mkdir sub/.git');
    assert.match(denied.stderr, /Operation not permitted/);
  });

  it('leaves the rest of the container alone: repositories in /tmp or caches still work', async () => {
    const result = await sh('mkdir -p /tmp/clone/.git && echo x > /tmp/clone/a.code-workspace && echo ok');
    assert.equal(result.exitCode, 0, JSON.stringify(result));
    assert.equal(result.stdout, 'ok\n');
  });

  it('keeps ordinary creation working: files, folders, renames, links, umask, fds', async () => {
    const result = await sh(
      [
        'set -e',
        'mkdir -p build/out/nested',
        'echo one > build/a.txt',
        'echo two >> build/a.txt',
        'mv build/a.txt build/b.txt',
        'ln -s b.txt build/link',
        'ln build/b.txt build/hard',
        'cp build/b.txt build/c.txt',
        'touch build/.gitignore build/.github-not-git build/git',
        'umask 077 && touch build/private',
        'exec 3> build/fd.txt && echo via-fd >&3 && exec 3>&-',
        'mkfifo build/pipe',
        'stat -c "%a %n" build/private',
        'cat build/link build/fd.txt',
        'ls -a build | tr "\\n" " "',
      ].join('\n'),
    );
    assert.equal(result.exitCode, 0, JSON.stringify(result));
    assert.match(result.stdout, /^600 build\/private$/m);
    assert.match(result.stdout, /one\ntwo\nvia-fd\n/);
    for (const name of [
      'b.txt',
      'link',
      'hard',
      'c.txt',
      '.gitignore',
      '.github-not-git',
      'git',
      'pipe',
      'out',
    ]) {
      assert.ok(
        existsSync(join(t.workspace, 'build', name)) || (await lstat(join(t.workspace, 'build', name))),
        name,
      );
    }
  });

  it('cannot be raced: a thread flipping the path after the check never gets .git created (30 runs)', async function () {
    // A static binary (the host's gcc, as for the runner) so it runs in any image.
    const source = join(__dirname, 'fixtures', 'race-create.c');
    execFileSync('gcc', ['-static', '-O2', '-pthread', '-o', join(t.workspace, 'race-create'), source]);
    for (let attempt = 0; attempt < 30; attempt++) {
      const result = await sh(`mkdir -p race && ./race-create race 300`);
      assert.equal(result.exitCode, 0, JSON.stringify(result));
      // The allowed name was created (and removed) many times: the race was really run.
      assert.ok(Number(result.stdout.trim()) > 0, JSON.stringify(result));
      assert.equal(existsSync(join(t.workspace, 'race', '.git')), false, `attempt ${attempt} made race/.git`);
    }
    const verified = await t.server.audit.verify();
    assert.equal(verified.ok, true);
  });
});
