import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { callTool, connectMcp } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/** Attacks on the exec check, devcontainer builds and protected paths (issue 9 classes 4, 5 and 10). */
describe('Security: exec check, devcontainer builds, protected paths in the container (real engine)', function () {
  this.timeout(180_000);
  let t: TestServer;
  let agent: string;
  let closed = false;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  /** Starts a server whose workspace `setup` prepares, with an agent token under `rules`. */
  async function start(rules: string[], setup?: (ws: string) => Promise<void>): Promise<void> {
    t = await startTestServer({ defaultImage: TEST_IMAGE, executionLimits: { killGraceMs: 500 } }, setup);
    closed = false;
    await policy(rules);
    agent = (await t.api('/tokens', { method: 'POST', body: { name: 'mallory', role: 'agent' } })).body.token;
  }

  async function policy(rules: string[]): Promise<void> {
    const set = await t.api('/policies', { method: 'PUT', body: { id: 'attack', rules } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
  }

  /** run_command as the agent over REST. */
  async function run(body: Record<string, unknown>, session?: string): Promise<any> {
    return (
      await t.api('/execute', {
        method: 'POST',
        body,
        token: agent,
        ...(session ? { headers: { 'x-mcp-workspace-session': session } } : {}),
      })
    ).body;
  }

  /** A new session of the agent (a new session gets a new container). */
  async function newSession(): Promise<string> {
    return (await t.api('/session/init', { method: 'POST', body: {}, token: agent })).body.sessionId;
  }

  async function auditIntact(): Promise<void> {
    const verified = await t.server.audit.verify();
    assert.equal(verified.ok, true, JSON.stringify(verified));
  }

  const folder = () => `/workspaces/${basename(t.workspace)}`;

  afterEach(async () => {
    if (!closed) await t.close();
  });

  describe('class 5: the exec check judges exactly what runs', () => {
    it('refuses a caller-supplied PATH (and other loader variables) unless the owner names them', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(echo *)'], async (ws) => {
        await mkdir(join(ws, 'evil'));
        await writeFile(join(ws, 'evil', 'echo'), '#!/bin/sh\necho pwned > "${0%/*}/../pwned.txt"\n');
        await chmod(join(ws, 'evil', 'echo'), 0o755);
      });
      const evilPath = `${folder()}/evil:/bin`;
      for (const env of [
        { PATH: evilPath },
        { LD_PRELOAD: '/x.so' },
        { BASH_ENV: '/x' },
        { ENV: '/x' },
        { IFS: '/' },
        { NODE_OPTIONS: '--require /x' },
        { GIT_SSH_COMMAND: 'sh' },
        { npm_config_script_shell: '/x' },
        { HOME: '/x' },
        { PYTHONSTARTUP: '/x' },
        { PERL5OPT: '-Mx' },
        { RUBYOPT: '-rx' },
      ]) {
        const denied = await run({ command: 'echo hi', env });
        assert.equal(denied.error?.code, 'POLICY_DENIED', JSON.stringify(env));
        assert.match(denied.error.message, /allow env\(/);
      }
      assert.ok(!existsSync(join(t.workspace, 'pwned.txt')), 'the workspace program never ran');
      const ordinary = await run({ command: 'echo hi', env: { GREETING: 'x' } });
      assert.equal(ordinary.stdout, 'hi\n', 'ordinary variables still pass');
      // Control: once the owner names PATH, the same request really runs the workspace's `echo`.
      await policy(['allow read(**)', 'allow write(**)', 'allow exec(echo *)', 'allow env(PATH)']);
      const allowed = await run({ command: 'echo hi', env: { PATH: evilPath } });
      assert.equal(allowed.exitCode, 0, JSON.stringify(allowed));
      assert.equal(await readFile(join(t.workspace, 'pwned.txt'), 'utf8'), 'pwned\n');
      await auditIntact();
    });

    it('refuses devcontainer remoteEnv/containerEnv keys that choose programs', async () => {
      for (const field of ['remoteEnv', 'containerEnv']) {
        await start(['allow read(**)', 'allow exec(echo *)'], async (ws) => {
          await writeFile(
            join(ws, '.devcontainer.json'),
            JSON.stringify({ image: TEST_IMAGE, [field]: { PATH: '/workspaces/x/evil:/bin' } }),
          );
        });
        const denied = await run({ command: 'echo hi' });
        assert.equal(denied.error?.code, 'POLICY_DENIED', field);
        assert.match(denied.error.message, new RegExp(`"${field}" sets PATH.*allow env\\(PATH\\)`));
        await auditIntact();
        await t.close();
        closed = true;
      }
    });

    it('refuses U+00A0 and other invisible or control characters instead of reading them as spaces', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(echo *)'], async (ws) => {
        await mkdir(join(ws, 'sub'));
      });
      const attacks: Record<string, unknown>[] = [
        { command: 'echo\u00a0x;\u00a0sh\u00a0-c\u00a0"echo pwned > pwned.txt"' },
        { command: 'echo x\u00a0;sh -c "echo pwned > pwned.txt"' },
        { command: 'echo\u00a0hi' },
        { command: 'echo\u2028hi' },
        { command: 'echo\u200bhi' },
        { command: 'echo hi\rsh -c id' },
        { command: 'echo hi\u0085id' },
        { command: 'echo hi\u3000id' },
        { command: 'echo', args: ['a\u00a0b'] },
        { command: 'echo', args: ['ok'], cwd: 'sub\u00a0' },
        { command: 'echo hi', env: { GREETING: 'a\u00a0b' } },
      ];
      for (const attack of attacks) {
        const res = await run(attack);
        assert.equal(res.error?.code, 'INVALID_ARGUMENT', JSON.stringify(attack));
        assert.match(res.error.message, /U\+[0-9A-F]{4}/);
      }
      assert.ok(!existsSync(join(t.workspace, 'pwned.txt')));
      assert.equal((await run({ command: 'echo  plain   spaces' })).stdout, 'plain spaces\n');
      await t.server.audit.flush();
      const refused = await t.server.audit.query({ op: 'run_command', agent: 'mallory' });
      assert.ok(
        refused.records.filter((r) => r.outcome['code'] === 'INVALID_ARGUMENT').length >= attacks.length,
      );
      await auditIntact();
    });

    it('never lets `&>` or other shell syntax past a narrow rule (dash reads `a &> b` as `a &` then `> b`)', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(echo *)']);
      const attacks = [
        'echo ok &>out.txt sh -c "echo pwned > pwned.txt"',
        'echo ok &> out.txt',
        'echo ok >& out.txt',
        'echo ok > pwned.txt',
        'echo ok | sh',
        'echo ok; sh -c id',
        'echo ok && id',
        'echo $(id)',
        'echo `id`',
        'echo *',
        'echo ~',
        'echo "$HOME"',
        "echo 'unterminated",
        'X=1 echo ok',
        'echo ok\nid',
        'echo {a,b}',
        'echo ok # comment',
      ];
      for (const command of attacks) {
        const res = await run({ command });
        assert.equal(res.error?.code, 'POLICY_DENIED', command);
        assert.match(res.error.message, /shell syntax/, command);
      }
      assert.ok(!existsSync(join(t.workspace, 'pwned.txt')));
      assert.ok(!existsSync(join(t.workspace, 'out.txt')));
      // Plain words and simple quotes run as an argv, with no shell to read them differently.
      const quoted = await run({ command: `echo 'a  b' "c d" e` });
      assert.equal(quoted.stdout, 'a  b c d e\n');
      const literal = await run({ command: 'echo', args: ['$(id)', '&>', 'x'] });
      assert.equal(literal.stdout, '$(id) &> x\n', 'args are never read by a shell');
      await t.server.audit.flush();
      const starts = await t.server.audit.query({ op: 'execution_start', agent: 'mallory' });
      assert.ok(starts.records.length >= 2);
      assert.ok(
        starts.records.every((r) => (r.params as { shell: boolean }).shell === false),
        'audited as argv runs',
      );
      // Control: under `allow exec(*)` dash really runs the hidden command, so the refusal mattered.
      await policy(['allow read(**)', 'allow write(**)', 'allow exec(*)']);
      // (dash backgrounds `echo ok` and runs the rest; busybox ash reads `&>` as bash does.)
      const shell = await run({ command: attacks[0] });
      assert.equal(shell.exitCode, 0, JSON.stringify(shell));
      const wrote = () =>
        existsSync(join(t.workspace, 'pwned.txt')) || existsSync(join(t.workspace, 'out.txt'));
      for (let i = 0; i < 30 && !wrote(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(wrote(), 'the shell did more than the narrow rule judged');
      await auditIntact();
    });

    it('runs a narrow-rule command with the server PATH and no shell (a workspace `sh` is never used)', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(echo *)', 'allow exec(env)']);
      const env = await run({ command: 'env' });
      assert.match(
        env.stdout,
        /^PATH=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m,
      );
      const over = await run({ command: 'env', env: { PATH: '/tmp' } });
      assert.equal(over.error?.code, 'POLICY_DENIED');
    });
  });

  describe('class 4: devcontainer builds stay in the workspace and off the network', () => {
    /** Writes .devcontainer/devcontainer.json (the owner's setup: agents cannot write it). */
    async function devcontainer(
      ws: string,
      build: Record<string, unknown>,
      dockerfile?: string,
    ): Promise<void> {
      await mkdir(join(ws, '.devcontainer'), { recursive: true });
      if (dockerfile !== undefined) await writeFile(join(ws, '.devcontainer', 'Dockerfile'), dockerfile);
      await writeFile(join(ws, '.devcontainer', 'devcontainer.json'), JSON.stringify({ build }));
    }

    it('refuses build.context "../..", an absolute context and a context that is a link out', async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ dockerfile: 'Dockerfile', context: '../..' }, /resolves outside the workspace/],
        [{ dockerfile: 'Dockerfile', context: '/' }, /absolute path/],
        [{ dockerfile: '/etc/passwd', context: '.' }, /absolute path/],
        [{ dockerfile: '../../Dockerfile', context: '../..' }, /outside the workspace/],
        [{ dockerfile: '../out/Dockerfile', context: '../out' }, /outside/],
      ];
      for (const [build, message] of cases) {
        await start(['allow read(**)', 'allow exec(*)'], async (ws) => {
          await devcontainer(ws, build, `FROM ${TEST_IMAGE}\nCOPY . /ctx/\n`);
          await symlink('/', join(ws, 'out'));
        });
        const res = await run({ command: 'ls /ctx' });
        assert.equal(res.error?.code, 'PATH_OUTSIDE_WORKSPACE', JSON.stringify(build) + JSON.stringify(res));
        assert.match(res.error.message, message);
        await auditIntact();
        await t.close();
        closed = true;
      }
    });

    it('refuses a symlinked Dockerfile, even one pointing inside the workspace', async () => {
      for (const target of ['/etc/passwd', '../real.Dockerfile']) {
        await start(['allow read(**)', 'allow exec(*)'], async (ws) => {
          await writeFile(join(ws, 'real.Dockerfile'), `FROM ${TEST_IMAGE}\n`);
          await devcontainer(ws, { dockerfile: 'Dockerfile', context: '..' });
          await symlink(target, join(ws, '.devcontainer', 'Dockerfile'));
        });
        const res = await run({ command: 'echo hi' });
        assert.equal(res.error?.code, 'INVALID_ARGUMENT', JSON.stringify(res));
        assert.match(res.error.message, /symbolic link/);
        await t.close();
        closed = true;
      }
    });

    it('ships only files the agent may read: a read-denied .env never reaches a COPY', async () => {
      const secret = 'S3CRET-' + Math.random().toString(36).slice(2);
      await start(['allow read(**)', 'deny read(**/.env*)', 'allow exec(*)'], async (ws) => {
        await writeFile(join(ws, '.env'), `TOKEN=${secret}\n`);
        await mkdir(join(ws, 'app'));
        await writeFile(join(ws, 'app', '.env.local'), `TOKEN=${secret}\n`);
        await writeFile(join(ws, 'visible.txt'), 'visible\n');
        await writeFile(join(ws, 'app', 'long-' + 'x'.repeat(120) + '.txt'), 'long name\n');
        await devcontainer(
          ws,
          { dockerfile: 'Dockerfile', context: '..' },
          `FROM ${TEST_IMAGE}\nCOPY . /ctx/\n`,
        );
      });
      const res = await run({
        command: 'cat /ctx/visible.txt; ls -a /ctx /ctx/app; cat /ctx/.env /ctx/app/.env.local',
      });
      assert.ok(res.stdout !== undefined, JSON.stringify(res));
      assert.match(res.stdout, /^visible\n/);
      assert.match(res.stdout, /long-x{120}\.txt/, 'long names survive the server-built tar');
      assert.doesNotMatch(res.stdout + res.stderr, new RegExp(secret));
      assert.doesNotMatch(res.stdout, /\.env/);
      assert.notEqual(res.exitCode, 0, 'cat of the missing .env files fails');
      await auditIntact();
    });

    it('builds without network unless the policy allows the agent the network', async () => {
      const dockerfile = `FROM ${TEST_IMAGE}\nRUN cat /proc/net/dev > /netdevs\n`;
      await start(['allow read(**)', 'allow exec(*)'], async (ws) => {
        await devcontainer(ws, { dockerfile: 'Dockerfile' }, dockerfile);
      });
      const offline = await run({ command: 'cat /netdevs' });
      assert.equal(offline.exitCode, 0, JSON.stringify(offline));
      assert.match(offline.stdout, /\blo:/);
      assert.doesNotMatch(offline.stdout, /\beth0:/, 'RUN steps had no network');
      // Control: built for an agent allowed the network, RUN steps have an interface. (A different RUN
      // line, so the engine's layer cache cannot answer with the offline layer.)
      await writeFile(
        join(t.workspace, '.devcontainer', 'Dockerfile'),
        `FROM ${TEST_IMAGE}\nRUN cat /proc/net/dev > /netdevs && echo online > /mode\n`,
      );
      await policy(['allow read(**)', 'allow exec(*)', 'allow network(*)']);
      const online = await run({ command: 'cat /netdevs' }, await newSession());
      assert.equal(online.exitCode, 0, JSON.stringify(online));
      assert.match(online.stdout, /\beth0:/);
      await auditIntact();
    });

    it('treats an image built from files the agent may write as able to run anything', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(cat *)'], async (ws) => {
        await writeFile(join(ws, 'fake-cat'), '#!/bin/sh\necho replaced\n');
        await chmod(join(ws, 'fake-cat'), 0o755);
        await devcontainer(
          ws,
          { dockerfile: 'Dockerfile', context: '..' },
          `FROM ${TEST_IMAGE}\nCOPY fake-cat /usr/local/bin/cat\n`,
        );
      });
      const denied = await run({ command: 'cat fake-cat' });
      assert.equal(denied.error?.code, 'POLICY_DENIED', JSON.stringify(denied));
      assert.match(denied.error.message, /built from files you may write.*allow exec\(\*\)/);
      await policy(['allow read(**)', 'allow write(**)', 'allow exec(*)']);
      // (args: busybox's sh would run its own `cat` applet whatever PATH says.)
      const anything = await run({ command: 'cat', args: ['fake-cat'] }, await newSession());
      assert.equal(
        anything.stdout,
        'replaced\n',
        'the agent-built image indeed chose what `cat` is, PATH or not',
      );
    });

    it('sends a build log only to the session whose command caused it', async () => {
      const secret = 'ONLY-A-' + Math.random().toString(36).slice(2);
      await start(['allow read(**)', 'allow exec(*)', 'deny read(only-a.txt) @agent:bob'], async (ws) => {
        await writeFile(join(ws, 'only-a.txt'), `${secret}\n`);
        await devcontainer(
          ws,
          { dockerfile: 'Dockerfile', context: '..' },
          `FROM ${TEST_IMAGE}\nCOPY . /ctx/\nRUN cat /ctx/only-a.txt 2>/dev/null; sleep 2\n`,
        );
      });
      const bob = (await t.api('/tokens', { method: 'POST', body: { name: 'bob', role: 'agent' } })).body
        .token;
      const stream = async (token: string): Promise<string> =>
        (
          await fetch(`${t.url}/execute`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              accept: 'application/x-ndjson',
            },
            body: JSON.stringify({ command: 'echo done' }),
          })
        ).text();
      const [mine, bobs] = await Promise.all([stream(agent), stream(bob)]);
      assert.match(
        mine,
        new RegExp(secret),
        "control: the agent's own build log carries the file it may read",
      );
      assert.match(bobs, /done/);
      assert.doesNotMatch(bobs, new RegExp(secret), "another agent's build log never reaches bob");
      await auditIntact();
    });

    it('tool(*) never grants devcontainer.privileged; the exact rule does', async () => {
      await start(['allow read(**)', 'allow exec(*)', 'allow tool(*)'], async (ws) => {
        await writeFile(
          join(ws, '.devcontainer.json'),
          JSON.stringify({ image: TEST_IMAGE, privileged: true }),
        );
      });
      const denied = await run({ command: 'echo hi' });
      assert.equal(denied.error?.code, 'POLICY_DENIED', JSON.stringify(denied));
      assert.match(denied.error.message, /allow tool\(devcontainer\.privileged\)/);
      const explained = await t.api('/policies/explain', {
        method: 'POST',
        body: { action: 'tool', target: 'devcontainer.privileged' },
      });
      assert.equal(explained.body.allowed, false);
      assert.match(explained.body.reason, /wildcard is not enough/);
      await policy([
        'allow read(**)',
        'allow exec(*)',
        'allow tool(*)',
        'allow tool(devcontainer.privileged)',
      ]);
      // The exact rule passes the policy (this engine may still refuse a privileged container).
      const granted = await run({ command: 'echo hi' }, await newSession());
      assert.notEqual(granted.error?.code, 'POLICY_DENIED', JSON.stringify(granted));
      await auditIntact();
    });
  });

  describe('protected paths by default for agents', () => {
    const writes = [
      '.vscode/settings.json',
      '.git/config',
      '.devcontainer/devcontainer.json',
      '.devcontainer.json',
      '.mcp.json',
      '.envrc',
      '.claude/settings.json',
      '.cursor/mcp.json',
      '.husky/pre-commit',
      '.githooks/pre-commit',
      '.mcp-workspace/tools/x.json',
      'team.code-workspace',
      'nested/repo/.git/config',
      'tools/hooks/pre-commit',
    ];

    it('refuses file-tool writes under allow write(**), over MCP, until a rule names the path', async () => {
      await start(['allow read(**)', 'allow write(**)'], async (ws) => {
        await mkdir(join(ws, '.git'));
        await writeFile(join(ws, '.git', 'config'), '[core]\n\thooksPath = tools/hooks\n');
      });
      const mcp = await connectMcp(t.server.mcpUrl, agent);
      try {
        for (const path of [...writes, '.GIT/config', '.VSCode/settings.json']) {
          const res = await callTool(mcp.client, 'write_file', { path, content: 'x' });
          assert.equal(res.error?.code, 'POLICY_DENIED', path);
          assert.match(res.error.message, /protected path/, path);
        }
        const moved = await callTool(mcp.client, 'move_file', { from: '.git', to: 'stolen' });
        assert.equal(moved.error?.code, 'POLICY_DENIED');
        await policy(['allow read(**)', 'allow write(**)', 'allow write(.vscode/**)']);
        const named = await callTool(mcp.client, 'write_file', {
          path: '.vscode/settings.json',
          content: '{}',
        });
        assert.equal(named.error, undefined, JSON.stringify(named));
      } finally {
        await mcp.close();
      }
      assert.equal(
        await readFile(join(t.workspace, '.git', 'config'), 'utf8'),
        '[core]\n\thooksPath = tools/hooks\n',
      );
      assert.ok(!existsSync(join(t.workspace, '.envrc')));
      await auditIntact();
    });

    it('keeps them read-only in the container, existing or not, and removes the placeholders afterwards', async () => {
      const root = async (ws: string) => {
        await mkdir(join(ws, '.git'));
        await writeFile(join(ws, '.git', 'config'), '[core]\n\thooksPath = tools/hooks\n');
        await mkdir(join(ws, 'tools', 'hooks'), { recursive: true });
        await writeFile(join(ws, 'tools', 'hooks', 'pre-commit'), '#!/bin/sh\n');
        await mkdir(join(ws, 'nested', 'repo', '.git'), { recursive: true });
        await writeFile(join(ws, 'nested', 'repo', '.git', 'config'), '[core]\n');
        await mkdir(join(ws, '.devcontainer'));
        await writeFile(
          join(ws, '.devcontainer', 'devcontainer.json'),
          JSON.stringify({ image: TEST_IMAGE }),
        );
        await writeFile(join(ws, 'team.code-workspace'), '{}');
      };
      await start(['allow read(**)', 'allow write(**)', 'allow exec(*)'], root);
      const before = new Map<string, string | null>();
      for (const path of writes) {
        before.set(path, await readFile(join(t.workspace, path), 'utf8').catch(() => null));
      }
      const script = writes
        .map(
          (path) =>
            `mkdir -p "$(dirname '${path}')" 2>/dev/null; echo pwned > '${path}' && echo "WROTE ${path}"`,
        )
        .join('; ');
      const res = await run({ command: script });
      assert.doesNotMatch(res.stdout ?? '', /WROTE/, JSON.stringify(res));
      const destroy = await run({
        command:
          'for p in .git .vscode .devcontainer .devcontainer.json .mcp.json .envrc .claude .cursor .husky .githooks ' +
          '.mcp-workspace team.code-workspace nested/repo/.git tools/hooks; do rm -rf "$p"; mv "$p" "$p.moved"; ' +
          'ln -sfn / "$p"; done 2>/dev/null; mkdir .vscode/x; touch .vscode/settings.json; ' +
          'mv tools tools.moved && mkdir -p tools/hooks && echo pwned > tools/hooks/pre-commit; ls -a',
      });
      assert.equal(destroy.exitCode, 0, JSON.stringify(destroy));
      for (const path of writes) {
        const now = await readFile(join(t.workspace, path), 'utf8').catch(() => null);
        // A missing root file shows as its empty read-only placeholder while containers run.
        assert.equal(now ?? '', before.get(path) ?? '', `${path} unchanged on the host`);
      }
      assert.equal(await readFile(join(t.workspace, 'tools/hooks/pre-commit'), 'utf8'), '#!/bin/sh\n');
      assert.ok(!existsSync(join(t.workspace, 'tools.moved')), 'the hooks folder cannot be renamed away');
      for (const name of ['.git', 'tools/hooks', '.devcontainer', 'nested/repo/.git']) {
        assert.ok((await lstat(join(t.workspace, name))).isDirectory(), `${name} is still the real folder`);
      }
      // Ending every container removes the empty placeholders the engine created on the host.
      const workspace = t.workspace;
      await t.server.close();
      closed = true;
      for (const name of [
        '.vscode',
        '.claude',
        '.cursor',
        '.husky',
        '.githooks',
        '.mcp-workspace',
        '.mcp.json',
        '.envrc',
        '.devcontainer.json',
      ]) {
        assert.ok(!existsSync(join(workspace, name)), `no ${name} left behind`);
      }
      await rm(dirname(workspace), { recursive: true, force: true });
    });

    it('holds while a command keeps swapping protected folders for links as new containers start (30 attempts)', async () => {
      await start(['allow read(**)', 'allow write(**)', 'allow exec(*)'], async (ws) => {
        await mkdir(join(ws, '.git'));
        await writeFile(join(ws, '.git', 'config'), '[core]\n\thooksPath = tools/hooks\n');
        await mkdir(join(ws, 'tools', 'hooks'), { recursive: true });
        await writeFile(join(ws, 'tools', 'hooks', 'pre-commit'), '#!/bin/sh\n');
      });
      const outside = dirname(t.stateDir);
      // Session A tries, in a loop, every swap a command could make of a protected path.
      const swapper = await run({
        command:
          'end=$(( $(date +%s 2>/dev/null || echo 0) + 60 )); i=0; while [ $i -lt 100000 ]; do i=$((i+1)); ' +
          `for p in .git .vscode tools/hooks tools; do mv "$p" "$p.x"; ln -sfn ${outside} "$p"; rm -f "$p"; ` +
          'mv "$p.x" "$p"; done 2>/dev/null; [ -e stop ] && break; done',
        background: true,
      });
      assert.equal(swapper.status, 'running', JSON.stringify(swapper));
      let started = 0;
      try {
        for (let attempt = 0; attempt < 30; attempt++) {
          const res = await run(
            { command: 'ls -a .vscode .git tools/hooks; cat .git/config tools/hooks/pre-commit' },
            await newSession(),
          );
          const text = JSON.stringify(res);
          assert.doesNotMatch(text, new RegExp(t.token), `attempt ${attempt}: the owner token leaked`);
          assert.doesNotMatch(text, /owner\.token/, `attempt ${attempt}: a view outside the workspace`);
          if (res.error) assert.equal(res.error.code, 'SANDBOX_UNAVAILABLE', text);
          else started++;
        }
      } finally {
        await writeFile(join(t.workspace, 'stop'), '');
      }
      assert.ok(started > 0, 'containers do start while the swapper runs');
      assert.equal(
        await readFile(join(t.workspace, '.git', 'config'), 'utf8'),
        '[core]\n\thooksPath = tools/hooks\n',
      );
      assert.equal(await readFile(join(t.workspace, 'tools', 'hooks', 'pre-commit'), 'utf8'), '#!/bin/sh\n');
      assert.ok((await lstat(join(t.workspace, 'tools'))).isDirectory());
      await auditIntact();
    });
  });
});
