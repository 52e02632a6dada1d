import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cleanStaleDiscoveryFiles,
  discoveryDir,
  processAlive,
  readDiscoveryFiles,
  removeDiscoveryFile,
  writeDiscoveryFile,
} from '../../src/extension/discovery';
import {
  DEFAULT_SETTINGS,
  RESTART_SETTINGS,
  readSettings,
  toServerOptions,
} from '../../src/extension/settings';

describe('extension glue: settings mapping', () => {
  it('falls back to defaults for missing or mistyped values and clamps numbers', () => {
    assert.deepEqual(
      readSettings(() => undefined),
      DEFAULT_SETTINGS,
    );
    const wild: Record<string, unknown> = {
      enabled: 'yes',
      port: 70000,
      memoryMb: 1,
      cpus: 0,
      pidsLimit: 2.6e9,
      commandTimeoutSeconds: -5,
      dockerHost: '  unix:///tmp/d.sock ',
      allowedOrigins: ['http://localhost:6274', 42, null],
    };
    const s = readSettings((key) => wild[key]);
    assert.equal(s.enabled, true);
    assert.equal(s.port, 65535);
    assert.equal(s.memoryMb, 64);
    assert.equal(s.cpus, 0.1);
    assert.equal(s.pidsLimit, 1_000_000);
    assert.equal(s.commandTimeoutSeconds, 1);
    assert.equal(s.dockerHost, 'unix:///tmp/d.sock');
    assert.deepEqual(s.allowedOrigins, ['http://localhost:6274']);
    assert.ok(!RESTART_SETTINGS.includes('enabled'));
    assert.ok(RESTART_SETTINGS.includes('port'));
  });

  it('maps settings to server options, one folder per server, the port only for the first', () => {
    const settings = {
      ...DEFAULT_SETTINGS,
      port: 8931,
      memoryMb: 512,
      cpus: 1.5,
      policyFile: 'team/policy.json',
      defaultImage: 'img:1',
    };
    const first = toServerOptions(settings, { path: '/w/a', index: 0 }, '/state/a', 'tok');
    assert.equal(first.port, 8931);
    assert.equal(first.host, '127.0.0.1');
    assert.equal(first.policyFile, '/w/a/team/policy.json');
    assert.equal(first.defaultImage, 'img:1');
    assert.equal(first.ownerToken, 'tok');
    assert.deepEqual(first.sandboxLimits, {
      memoryBytes: 512 * 1024 * 1024,
      nanoCpus: 1.5e9,
      pidsLimit: 512,
    });
    assert.deepEqual(first.executionLimits, { defaultTimeoutMs: 120_000 });
    assert.equal(first.dockerHost, undefined);
    const second = toServerOptions(
      { ...settings, policyFile: '/etc/p.json' },
      { path: '/w/b', index: 1 },
      '/state/b',
      'tok',
    );
    assert.equal(second.port, 0);
    assert.equal(second.policyFile, '/etc/p.json');
    assert.equal(second.workspace, '/w/b');
  });
});

describe('extension glue: discovery files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'mcpw-disc-')), 'windows');
  });
  afterEach(async () => {
    await rm(join(dir, '..'), { recursive: true, force: true });
  });

  it('lives under XDG_STATE_HOME', () => {
    assert.equal(discoveryDir({ XDG_STATE_HOME: '/x' }), '/x/mcp-workspace/windows');
  });

  it('writes a 0600 file per window with no token in it, and removes it', async () => {
    const server = {
      folder: '/w/a',
      url: 'http://127.0.0.1:1',
      mcp: 'http://127.0.0.1:1/mcp',
      tokenFile: '/s/owner.token',
    };
    const file = await writeDiscoveryFile(dir, process.pid, [server]);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const body = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(body.pid, process.pid);
    assert.deepEqual(body.servers, [server]);
    assert.deepEqual(
      (await readDiscoveryFiles(dir)).map((f) => f.pid),
      [process.pid],
    );
    await removeDiscoveryFile(dir, process.pid);
    assert.deepEqual(await readdir(dir), []);
  });

  it('cleans files of dead windows and unreadable ones, keeps live ones', async () => {
    await writeDiscoveryFile(dir, process.pid, []);
    await writeDiscoveryFile(dir, 999_999_999, []);
    await writeFile(join(dir, 'garbage.json'), '{not json');
    await writeFile(join(dir, 'notes.txt'), 'kept');
    const removed = await cleanStaleDiscoveryFiles(dir, (pid) => pid === process.pid);
    assert.equal(removed, 2);
    assert.deepEqual((await readdir(dir)).sort(), [`${process.pid}.json`, 'notes.txt']);
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(999_999_999), false);
    assert.equal(await cleanStaleDiscoveryFiles(join(dir, 'missing')), 0);
  });
});
