import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_POLICY,
  parseRule,
  PolicyEngine,
  PolicyStore,
  validatePolicy,
  type Policy,
  type PolicyAction,
} from '../../src/core/policy';
import { WorkspaceError } from '../../src/protocol/errors';
import { OWNER, type Principal } from '../../src/protocol/principal';
import { makeTempDir, removeTempDir } from '../helpers/fixtures';

const bob: Principal = { kind: 'agent', name: 'bob', role: 'agent' };
const builder: Principal = { kind: 'agent', name: 'builder', role: 'agent' };
const viewer: Principal = { kind: 'agent', name: 'vera', role: 'viewer' };

/** Asserts that `fn` throws a WorkspaceError with `code` whose message matches `message`. */
function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, `expected WorkspaceError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Async variant of assertCode. */
async function assertRejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WorkspaceError, `expected WorkspaceError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** An engine with the given rules for quick decision checks. */
function engine(...rules: string[]): PolicyEngine {
  return new PolicyEngine({ id: 'test', rules });
}

/** Whether `principal` may do `action` on `target` under a single `allow` rule. */
function allows(rule: string, action: PolicyAction, target: string, principal: Principal = bob): boolean {
  return engine(rule).decide(principal, action, target).allowed;
}

describe('policy: parseRule', () => {
  it('parses effect, action, pattern and selectors', () => {
    assert.deepEqual(parseRule('allow exec(npm run *)', 0), {
      effect: 'allow',
      action: 'exec',
      pattern: 'npm run *',
      selector: { kind: 'all' },
      text: 'allow exec(npm run *)',
      index: 0,
    });
    assert.deepEqual(parseRule('deny write(.git/**)', 4).selector, { kind: 'all' });
    assert.equal(parseRule('deny write(.git/**)', 4).index, 4);
    assert.deepEqual(parseRule('allow read(**) @viewer', 0).selector, { kind: 'role', role: 'viewer' });
    assert.deepEqual(parseRule('allow read(**) @owner', 0).selector, { kind: 'role', role: 'owner' });
    assert.deepEqual(parseRule('allow read(**) @agent', 0).selector, { kind: 'role', role: 'agent' });
    assert.deepEqual(parseRule('allow network(*) @agent:builder', 0).selector, {
      kind: 'agent',
      name: 'builder',
    });
    // A pair guest is the principal `pair:NAME`.
    assert.deepEqual(parseRule('deny write(**) @pair:alice', 0).selector, {
      kind: 'agent',
      name: 'pair:alice',
    });
  });

  it('tolerates whitespace around tokens', () => {
    const rule = parseRule('   deny   write ( src/** )   @agent:bob  ', 2);
    assert.equal(rule.effect, 'deny');
    assert.equal(rule.action, 'write');
    assert.equal(rule.pattern, 'src/**');
    assert.deepEqual(rule.selector, { kind: 'agent', name: 'bob' });
    assert.equal(rule.text, 'deny   write ( src/** )   @agent:bob');
  });

  it("takes the pattern up to the last ')'", () => {
    assert.equal(parseRule('allow exec(echo (a) b)', 0).pattern, 'echo (a) b');
    assert.equal(parseRule('allow exec(node -e f()) @agent', 0).pattern, 'node -e f()');
  });

  const malformed: Array<[string, RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['permit read(**)', /must start with 'allow' or 'deny'/],
    ['allow', /must be followed by ACTION\(PATTERN\)/],
    ['allowread(**)', /must start with 'allow' or 'deny'/],
    ['allow delete(**)', /unknown action "delete"/],
    ['allow read', /missing '\('/],
    ['allow read(**', /missing '\)'/],
    ['allow read()', /pattern is empty/],
    ['allow read(  )', /pattern is empty/],
    ['allow read(**) extra', /unexpected text "extra"/],
    ['allow read(**) @admin', /unknown selector "@admin"/],
    ['allow read(**) @agent:', /not a valid agent name/],
    ['allow read(**) @agent:-bad', /not a valid agent name/],
    ['allow read(**) @agent:pair:alice', /not a valid agent name/],
    ['allow read(**) @pair:', /not a valid pair guest name/],
    ['allow read(**) @pair:a/b', /not a valid pair guest name/],
    ['allow read(**) @viewer @agent', /unknown selector/],
    ['allow read({a,b)', /malformed: unmatched '\{'/],
    ['allow read(a})', /malformed: unmatched '\}'/],
    ['allow read([abc)', /malformed: unclosed '\['/],
    ['allow read([z-a])', /malformed: it does not compile/],
    ['allow read(/etc/**)', /leading '\/'/],
    ['allow read(src/../secret)', /'\.\.' segments/],
    ['allow tool(a\\)', /trailing backslash/],
  ];
  for (const [text, message] of malformed) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assertCode(() => parseRule(text, 6), 'INVALID_POLICY', message);
      assertCode(() => parseRule(text, 6), 'INVALID_POLICY', /rule 7/);
      assertCode(() => parseRule(text, 6), 'INVALID_POLICY', /Expected 'allow\|deny ACTION\(PATTERN\)'/);
    });
  }

  it('puts the rule index and text in the error details', () => {
    try {
      parseRule('allow nope(x)', 3);
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(err instanceof WorkspaceError);
      assert.deepEqual(err.details, { ruleIndex: 3, rule: 'allow nope(x)' });
      assert.match(err.message, /"allow nope\(x\)"/);
    }
  });
});

