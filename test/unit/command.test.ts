import assert from 'node:assert/strict';
import { PolicyEngine } from '../../src/core/policy';
import type { Principal } from '../../src/protocol/principal';
import { WorkspaceError } from '../../src/protocol/errors';
import {
  argvTarget,
  refuseAmbiguousCharacters,
  shellParts,
  shellWord,
  tokenizeCommand,
} from '../../src/core/operations/command';

const AGENT: Principal = { kind: 'agent', name: 'unit-agent', role: 'agent' };

/** The policy of issue 9 item 5: the agent may run `echo` with any arguments, nothing else. */
const ECHO_ONLY = new PolicyEngine({ id: 'echo-only', rules: ['allow exec(echo *)'] });

/** Whether `allow exec(echo *)` admits what would run for `command` when it runs without a shell. */
function echoOnlyAllows(command: string): boolean {
  const words = tokenizeCommand(command);
  if (words === null) return false;
  return ECHO_ONLY.decide(AGENT, 'exec', argvTarget(words)).allowed;
}

/** Asserts that `fn` throws INVALID_ARGUMENT naming `field` and the offending code point. */
function assertRefused(fn: () => void, field: string, codePoint: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WorkspaceError, `expected a WorkspaceError, got ${String(error)}`);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(error.details?.['field'], field);
    assert.equal(error.details?.['codePoint'], codePoint);
    assert.ok(error.message.startsWith(`${field} contains ${codePoint} at offset `), error.message);
    return true;
  });
}

