import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const CLI = resolve(__dirname, '../../dist/cli.js');
const BIN = resolve(__dirname, '../../bin/mcp-workspace.js');

interface Ready {
  url: string;
  mcp: string;
  tokenFile: string;
}

function serve(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolvePromise, reject) => {
    const lines = createInterface({ input: child.stdout! });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    lines.once('line', (line) => resolvePromise({ child, ready: JSON.parse(line) as Ready }));
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
    else child.once('exit', (code) => r(code));
  });
}

function verify(workspace: string, stateDir: string): { status: number | null; stdout: string } {
  const res = spawnSync(process.execPath, [CLI, 'audit', 'verify', workspace, '--state-dir', stateDir], {
    encoding: 'utf8',
  });
  return { status: res.status, stdout: res.stdout };
}

describe('CLI: mcp-workspace serve and audit verify', function () {
  let root: string;
  let workspace: string;
  let stateDir: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcpw-cli-'));
    workspace = join(root, 'ws');
    stateDir = join(root, 'state');
    await mkdir(workspace);
    await writeFile(join(workspace, 'a.txt'), 'a');
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('prints one JSON line when ready, keeps the token 0600, and stops cleanly on SIGTERM', async () => {
    const { child, ready } = await serve([workspace, '--port', '0', '--state-dir', stateDir]);
    try {
      assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(ready.mcp, `${ready.url}/mcp`);
      assert.equal(ready.tokenFile, join(stateDir, 'owner.token'));
      assert.equal((await stat(ready.tokenFile)).mode & 0o777, 0o600);
      const token = (await readFile(ready.tokenFile, 'utf8')).trim();
      assert.ok(Buffer.from(token, 'base64url').length >= 32, 'a 256-bit token');
      const res = await fetch(`${ready.url}/files/a.txt`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited(child), 0);
    const result = verify(workspace, stateDir);
    assert.equal(result.status, 0, result.stdout);
    assert.match(result.stdout, /intact: \d+ records/);
  });

  it('takes the owner token from MCP_WORKSPACE_TOKEN and works through bin/', async () => {
    const token = 'env-token-0123456789abcdef';
    const { child, ready } = await serve([workspace, '--state-dir', stateDir], {
      MCP_WORKSPACE_TOKEN: token,
    });
    try {
      const res = await fetch(`${ready.url}/files/a.txt`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited(child), 0);
    const version = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  it('runs from the bundle alone, with no node_modules beside it', async () => {
    const alone = join(root, 'alone');
    await mkdir(alone);
    await copyFile(CLI, join(alone, 'cli.js'));
    const child = spawn(
      process.execPath,
      [join(alone, 'cli.js'), 'serve', workspace, '--state-dir', stateDir],
      {
        cwd: alone,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const line = await new Promise<string>((ok, fail) => {
      createInterface({ input: child.stdout! }).once('line', ok);
      child.once('exit', (code) => fail(new Error(`exited with ${code}`)));
    });
    try {
      const ready = JSON.parse(line) as Ready;
      const token = (await readFile(ready.tokenFile, 'utf8')).trim();
      const res = await fetch(`${ready.url}/files/a.txt`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });

  it('rejects bad arguments with usage and a non-zero exit', () => {
    for (const args of [
      ['serve'],
      ['serve', workspace, '--port', 'abc'],
      ['frobnicate'],
      ['serve', workspace, '--bogus'],
    ]) {
      const res = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
      assert.equal(res.status, 2, args.join(' '));
      assert.match(res.stderr + res.stdout, /Usage|--port/);
    }
    const missing = spawnSync(process.execPath, [CLI, 'serve', join(root, 'missing')], { encoding: 'utf8' });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /NOT_FOUND: Workspace folder not found/);
  });

  it('detects an edited, removed or reordered audit record and names it', async () => {
    const { child, ready } = await serve([workspace, '--state-dir', stateDir]);
    const token = (await readFile(ready.tokenFile, 'utf8')).trim();
    try {
      for (let i = 0; i < 6; i++) {
        await fetch(`${ready.url}/files/f${i}.txt`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ content: `v${i}` }),
        });
      }
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
    const file = join(stateDir, 'audit', 'audit.jsonl');
    const original = await readFile(file, 'utf8');
    const lines = original.trimEnd().split('\n');
    assert.ok(lines.length >= 7);
    assert.equal(verify(workspace, stateDir).status, 0);

    await writeFile(file, original.replace('"f3.txt"', '"f9.txt"'));
    let result = verify(workspace, stateDir);
    assert.equal(result.status, 1);
    const seqOf = (line: string): number => (JSON.parse(line) as { seq: number }).seq;
    const edited = lines.findIndex((l) => l.includes('"f3.txt"'));
    assert.match(result.stdout, new RegExp(`record ${seqOf(lines[edited]!)}\\b`));

    await writeFile(file, [...lines.slice(0, 3), ...lines.slice(4)].join('\n') + '\n');
    result = verify(workspace, stateDir);
    assert.equal(result.status, 1);
    assert.match(result.stdout, /record 4\b/);

    await writeFile(file, [lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n') + '\n');
    result = verify(workspace, stateDir);
    assert.equal(result.status, 1);
    assert.match(result.stdout, /record 2\b/);

    await writeFile(file, lines.slice(0, -1).join('\n') + '\n');
    result = verify(workspace, stateDir);
    assert.equal(result.status, 1, 'a removed tail record is detected too');
  });

  it('refuses a state dir inside the workspace, and never calls a moved-away log intact', async () => {
    const inside = spawnSync(
      process.execPath,
      [CLI, 'serve', workspace, '--state-dir', join(workspace, '.s')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(inside.status, 1);
    assert.match(inside.stderr, /INVALID_ARGUMENT: The state dir .* inside the workspace/);
    const { child } = await serve([workspace, '--state-dir', stateDir]);
    child.kill('SIGTERM');
    await exited(child);
    assert.equal(verify(workspace, stateDir).status, 0);
    await rename(stateDir, `${stateDir}-moved`);
    const result = verify(workspace, stateDir);
    assert.equal(result.status, 1, 'a log that is not there is not an intact empty log');
    assert.match(result.stdout, /MISSING/);
  });

  it('survives kill -9 during concurrent writes: no torn files, the audit still verifies', async function () {
    this.timeout(60_000);
    const { child, ready } = await serve([workspace, '--state-dir', stateDir]);
    const token = (await readFile(ready.tokenFile, 'utf8')).trim();
    const big = (i: number, v: number): string => `${i}:${v}:` + String(v).repeat(64 * 1024);
    let stop = false;
    const acknowledged = new Map<number, number>();
    const writers = Array.from({ length: 8 }, async (_, i) => {
      for (let v = 0; !stop; v++) {
        try {
          const res = await fetch(`${ready.url}/files/w${i}.txt`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ content: big(i, v) }),
          });
          if (res.status === 200) acknowledged.set(i, v);
        } catch {
          return;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGKILL');
    await exited(child);
    stop = true;
    await Promise.all(writers);
    assert.ok(acknowledged.size > 0, 'some writes were acknowledged before the kill');

    for (const name of await readdir(workspace)) {
      const match = /^w(\d+)\.txt$/.exec(name);
      if (!match) continue;
      const i = Number(match[1]);
      const content = await readFile(join(workspace, name), 'utf8');
      const v = Number(content.split(':')[1]);
      assert.equal(content, big(i, v), `w${i}.txt is one whole version, not torn`);
      assert.ok(v >= (acknowledged.get(i) ?? 0), `w${i}.txt holds at least the last acknowledged version`);
    }
    const result = verify(workspace, stateDir);
    assert.equal(result.status, 0, result.stdout);

    // The server restarts on the same state and keeps appending to the same chain.
    const again = await serve([workspace, '--state-dir', stateDir]);
    await fetch(`${again.ready.url}/files/a.txt`, { headers: { authorization: `Bearer ${token}` } });
    again.child.kill('SIGTERM');
    assert.equal(await exited(again.child), 0);
    assert.equal(verify(workspace, stateDir).status, 0);
  });
});