describe('policy: validatePolicy', () => {
  it('returns a detached copy of a valid policy', () => {
    const input = { id: 'p', rules: ['allow read(**)'], extra: true };
    const policy = validatePolicy(input);
    assert.deepEqual(policy, { id: 'p', rules: ['allow read(**)'] });
    input.rules.push('allow write(**)');
    assert.equal(policy.rules.length, 1);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['null', null, /JSON object/],
    ['an array', [], /JSON object/],
    ['a missing id', { rules: [] }, /"id"/],
    ['an empty id', { id: ' ', rules: [] }, /"id"/],
    ['a long id', { id: 'x'.repeat(129), rules: [] }, /128/],
    ['missing rules', { id: 'p' }, /"rules" must be an array/],
    ['a non-string rule', { id: 'p', rules: ['allow read(**)', 3] }, /rule 2 must be a string/],
    ['too many rules', { id: 'p', rules: Array(1001).fill('allow read(**)') }, /at most 1000/],
    ['a long rule', { id: 'p', rules: [`allow read(${'a'.repeat(1000)})`] }, /at most 1000/],
    ['a malformed rule', { id: 'p', rules: ['allow read(**)', 'allow fly(x)'] }, /rule 2 .*unknown action/],
  ];
  for (const [name, value, message] of bad) {
    it(`rejects ${name}`, () => assertCode(() => validatePolicy(value), 'INVALID_POLICY', message));
  }

  it('accepts an id of exactly 128 characters and 1000 rules', () => {
    const policy = validatePolicy({ id: 'x'.repeat(128), rules: Array(1000).fill('allow read(**)') });
    assert.equal(policy.rules.length, 1000);
  });
});

describe('policy: path globs (read/write)', () => {
  const table: Array<[string, string, boolean]> = [
    ['**', '.', true],
    ['**', 'a', true],
    ['**', 'a/b/c.ts', true],
    ['**', '.git/config', true],
    ['*', 'a.ts', true],
    ['*', 'src/a.ts', false],
    ['*', '.', false],
    ['*.ts', 'a.ts', true],
    ['*.ts', 'src/a.ts', false],
    ['src/*', 'src/a.ts', true],
    ['src/*', 'src', false],
    ['src/*', 'src/a/b.ts', false],
    ['src/**', 'src', true],
    ['src/**', 'src/a/b.ts', true],
    ['src/**', 'srcx/a.ts', false],
    ['src/**', 'lib/src/a.ts', false],
    ['**/*.ts', 'a.ts', true],
    ['**/*.ts', 'src/deep/a.ts', true],
    ['**/*.ts', 'src/a.js', false],
    ['src/**/test', 'src/test', true],
    ['src/**/test', 'src/a/b/test', true],
    ['src/**/test', 'src/atest', false],
    ['src/**/*.ts', 'src/a/b.ts', true],
    ['a?.ts', 'ab.ts', true],
    ['a?.ts', 'a.ts', false],
    ['a?.ts', 'abc.ts', false],
    ['a?b', 'a/b', false],
    ['*.{ts,js}', 'x.ts', true],
    ['*.{ts,js}', 'x.js', true],
    ['*.{ts,js}', 'x.css', false],
    ['{src,test}/**', 'test/unit/a.ts', true],
    ['{src,test}/**', 'lib/a.ts', false],
    ['{a,b{c,d}}.txt', 'bd.txt', true],
    ['file[0-9].txt', 'file7.txt', true],
    ['file[0-9].txt', 'fileA.txt', false],
    ['file[!0-9].txt', 'fileA.txt', true],
    ['file[!0-9].txt', 'file1.txt', false],
    ['a[!x]b', 'a/b', false],
    ['[ab]*', 'b.md', true],
    ['.', '.', true],
    ['.', 'a', false],
    ['./src/**', 'src/a.ts', true],
    ['./README.md', 'README.md', true],
    ['README.md', './README.md', true],
    ['README.md', 'readme.md', false],
    ['src/a\\*b', 'src/a*b', true],
    ['src/a\\*b', 'src/axb', false],
    ['**/.env*', '.env', true],
    ['**/.env*', '.env.local', true],
    ['**/.env*', 'packages/app/.env', true],
    ['**/.env*', 'src/env.ts', false],
    ['.git/**', '.git', true],
    ['.git/**', '.git/config', true],
    ['.git/**', '.git/objects/ab/cdef', true],
    ['.git/**', '.github/workflows/ci.yml', false],
    ['.git/**', 'sub/.git/config', false],
    ['src/**', 'src/', true],
    ['**', 'src/../a', true],
  ];
  for (const [pattern, path, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${path}`, () => {
      assert.equal(allows(`allow read(${pattern})`, 'read', path), expected);
      // The owner: agents' writes to protected paths need a naming rule (tested below).
      assert.equal(allows(`allow write(${pattern})`, 'write', path, OWNER), expected);
    });
  }

  it('never matches paths outside the workspace, even with **', () => {
    const e = engine('allow read(**)');
    for (const path of ['/etc/passwd', '../x', '..', 'a/../../x']) {
      const decision = e.decide(bob, 'read', path);
      assert.equal(decision.allowed, false, path);
      assert.match(decision.reason, /outside the workspace/);
    }
  });
});

describe('policy: glob engine traps (picomatch cannot weaken a rule)', () => {
  it('matches dot paths: deny write(.git/**) and deny read(**/.env*) still refuse them', () => {
    const e = engine('allow read(**)', 'allow write(**)', 'deny write(.git/**)', 'deny read(**/.env*)');
    for (const path of ['.git/config', '.git/hooks/pre-commit', '.git/.hidden/x', '.GIT/config']) {
      assert.equal(e.decide(OWNER, 'write', path).allowed, false, path);
    }
    for (const path of ['.env', 'app/.env.local', '.config/.env']) {
      assert.equal(e.decide(bob, 'read', path).allowed, false, path);
    }
    assert.equal(allows('allow read(*)', 'read', '.hidden'), true);
    assert.equal(allows('allow read(**/*)', 'read', '.a/.b/.c'), true);
  });

  it('reads a leading ! as a literal character, never as negation', () => {
    assert.equal(allows('allow read(!secret.txt)', 'read', '!secret.txt'), true);
    assert.equal(allows('allow read(!secret.txt)', 'read', 'other.txt'), false);
    const e = engine('allow read(**)', 'deny read(!a)');
    assert.equal(e.decide(bob, 'read', 'b').allowed, true, 'deny read(!a) must not deny everything but a');
    assert.equal(e.decide(bob, 'read', '!a').allowed, false);
  });

  it('reads extglob and regex syntax literally: +(a|b), @(a|b), (a|b), a|b', () => {
    for (const pattern of ['+(a|b)', '@(a|b)', '!(a)', '(a|b)', 'a|b', 'a+', '^a$']) {
      assert.equal(allows(`allow read(${pattern})`, 'read', pattern), true, `${pattern} matches itself`);
      for (const path of ['a', 'b', '+a', 'aa', 'x']) {
        assert.equal(
          allows(`allow read(${pattern})`, 'read', path),
          false,
          `${pattern} must not match ${path}`,
        );
      }
    }
  });

  it('expands {a,b} as the README documents, without ranges, and bounds the expansion', () => {
    assert.equal(allows('allow read(*.{ts,js})', 'read', 'x.js'), true);
    assert.equal(allows('allow read({src,test}/**)', 'read', 'test/unit/a.ts'), true);
    assert.equal(allows('allow read({src,test}/**)', 'read', 'lib/a.ts'), false);
    assert.equal(allows('allow read(file{1..3})', 'read', 'file2'), false, 'no numeric ranges');
    assert.equal(allows('allow read(file{1..3})', 'read', 'file1..3'), true);
    assert.equal(allows('allow read(a\\{b,c\\})', 'read', 'a{b,c}'), true, 'escaped braces are literal');
    assertCode(() => engine('allow read({a,b)'), 'INVALID_POLICY', /unmatched '\{'/);
    assertCode(
      () => engine(`allow read(${'{a,b}'.repeat(9)})`),
      'INVALID_POLICY',
      /more than 256 alternatives/,
    );
  });

  it('treats \\ as an escape, never as a path separator', () => {
    assert.equal(allows('allow read(*)', 'read', 'a\\b'), true, 'a\\b is one segment');
    assert.equal(allows('allow read(a\\\\b)', 'read', 'a\\b'), true);
    assert.equal(allows('allow read(a\\\\b)', 'read', 'a/b'), false);
    assert.equal(allows('allow read(src/*)', 'read', 'src\\x/y'), false);
    assertCode(() => engine('allow read(a\\)'), 'INVALID_POLICY', /trailing backslash/);
  });

  it('matches a class as one character, never the literal text of the class', () => {
    assert.equal(allows('allow read([abc])', 'read', 'b'), true);
    assert.equal(allows('allow read([abc])', 'read', '[abc]'), false);
    assert.equal(allows('allow read([!abc])', 'read', '!'), true);
    assert.equal(allows('allow read([!abc])', 'read', 'a'), false);
    assertCode(() => engine('allow read(a[bc)'), 'INVALID_POLICY', /unclosed '\['/);
    assertCode(() => engine('allow read([z-a])'), 'INVALID_POLICY', /does not compile/);
  });

  it('decides hostile patterns against long paths without backtracking (the test would hang otherwise)', () => {
    const segment = 'a'.repeat(250);
    const longPath = Array(16).fill(segment).join('/');
    const e = engine(
      'allow read(**)',
      `deny read(${'*a'.repeat(40)}*b)`,
      `deny read(${'**/a*'.repeat(40)}/**/b)`,
      `deny read(**/${'*a'.repeat(20)}*b/**)`,
    );
    for (let i = 0; i < 20; i++) {
      assert.equal(e.decide(bob, 'read', longPath).allowed, true);
      assert.equal(e.decide(bob, 'read', segment).allowed, true);
    }
    assert.equal(
      e.decide(bob, 'read', `${segment}/${segment}b`).allowed,
      false,
      'the hostile rules still match',
    );
    const names = engine('allow tool(*)', `deny tool(${'*a'.repeat(40)}*b)`);
    assert.equal(names.decide(bob, 'tool', 'a'.repeat(5000)).allowed, true);
    const commands = engine(`allow exec(${'* a'.repeat(60)} *b)`);
    assert.equal(commands.decide(bob, 'exec', 'a '.repeat(4000)).allowed, false);
  });

  it('keeps ? and [!...] in name globs matching /, so deny env(A?B) cannot be stepped around', () => {
    const e = engine('allow env(*)', 'deny env(A?B)', 'deny env(C[!x]D)');
    assert.equal(e.decide(bob, 'env', 'A/B').allowed, false);
    assert.equal(e.decide(bob, 'env', 'C/D').allowed, false);
  });
});

describe('policy: exec, network and tool patterns', () => {
  const exec: Array<[string, string, boolean]> = [
    ['npm test', 'npm test', true],
    ['npm test', 'npm test -- --grep x', true],
    ['npm test', 'npm testx', false],
    ['npm test', 'npm', false],
    ['npm test', '  npm   test  ', true],
    ['npm run *', 'npm run build', true],
    ['npm run *', 'npm run build -- --watch /tmp/x', true],
    ['npm run *', 'npm run', false],
    ['npm run *', 'npx run build', false],
    ['git * --dry-run', 'git clean -fd --dry-run', true],
    ['git * --dry-run', 'git clean -fd', false],
    ['*', 'rm -rf /', true],
    ['ls ?', 'ls ?', true],
    ['ls ?', 'ls a', false],
  ];
  for (const [pattern, command, expected] of exec) {
    it(`exec(${pattern}) ${expected ? 'matches' : 'does not match'} ${JSON.stringify(command)}`, () => {
      assert.equal(allows(`allow exec(${pattern})`, 'exec', command), expected);
    });
  }

  const network: Array<[string, string, boolean]> = [
    ['registry.npmjs.org', 'registry.npmjs.org', true],
    ['registry.npmjs.org', 'registry.npmjs.org:443', true],
    ['registry.npmjs.org', 'REGISTRY.npmjs.org', true],
    ['registry.npmjs.org', 'evil.org', false],
    ['*.github.com', 'api.github.com:443', true],
    ['*.github.com', 'github.com', false],
    ['*.github.com', 'github.com.evil.org', false],
    ['localhost:3000', 'localhost:3000', true],
    ['localhost:3000', 'localhost:3001', false],
    ['localhost:3000', 'localhost', false],
    ['localhost:*', 'localhost:8080', true],
    ['*', 'anything.example:1', true],
    ['[::1]:8080', '[::1]:8080', true],
    ['[::1]', '[::1]:8080', true],
  ];
  for (const [pattern, target, expected] of network) {
    it(`network(${pattern}) ${expected ? 'matches' : 'does not match'} ${target}`, () => {
      assert.equal(allows(`allow network(${pattern})`, 'network', target), expected);
    });
  }

  const tool: Array<[string, string, boolean]> = [
    ['read_file', 'read_file', true],
    ['read_file', 'read_files', false],
    ['read_*', 'read_file', true],
    ['read_*', 'write_file', false],
    ['*', 'exec', true],
    ['{read,write}_file', 'write_file', true],
    ['?et_policy', 'set_policy', true],
    ['Read_file', 'read_file', false],
  ];
  for (const [pattern, name, expected] of tool) {
    it(`tool(${pattern}) ${expected ? 'matches' : 'does not match'} ${name}`, () => {
      assert.equal(allows(`allow tool(${pattern})`, 'tool', name), expected);
    });
  }

  it('only consults rules of the requested action', () => {
    const e = engine('allow read(**)');
    assert.equal(e.decide(bob, 'write', 'a.ts').allowed, false);
    assert.equal(e.decide(bob, 'exec', 'a.ts').allowed, false);
  });
});

describe('policy: decide', () => {
  it('lets the first matching deny win over any allow, regardless of order', () => {
    const e = engine(
      'allow write(**)',
      'deny write(secret/**)',
      'deny write(secret/a)',
      'allow write(secret/a)',
    );
    const decision = e.decide(bob, 'write', 'secret/a');
    assert.deepEqual(decision, {
      allowed: false,
      rule: 'deny write(secret/**)',
      ruleIndex: 1,
      reason: 'denied by rule 2: deny write(secret/**)',
    });
  });

  it('reports the first matching allow', () => {
    const decision = engine('allow read(src/**)', 'allow read(**)').decide(bob, 'read', 'src/a.ts');
    assert.deepEqual(decision, {
      allowed: true,
      rule: 'allow read(src/**)',
      ruleIndex: 0,
      reason: 'allowed by rule 1: allow read(src/**)',
    });
  });

  it('denies by default with an explanation', () => {
    const e = engine('allow read(**)');
    assert.deepEqual(e.decide(bob, 'write', 'src/a.ts'), {
      allowed: false,
      rule: null,
      ruleIndex: null,
      reason: "no rule allows write(src/a.ts) for agent 'bob' (deny by default)",
    });
    assert.match(e.decide(OWNER, 'exec', 'make').reason, /no rule allows exec\(make\) for the owner/);
    assert.match(e.decide(viewer, 'write', '.').reason, /write\(\.\) for agent 'vera' \(viewer\)/);
  });

  it('applies role selectors', () => {
    const e = engine('allow read(**)', 'deny read(private/**) @viewer', 'allow exec(make) @owner');
    assert.equal(e.decide(viewer, 'read', 'private/a').allowed, false);
    assert.equal(e.decide(bob, 'read', 'private/a').allowed, true);
    assert.equal(e.decide(OWNER, 'exec', 'make').allowed, true);
    assert.equal(e.decide(bob, 'exec', 'make').allowed, false);
  });

  it('applies the @agent role selector to agents but not viewers or the owner', () => {
    const e = engine('allow exec(make) @agent');
    assert.equal(e.decide(bob, 'exec', 'make').allowed, true);
    assert.equal(e.decide(viewer, 'exec', 'make').allowed, false);
    assert.equal(e.decide(OWNER, 'exec', 'make').allowed, false);
  });

  it('applies agent-name selectors to that agent only', () => {
    const e = engine('allow network(*) @agent:builder', 'deny network(evil.org) @agent:bob');
    assert.equal(e.decide(builder, 'network', 'registry.npmjs.org:443').allowed, true);
    assert.equal(e.decide(bob, 'network', 'registry.npmjs.org:443').allowed, false);
    assert.equal(e.decide({ ...OWNER, name: 'builder' }, 'network', 'x').allowed, false);
    assert.equal(e.decide(builder, 'network', 'evil.org').allowed, true);
  });

  it('judges a path in its normal form, however it is spelled', () => {
    const e = engine('allow read(src/**)', 'deny read(src/secret/**)');
    for (const spelling of [
      'src/secret/a',
      './src/secret/a',
      'src//secret/a',
      'src/x/../secret/a',
      'src/./secret/a/',
    ]) {
      assert.equal(
        e.decide(bob, 'read', spelling).reason,
        'denied by rule 2: deny read(src/secret/**)',
        spelling,
      );
    }
    assert.match(e.decide(bob, 'read', 'src/a/./b/').reason, /allowed by rule 1/);
    assert.match(e.decide(bob, 'read', 'src/../../x').reason, /read\(\.\.\/x\) is outside the workspace/);
    assert.match(e.decide(bob, 'read', '..a').reason, /no rule allows read\(\.\.a\)/);
  });

  it('gives a walk the same answers through pathDecider(), memoised by name only where that is exact', () => {
    const policies: string[][] = [
      [...DEFAULT_POLICY.rules],
      [...DEFAULT_POLICY.rules, 'deny read(**/{secret,Private}*) @agent', 'deny read(**/.ΣΕΚΡΕΤ)'],
      ['allow read(**)', 'deny read(src/private/**)', 'deny read(**/.env)'],
      ['allow read(src/**)', 'deny read(**/*.key) @viewer'],
      ['allow read(**)', 'deny read(**/{a,b/c})'],
    ];
    const paths = [
      'src/a.ts',
      'src/.env',
      'x/.ENV.local',
      'deep/er/id_rsa',
      'k.key',
      'K.KEY',
      'src/private/x',
      'src/Private/x',
      'secret.txt',
      'a/SecretX',
      'a/privateer',
      'a/.σεκρετ',
      'a/.ΣΕΚΡΕΤ',
      'b/c',
      'a',
      'z/b/c',
      'z/a',
      'src',
      '',
      './src/.env',
      'src//a',
      '../x',
      '/etc/passwd',
      'caf\u00e9.pem',
      'cafe\u0301/x.PEM',
      'a\u200c.env',
    ];
    for (const rules of policies) {
      const e = engine(...rules);
      for (const principal of [OWNER, bob, viewer]) {
        const decider = e.pathDecider(principal, 'read');
        for (let round = 0; round < 2; round++) {
          for (const p of paths) {
            assert.equal(
              decider(p),
              e.allows(principal, 'read', p),
              `${rules.join('; ')} / ${principal.name} / ${p}`,
            );
          }
        }
      }
    }
    // A policy change takes effect in a decider made before it.
    const e = engine('allow read(**)');
    const decider = e.pathDecider(bob, 'read');
    assert.equal(decider('a/x.pem'), true);
    e.set({ id: 'p2', rules: ['allow read(**)', 'deny read(**/*.pem)'] });
    assert.equal(decider('a/x.pem'), false);
    assert.equal(decider('b/x.pem'), false);
  });

  it('answers allows() exactly as decide().allowed, for every action, principal and kind of target', () => {
    const e = engine(
      ...DEFAULT_POLICY.rules,
      'allow exec(make *)',
      'deny exec(make clean) @agent:bob',
      'allow network(*.npmjs.org:443)',
      'allow tool(*)',
      'allow env(DEBUG)',
      'deny env(SECRET_*)',
      'deny lease-conflict(src/**) @agent',
      'deny read(Private/**) @viewer',
    );
    const targets: Record<PolicyAction, string[]> = {
      read: [
        'src/a.ts',
        '.env',
        'a/.ENV.local',
        'PRIVATE/x',
        'Private/x',
        '../up',
        '/abs',
        '',
        './a/../b',
        'k/id_rsa',
      ],
      write: ['.git/config', '.GIT/hooks/x', 'src/a.ts', '.vscode/settings.json', 'x.pem', '.', 'a//b/'],
      exec: ['make', 'make test', 'make clean', 'rm -rf /'],
      network: ['registry.npmjs.org:443', 'evil.org:443'],
      tool: ['eslint', 'devcontainer.mounts', 'devcontainer.runArgs'],
      env: ['DEBUG', 'PATH', 'SECRET_KEY', 'LD_PRELOAD', 'FOO'],
      'lease-conflict': ['src/a.ts', 'docs/b.md'],
    };
    let compared = 0;
    for (const principal of [OWNER, bob, builder, viewer]) {
      for (const [action, list] of Object.entries(targets) as [PolicyAction, string[]][]) {
        for (const target of list) {
          const decided = e.decide(principal, action, target).allowed;
          assert.equal(
            e.allows(principal, action, target),
            decided,
            `${principal.name} ${action}(${target})`,
          );
          compared++;
        }
      }
    }
    assert.ok(compared > 100);
    assert.equal(e.allows(bob, 'bogus' as PolicyAction, 'x'), false);
  });
});

