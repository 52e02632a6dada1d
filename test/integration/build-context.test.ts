import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_IMAGE, ensureDocker } from '../helpers/docker';
import { startTestServer, type TestServer } from '../helpers/server';

/** Files and size of the large build context (200 MB). */
const FILES = 200;
const FILE_BYTES = 1024 * 1024;

const name = (i: number) => `big/f${String(i).padStart(3, '0')}.bin`;

/**
 * Issue 9: no single request may stall the server. A devcontainer build over a large context is
 * walked and packed on a worker thread, so the server keeps answering while it is packed.
 */
describe('Devcontainer build context: packed off the event loop (real engine)', function () {
  this.timeout(600_000);
  let t: TestServer | undefined;

  before(function () {
    ensureDocker();
  });

  after(async () => {
    // The server's temporary directory (the 200 MB context with it) goes with the server.
    await t?.close();
  });

  it('keeps /health answering while a 200 MB context is walked and packed, and ships only what the agent may read', async () => {
    const secret = 'SECRET-' + randomBytes(8).toString('hex');
    t = await startTestServer({ defaultImage: TEST_IMAGE }, async (ws) => {
      await mkdir(join(ws, 'big'));
      const content = randomBytes(FILE_BYTES);
      for (let i = 0; i < FILES; i++) {
        content.writeUInt32BE(i, 0);
        await writeFile(join(ws, name(i)), content);
      }
      await writeFile(join(ws, 'ok.txt'), 'shipped\n');
      await writeFile(join(ws, 'secret.txt'), `${secret}\n`);
      // The engine leaves the large files out of the image (they still travel in the context).
      await writeFile(join(ws, '.dockerignore'), 'big\n');
      await mkdir(join(ws, '.devcontainer'));
      await writeFile(join(ws, '.devcontainer', 'Dockerfile'), `FROM ${TEST_IMAGE}\nCOPY . /ctx/\n`);
      await writeFile(
        join(ws, '.devcontainer', 'devcontainer.json'),
        JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '..' } }),
      );
    });
    const server = t;
    const set = await server.api('/policies', {
      method: 'PUT',
      body: { id: 'build', rules: ['allow read(**)', 'deny read(secret.txt)', 'allow exec(*)'] },
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const agent = (await server.api('/tokens', { method: 'POST', body: { name: 'builder', role: 'agent' } }))
      .body.token;

    // Every read decision the build makes on the large files, in order with the /health answers.
    const events: string[] = [];
    const policy = server.server.policy;
    const allows = policy.allows.bind(policy);
    policy.allows = (principal, action, target) => {
      if (action === 'read' && target.startsWith('big/')) events.push(`decide ${target}`);
      return allows(principal, action, target);
    };

    let finished = false;
    const command = server
      .api('/execute', { method: 'POST', body: { command: 'ls /ctx' }, token: agent })
      .finally(() => {
        finished = true;
      });
    let answered = 0;
    while (!finished) {
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      answered++;
      events.push('health');
    }
    const result = (await command).body;
    assert.equal(result.exitCode, 0, JSON.stringify(result));
    assert.match(result.stdout, /ok\.txt/, 'the readable files shipped');
    assert.doesNotMatch(result.stdout, /secret\.txt/, 'a file the agent may not read never ships');
    assert.ok(answered > 0, '/health answered during the build');

    // Each walk over the context asks about the first large file, then the others in order, up to the
    // last: /health answered in the middle of at least one walk (a walk on the event loop, with its
    // reads, would run its decisions back to back).
    const first = `decide ${name(0)}`;
    const last = `decide ${name(FILES - 1)}`;
    let inside = false;
    let walks = 0;
    for (let i = 0; i < events.length; i++) {
      if (events[i] !== first) continue;
      const end = events.indexOf(last, i);
      assert.notEqual(end, -1, 'every walk reached the last large file');
      walks++;
      if (events.slice(i, end).includes('health')) inside = true;
    }
    assert.ok(walks >= 2, `the context was planned and packed (${walks} walks seen)`);
    assert.ok(inside, '/health answered while the context was being walked and packed');

    const verified = await server.server.audit.verify();
    assert.equal(verified.ok, true, JSON.stringify(verified));
  });
});
