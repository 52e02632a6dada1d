import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OPERATIONS, OPERATION_NAMES } from '../../src/protocol/operations';
import { rawRequest } from '../helpers/clients';
import { startTestServer, type TestServer } from '../helpers/server';

describe('REST surface', () => {
  let t: TestServer;

  beforeEach(async () => {
    t = await startTestServer({}, async (ws) => {
      await writeFile(join(ws, 'hello.txt'), 'hello\n');
      await mkdir(join(ws, 'dir'));
      await writeFile(join(ws, 'dir', 'x.bin'), Buffer.from([0, 1, 2, 255]));
    });
  });
  afterEach(async () => {
    await t.close();
  });

  it('serves the PRD paths: /session/init then GetFile, WriteFile, ListFiles', async () => {
    const init = await t.api('/session/init', {
      method: 'POST',
      body: { tools: ['read_file', 'write_file', 'bogus'] },
    });
    assert.equal(init.status, 200);
    assert.deepEqual(init.body.capabilities, ['read_file', 'write_file']);
    assert.equal(init.body.agent, 'owner');
    const session = { 'x-mcp-workspace-session': init.body.sessionId };

    const got = await t.api('/files/hello.txt', { headers: session });
    assert.equal(got.status, 200);
    assert.deepEqual(
      { path: got.body.path, content: got.body.content, encoding: got.body.encoding },
      { path: 'hello.txt', content: 'hello\n', encoding: 'utf8' },
    );
    const put = await t.api('/files/dir/new.txt', {
      method: 'PUT',
      body: { content: 'new' },
      headers: session,
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.created, true);
    assert.equal(await readFile(join(t.workspace, 'dir/new.txt'), 'utf8'), 'new');

    const notNegotiated = await t.api('/list/dir', { headers: session });
    assert.equal(notNegotiated.status, 403);
    assert.equal(notNegotiated.body.error.code, 'CAPABILITY_NOT_NEGOTIATED');

    const listed = await t.api('/list/dir?depth=2');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.entries.map((e: { name: string }) => e.name).sort(), ['new.txt', 'x.bin']);
    const root = await t.api('/list');
    assert.ok(root.body.entries.some((e: { name: string }) => e.name === 'hello.txt'));

    const caps = await t.api('/capabilities', { headers: session });
    assert.deepEqual(caps.body.tools, ['read_file', 'write_file']);
  });

  it('round-trips binary content as base64', async () => {
    const got = await t.api('/files/dir/x.bin');
    assert.equal(got.body.encoding, 'base64');
    assert.deepEqual(Buffer.from(got.body.content, 'base64'), Buffer.from([0, 1, 2, 255]));
    const put = await t.api('/files/copy.bin', {
      method: 'PUT',
      body: { content: got.body.content, encoding: 'base64' },
    });
    assert.equal(put.status, 200);
    assert.deepEqual(await readFile(join(t.workspace, 'copy.bin')), Buffer.from([0, 1, 2, 255]));
    const bad = await t.api('/files/bad.bin', {
      method: 'PUT',
      body: { content: '!!!', encoding: 'base64' },
    });
    assert.equal(bad.body.error.code, 'INVALID_ENCODING');
  });

  it('edits, searches, stats, moves and deletes', async () => {
    const edit = await t.api('/edit', {
      method: 'POST',
      body: { path: 'hello.txt', edits: [{ oldText: 'hello', newText: 'bonjour' }] },
    });
    assert.equal(edit.status, 200);
    assert.equal(await readFile(join(t.workspace, 'hello.txt'), 'utf8'), 'bonjour\n');
    const noMatch = await t.api('/edit', {
      method: 'POST',
      body: { path: 'hello.txt', edits: [{ oldText: 'absent', newText: 'x' }] },
    });
    assert.equal(noMatch.status, 409);
    assert.equal(noMatch.body.error.code, 'EDIT_NO_MATCH');
    const search = await t.api('/search', { method: 'POST', body: { query: 'bonj' } });
    assert.deepEqual(search.body.matches, [{ path: 'hello.txt', line: 1, column: 1, text: 'bonjour' }]);
    const badRegex = await t.api('/search', { method: 'POST', body: { query: '(', regex: true } });
    assert.equal(badRegex.body.error.code, 'INVALID_PATTERN');
    const stat = await t.api('/stat/hello.txt');
    assert.equal(stat.body.size, 8);
    assert.equal((await t.api('/mkdir', { method: 'POST', body: { path: 'a/b' } })).body.created, true);
    assert.equal(
      (await t.api('/move', { method: 'POST', body: { from: 'hello.txt', to: 'a/b/h.txt' } })).status,
      200,
    );
    const del = await t.api('/files/a?recursive=true', { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual((await readdir(t.workspace)).sort(), ['dir']);
  });

  it('returns clear errors with stable codes for bad input', async () => {
    const notJson = await t.api('/edit', { method: 'POST', body: '{not json' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, 'INVALID_ARGUMENT');
    // JSON bodies are objects (or arrays), in UTF-8; a large body is parsed like a small one.
    for (const body of ['"a string"', '42', 'null']) {
      const scalar = await t.api('/edit', { method: 'POST', body });
      assert.equal(scalar.status, 400, body);
      assert.equal(scalar.body.error.code, 'INVALID_ARGUMENT', body);
    }
    const latin1 = await fetch(`${t.url}/edit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json; charset=latin1' },
      body: '{}',
    });
    assert.equal(latin1.status, 400);
    assert.match(((await latin1.json()) as any).error.message, /UTF-8/);
    const large = 'ü'.repeat(2 * 1024 * 1024);
    const written = await t.api('/files/large.txt', { method: 'PUT', body: { content: large } });
    assert.equal(written.status, 200, JSON.stringify(written.body).slice(0, 300));
    assert.equal(await readFile(join(t.workspace, 'large.txt'), 'utf8'), large);
    const missing = await t.api('/edit', { method: 'POST', body: { path: 'hello.txt' } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'INVALID_ARGUMENT');
    assert.match(missing.body.error.message, /edits/);
    const depth = await t.api('/list?depth=abc');
    assert.equal(depth.body.error.code, 'INVALID_ARGUMENT');
    const unknown = await t.api('/nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'NOT_FOUND');
    const tooBig = await t.api('/files/big.txt', {
      method: 'PUT',
      body: { content: 'x'.repeat(11 * 1024 * 1024) },
    });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, 'FILE_TOO_LARGE');
    await assert.rejects(readFile(join(t.workspace, 'big.txt')));
  });

  it('refuses a path-escape corpus without touching anything outside', async () => {
    await symlink('/etc', join(t.workspace, 'out'));
    await symlink('/nonexistent-mcpw-target', join(t.workspace, 'dangling'));
    const corpus: [string, string][] = [
      ['/files/..%2F..%2Fetc%2Fpasswd', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/%2e%2e/%2e%2e/etc/passwd', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/dir/..%2F..%2F..%2Fetc%2Fhostname', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/%2Fetc%2Fpasswd', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/out/passwd', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/dangling', 'PATH_OUTSIDE_WORKSPACE'],
      ['/files/a%00b', 'INVALID_PATH'],
      [`/files/${'a/'.repeat(2100)}x`, 'INVALID_PATH'],
      [`/files/${'b'.repeat(300)}`, 'INVALID_PATH'],
    ];
    // Raw requests: fetch would normalise dot segments before they reach the server.
    const headers = { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' };
    for (const [path, code] of corpus) {
      const res = await rawRequest(t.url, { path, headers });
      assert.equal(
        JSON.parse(res.body).error?.code,
        code,
        `${path.slice(0, 60)} -> ${res.body.slice(0, 200)}`,
      );
      const write = await rawRequest(t.url, { path, method: 'PUT', headers, body: '{"content":"pwned"}' });
      assert.equal(JSON.parse(write.body).error?.code, code, `PUT ${path.slice(0, 60)}`);
    }
    for (const body of [{ path: '../escape.txt' }, { path: '/tmp/escape.txt' }, { path: 'out/escape' }]) {
      const res = await t.api('/mkdir', { method: 'POST', body });
      assert.equal(res.body.error.code, 'PATH_OUTSIDE_WORKSPACE');
    }
    const move = await t.api('/move', { method: 'POST', body: { from: 'hello.txt', to: '../moved.txt' } });
    assert.equal(move.body.error.code, 'PATH_OUTSIDE_WORKSPACE');
    assert.equal(await readFile(join(t.workspace, 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('publishes an OpenAPI 3 document generated from the schemas', async () => {
    const doc = await t.api('/openapi.json');
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.0.3');
    assert.ok(doc.body.paths['/session/init'].post.requestBody);
    assert.deepEqual(
      doc.body.paths['/files/{path}'].get.responses['200'].content['application/json'].schema.required.sort(),
      ['content', 'encoding', 'path', 'revision', 'size'],
    );
    for (const name of OPERATION_NAMES) {
      const { method, path } = OPERATIONS[name].rest;
      assert.equal(doc.body.paths[path][method].operationId, name);
    }
  });

  it('rate-limits writes per session with 429 and Retry-After', async () => {
    await t.close();
    t = await startTestServer({ writeRateLimit: { capacity: 3, refillPerSec: 0.5 } });
    for (let i = 0; i < 3; i++) {
      assert.equal((await t.api(`/files/f${i}.txt`, { method: 'PUT', body: { content: 'x' } })).status, 200);
    }
    const limited = await t.api('/files/f3.txt', { method: 'PUT', body: { content: 'x' } });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.equal(limited.headers.get('retry-after'), '2');
    await assert.rejects(readFile(join(t.workspace, 'f3.txt')));
    assert.equal((await t.api('/files/f0.txt')).status, 200, 'reads are not limited');
  });

  it('streams audit records live over server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(t.url + '/audit/stream', {
      headers: { authorization: `Bearer ${t.token}` },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    await t.api('/files/hello.txt');
    let text = '';
    while (!text.includes('"op":"read_file"')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += Buffer.from(chunk.value).toString('utf8');
    }
    controller.abort();
    assert.match(text, /event: audit\n/);
    assert.match(text, /"op":"read_file"/);
  });

  it('audits every action with its decision and rule, redacts secrets, and verifies while busy', async () => {
    await t.api('/files/secret.txt', { method: 'PUT', body: { content: 'password=hunter2 top secret' } });
    const minted = await t.api('/tokens', { method: 'POST', body: { name: 'auditee', role: 'agent' } });
    await t.api('/files/.env', { token: minted.body.token });
    const busy = Promise.all(Array.from({ length: 50 }, () => t.api('/files/hello.txt')));
    const verified = await t.api('/audit/verify');
    await busy;
    assert.equal(verified.status, 200);
    assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
    assert.ok(verified.body.records >= 3);

    const denied = await t.api('/audit?decision=deny');
    const envRead = denied.body.records.find((r: any) => r.op === 'read_file' && r.agent === 'auditee');
    assert.ok(envRead, 'the denied read is audited');
    assert.equal(envRead.rule, 'deny read(**/.env*)');
    assert.equal(envRead.outcome.code, 'POLICY_DENIED');

    const writes = await t.api('/audit?op=write_file&limit=5');
    const write = writes.body.records.find((r: any) => r.params.path === 'secret.txt');
    assert.deepEqual(Object.keys(write.params.content).sort(), ['bytes', 'hmac']);
    assert.equal(write.decision, 'allow');
    assert.equal(write.rule, 'allow write(**)');
    const raw = await readFile(join(t.stateDir, 'audit', 'audit.jsonl'), 'utf8');
    assert.ok(!raw.includes('hunter2'), 'file contents never reach the audit');
    assert.ok(!raw.includes(minted.body.token), 'tokens never reach the audit');
    assert.ok(!raw.includes(t.token), 'the owner token never reaches the audit');

    const own = await t.api('/audit?limit=100', { token: minted.body.token });
    assert.ok(own.body.records.length > 0);
    assert.ok(
      own.body.records.every((r: any) => r.agent === 'auditee'),
      'agents see only their own records',
    );
    const page1 = await t.api('/audit?limit=2');
    const page2 = await t.api(`/audit?limit=2&before=${page1.body.nextBefore}`);
    assert.ok(page2.body.records[0].seq < page1.body.records[1].seq);
  });

  it('lets the host refuse changes to files with unsaved editor changes, losing nothing', async () => {
    await t.close();
    const { WorkspaceError } = await import('../../src/protocol/errors');
    t = await startTestServer(
      {
        writeGuard: (path) => {
          if (path === 'dirty.txt') {
            throw new WorkspaceError('REVISION_CONFLICT', 'dirty.txt has unsaved changes in an editor.');
          }
        },
      },
      async (ws) => writeFile(join(ws, 'dirty.txt'), 'on disk'),
    );
    for (const [path, init] of [
      ['/files/dirty.txt', { method: 'PUT', body: { content: 'agent' } }],
      ['/edit', { method: 'POST', body: { path: 'dirty.txt', edits: [{ oldText: 'on', newText: 'off' }] } }],
      ['/move', { method: 'POST', body: { from: 'dirty.txt', to: 'moved.txt' } }],
      ['/files/dirty.txt', { method: 'DELETE' }],
    ] as const) {
      const res = await t.api(path, init);
      assert.equal(res.status, 409, `${init.method} ${path}`);
      assert.equal(res.body.error.code, 'REVISION_CONFLICT');
    }
    assert.equal(await readFile(join(t.workspace, 'dirty.txt'), 'utf8'), 'on disk');
    assert.equal((await t.api('/files/clean.txt', { method: 'PUT', body: { content: 'ok' } })).status, 200);
  });

  it('answers the health check without a token but nothing else', async () => {
    const res = await rawRequest(t.url, { path: '/health' });
    assert.equal(res.status, 200);
  });
});
