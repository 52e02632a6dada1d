import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RunnerClient,
  runnerBinaryPath,
  type RunnerExit,
  type RunnerProcess,
  type RunnerSpawnSpec,
} from '../../src/core/execution/runner';
import { WorkspaceError } from '../../src/protocol/errors';

const ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

interface Collected {
  stdout: string;
  stderr: string;
  /** Output events in arrival order. */
  events: Array<['stdout' | 'stderr', string]>;
  exit: RunnerExit;
}

/** Collects a process's output until it exits. */
async function collect(proc: RunnerProcess): Promise<Collected> {
  const events: Collected['events'] = [];
  proc.on('stdout', (data: Buffer) => events.push(['stdout', data.toString()]));
  proc.on('stderr', (data: Buffer) => events.push(['stderr', data.toString()]));
  const exit = await proc.exited;
  const text = (stream: string) =>
    events
      .filter(([s]) => s === stream)
      .map(([, d]) => d)
      .join('');
  return { stdout: text('stdout'), stderr: text('stderr'), events, exit };
}

/** Resolves with the next `'started'` pid of `proc`. */
function startedPid(proc: RunnerProcess): Promise<number> {
  return new Promise((resolve) => proc.once('started', resolve));
}

/** Resolves once the accumulated stdout of `proc` matches `pattern`. */
function waitForOutput(proc: RunnerProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (data: Buffer) => {
      text += data.toString();
      if (pattern.test(text)) {
        proc.off('stdout', onData);
        resolve(text);
      }
    };
    proc.on('stdout', onData);
  });
}

/** Whether `pid` is a live (non-zombie) process. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `pid` is gone (zombies count as gone); false if it still lives after `ms`. */
async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const delay = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));