describe('policy: DEFAULT_POLICY', () => {
  const e = new PolicyEngine();

  it('is the default and has id "default"', () => {
    assert.equal(e.policy.id, 'default');
    assert.deepEqual(e.policy, { id: DEFAULT_POLICY.id, rules: [...DEFAULT_POLICY.rules] });
    assert.ok(Object.isFrozen(DEFAULT_POLICY.rules));
  });

  it('allows ordinary reads and writes', () => {
    assert.equal(e.decide(bob, 'write', 'src/a.ts').allowed, true);
    assert.equal(e.decide(bob, 'read', 'src/a.ts').allowed, true);
    assert.equal(e.decide(bob, 'read', '.').allowed, true);
    assert.equal(e.decide(OWNER, 'write', 'README.md').allowed, true);
  });

  it('protects .git against writes but not reads', () => {
    const decision = e.decide(bob, 'write', '.git/config');
    assert.equal(decision.allowed, false);
    assert.equal(decision.reason, 'denied by rule 3: deny write(.git/**)');
    assert.equal(e.decide(bob, 'write', '.git').allowed, false);
    assert.equal(e.decide(bob, 'read', '.git/config').allowed, true);
  });

  it('protects secrets against reads and writes at any depth', () => {
    for (const path of [
      '.env',
      'app/.env.production',
      'certs/server.pem',
      'a/b/tls.key',
      'home/.ssh/id_rsa',
    ]) {
      assert.equal(e.decide(bob, 'read', path).allowed, false, `read ${path}`);
      assert.equal(e.decide(bob, 'write', path).allowed, false, `write ${path}`);
    }
    assert.match(e.decide(bob, 'read', '.env').reason, /deny read\(\*\*\/\.env\*\)/);
  });

  it('denies exec, network and tool rules by default', () => {
    assert.equal(e.decide(OWNER, 'exec', 'npm test').allowed, false);
    assert.equal(e.decide(bob, 'network', 'example.com:443').allowed, false);
    assert.equal(e.decide(bob, 'tool', 'read_file').rule, null);
  });

  it('makes viewers read-only', () => {
    assert.equal(e.decide(viewer, 'read', 'src/a.ts').allowed, true);
    const decision = e.decide(viewer, 'write', 'src/a.ts');
    assert.equal(decision.allowed, false);
    assert.equal(decision.rule, 'deny write(**) @viewer');
  });
});

