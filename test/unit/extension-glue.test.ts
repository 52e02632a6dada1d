import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
  NARROW_ONLY_SETTINGS,
  RESTART_SETTINGS,
  USER_ONLY_SETTINGS,
  changedSettings,
  ignoredSettingsMessage,
  ignoredWorkspaceSettings,
  readSettings,
  readUserSettings,
  resolvePolicyFile,
  settingsAction,
  toServerOptions,
  type ExtensionSettings,
  type SettingLevels,
} from '../../src/extension/settings';
import { WorkspaceError } from '../../src/protocol/errors';

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
    // Tool manifests from the settings are applied to running servers without a restart.
    assert.ok(!RESTART_SETTINGS.includes('tools'));
    const withTool = { ...DEFAULT_SETTINGS, tools: [{ name: 'lint' }] };
    assert.equal(settingsAction(DEFAULT_SETTINGS, withTool, { running: true, failed: false }), 'none');
    assert.equal(
      settingsAction(
        DEFAULT_SETTINGS,
        { ...DEFAULT_SETTINGS, detectTools: true },
        { running: true, failed: false },
      ),
      'restart',
    );
    const options = toServerOptions(withTool, { path: '/w/a', index: 0 }, '/state/a', 'tok');
    assert.deepEqual(options.tools, [{ name: 'lint' }]);
    assert.equal(options.detectTools, false);
  });

  it('maps settings to server options, one folder per server, the port only for the first', () => {
    const settings = {
      ...DEFAULT_SETTINGS,
      port: 8931,
      memoryMb: 512,
      cpus: 1.5,
      policyFile: '/home/me/policy.json',
      defaultImage: 'img:1',
    };
    const first = toServerOptions(settings, { path: '/w/a', index: 0 }, '/state/a', 'tok');
    assert.equal(first.port, 8931);
    assert.equal(first.host, '127.0.0.1');
    assert.equal(first.policyFile, '/home/me/policy.json');
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

describe("extension glue: security settings are the user's", () => {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { scope?: string; default?: unknown }> } };
  };
  const properties = manifest.contributes.configuration.properties;
  // What a hostile workspace (or an agent writing .vscode/settings.json) would set.
  const hostile: Record<string, unknown> = {
    enabled: true,
    port: 1,
    dockerHost: 'tcp://evil.example:2375',
    defaultImage: 'evil/image:latest',
    memoryMb: 999_999,
    cpus: 64,
    pidsLimit: 999_999,
    commandTimeoutSeconds: 3600,
    policyFile: '/tmp/planted-policy.txt',
    allowedOrigins: ['https://evil.example'],
    tools: [{ name: 'planted', description: 'x', argv: ['sh', '-c', 'id'] }],
    detectTools: true,
    liveEditing: true,
  };
  const defaults = (key: string): unknown => properties[`mcpWorkspace.${key}`]?.default;

  it('gives every setting that widens what an agent can do a machine scope in package.json', () => {
    assert.deepEqual(
      Object.keys(properties).sort(),
      Object.keys(DEFAULT_SETTINGS)
        .map((k) => `mcpWorkspace.${k}`)
        .sort(),
    );
    for (const key of USER_ONLY_SETTINGS) {
      assert.ok(
        ['machine', 'application'].includes(properties[`mcpWorkspace.${key}`]?.scope ?? ''),
        `mcpWorkspace.${key} must not be settable by a workspace`,
      );
    }
    // Every default the code falls back to is the one package.json shows the user.
    for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof typeof DEFAULT_SETTINGS)[]) {
      assert.deepEqual(defaults(key), DEFAULT_SETTINGS[key], `default of ${key} matches package.json`);
    }
    // Only `enabled` and `liveEditing` may come from a workspace, and only to turn them off.
    assert.deepEqual(
      Object.keys(DEFAULT_SETTINGS).filter((k) => !(USER_ONLY_SETTINGS as readonly string[]).includes(k)),
      [...NARROW_ONLY_SETTINGS],
    );
  });

  it('reads user-only settings from user settings, never from the workspace or a folder', () => {
    for (const level of ['workspaceValue', 'workspaceFolderValue'] as const) {
      const onlyWorkspace = readUserSettings((key) => ({
        defaultValue: defaults(key),
        [level]: hostile[key],
      }));
      assert.deepEqual(onlyWorkspace, DEFAULT_SETTINGS, `${level} is ignored`);
      const user: Partial<ExtensionSettings> = {
        port: 8931,
        policyFile: '/home/me/policy.json',
        allowedOrigins: ['http://localhost:6274'],
        memoryMb: 512,
      };
      const both = readUserSettings((key): SettingLevels => ({
        defaultValue: defaults(key),
        globalValue: user[key],
        [level]: hostile[key],
      }));
      assert.deepEqual(both, { ...DEFAULT_SETTINGS, ...user }, `the user value wins over ${level}`);
    }
  });

  it('lets a workspace turn the server and live editing off, never on', () => {
    for (const name of NARROW_ONLY_SETTINGS) {
      const enabled = (levels: SettingLevels): boolean =>
        readUserSettings((key) => (key === name ? { defaultValue: true, ...levels } : undefined))[name];
      assert.equal(enabled({}), true);
      assert.equal(enabled({ workspaceValue: false }), false);
      assert.equal(enabled({ workspaceFolderValue: false }), false);
      assert.equal(enabled({ globalValue: false, workspaceValue: true }), false);
      assert.equal(enabled({ globalValue: false, workspaceFolderValue: true }), false);
      assert.equal(
        enabled({ globalValue: 'yes', workspaceValue: true }),
        true,
        'a mistyped user value is the default',
      );
    }
    assert.ok(!RESTART_SETTINGS.includes('liveEditing'), 'live editing is applied without a restart');
  });

  it('finds the ignored settings in a workspace settings file, dotted or nested', () => {
    const file = '/w/a/.vscode/settings.json';
    const dotted = Object.fromEntries(Object.entries(hostile).map(([k, v]) => [`mcpWorkspace.${k}`, v]));
    const all = ignoredWorkspaceSettings({ ...dotted, 'editor.fontSize': 20 }, file, {
      enabled: true,
      liveEditing: true,
    });
    assert.deepEqual(
      all.map((i) => i.key),
      USER_ONLY_SETTINGS.map((k) => `mcpWorkspace.${k}`).sort(),
      'enabled: true and liveEditing: true are no change while the user has them on',
    );
    assert.ok(all.every((i) => i.file === file));
    assert.deepEqual(all.find((i) => i.key === 'mcpWorkspace.policyFile')?.value, hostile['policyFile']);
    const nested = ignoredWorkspaceSettings(
      { mcpWorkspace: { policyFile: '/p', enabled: true, liveEditing: true } },
      file,
      { enabled: false, liveEditing: false },
    );
    assert.deepEqual(
      nested.map((i) => i.key),
      ['mcpWorkspace.enabled', 'mcpWorkspace.liveEditing', 'mcpWorkspace.policyFile'],
    );
    assert.deepEqual(
      ignoredWorkspaceSettings({ 'mcpWorkspace.enabled': false }, file, { enabled: true, liveEditing: true }),
      [],
    );
    assert.deepEqual(
      ignoredWorkspaceSettings({ 'mcpWorkspaceX.port': 1, 'other.port': 2 }, file, {
        enabled: true,
        liveEditing: true,
      }),
      [],
    );
    for (const junk of [undefined, null, 'x', 42, ['mcpWorkspace.port']]) {
      assert.deepEqual(ignoredWorkspaceSettings(junk, file, { enabled: true, liveEditing: true }), []);
    }
  });

  it('names the settings and the file in the warning', () => {
    const message = ignoredSettingsMessage('/w/a/.vscode/settings.json', [
      'mcpWorkspace.allowedOrigins',
      'mcpWorkspace.policyFile',
    ]);
    assert.match(message, /mcpWorkspace\.allowedOrigins, mcpWorkspace\.policyFile/);
    assert.match(message, /\/w\/a\/\.vscode\/settings\.json/);
    assert.match(message, /user settings/);
  });

  it('restarts only for settings whose value in force changed', () => {
    assert.deepEqual(changedSettings(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS }), []);
    assert.deepEqual(
      changedSettings(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, allowedOrigins: [] }),
      [],
      'arrays by content',
    );
    assert.deepEqual(
      changedSettings(DEFAULT_SETTINGS, {
        ...DEFAULT_SETTINGS,
        allowedOrigins: ['http://localhost:1'],
        port: 5,
      }),
      ['port', 'allowedOrigins'],
    );
  });

  it('acts on a settings change only when the settings in force changed', () => {
    const running = { running: true, failed: false };
    const stopped = { running: false, failed: false };
    const failed = { running: false, failed: true };
    const d = DEFAULT_SETTINGS;
    // A workspace value is ignored: what readUserSettings returns is the same, so nothing happens.
    const ignored = readUserSettings((key) => ({
      defaultValue: defaults(key),
      workspaceValue: hostile[key],
    }));
    for (const host of [running, stopped, failed]) assert.equal(settingsAction(d, ignored, host), 'none');
    assert.equal(settingsAction(d, { ...d, policyFile: '/p' }, running), 'restart');
    assert.equal(settingsAction(d, { ...d, allowedOrigins: ['http://localhost:1'] }, running), 'restart');
    assert.equal(
      settingsAction(d, { ...d, policyFile: '/p' }, stopped),
      'none',
      'a stopped server stays stopped',
    );
    assert.equal(settingsAction(d, { ...d, policyFile: '/p' }, failed), 'start', 'a failed start is retried');
    assert.equal(settingsAction(d, { ...d, enabled: false }, running), 'stop');
    assert.equal(settingsAction(d, { ...d, enabled: false }, stopped), 'none');
    assert.equal(settingsAction({ ...d, enabled: false }, d, stopped), 'start');
    assert.equal(settingsAction(null, d, stopped), 'none');
    assert.equal(settingsAction(null, d, failed), 'start');
  });

  it('refuses a relative policy file, which would resolve inside every workspace', () => {
    assert.equal(resolvePolicyFile(''), undefined);
    assert.equal(resolvePolicyFile('/etc/mcp/policy.json'), '/etc/mcp/policy.json');
    assert.equal(resolvePolicyFile('~/policy.json', '/home/me'), '/home/me/policy.json');
    for (const relative of ['policy.json', '.vscode/policy.json', './p.json', '../p.json', '~other/p.json']) {
      assert.throws(
        () => resolvePolicyFile(relative),
        (err: unknown) =>
          err instanceof WorkspaceError &&
          err.code === 'INVALID_ARGUMENT' &&
          err.message.includes('mcpWorkspace.policyFile') &&
          err.message.includes(relative) &&
          /absolute path/.test(err.message),
      );
      assert.throws(
        () =>
          toServerOptions(
            { ...DEFAULT_SETTINGS, policyFile: relative },
            { path: '/w/a', index: 0 },
            '/s',
            't',
          ),
        WorkspaceError,
      );
    }
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