describe('execution: mcpw-runner', function () {
  this.timeout(20_000);

  let child: ChildProcess;
  let client: RunnerClient;
  let runnerExited: Promise<number | null>;

  before(() => {
    // Fails with gcc's (or the install hint's) output in the message.
    execFileSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build-runner.js')], {
      stdio: 'pipe',
    });
  });

  beforeEach(() => {
    child = spawn(runnerBinaryPath(), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    runnerExited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    client = new RunnerClient(child.stdin!, child.stdout!);
  });

  afterEach(async () => {
    client.close();
    await runnerExited;
  });

  const run = (spec: Partial<RunnerSpawnSpec> & { argv: string[] }) =>
    collect(client.spawn({ cwd: '/', env: ENV, ...spec }));

  describe('output and exit', () => {
    it('separates stdout and stderr and keeps their order', async () => {
      const simple = await run({ argv: ['sh', '-c', 'echo a; echo b >&2; echo c'] });
      assert.equal(simple.stdout, 'a\nc\n');
      assert.equal(simple.stderr, 'b\n');
      assert.deepEqual(simple.exit, { exitCode: 0, signal: null, truncated: false, oomKilled: false });

      const paced = await run({ argv: ['sh', '-c', 'echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c'] });
      assert.deepEqual(paced.events, [
        ['stdout', 'a\n'],
        ['stderr', 'b\n'],
        ['stdout', 'c\n'],
      ]);
    });

    it('reports exit codes and the pid', async () => {
      const proc = client.spawn({ argv: ['true'], cwd: '/', env: ENV });
      const pid = await startedPid(proc);
      assert.ok(Number.isInteger(pid) && pid > 0);
      assert.equal((await proc.exited).exitCode, 0);
      const three = await run({ argv: ['sh', '-c', 'exit 3'] });
      assert.deepEqual(three.exit, { exitCode: 3, signal: null, truncated: false, oomKilled: false });
    });

    it('reports a missing program as 127 with the error text', async () => {
      const { exit } = await run({ argv: ['mcpw-no-such-command'] });
      assert.equal(exit.exitCode, 127);
      assert.equal(exit.signal, null);
      assert.match(exit.error ?? '', /^exec mcpw-no-such-command: No such file or directory$/);
      const absolute = await run({ argv: ['/nonexistent/tool'] });
      assert.equal(absolute.exit.exitCode, 127);
    });

    it('reports a bad cwd as 126 and a non-executable file as 126', async () => {
      const { exit } = await run({ argv: ['true'], cwd: '/nonexistent-dir' });
      assert.equal(exit.exitCode, 126);
      assert.match(exit.error ?? '', /^chdir \/nonexistent-dir: No such file or directory$/);
      const dir = await mkdtemp(join(tmpdir(), 'mcpw-runner-'));
      try {
        await writeFile(join(dir, 'data.txt'), 'not a program');
        const noExec = await run({ argv: ['./data.txt'], cwd: dir });
        assert.equal(noExec.exit.exitCode, 126);
        assert.match(noExec.exit.error ?? '', /Permission denied/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('runs in the requested cwd', async () => {
      const { stdout } = await run({ argv: ['pwd'], cwd: '/tmp' });
      assert.equal(stdout, '/tmp\n');
    });
  });

  describe('stdin and environment', () => {
    it('round-trips stdin through cat, including megabytes', async () => {
      const proc = client.spawn({ argv: ['cat'], cwd: '/', env: ENV, stdin: true });
      const result = collect(proc);
      proc.writeStdin('hello ');
      proc.writeStdin(Buffer.from('world\n'));
      const big = Buffer.alloc(5 * 1024 * 1024 + 17, 'x');
      proc.writeStdin(big);
      proc.endStdin();
      const { stdout, exit } = await result;
      assert.equal(exit.exitCode, 0);
      assert.equal(stdout.length, 12 + big.length);
      assert.ok(stdout.startsWith('hello world\nxxx'));
    });

    it('gives /dev/null as stdin without stdin: true and rejects writes', async () => {
      const proc = client.spawn({ argv: ['cat'], cwd: '/', env: ENV });
      assert.throws(
        () => proc.writeStdin('x'),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_ARGUMENT',
      );
      const { stdout, exit } = await collect(proc);
      assert.equal(stdout, '');
      assert.equal(exit.exitCode, 0);
    });

    it('passes exactly the given environment', async () => {
      const { stdout } = await run({ argv: ['/usr/bin/env'], env: { FOO: 'bar', EMPTY: '', 'A B': 'c d' } });
      assert.deepEqual(stdout.split('\n').filter(Boolean).sort(), ['A B=c d', 'EMPTY=', 'FOO=bar']);
    });

    it('looks programs up in the PATH of the given env, with a default PATH', async () => {
      const noPath = await run({ argv: ['env'], env: { ONLY: '1' } });
      assert.equal(noPath.stdout, 'ONLY=1\n');

      const dir = await mkdtemp(join(tmpdir(), 'mcpw-runner-'));
      try {
        await writeFile(join(dir, 'mcpw-tool'), '#!/bin/sh\necho tool "$@"\n');
        await writeFile(join(dir, 'mcpw-noshebang'), 'echo plain script\n');
        await chmod(join(dir, 'mcpw-tool'), 0o755);
        await chmod(join(dir, 'mcpw-noshebang'), 0o755);
        const env = { PATH: `/nonexistent:${dir}:/usr/bin:/bin` };
        assert.equal((await run({ argv: ['mcpw-tool', 'x'], env })).stdout, 'tool x\n');
        assert.equal((await run({ argv: ['mcpw-noshebang'], env })).stdout, 'plain script\n');
        assert.equal((await run({ argv: ['mcpw-tool'], env: ENV })).exit.exitCode, 127);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('rejects invalid specs before sending them', () => {
      const invalid = (spec: RunnerSpawnSpec) =>
        assert.throws(
          () => client.spawn(spec),
          (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_ARGUMENT',
        );
      invalid({ argv: [], cwd: '/', env: {} });
      invalid({ argv: ['a\0b'], cwd: '/', env: {} });
      invalid({ argv: ['true'], cwd: '/', env: { 'A=B': 'c' } });
      invalid({ argv: ['true'], cwd: '/', env: {}, outputCapBytes: -1 });
      invalid({ argv: ['x'.repeat(2 * 1024 * 1024)], cwd: '/', env: {} });
    });
  });

  describe('signals', () => {
    it('SIGTERM kills the whole process tree', async () => {
      const proc = client.spawn({
        argv: ['sh', '-c', 'sleep 100 & echo $!; sleep 100 & echo $!; wait'],
        cwd: '/',
        env: ENV,
      });
      const result = collect(proc);
      const text = await waitForOutput(proc, /^\d+\n\d+\n$/);
      const pids = text.trim().split('\n').map(Number);
      proc.signal('SIGTERM');
      const { exit } = await result;
      assert.deepEqual(exit, { exitCode: null, signal: 'SIGTERM', truncated: false, oomKilled: false });
      for (const pid of pids) assert.ok(await waitGone(pid), `grandchild ${pid} survived SIGTERM`);
    });

    it('a process that ignores SIGTERM survives it and dies on SIGKILL', async () => {
      const proc = client.spawn({
        argv: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'],
        cwd: '/',
        env: ENV,
      });
      await waitForOutput(proc, /ready/);
      proc.signal('SIGTERM');
      assert.equal(await Promise.race([proc.exited, delay(300)]), 'timeout');
      proc.signal('SIGKILL');
      const exit = await proc.exited;
      assert.equal(exit.exitCode, null);
      assert.equal(exit.signal, 'SIGKILL');
      assert.equal(exit.oomKilled, false);
    });

    it('SIGINT reaches the process', async () => {
      const proc = client.spawn({ argv: ['sleep', '100'], cwd: '/', env: ENV });
      await startedPid(proc);
      proc.signal('SIGINT');
      assert.equal((await proc.exited).signal, 'SIGINT');
      proc.signal('SIGKILL'); // after exit: a no-op
    });
  });

  describe('lifecycle', () => {
    it('does not wait forever for a background grandchild holding the pipes', async () => {
      const { stdout, exit } = await run({ argv: ['sh', '-c', 'sleep 60 & echo $!'] });
      assert.equal(exit.exitCode, 0);
      const pid = Number(stdout.trim());
      assert.ok(pid > 0);
      // The grandchild keeps running (it is not the runner's to kill); clean it up here.
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitGone(pid));
    });

    it('caps output, keeps draining, and answers pings during a flood', async () => {
      const cap = 1_000_000;
      const capped = await run({ argv: ['sh', '-c', 'yes | head -c 50000000'], outputCapBytes: cap });
      assert.equal(capped.exit.exitCode, 0);
      assert.equal(capped.exit.truncated, true);
      assert.equal(capped.stdout.length, cap);

      const flood = client.spawn({ argv: ['yes'], cwd: '/', env: ENV, outputCapBytes: 4096 });
      let settled = false;
      const floodExit = flood.exited.then((exit) => {
        settled = true;
        return exit;
      });
      await waitForOutput(flood, /y/);
      for (let i = 0; i < 5; i++) {
        const ms = await client.ping();
        assert.ok(Number.isFinite(ms) && ms >= 0);
      }
      assert.equal(settled, false, 'the endless flood must still be running while pings are answered');
      flood.signal('SIGKILL');
      const exit = await floodExit;
      assert.equal(exit.signal, 'SIGKILL');
      assert.equal(exit.truncated, true);

      const uncapped = await run({ argv: ['sh', '-c', 'head -c 3000000 /dev/zero'] });
      assert.equal(uncapped.stdout.length, 3_000_000);
      assert.equal(uncapped.exit.truncated, false);
    });

    it('runs 50 processes concurrently', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          run({ argv: ['sh', '-c', `sleep 0.1; echo ${i}; exit ${i % 4}`] }),
        ),
      );
      results.forEach((result, i) => {
        assert.equal(result.stdout, `${i}\n`);
        assert.equal(result.exit.exitCode, i % 4);
      });
    });

    it('rejects processes beyond the limit of 256', async () => {
      const sleepers = Array.from({ length: 256 }, () =>
        client.spawn({ argv: ['sleep', '100'], cwd: '/', env: ENV }),
      );
      await Promise.all(sleepers.map(startedPid));
      const extra = await run({ argv: ['true'] });
      assert.equal(extra.exit.exitCode, 126);
      assert.match(extra.exit.error ?? '', /too many processes/);
      for (const proc of sleepers) proc.signal('SIGKILL');
      await Promise.all(sleepers.map((proc) => proc.exited));
      assert.equal((await run({ argv: ['true'] })).exit.exitCode, 0);
    });

    it('answers pings', async () => {
      const times: number[] = [];
      for (let i = 0; i < 100; i++) times.push(await client.ping());
      assert.ok(times.every((ms) => Number.isFinite(ms) && ms >= 0));
    });

    it('closing the client kills running children and settles them', async () => {
      const proc = client.spawn({ argv: ['sh', '-c', 'sleep 100 & sleep 100'], cwd: '/', env: ENV });
      const pid = await startedPid(proc);
      let closedCalls = 0;
      client.onClose(() => closedCalls++);
      client.close();
      proc.signal('SIGTERM'); // dropped: the stream is ended, and must not look like a lost connection
      assert.equal(client.closed, true);
      assert.equal(closedCalls, 1);
      assert.equal(await runnerExited, 0);
      assert.equal(await isAlive(pid), false);
      const exit = await proc.exited;
      assert.equal(exit.signal, 'SIGKILL');
      assert.throws(
        () => client.spawn({ argv: ['true'], cwd: '/', env: ENV }),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'SANDBOX_UNAVAILABLE',
      );
      await assert.rejects(client.ping(), (err: unknown) => err instanceof WorkspaceError);
    });

    it('settles pending work when the runner dies', async () => {
      const proc = client.spawn({ argv: ['sleep', '100'], cwd: '/', env: ENV });
      const pid = await startedPid(proc);
      const closed = new Promise<void>((resolve) => client.onClose(resolve));
      child.kill('SIGKILL');
      const exit = await proc.exited;
      assert.deepEqual(exit, {
        exitCode: null,
        signal: null,
        truncated: false,
        oomKilled: false,
        error: 'runner connection lost',
      });
      await closed;
      assert.equal(client.closed, true);
      process.kill(pid, 'SIGKILL');
    });

    it('stops cleanly on SIGTERM', async () => {
      const proc = client.spawn({ argv: ['sleep', '100'], cwd: '/', env: ENV });
      const pid = await startedPid(proc);
      child.kill('SIGTERM');
      assert.equal(await runnerExited, 0);
      assert.equal((await proc.exited).signal, 'SIGKILL');
      assert.equal(await isAlive(pid), false);
    });
  });
});