describe('policy: PolicyEngine.set and onChange', () => {
  it('swaps the policy and notifies listeners with a copy', () => {
    const e = new PolicyEngine();
    const seen: Policy[] = [];
    e.onChange((p) => seen.push(p));
    e.set({ id: 'strict', rules: ['allow read(src/**)'] });
    assert.equal(e.policy.id, 'strict');
    assert.equal(e.rules().length, 1);
    assert.equal(e.decide(bob, 'write', 'src/a.ts').allowed, false);
    assert.deepEqual(seen, [{ id: 'strict', rules: ['allow read(src/**)'] }]);
    seen[0].rules.push('allow write(**)');
    assert.deepEqual(e.policy.rules, ['allow read(src/**)']);
  });

  it('keeps the old policy and does not notify when the new one is invalid', () => {
    const e = engine('allow read(**)');
    let calls = 0;
    e.onChange(() => calls++);
    assertCode(
      () => e.set({ id: 'bad', rules: ['allow read(**)', 'allow write(('] }),
      'INVALID_POLICY',
      /rule 2/,
    );
    assert.equal(e.policy.id, 'test');
    assert.equal(e.decide(bob, 'read', 'a').allowed, true);
    assert.equal(calls, 0);
  });

  it('stops notifying after unsubscribe', () => {
    const e = new PolicyEngine();
    let calls = 0;
    const off = e.onChange(() => calls++);
    e.set({ id: 'a', rules: [] });
    off();
    e.set({ id: 'b', rules: [] });
    assert.equal(calls, 1);
  });

  it('returns copies from policy and rules()', () => {
    const e = engine('allow read(**)');
    e.policy.rules.push('allow write(**)');
    e.rules().pop();
    assert.deepEqual(e.policy.rules, ['allow read(**)']);
    assert.equal(e.rules().length, 1);
  });

  it('does not let caller mutation of the input change the active policy', () => {
    const input = { id: 'x', rules: ['allow read(**)'] };
    const e = new PolicyEngine(input);
    input.rules.push('allow write(**)');
    assert.equal(e.decide(bob, 'write', 'a').allowed, false);
  });
});

