import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tarDirectory, tarEnd, tarFile, tarSymlink } from '../../src/core/execution/docker/tar';
import { gitHooksFolders } from '../../src/core/policy';
import {
  argvTarget,
  refuseAmbiguousCharacters,
  shellParts,
  tokenizeCommand,
} from '../../src/core/operations/command';
import { WorkspaceError } from '../../src/protocol/errors';

describe('exec check: tokenizing commands without a shell', () => {
  it('splits plain words and simple quotes the way sh would', () => {
    assert.deepEqual(tokenizeCommand('npm  run\ttest'), ['npm', 'run', 'test']);
    assert.deepEqual(tokenizeCommand(`git commit -m "fix bug" 'a  b'c`), [
      'git',
      'commit',
      '-m',
      'fix bug',
      'a  bc',
    ]);
    assert.deepEqual(tokenizeCommand(`echo '' ""`), ['echo', '', '']);
    assert.deepEqual(tokenizeCommand('node --x=1 a=b'), ['node', '--x=1', 'a=b']);
    assert.deepEqual(tokenizeCommand('echo "a#b;c|d&e*f"'), ['echo', 'a#b;c|d&e*f']);
  });

  it('returns null for anything a shell would interpret', () => {
    for (const command of [
      'a &> b',
      'a >& b',
      'a > b',
      'a < b',
      'a | b',
      'a; b',
      'a && b',
      'a || b',
      'a &',
      'a $(b)',
      'a `b`',
      'a $B',
      'a "$B"',
      'a "`b`"',
      'a "\\n"',
      'a *',
      'a ?',
      'a [b]',
      'a ~',
      'a #c',
      'a {b,c}',
      '! a',
      'a\nb',
      "a 'b",
      'a "b',
      'A=1 a',
      'a \\; b',
      '(a)',
      '   ',
    ]) {
      assert.equal(tokenizeCommand(command), null, command);
    }
  });

  it('renders an argv unambiguously for the policy check', () => {
    assert.equal(argvTarget(['echo', 'a b', "it's", '-x=1']), `echo 'a b' 'it'\\''s' -x=1`);
    assert.deepEqual(shellParts('a; b && c | d &> e'), ['a', 'b', 'c', 'd &> e']);
  });

  it('refuses control characters and non-ASCII whitespace, naming the code point', () => {
    for (const bad of [
      'a\u00a0b',
      'a\u2028b',
      'a\u200bb',
      'a\rb',
      'a\u0000b',
      'a\u0085b',
      'a\ufeffb',
      'a\u3000b',
      'a\u202eb',
    ]) {
      assert.throws(
        () => refuseAmbiguousCharacters('command', bad, true),
        (err: unknown) =>
          err instanceof WorkspaceError &&
          err.code === 'INVALID_ARGUMENT' &&
          /U\+[0-9A-F]{4}/.test(err.message),
        JSON.stringify(bad),
      );
    }
    refuseAmbiguousCharacters('command', 'echo héllo wörld 日本', false);
    refuseAmbiguousCharacters('command', 'line1\nline2\tx', true);
    assert.throws(() => refuseAmbiguousCharacters('cwd', 'a\tb', false), /U\+0009/);
  });
});

describe('exec check: core.hooksPath of the workspace repository', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcpw-hooks-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('finds hooksPath folders inside the workspace only', async () => {
    await mkdir(join(root, '.git'));
    await writeFile(
      join(root, '.git', 'config'),
      '[core]\n\tbare = false\n[user]\n\thooksPath = ignored\n[core]\n\thooksPath = "tools/hooks" ; comment\n' +
        `[CORE]\n\tHooksPath = ${join(root, 'abs', 'hooks')}\n[core]\n\thooksPath = ../outside\n\thooksPath = ~/hooks\n`,
    );
    assert.deepEqual((await gitHooksFolders(root)).sort(), ['abs/hooks', 'tools/hooks']);
  });

  it('follows a worktree gitdir pointer and its common dir, and never throws', async () => {
    await mkdir(join(root, 'repo', 'worktrees', 'w'), { recursive: true });
    await writeFile(join(root, 'repo', 'worktrees', 'w', 'commondir'), '../..\n');
    await writeFile(join(root, 'repo', 'config'), '[core]\n\thooksPath = .githooks-x\n');
    await mkdir(join(root, 'ws'));
    await writeFile(join(root, 'ws', '.git'), `gitdir: ${join(root, 'repo', 'worktrees', 'w')}\n`);
    assert.deepEqual(await gitHooksFolders(join(root, 'ws')), ['.githooks-x']);
    assert.deepEqual(await gitHooksFolders(join(root, 'missing')), []);
  });
});

describe('exec check: the server-built build context tar', () => {
  it('is read back by tar(1) with long names, modes and links intact', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mcpw-tar-'));
    try {
      const long = 'd/' + 'n'.repeat(150) + '.txt';
      const archive = Buffer.concat([
        tarDirectory('d', 0o755, Date.now()),
        tarFile('d/run.sh', Buffer.from('#!/bin/sh\n'), 0o755, Date.now()),
        tarFile(long, Buffer.from('long'), 0o644, Date.now()),
        tarFile('d/ünï.txt', Buffer.from('utf8'), 0o644, Date.now()),
        tarSymlink('d/link', '../' + 'x'.repeat(120), Date.now()),
        tarEnd(),
      ]);
      await writeFile(join(root, 'a.tar'), archive);
      await mkdir(join(root, 'out'));
      execFileSync('tar', ['-xf', join(root, 'a.tar'), '-C', join(root, 'out')]);
      const listing = execFileSync('tar', ['-tvf', join(root, 'a.tar')], { encoding: 'utf8' });
      assert.match(listing, /^-rwxr-xr-x .* d\/run\.sh$/m);
      assert.match(listing, new RegExp(`n{150}\\.txt`));
      assert.match(listing, /d\/ünï\.txt/);
      assert.match(listing, new RegExp(`d/link -> \\.\\./x{120}`));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
