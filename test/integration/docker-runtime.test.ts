import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  DockerRuntime,
  type DockerRuntimeOptions,
  type Sandbox,
  type ProgressEvent,
  type RunnerExit,
} from '../../src/core/execution';
import { WorkspaceError } from '../../src/protocol/errors';

const REPO = join(__dirname, '..', '..');
const IMAGE = 'mcpw-test-busybox:1';
const DENY_ALL = { allows: () => false };
const MiB = 1024 * 1024;

interface Result {
  stdout: string;
  stderr: string;
  exit: RunnerExit;
}

/** Runs `argv` in the sandbox and collects its output. */
async function run(
  sandbox: Sandbox,
  argv: string[],
  options: { cwd?: string; stdin?: string } = {},
): Promise<Result> {
  const proc = sandbox.exec({
    argv,
    cwd: options.cwd ?? '/',
    env: {},
    outputCapBytes: MiB,
    stdin: options.stdin !== undefined,
  });
  let stdout = '';
  let stderr = '';
  proc.on('stdout', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  proc.on('stderr', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  if (options.stdin !== undefined) {
    proc.writeStdin(options.stdin);
    proc.endStdin();
  }
  const exit = await proc.exited;
  return { stdout, stderr, exit };
}

async function sh(sandbox: Sandbox, script: string): Promise<Result> {
  return run(sandbox, ['sh', '-c', script]);
}

async function expectError(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<WorkspaceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WorkspaceError, `expected a WorkspaceError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected ${code}`);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

describe('Docker runtime (real engine)', function () {
  this.timeout(120_000);

  let workspace: string;
  let stateId: string;
  const runtimes: DockerRuntime[] = [];
  const images: string[] = [];

  before(function () {
    this.timeout(600_000);
    const out = execFileSync('bash', [join(REPO, 'scripts', 'provision-docker.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const last = out.trim().split('\n').pop() ?? '';
    assert.match(last, /^DOCKER_HOST=\S+$/);
    process.env.DOCKER_HOST = last.slice('DOCKER_HOST='.length);
    execFileSync('node', [join(REPO, 'scripts', 'build-runner.js')], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  });

  beforeEach(async () => {
    workspace = await realpath(await mkdtemp(join(tmpdir(), 'mcpw-ws-')));
    stateId = randomBytes(8).toString('hex');
  });

  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((runtime) => runtime.close()));
    const docker = new DockerRuntime({ workspace, stateId, defaultImage: IMAGE, permissions: DENY_ALL });
    await docker.cleanupOrphans();
    await docker.close();
    for (const image of images.splice(0)) {
      await (
        await docker.client()
      )
        .getImage(image)
        .remove({ force: true })
        .catch(() => undefined);
    }
    await rm(workspace, { recursive: true, force: true });
  });

  function runtime(options: Partial<DockerRuntimeOptions> = {}): DockerRuntime {
    const created = new DockerRuntime({
      workspace,
      stateId,
      defaultImage: IMAGE,
      permissions: DENY_ALL,
      ...options,
    });
    runtimes.push(created);
    return created;
  }

  async function config(value: unknown, text?: string): Promise<void> {
    await mkdir(join(workspace, '.devcontainer'), { recursive: true });
    await writeFile(join(workspace, '.devcontainer', 'devcontainer.json'), text ?? JSON.stringify(value));
  }

  async function inspect(rt: DockerRuntime, id: string) {
    return (await rt.client()).getContainer(id).inspect();
  }

  async function gone(rt: DockerRuntime, id: string): Promise<boolean> {
    return inspect(rt, id).then(
      () => false,
      (error: { statusCode?: number }) => error.statusCode === 404,
    );
  }

  const session = (id: string, extra: Partial<{ readOnly: boolean; network: boolean }> = {}) => ({
    sessionId: id,
    agent: 'alice',
    readOnly: false,
    network: false,
    ...extra,
  });

  describe('engine', () => {
    it('answers ensureEngine on the provisioned engine', async () => {
      await runtime().ensureEngine();
    });

    it('reports SANDBOX_UNAVAILABLE with how to start an engine when DOCKER_HOST is wrong', async () => {
      const saved = process.env.DOCKER_HOST;
      process.env.DOCKER_HOST = `unix://${join(workspace, 'missing.sock')}`;
      let rt: DockerRuntime;
      try {
        rt = runtime();
      } finally {
        if (saved === undefined) delete process.env.DOCKER_HOST;
        else process.env.DOCKER_HOST = saved;
      }
      const error = await expectError(rt.ensureEngine(), 'SANDBOX_UNAVAILABLE', /missing\.sock/);
      assert.match(error.message, /systemctl start docker/);
      assert.match(error.message, /provision-docker\.sh/);
      assert.match(error.message, /DOCKER_HOST/);
      await expectError(rt.acquire(session('s1')), 'SANDBOX_UNAVAILABLE');
    });
  });

  describe('resolveEnvironment', () => {
    it('uses the default image when there is no devcontainer config', async () => {
      const env = await runtime().resolveEnvironment();
      assert.deepEqual(env, {
        image: IMAGE,
        source: 'default',
        configPath: null,
        workspaceFolder: `/workspaces/${basename(workspace)}`,
        containerEnv: {},
        remoteEnv: {},
        user: null,
        extraHostConfig: {},
        buildInputs: null,
      });
    });

    it('uses a local `image`, with env, user, folder and JSONC comments', async () => {
      await writeFile(
        join(workspace, '.devcontainer.json'),
        `// a comment
        {
          /* block comment */
          "image": "${IMAGE}",
          "workspaceFolder": "/work/\${localWorkspaceFolderBasename}",
          "containerEnv": { "FOO": "bar", "WS": "\${containerWorkspaceFolder}" },
          "remoteEnv": { "PATH": "\${containerEnv:PATH}:/extra", "SECRET": "\${localEnv:HOME}" },
          "remoteUser": "nobody",
          "features": {},
        }`,
      );
      const denied = await expectError(runtime().resolveEnvironment(), 'POLICY_DENIED', /allow env\(PATH\)/);
      assert.equal(denied.details?.key, 'PATH', 'remoteEnv may not choose PATH without the owner naming it');
      const env = await runtime({
        permissions: { allows: () => false, allowsEnv: (key) => key === 'PATH' },
      }).resolveEnvironment();
      assert.equal(env.source, 'devcontainer-image');
      assert.equal(env.image, IMAGE);
      assert.equal(env.configPath, join(workspace, '.devcontainer.json'));
      assert.equal(env.workspaceFolder, `/work/${basename(workspace)}`);
      assert.deepEqual(env.containerEnv, { FOO: 'bar', WS: `/work/${basename(workspace)}` });
      assert.equal(env.remoteEnv.PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/extra');
      assert.equal(env.remoteEnv.SECRET, '', 'host environment variables never reach the container');
      assert.equal(env.user, 'nobody');
    });

    it('reports an image that is neither local nor pullable, naming it', async () => {
      await config({ image: 'mcpw-no-such-image:42' });
      const error = await expectError(
        runtime().resolveEnvironment(),
        'SANDBOX_UNAVAILABLE',
        /mcpw-no-such-image:42/,
      );
      assert.match(error.message, /docker build -t mcpw-no-such-image:42/);
    });

    it('reports invalid JSONC with its line and column', async () => {
      await config(null, '{\n  "image": "x",\n  "broken": ,\n}');
      const error = await expectError(runtime().resolveEnvironment(), 'INVALID_ARGUMENT', /line 3/);
      assert.equal(error.details?.line, 3);
    });

    it('builds build.dockerfile once, with args, and reuses the cached tag', async () => {
      await config({ build: { dockerfile: 'Dockerfile', context: '.', args: { GREETING: 'hello' } } });
      await writeFile(
        join(workspace, '.devcontainer', 'Dockerfile'),
        `FROM ${IMAGE}\nARG GREETING\nRUN echo built $GREETING > /built.txt\n`,
      );
      const first: ProgressEvent[] = [];
      const env = await runtime({ onProgress: (e) => first.push(e) }).resolveEnvironment();
      images.push(env.image);
      assert.equal(env.source, 'devcontainer-build');
      assert.match(env.image, /^mcpw-build-[0-9a-f]{16}:latest$/);
      assert.ok(first.some((e) => e.phase === 'build' && /Step \d+\/\d+/.test(e.message)));
      const imageId = (await (await runtimes[0].client()).getImage(env.image).inspect()).Id;

      const second: ProgressEvent[] = [];
      const again = runtime({ onProgress: (e) => second.push(e) });
      const env2 = await again.resolveEnvironment();
      assert.equal(env2.image, env.image);
      assert.equal((await (await again.client()).getImage(env2.image).inspect()).Id, imageId);
      assert.equal(second.filter((e) => e.phase === 'build').length, 0, 'no rebuild');

      const sandbox = await again.acquire(session('build'));
      const out = await run(sandbox, ['cat', '/built.txt']);
      assert.equal(out.stdout, 'built hello\n');
    });

    it('refuses runArgs unless the owner allows them, and maps the allowed flags', async () => {
      await config({ image: IMAGE, runArgs: ['--privileged', '--cap-add=SYS_PTRACE', '-e', 'X=1'] });
      const error = await expectError(runtime().resolveEnvironment(), 'POLICY_DENIED', /runArgs/);
      assert.match(error.message, /allow tool\(devcontainer\.runArgs\)/);

      const env = await runtime({
        permissions: { allows: (field) => field === 'runArgs' },
      }).resolveEnvironment();
      assert.deepEqual(env.extraHostConfig, { Privileged: true, CapAdd: ['SYS_PTRACE'] });
      assert.equal(env.containerEnv.X, '1');

      await config({ image: IMAGE, runArgs: ['--network=host'] });
      await expectError(
        runtime({ permissions: { allows: () => true } }).resolveEnvironment(),
        'INVALID_ARGUMENT',
        /--network=host/,
      );
    });

    it('refuses privileged fields without permission and initializeCommand always', async () => {
      await config({ image: IMAGE, mounts: ['type=bind,source=/,target=/host'] });
      await expectError(
        runtime().resolveEnvironment(),
        'POLICY_DENIED',
        /allow tool\(devcontainer\.mounts\)/,
      );
      const env = await runtime({ permissions: { allows: () => true } }).resolveEnvironment();
      assert.deepEqual(env.extraHostConfig.Mounts, [
        { Type: 'bind', Source: '/', Target: '/host', ReadOnly: false },
      ]);

      await config({ image: IMAGE, privileged: true });
      await expectError(runtime().resolveEnvironment(), 'POLICY_DENIED', /devcontainer\.privileged/);

      await config({ image: IMAGE, initializeCommand: 'echo pwned' });
      await expectError(
        runtime({ permissions: { allows: () => true } }).resolveEnvironment(),
        'POLICY_DENIED',
        /initializeCommand/,
      );
    });
  });

  describe('session containers', () => {
    it('runs commands through the runner, warm on reuse', async () => {
      const rt = runtime();
      const sandbox = await rt.acquire(session('s1'));
      const out = await run(sandbox, ['echo', 'hi']);
      assert.equal(out.stdout, 'hi\n');
      assert.equal(out.exit.exitCode, 0);
      assert.ok((await sandbox.ping()) >= 0);
      const again = await rt.acquire(session('s1'));
      assert.equal(again.id, sandbox.id);
      const cat = await run(again, ['cat'], { stdin: 'from stdin' });
      assert.equal(cat.stdout, 'from stdin');
    });

    it('gives commands the container environment under their own env', async () => {
      await config({ image: IMAGE, containerEnv: { FOO: 'bar' } });
      const sandbox = await runtime().acquire(session('env'));
      const proc = sandbox.exec({ argv: ['env'], cwd: '/', env: { MINE: '1' }, outputCapBytes: MiB });
      let stdout = '';
      proc.on('stdout', (chunk: Buffer) => (stdout += chunk.toString()));
      await proc.exited;
      assert.match(stdout, /^FOO=bar$/m);
      assert.match(stdout, /^MINE=1$/m);
      assert.match(stdout, /^PATH=\//m);
      assert.match(stdout, /^HOME=\//m);
    });

    it('mounts the workspace writable at /workspaces/<name>, with .git read-only', async () => {
      await mkdir(join(workspace, '.git'));
      await writeFile(join(workspace, '.git', 'HEAD'), 'ref: refs/heads/main\n');
      const folder = `/workspaces/${basename(workspace)}`;
      const sandbox = await runtime().acquire(session('rw'));
      assert.equal((await run(sandbox, ['pwd'], { cwd: folder })).stdout, `${folder}\n`);
      const write = await sh(sandbox, `echo made > ${folder}/made.txt`);
      assert.equal(write.exit.exitCode, 0, write.stderr);
      assert.ok(existsSync(join(workspace, 'made.txt')));
      const git = await sh(sandbox, `echo evil > ${folder}/.git/HEAD`);
      assert.notEqual(git.exit.exitCode, 0);
      assert.match(git.stderr, /Read-only file system/);
      assert.notEqual((await sh(sandbox, `touch ${folder}/.git/new`)).exit.exitCode, 0);
      assert.notEqual((await sh(sandbox, `rm -rf ${folder}/.git`)).exit.exitCode, 0);
      assert.ok(existsSync(join(workspace, '.git', 'HEAD')));
    });

    it('mounts the workspace read-only for a read-only session', async () => {
      const folder = `/workspaces/${basename(workspace)}`;
      await writeFile(join(workspace, 'seen.txt'), 'seen\n');
      const sandbox = await runtime().acquire(session('ro', { readOnly: true }));
      assert.equal((await run(sandbox, ['cat', `${folder}/seen.txt`])).stdout, 'seen\n');
      const write = await sh(sandbox, `echo x > ${folder}/made.txt`);
      assert.notEqual(write.exit.exitCode, 0);
      assert.match(write.stderr, /Read-only file system/);
      assert.ok(!existsSync(join(workspace, 'made.txt')));
    });

    describe('network', () => {
      let servers: Server[] = [];
      afterEach(async () => {
        await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
        servers = [];
      });

      async function serve(host: string): Promise<string> {
        const server = createServer((_req, res) => res.end('reached\n'));
        servers.push(server);
        await new Promise<void>((done) => server.listen(0, host, done));
        return `http://${host}:${(server.address() as AddressInfo).port}/`;
      }

      it('has no network unless the session asks for one', async () => {
        const rt = runtime();
        // The address a container uses to reach the host is its default route's gateway. Read it
        // from inside a networked container: an engine need not list a Gateway in the bridge's IPAM
        // config (a freshly started dockerd lists only the Subnet), and the bridge may be any one.
        const online = await rt.acquire(session('online', { network: true }));
        const route = await run(online, ['ip', 'route', 'show', 'default']);
        const gateway = /^default via (\S+)/m.exec(route.stdout)?.[1];
        assert.ok(gateway, `a networked container has a default route (${route.stdout}${route.stderr})`);
        const onGateway = await serve(gateway);
        const onLoopback = await serve('127.0.0.1');

        const isolated = await rt.acquire(session('offline'));
        for (const url of [onGateway, onLoopback]) {
          const out = await sh(isolated, `timeout 5 wget -q -O - ${url}`);
          assert.notEqual(out.exit.exitCode, 0, `reached ${url}`);
          assert.doesNotMatch(out.stdout, /reached/);
        }
        const links = await run(isolated, ['ip', '-o', 'link']);
        assert.deepEqual(
          links.stdout
            .trim()
            .split('\n')
            .map((line) => line.split(': ')[1]),
          ['lo'],
        );

        const out = await sh(online, `timeout 5 wget -q -O - ${onGateway}`);
        assert.equal(
          out.stdout,
          'reached\n',
          `control: a networked session reaches the host bridge (${out.stderr})`,
        );
        const inspected = await inspect(rt, online.id);
        assert.equal(inspected.HostConfig.NetworkMode, 'bridge');
      });
    });

    it('isolates sessions: processes and /tmp', async () => {
      const rt = runtime();
      const a = await rt.acquire(session('a'));
      const b = await rt.acquire({ ...session('b'), agent: 'bob' });
      assert.notEqual(a.id, b.id);
      const sleeper = a.exec({ argv: ['sleep', '4242'], cwd: '/', env: {}, outputCapBytes: MiB });
      await sh(a, 'echo secret > /tmp/a-secret');
      assert.match((await run(a, ['ps'])).stdout, /sleep 4242/);
      assert.doesNotMatch((await run(b, ['ps'])).stdout, /sleep 4242/);
      assert.equal((await run(b, ['cat', '/tmp/a-secret'])).exit.exitCode, 1);
      assert.equal((await run(a, ['cat', '/tmp/a-secret'])).stdout, 'secret\n');
      sleeper.signal('SIGKILL');
      assert.equal((await sleeper.exited).signal, 'SIGKILL');
    });

    it('hardens the container (visible in docker inspect)', async () => {
      const rt = runtime({
        limits: { pidsLimit: 100, memoryBytes: 256 * MiB, nanoCpus: 1e9, tmpfsBytes: 16 * MiB },
      });
      const sandbox = await rt.acquire(session('hardened-session-with-long-id'));
      const info = await inspect(rt, sandbox.id);
      assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
      assert.ok(info.HostConfig.SecurityOpt?.includes('no-new-privileges'));
      assert.equal(info.HostConfig.PidsLimit, 100);
      assert.equal(info.HostConfig.Memory, 256 * MiB);
      assert.equal(info.HostConfig.MemorySwap, 256 * MiB);
      assert.equal(info.HostConfig.NanoCpus, 1e9);
      assert.equal(info.HostConfig.NetworkMode, 'none');
      assert.equal(info.HostConfig.Init, true);
      assert.equal(info.HostConfig.Privileged, false);
      const folder = `/workspaces/${basename(workspace)}`;
      const placeholder = 'ro,nosuid,nodev,noexec,size=4k';
      assert.deepEqual(info.HostConfig.Tmpfs, {
        '/tmp': `rw,nosuid,nodev,size=${16 * MiB}`,
        ...Object.fromEntries(
          [
            '.git',
            '.vscode',
            '.devcontainer',
            '.cursor',
            '.claude',
            '.husky',
            '.githooks',
            '.mcp-workspace',
          ].map((name) => [`${folder}/${name}`, placeholder]),
        ),
      });
      for (const mount of info.HostConfig.Mounts ?? []) {
        if (mount.Type === 'bind') assert.equal(mount.BindOptions?.Propagation, 'rprivate', mount.Target);
      }
      assert.deepEqual(info.Config.Entrypoint, ['/.mcpw/mcpw-runner']);
      assert.equal(info.Config.Labels['dev.mcp-workspace.state'], stateId);
      assert.equal(info.Config.Labels['dev.mcp-workspace.session'], 'hardened-session-with-long-id');
      assert.equal(info.Config.Labels['dev.mcp-workspace.agent'], 'alice');
      assert.equal(info.Name, `/mcpw-${stateId.slice(0, 8)}-hardened-ses`);
      const runnerMount = info.Mounts.find((mount) => mount.Destination === '/.mcpw/mcpw-runner');
      assert.equal(runnerMount?.RW, false);
      const caps = await sh(sandbox, 'grep CapEff /proc/self/status');
      assert.match(caps.stdout, /CapEff:\s+0+$/m);
      assert.match((await sh(sandbox, 'df /tmp')).stdout, /tmpfs/);
    });

    it('contains a fork bomb with the pids limit and stays responsive', async function () {
      this.timeout(60_000);
      const sandbox = await runtime({ limits: { pidsLimit: 64 } }).acquire(session('bomb'));
      const bomb = sh(sandbox, 'for i in $(seq 1 300); do sleep 3 & done; wait');
      await new Promise((resolveWait) => setTimeout(resolveWait, 500));
      // The round trip itself is measured in bench/ (runtime.ts).
      assert.equal(typeof (await sandbox.ping()), 'number', 'the runner answers during the bomb');
      const result = await bomb;
      assert.match(result.stderr, /fork|Resource temporarily unavailable/);
      await waitFor(
        async () => (await run(sandbox, ['echo', 'alive'])).stdout === 'alive\n',
        15_000,
        'recovery',
      );
    });

    it('OOM-kills a memory hog under the memory limit and reports it', async () => {
      const sandbox = await runtime({ limits: { memoryBytes: 64 * MiB } }).acquire(session('hog'));
      const hog = await run(sandbox, ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1']);
      assert.equal(hog.exit.signal, 'SIGKILL');
      assert.equal(hog.exit.oomKilled, true);
      assert.equal((await run(sandbox, ['echo', 'still here'])).stdout, 'still here\n');
    });

    it('killAll kills every command but keeps the runner', async () => {
      const sandbox = await runtime().acquire(session('kill'));
      const sleeper = sandbox.exec({ argv: ['sleep', '600'], cwd: '/', env: {}, outputCapBytes: MiB });
      const nested = sandbox.exec({
        argv: ['sh', '-c', 'sleep 601 & wait'],
        cwd: '/',
        env: {},
        outputCapBytes: MiB,
      });
      await new Promise((resolveWait) => setTimeout(resolveWait, 200));
      await sandbox.killAll();
      assert.equal((await sleeper.exited).signal, 'SIGKILL');
      assert.notEqual((await nested.exited).exitCode, 0);
      assert.doesNotMatch((await run(sandbox, ['ps'])).stdout, /sleep 60/);
      assert.equal((await run(sandbox, ['echo', 'ok'])).stdout, 'ok\n');
    });
  });

  describe('lifecycle', () => {
    it('release removes the container', async () => {
      const rt = runtime();
      const sandbox = await rt.acquire(session('rel'));
      await rt.release('rel');
      assert.ok(await gone(rt, sandbox.id));
      await rt.release('rel');
    });

    it('starts a container while another is released: placeholder mount points stay while in use', async () => {
      // Releasing a runtime's last container removes its placeholder mount points (e.g. an empty
      // .devcontainer.json) from the host. A container starting at that moment, from this runtime
      // or from another server on the same folder, must not fail on a bind source deleted under it.
      const first = runtime();
      const second = runtime();
      for (let i = 0; i < 30; i++) {
        const starter = i % 2 === 0 ? first : second;
        await first.acquire(session(`swap-${i}`));
        // Vary when the next start begins, so it meets the removal at every stage.
        const [, next] = await Promise.all([
          first.release(`swap-${i}`),
          new Promise((wait) => setTimeout(wait, (i % 6) * 4)).then(() =>
            starter.acquire(session(`swap-${i}-next`)),
          ),
        ]);
        assert.equal((await run(next, ['echo', 'ok'])).stdout, 'ok\n');
        await starter.release(`swap-${i}-next`);
      }
    });

    it('stops a container idle longer than idleTimeoutMs', async () => {
      const rt = runtime({ idleTimeoutMs: 500 });
      const sandbox = await rt.acquire(session('idle'));
      await waitFor(() => gone(rt, sandbox.id), 10_000, 'the idle container to go');
      const fresh = await rt.acquire(session('idle'));
      assert.notEqual(fresh.id, sandbox.id);
      assert.equal((await run(fresh, ['echo', 'back'])).stdout, 'back\n');
    });

    it('does not stop a container while a command runs', async () => {
      const rt = runtime({ idleTimeoutMs: 300 });
      const sandbox = await rt.acquire(session('busy'));
      const out = await run(sandbox, ['sleep', '1.5']);
      assert.equal(out.exit.exitCode, 0);
      assert.ok(!(await gone(rt, sandbox.id)));
    });

    it('cleanupOrphans removes containers left by a crashed server', async () => {
      const crashed = new DockerRuntime({ workspace, stateId, defaultImage: IMAGE, permissions: DENY_ALL });
      const left = await crashed.acquire(session('orphan'));
      const other = runtime({ stateId: randomBytes(8).toString('hex') });
      const unrelated = await other.acquire(session('orphan'));
      const next = runtime();
      assert.equal(await next.cleanupOrphans(), 1);
      assert.ok(await gone(next, left.id));
      assert.ok(!(await gone(next, unrelated.id)));
      assert.equal(await next.cleanupOrphans(), 0);
      const fresh = await next.acquire(session('orphan'));
      assert.equal((await run(fresh, ['echo', 'new'])).stdout, 'new\n');
    });

    it('recreates a container killed from outside on the next acquire', async () => {
      const rt = runtime();
      const sandbox = await rt.acquire(session('killed'));
      const running = sandbox.exec({ argv: ['sleep', '600'], cwd: '/', env: {}, outputCapBytes: MiB });
      await (await rt.client()).getContainer(sandbox.id).kill();
      const exit = await running.exited;
      assert.equal(exit.error, 'runner connection lost');
      const fresh = await rt.acquire(session('killed'));
      assert.notEqual(fresh.id, sandbox.id);
      assert.equal((await run(fresh, ['echo', 'again'])).stdout, 'again\n');
      assert.ok(await gone(rt, sandbox.id));
    });

    it('ends and removes the container when the attach connection is lost; the next acquire starts anew', async () => {
      const rt = runtime();
      const sandbox = await rt.acquire(session('lifeline'));
      const sleeper = sandbox.exec({ argv: ['sleep', '600'], cwd: '/', env: {}, outputCapBytes: MiB });
      // Cut the attach connection only, as the death of the server process would.
      const attached = (sandbox as unknown as { client: { input: Duplex } }).client.input;
      attached.destroy();
      assert.equal((await sleeper.exited).error, 'runner connection lost');
      await expectError(
        Promise.resolve().then(() => sandbox.ping()),
        'SANDBOX_UNAVAILABLE',
        /lost/,
      );
      let removed = await gone(rt, sandbox.id);
      for (let i = 0; i < 100 && !removed; i++) {
        await new Promise((resolveWait) => setTimeout(resolveWait, 100));
        removed = await gone(rt, sandbox.id);
      }
      assert.ok(removed, 'the engine removed the container by itself');
      const fresh = await rt.acquire(session('lifeline'));
      assert.notEqual(fresh.id, sandbox.id);
      assert.equal((await run(fresh, ['echo', 'again'])).stdout, 'again\n');
    });

    it('refuses acquire after close', async () => {
      const rt = runtime();
      const sandbox = await rt.acquire(session('closing'));
      await rt.close();
      assert.ok(await gone(rt, sandbox.id));
      await expectError(rt.acquire(session('closing')), 'SANDBOX_UNAVAILABLE', /closed/);
    });
  });
});