describe('policy: PolicyStore', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await makeTempDir('policy');
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('returns null when nothing was saved', async () => {
    assert.equal(await new PolicyStore(join(dir, 'state')).load(), null);
  });

  it('round-trips a policy with mode 0600', async () => {
    const stateDir = join(dir, 'state');
    const store = new PolicyStore(stateDir);
    const policy = { id: 'p1', rules: ['allow read(**)', 'deny read(secret/**) @viewer'] };
    await store.save(policy);
    assert.deepEqual(await store.load(), policy);
    await store.save({ id: 'p2', rules: [] });
    assert.deepEqual(await new PolicyStore(stateDir).load(), { id: 'p2', rules: [] });
    if (process.platform !== 'win32') {
      assert.equal((await stat(join(stateDir, 'policy.json'))).mode & 0o777, 0o600);
      assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
    }
  });

  it('refuses to save an invalid policy', async () => {
    const store = new PolicyStore(dir);
    await assertRejects(store.save({ id: 'p', rules: ['allow x(y)'] }), 'INVALID_POLICY');
    assert.equal(await store.load(), null);
  });

  it('reports a corrupt or invalid saved policy', async () => {
    await writeFile(join(dir, 'policy.json'), '{"id": "p", "rules": [');
    await assertRejects(new PolicyStore(dir).load(), 'INVALID_POLICY', /corrupt/);
    await writeFile(join(dir, 'policy.json'), '{"id": "p", "rules": ["allow nope(x)"]}');
    await assertRejects(new PolicyStore(dir).load(), 'INVALID_POLICY', /policy\.json is invalid: .*rule 1/);
  });

  it('loads a JSON policy file', async () => {
    const file = join(dir, 'team.json');
    await writeFile(file, JSON.stringify({ id: 'team', rules: ['allow exec(npm test)'] }));
    assert.deepEqual(await PolicyStore.loadFile(file), { id: 'team', rules: ['allow exec(npm test)'] });
  });

  it('loads a text policy file with comments and blank lines', async () => {
    const file = join(dir, 'rules.policy');
    await writeFile(
      file,
      '# team rules\n\nallow read(**)\r\n  # indented comment\n  deny read(secret/**)  \n',
    );
    assert.deepEqual(await PolicyStore.loadFile(file), {
      id: 'rules.policy',
      rules: ['allow read(**)', 'deny read(secret/**)'],
    });
  });

  it('names the line of a bad rule in a text policy file', async () => {
    const file = join(dir, 'rules.txt');
    await writeFile(file, '# header\nallow read(**)\n\nallow jump(x)\n');
    await assertRejects(PolicyStore.loadFile(file), 'INVALID_POLICY', /rules\.txt \(line 4\): Policy rule 2/);
  });

  it('reports invalid JSON and invalid JSON shapes', async () => {
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{"id": ');
    await assertRejects(PolicyStore.loadFile(broken), 'INVALID_POLICY', /not valid JSON/);
    const shape = join(dir, 'shape.json');
    await writeFile(shape, '["allow read(**)"]');
    await assertRejects(
      PolicyStore.loadFile(shape),
      'INVALID_POLICY',
      /shape\.json: A policy must be a JSON object/,
    );
  });

  it('reports a missing file as NOT_FOUND and a directory as INVALID_POLICY', async () => {
    await assertRejects(PolicyStore.loadFile(join(dir, 'missing.json')), 'NOT_FOUND', /missing\.json/);
    await assertRejects(PolicyStore.loadFile(dir), 'INVALID_POLICY', /directory/);
  });
});