describe('command splitting (run_command exec check)', () => {
  describe('tokenizeCommand: plain words only', () => {
    it('splits on spaces and tabs, collapsing runs of them', () => {
      assert.deepEqual(tokenizeCommand('echo  hello\tworld '), ['echo', 'hello', 'world']);
      assert.deepEqual(tokenizeCommand('ls -la ./src'), ['ls', '-la', './src']);
    });

    it('keeps single-quoted text literal, shell syntax included', () => {
      assert.deepEqual(tokenizeCommand(`echo 'a; b | c $(id) \`id\` &> x'`), [
        'echo',
        'a; b | c $(id) `id` &> x',
      ]);
    });

    it('keeps double-quoted text literal only when nothing in it expands', () => {
      assert.deepEqual(tokenizeCommand('echo "hello world" "a;b|c&d"'), ['echo', 'hello world', 'a;b|c&d']);
      for (const expanding of ['echo "$(id)"', 'echo "`id`"', 'echo "$HOME"', 'echo "a\\"b"', 'echo "hi!"']) {
        assert.equal(tokenizeCommand(expanding), null, expanding);
      }
    });

    it('joins adjacent quoted and unquoted pieces into one word, as sh does', () => {
      assert.deepEqual(tokenizeCommand(`echo a'b c'"d"e`), ['echo', 'ab cde']);
      assert.deepEqual(tokenizeCommand(`echo '' ""`), ['echo', '', '']);
    });

    it('refuses unterminated quotes and empty commands', () => {
      assert.equal(tokenizeCommand(`echo 'open`), null);
      assert.equal(tokenizeCommand('echo "open'), null);
      assert.equal(tokenizeCommand(''), null);
      assert.equal(tokenizeCommand('   '), null);
    });

    it('refuses every character sh would interpret outside quotes', () => {
      const attacks = [
        'echo hi; id',
        'echo hi && id',
        'echo hi || id',
        'echo hi | sh',
        'echo hi & id',
        'echo hi &> /tmp/out',
        'echo hi > /tmp/out',
        'echo hi >| /tmp/out',
        'cat < /etc/passwd',
        'echo $(id)',
        'echo `id`',
        'echo $HOME',
        'echo ${HOME}',
        'echo \\; id',
        'echo *',
        'echo ?',
        'echo [ab]',
        'echo ~root',
        'echo {a,b}',
        'echo hi # comment',
        'echo !1',
        '(id)',
        'echo hi\nid',
      ];
      for (const attack of attacks) assert.equal(tokenizeCommand(attack), null, JSON.stringify(attack));
    });

    it('refuses a leading assignment (env PATH chooses the program), but not `=` in arguments', () => {
      assert.equal(tokenizeCommand('PATH=/tmp/evil echo hi'), null);
      assert.equal(tokenizeCommand('LD_PRELOAD=/tmp/x.so echo hi'), null);
      assert.equal(tokenizeCommand('_X=1 echo'), null);
      assert.deepEqual(tokenizeCommand('echo PATH=/tmp/evil'), ['echo', 'PATH=/tmp/evil']);
      assert.deepEqual(tokenizeCommand('env PATH=/tmp'), ['env', 'PATH=/tmp']);
      assert.deepEqual(tokenizeCommand('/usr/bin/x=y'), ['/usr/bin/x=y']);
      assert.deepEqual(tokenizeCommand(`'PATH=/tmp' echo`), ['PATH=/tmp', 'echo']);
    });
  });

  describe('refuseAmbiguousCharacters', () => {
    it('refuses U+00A0, which reads as a space to a human and to \\s but not to sh', () => {
      assertRefused(
        () => refuseAmbiguousCharacters('command', 'echo\u00a0hi;id', false),
        'command',
        'U+00A0',
      );
      assert.equal(/\s/.test('\u00a0'), true, 'the attack relies on \\s matching U+00A0');
    });

    it('refuses other invisible or non-ASCII whitespace and control characters', () => {
      const cases: Array<[string, string]> = [
        ['\u0000', 'U+0000'],
        ['\u001b', 'U+001B'],
        ['\u007f', 'U+007F'],
        ['\u0085', 'U+0085'],
        ['\u00ad', 'U+00AD'],
        ['\u1680', 'U+1680'],
        ['\u2000', 'U+2000'],
        ['\u200b', 'U+200B'],
        ['\u2028', 'U+2028'],
        ['\u202e', 'U+202E'],
        ['\u3000', 'U+3000'],
        ['\ufeff', 'U+FEFF'],
        ['\r', 'U+000D'],
        ['\v', 'U+000B'],
      ];
      for (const [char, codePoint] of cases) {
        assertRefused(() => refuseAmbiguousCharacters('args[0]', `a${char}b`, true), 'args[0]', codePoint);
      }
    });

    it('refuses tab and newline unless the field may hold them (a script, an env value)', () => {
      assertRefused(() => refuseAmbiguousCharacters('cwd', 'src\nother', false), 'cwd', 'U+000A');
      assertRefused(() => refuseAmbiguousCharacters('command', 'echo\thi', false), 'command', 'U+0009');
      assert.doesNotThrow(() => refuseAmbiguousCharacters('command', 'echo a\n\techo b', true));
      assert.doesNotThrow(() => refuseAmbiguousCharacters('env.X', 'line1\nline2', true));
    });

    it('reports the UTF-16 offset of the offending character', () => {
      assert.throws(
        () => refuseAmbiguousCharacters('command', 'é😀 x\u00a0', false),
        (error: unknown) => error instanceof WorkspaceError && error.details?.['offset'] === 5,
      );
    });

    it('accepts ASCII and printable non-ASCII text', () => {
      assert.doesNotThrow(() =>
        refuseAmbiguousCharacters('command', "echo 'héllo wörld' 日本 😀 ~!@#", false),
      );
    });
  });

  describe('argvTarget and shellWord: what the policy judges', () => {
    it('leaves safe words bare and single-quotes the rest', () => {
      assert.equal(shellWord('src/a-b_c.ts'), 'src/a-b_c.ts');
      assert.equal(shellWord('KEY=v,1:2@3%4+5'), 'KEY=v,1:2@3%4+5');
      assert.equal(shellWord('hello world'), `'hello world'`);
      assert.equal(shellWord(''), `''`);
      assert.equal(shellWord(`it's`), `'it'\\''s'`);
      assert.equal(shellWord('$(id)'), `'$(id)'`);
    });

    it('keeps a word with spaces one word, so it cannot pose as several', () => {
      assert.equal(argvTarget(['echo', 'hi; id']), `echo 'hi; id'`);
      assert.equal(argvTarget(['rm', '-rf', 'a b']), `rm -rf 'a b'`);
      assert.equal(argvTarget(['sh', '-c', 'id']), 'sh -c id');
    });
  });

  describe('shellParts: every chained part of an exec(*) command line', () => {
    it('splits on ;, newline, &&, ||, | and &', () => {
      assert.deepEqual(shellParts('a; b\nc && d || e | f & g'), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    });

    it('does not split the & and | of redirections', () => {
      assert.deepEqual(shellParts('echo hi &> out'), ['echo hi &> out']);
      assert.deepEqual(shellParts('echo hi >&2'), ['echo hi >&2']);
      assert.deepEqual(shellParts('echo hi 2>&1 | rm -rf x'), ['echo hi 2>&1', 'rm -rf x']);
      assert.deepEqual(shellParts('echo hi >| out; rm x'), ['echo hi >| out', 'rm x']);
      assert.deepEqual(shellParts('cat <&3'), ['cat <&3']);
    });

    it('drops empty parts and keeps a command without separators whole', () => {
      assert.deepEqual(shellParts(';; rm -rf x ;'), ['rm -rf x']);
      assert.deepEqual(shellParts('  ls  '), ['ls']);
      assert.deepEqual(shellParts(';'), [';']);
    });
  });

  describe('issue 9 item 5 attacks against `allow exec(echo *)`', () => {
    it('allows plain echo commands', () => {
      assert.equal(echoOnlyAllows('echo hello world'), true);
      assert.equal(echoOnlyAllows(`echo 'a; b'`), true);
    });

    it('refuses every attack spelling of a second command', () => {
      const attacks = [
        'echo hi; id',
        'echo hi\nid',
        'echo hi | sh',
        'echo hi && id',
        'echo hi &> /workspace/.git/config',
        'echo $(id)',
        'echo `id`',
        'PATH=/tmp/evil echo hi',
        'id',
        'sh -c echo',
      ];
      for (const attack of attacks) assert.equal(echoOnlyAllows(attack), false, JSON.stringify(attack));
    });

    it('refuses U+00A0 in a command or an argument before the policy sees it', () => {
      assertRefused(
        () => refuseAmbiguousCharacters('command', 'echo\u00a0hi;\u00a0id', false),
        'command',
        'U+00A0',
      );
      assertRefused(() => refuseAmbiguousCharacters('args[1]', 'x\u00a0', true), 'args[1]', 'U+00A0');
    });
  });
});
