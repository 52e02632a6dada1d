import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { createLogger } from '../../src/core/log';
import { callTool, connectMcp } from '../helpers/clients';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Secrets an agent hands the server in every form the review found or we could think of. None may
 * reach the audit log or the server log, in any encoding the files would show them in.
 */
const SECRETS = {
  fileBody: 'file-body-hunter2-0117',
  awsKey: 'AKIAZ3QW8RTYUIOPASDF',
  editOld: 'pw-old-value-2291',
  editNew: 'Zq9!', // short: only a keyed hash keeps it from being guessed
  urlPassword: 'url-pass-5521',
  inlineEnvPrefix: 'inline-secret-6632',
  envKey: 'env-key-value-7781',
  envDbPassword: 'db-pass-8841',
  githubToken: 'ghp_' + 'R7'.repeat(18),
  stdin: 'stdin-secret-9917',
  argPassword: 'arg-pass-4410',
  curlPassword: 'curl-pass-3390',
  bearer: 'bearer-tok-55aa66bb77cc',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXZhbHVl',
  buildToken: 'ghp_' + 'B4'.repeat(18),
  buildPassword: 'build-pass-1234',
  restPassword: 'rest-pass-6120',
};

describe('Redaction that holds: planted secrets never reach the audit log or the server log', function () {
  this.timeout(300_000);
  let t: TestServer;
  let logFile: string;
  let logDir: string;
  let nonce: string;
  let builtImage: string | undefined;

  before(function () {
    this.timeout(600_000);
    ensureDocker();
  });

  beforeEach(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'mcpw-log-'));
    logFile = join(logDir, 'server.log');
    nonce = randomBytes(6).toString('hex');
    t = await startTestServer(
      {
        defaultImage: TEST_IMAGE,
        // The server's own JSON-lines logger, writing the raw lines a user would read.
        logger: createLogger((line) => appendFileSync(logFile, line + '\n')),
      },
      async (ws) => {
        await writeFile(join(ws, 'config.ts'), `export const password = '${SECRETS.editOld}';\n`);
        await mkdir(join(ws, '.devcontainer'));
        await writeFile(
          join(ws, '.devcontainer', 'devcontainer.json'),
          JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '.' } }),
        );
        // The build log streams to the server log: a Dockerfile that prints secrets must not leak them.
        await writeFile(
          join(ws, '.devcontainer', 'Dockerfile'),
          `FROM ${TEST_IMAGE}\n# build ${nonce}\nRUN echo "deploy with ${SECRETS.buildToken}" && echo "DB_PASSWORD=${SECRETS.buildPassword}"\n`,
        );
      },
    );
    const policy = await t.api('/policies', {
      method: 'PUT',
      body: { id: 'redaction', rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)'] },
    });
    assert.equal(policy.status, 200);
  });

  afterEach(async () => {
    await t.close();
    await rm(logDir, { recursive: true, force: true });
    // Only the image this test built (its Dockerfile carries a fresh nonce) is removed.
    if (builtImage?.startsWith('mcpw-build-')) {
      await new Docker()
        .getImage(builtImage)
        .remove({ force: true })
        .catch(() => undefined);
    }
    builtImage = undefined;
  });

  it('after edit_file, write_file and run_command with env, args, stdin and URLs, over MCP and REST', async () => {
    const minted = await t.api('/tokens', { method: 'POST', body: { name: 'leaky', role: 'agent' } });
    const agent = minted.body.token as string;
    const mcp = await connectMcp(t.server.mcpUrl, agent);
    try {
      const written = await callTool(mcp.client, 'write_file', {
        path: 'notes.txt',
        content: `aws ${SECRETS.awsKey}\n${SECRETS.fileBody}\n`,
      });
      assert.equal(written.revision.length, 64, JSON.stringify(written));
      const edited = await callTool(mcp.client, 'edit_file', {
        path: 'config.ts',
        edits: [{ oldText: SECRETS.editOld, newText: SECRETS.editNew }],
      });
      assert.ok(!edited.error, JSON.stringify(edited));
      assert.equal(
        await readFile(join(t.workspace, 'config.ts'), 'utf8'),
        `export const password = '${SECRETS.editNew}';\n`,
      );

      const shell = await callTool(mcp.client, 'run_command', {
        command: `echo https://alice:${SECRETS.urlPassword}@example.invalid/repo && MY_SECRET=${SECRETS.inlineEnvPrefix} echo done && cat`,
        env: {
          MY_KEY: SECRETS.envKey,
          DATABASE_URL: `postgres://app:${SECRETS.envDbPassword}@db.internal/app`,
          GITHUB_TOKEN: SECRETS.githubToken,
        },
        stdin: SECRETS.stdin,
      });
      assert.equal(shell.exitCode, 0, JSON.stringify(shell));
      builtImage = shell.image;
      assert.match(shell.image, /^mcpw-build-/, 'the command ran in the image built from the Dockerfile');
      assert.ok(shell.stdout.includes(SECRETS.stdin), 'the command itself saw its input');
      const argv = await callTool(mcp.client, 'run_command', {
        command: 'echo',
        args: [
          '--password',
          SECRETS.argPassword,
          '-u',
          `bob:${SECRETS.curlPassword}`,
          `Authorization: Bearer ${SECRETS.bearer}`,
        ],
      });
      assert.equal(argv.exitCode, 0, JSON.stringify(argv));
      const searched = await callTool(mcp.client, 'search_files', { query: SECRETS.jwt });
      assert.ok(!searched.error, JSON.stringify(searched));
    } finally {
      await mcp.close();
    }
    const rest = await t.api('/execute', {
      method: 'POST',
      token: agent,
      body: { command: `curl --user admin:${SECRETS.restPassword} https://example.invalid || true` },
    });
    assert.equal(rest.status, 200, JSON.stringify(rest.body));

    await t.server.audit.flush();
    const audit = await readFile(join(t.stateDir, 'audit', 'audit.jsonl'), 'utf8');
    const log = await readFile(logFile, 'utf8');
    assert.match(log, /sandbox progress/, 'the build log reached the server log (so it was checked)');
    assert.match(log, /DB_PASSWORD=\[REDACTED\]/);
    for (const [name, secret] of Object.entries({ ...SECRETS, agentToken: agent, ownerToken: t.token })) {
      for (const [file, text] of [
        ['audit log', audit],
        ['server log', log],
      ] as const) {
        assert.ok(!text.includes(secret), `${name} leaked into the ${file}`);
        assert.ok(
          !text.includes(JSON.stringify(secret).slice(1, -1)),
          `${name} leaked (JSON-escaped) into the ${file}`,
        );
      }
    }

    // The edit texts are summarised by size and an HMAC under the key kept in the state dir.
    const keyFile = join(t.stateDir, 'audit', 'redaction.key');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const key = await readFile(keyFile);
    const records = audit
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { op: string; params: Record<string, any> });
    const edit = records.find((r) => r.op === 'edit_file')!;
    assert.deepEqual(edit.params['edits'][0], {
      newText: { bytes: 4, hmac: createHmac('sha256', key).update(SECRETS.editNew).digest('hex') },
      oldText: {
        bytes: SECRETS.editOld.length,
        hmac: createHmac('sha256', key).update(SECRETS.editOld).digest('hex'),
      },
    });
    const run = records.find((r) => r.op === 'run_command' && r.params['env'])!;
    assert.deepEqual(Object.keys(run.params['env']).sort(), ['DATABASE_URL', 'GITHUB_TOKEN', 'MY_KEY']);
    assert.equal(run.params['env']['MY_KEY'], '[REDACTED]');
    assert.equal(run.params['env']['DATABASE_URL'], 'postgres://[REDACTED]@db.internal/app');
    assert.match(
      run.params['command'],
      /^echo https:\/\/\[REDACTED\]@example\.invalid\/repo && MY_SECRET=\[REDACTED\] echo done/,
    );
    const verified = await t.api('/audit/verify');
    assert.equal(verified.body.ok, true);
  });

  it('keeps the same redaction key across restarts of the server', async () => {
    const keyFile = join(t.stateDir, 'audit', 'redaction.key');
    const before = await readFile(keyFile);
    const { startWorkspaceServer } = await import('../../src/server');
    const stateDir = t.stateDir;
    const workspace = t.workspace;
    await t.server.close();
    const again = await startWorkspaceServer({
      workspace,
      stateDir,
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    try {
      assert.deepEqual(await readFile(keyFile), before);
    } finally {
      await again.close();
    }
  });
});