describe('policy: protected paths, owner-dangerous tools and env keys need naming rules', () => {
  const protectedPaths = [
    '.git/config',
    '.git',
    'sub/.git/hooks/pre-commit',
    'a/b/.git/config',
    '.GIT/config',
    '.vscode/settings.json',
    '.VSCode/tasks.json',
    '.devcontainer/devcontainer.json',
    '.devcontainer/Dockerfile',
    '.devcontainer.json',
    'team.code-workspace',
    '.cursor/mcp.json',
    '.claude/settings.json',
    '.mcp.json',
    '.husky/pre-commit',
    '.githooks/pre-push',
    '.envrc',
    '.mcp-workspace/tools/x.json',
    '.vs\u200bcode/settings.json',
  ];

  it('refuses agents every protected path under allow write(**), with a message naming the rule to add', () => {
    const e = engine('allow write(**)');
    for (const path of protectedPaths) {
      const decision = e.decide(bob, 'write', path);
      assert.equal(decision.allowed, false, path);
      assert.match(decision.reason, /protected path .*allow write\(/, path);
      assert.equal(e.decide(OWNER, 'write', path).allowed, true, `the owner is not restricted: ${path}`);
    }
    for (const path of [
      'src/a.ts',
      '.github/workflows/ci.yml',
      'docs/.vscode-notes.md',
      'sub/.vscode/x',
      'x.code-workspace.bak',
    ]) {
      assert.equal(e.decide(bob, 'write', path).allowed, true, path);
    }
  });

  it('allows a protected path under a rule that names it, and deny still wins', () => {
    assert.equal(
      engine('allow write(.vscode/**)').decide(bob, 'write', '.vscode/settings.json').allowed,
      true,
    );
    assert.equal(
      engine('allow write(.vscode/settings.json)').decide(bob, 'write', '.vscode/settings.json').allowed,
      true,
    );
    assert.equal(
      engine('allow write(.vscode/settings.json)').decide(bob, 'write', '.vscode/tasks.json').allowed,
      false,
    );
    assert.equal(engine('allow write(**/.git/**)').decide(bob, 'write', 'sub/.git/config').allowed, true);
    assert.equal(
      engine('allow write(*.code-workspace)').decide(bob, 'write', 'a.code-workspace').allowed,
      true,
    );
    assert.equal(engine('allow write(*)').decide(bob, 'write', '.envrc').allowed, false);
    assert.equal(
      engine('allow write(.envrc)', 'deny write(.envrc)').decide(bob, 'write', '.envrc').allowed,
      false,
    );
  });

  it('protects the core.hooksPath folder given to the engine', () => {
    const e = new PolicyEngine(
      { id: 't', rules: ['allow write(**)'] },
      { protectedFolders: ['tools/hooks', '../out', ''] },
    );
    assert.equal(e.decide(bob, 'write', 'tools/hooks/pre-commit').allowed, false);
    assert.equal(e.decide(bob, 'write', 'tools/other').allowed, true);
    assert.equal(
      e.decide(bob, 'write', 'tools').allowed,
      false,
      'renaming a parent would move the hooks away',
    );
    assert.equal(e.protectedClass('tools/hooks/x'), 'tools/hooks/**');
    e.setProtectedFolders([]);
    assert.equal(e.decide(bob, 'write', 'tools/hooks/pre-commit').allowed, true);
  });

  it('never grants devcontainer.* through tool(*) or any other wildcard', () => {
    for (const rule of [
      'allow tool(*)',
      'allow tool(devcontainer.*)',
      'allow tool(devcontainer.privilege?)',
    ]) {
      for (const principal of [OWNER, bob]) {
        const decision = engine(rule).decide(principal, 'tool', 'devcontainer.privileged');
        assert.equal(decision.allowed, false, rule);
        assert.match(decision.reason, /exact rule `allow tool\(devcontainer\.privileged\)`/);
      }
    }
    assert.equal(
      engine('allow tool(devcontainer.privileged)').decide(OWNER, 'tool', 'devcontainer.privileged').allowed,
      true,
    );
    assert.equal(engine('allow tool(*)').decide(bob, 'tool', 'read_file').allowed, true);
    assert.equal(
      engine('allow tool(devcontainer.privileged)', 'deny tool(*)').decide(
        OWNER,
        'tool',
        'devcontainer.privileged',
      ).allowed,
      false,
    );
  });

  it('allows ordinary env keys unless denied, and program-loading ones only by exact name', () => {
    const e = engine('allow env(*)', 'allow env(LD_PRELOAD)', 'deny env(SECRET_*)');
    assert.equal(e.decide(bob, 'env', 'GREETING').allowed, true);
    assert.equal(engine().decide(bob, 'env', 'GREETING').allowed, true);
    assert.equal(e.decide(bob, 'env', 'SECRET_X').allowed, false);
    assert.equal(e.decide(bob, 'env', 'LD_PRELOAD').allowed, true);
    for (const key of [
      'PATH',
      'LD_LIBRARY_PATH',
      'BASH_ENV',
      'ENV',
      'IFS',
      'NODE_OPTIONS',
      'GIT_SSH_COMMAND',
      'npm_config_script_shell',
      'HOME',
      'PYTHONPATH',
      'PERL5OPT',
      'RUBYOPT',
      'Path',
    ]) {
      const decision = e.decide(bob, 'env', key);
      assert.equal(decision.allowed, false, key);
      assert.match(decision.reason, /exact rule `allow env\(/);
    }
    assert.equal(engine('allow env(PATH)').decide(bob, 'env', 'PATH').allowed, true);
  });

  it('keeps exec patterns on ASCII whitespace only', () => {
    assert.equal(allows('allow exec(echo *)', 'exec', 'echo  hi'), true);
    assert.equal(allows('allow exec(echo *)', 'exec', 'echo\u00a0hi'), false);
    assert.equal(allows('allow exec(echo)', 'exec', 'echo\u00a0; id'), false);
  });
});
