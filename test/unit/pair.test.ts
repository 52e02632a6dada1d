import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionManager } from '../../src/core/session';
import { WorkspaceError } from '../../src/protocol/errors';
import {
  EXTENSION_ID,
  formatPairLink,
  PAIR_OPERATIONS,
  parsePairLink,
  type PairLink,
} from '../../src/protocol/pair';

const LINK: PairLink = {
  host: '127.0.0.1',
  port: 4123,
  token: 'mcpw_abcdefghijklmnopqrstuvwxyz012345',
  mode: 'read-only',
  name: 'alice',
};

describe('pair links: format and parse', () => {
  it('names the extension of package.json as the vscode:// authority', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      publisher: string;
      name: string;
    };
    assert.equal(EXTENSION_ID, `${pkg.publisher}.${pkg.name}`);
  });

  it('round-trips through the vscode:// link, another scheme and the bare query', () => {
    const link = formatPairLink(LINK);
    assert.match(link, /^vscode:\/\/mcp-workspace\.mcp-workspace\/join\?/);
    assert.deepEqual(parsePairLink(link), LINK);
    assert.deepEqual(parsePairLink(`  ${formatPairLink(LINK, 'code-oss')}\n`), LINK);
    assert.deepEqual(parsePairLink(link.slice(link.indexOf('?') + 1)), LINK);
    assert.deepEqual(parsePairLink(formatPairLink({ ...LINK, host: '[::1]' })), { ...LINK, host: '[::1]' });
    assert.deepEqual(parsePairLink(formatPairLink({ ...LINK, host: 'localhost' })), {
      ...LINK,
      host: 'localhost',
    });
  });

  it('refuses links of other extensions and bad hosts, ports, tokens and modes', () => {
    const bad = [
      'vscode://someone.else/join?host=127.0.0.1&port=1&token=mcpw_abcdefghijklmnop',
      formatPairLink({ ...LINK, host: 'evil host' }),
      formatPairLink({ ...LINK, host: 'example.com' }),
      formatPairLink({ ...LINK, host: '10.0.0.1' }),
      formatPairLink({ ...LINK, port: 0 }),
      formatPairLink({ ...LINK, port: 70000 }),
      formatPairLink({ ...LINK, token: 'short' }),
      formatPairLink(LINK).replace('read-only', 'admin'),
      '',
    ];
    for (const text of bad) assert.equal(typeof parsePairLink(text), 'string', text);
  });
});

describe('pair tokens: SessionManager', () => {
  let dir: string;
  let clock: number;
  const managers: SessionManager[] = [];
  const create = async (): Promise<SessionManager> => {
    const manager = await SessionManager.create({ stateDir: dir, now: () => clock });
    managers.push(manager);
    return manager;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcpw-pair-'));
    clock = Date.now();
  });
  afterEach(async () => {
    for (const manager of managers.splice(0)) manager.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores expiry and scope with the hash, reloads them, and refuses the token from its expiry on', async () => {
    const first = await create();
    const minted = await first.mintToken('pair:alice', 'agent', {
      expiresInMs: 60_000,
      scope: PAIR_OPERATIONS,
    });
    assert.equal(minted.expiresAt, new Date(clock + 60_000).toISOString());
    const principal = first.authenticate(minted.token);
    assert.deepEqual(principal?.scope, PAIR_OPERATIONS);
    assert.equal(principal?.expiresAt, clock + 60_000);

    const second = await create();
    const reloaded = second.authenticate(minted.token);
    assert.equal(reloaded?.name, 'pair:alice');
    assert.deepEqual(reloaded?.scope, PAIR_OPERATIONS);
    assert.equal(second.listTokens()[0]!.expiresAt, minted.expiresAt);
    clock += 60_000;
    assert.equal(second.authenticate(minted.token), null, 'refused at the expiry millisecond');
    assert.throws(
      () => second.initSession(principal!, undefined, ['read_file'], { transport: 'rest' }),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'UNAUTHORIZED',
    );
  });

  it('ends the sessions of a token when it expires and tells the listeners once', async () => {
    const manager = await create();
    const minted = await manager.mintToken('pair:bob', 'viewer', { expiresInMs: 30, scope: ['read_file'] });
    const principal = manager.authenticate(minted.token)!;
    const session = manager.initSession(principal, undefined, ['read_file'], { transport: 'collab' });
    const ended: string[] = [];
    const expired: string[] = [];
    manager.onSessionEnded((s, reason) => ended.push(`${s.sessionId}:${reason}`));
    manager.onTokenExpired((token) => expired.push(token.name));
    clock += 30;
    for (let i = 0; i < 200 && expired.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(expired, ['pair:bob']);
    assert.deepEqual(ended, [`${session.sessionId}:expired`]);
    assert.equal(manager.listTokens().length, 0);
    for (let i = 0; i < 200; i++) {
      const stored = await readFile(join(dir, 'tokens.json'), 'utf8');
      if (!stored.includes('pair:bob')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(!(await readFile(join(dir, 'tokens.json'), 'utf8')).includes('pair:bob'));
  });

  it('loads a tokens.json written before pair links, and only pair: names carry expiry and scope', async () => {
    await mkdir(dir, { recursive: true });
    const old = [
      {
        name: 'builder',
        role: 'agent',
        hash: 'a'.repeat(64),
        createdAt: '2026-01-01T00:00:00.000Z',
      },
    ];
    await writeFile(join(dir, 'tokens.json'), JSON.stringify(old));
    const manager = await create();
    assert.deepEqual(manager.listTokens(), [
      { name: 'builder', role: 'agent', createdAt: '2026-01-01T00:00:00.000Z' },
    ]);
    await assert.rejects(manager.mintToken('pair:x', 'agent'), /create_pair_link/);
    await assert.rejects(manager.mintToken('x', 'agent', { expiresInMs: 1000, scope: [] }), /pair:/);
    const minted = await manager.mintToken('plain', 'agent');
    assert.equal(minted.expiresAt, undefined);
    assert.equal(manager.authenticate(minted.token)?.scope, undefined);
  });
});
