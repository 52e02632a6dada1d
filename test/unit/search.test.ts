import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ResourceManager } from '../../src/core/resources';
import { MAX_DIFF_CHARS, unifiedDiff } from '../../src/core/resources/diff';
import { RRegex } from 'rregex';
import {
  byteScreenActive,
  compileMatcher,
  type LineMatch,
  NeedleFinder,
  requiredLiteral,
} from '../../src/core/resources/search/engine';
import { isIgnored, parseIgnoreFile } from '../../src/core/resources/search/gitignore';
import { compareWalkOrder } from '../../src/core/resources/search/pool';
import { assertJsonDepth } from '../../src/gateway/jsonDepth';
import { WorkspaceError } from '../../src/protocol/errors';
import { makeTempDir, makeTempWorkspace, removeTempDir, type TempWorkspace } from '../helpers/fixtures';

function scan(query: string, text: string, opts = { regex: true, caseSensitive: true }): LineMatch[] {
  const found: LineMatch[] = [];
  const end = compileMatcher(query, opts).scan(
    Buffer.from(text, 'utf8'),
    (m) => {
      found.push(m);
      return true;
    },
    () => false,
  );
  assert.equal(end, 'done');
  return found;
}

describe('search engine', () => {
  it('finds one match per line with 1-based line and UTF-16 column, literal and regex alike', () => {
    const text = 'alpha\nnaïve needle here needle\r\nno\n€€ needle\n';
    const expected = [
      { line: 2, column: 7, text: 'naïve needle here needle' },
      { line: 4, column: 4, text: '€€ needle' },
    ];
    assert.deepEqual(scan('needle', text, { regex: false, caseSensitive: true }), expected);
    assert.deepEqual(scan('needle', text, { regex: false, caseSensitive: false }), expected);
    assert.deepEqual(scan('ne+dle', text), expected);
    assert.deepEqual(
      scan('n\\w+e\\b', text).map((m) => m.line),
      [2, 4],
    );
    assert.deepEqual(
      scan('^no$', text).map((m) => m.line),
      [3],
    );
  });

  it('keeps matches within a line even when the pattern could cross line breaks', () => {
    assert.deepEqual(
      scan('a[^z]*c', 'ab\nbc\nabc\n').map((m) => m.line),
      [3],
    );
    assert.deepEqual(
      scan('x\\s+y', 'x\ny\nx  y\n').map((m) => m.line),
      [3],
    );
  });

  it('runs catastrophic-backtracking patterns in linear time and refuses what RE2-class engines cannot do', () => {
    const line = 'a'.repeat(5000);
    assert.deepEqual(
      scan('^(a+)+$', `${line}b\n${line}\n`).map((m) => m.line),
      [2],
    );
    assert.deepEqual(scan('^(.+)+Z$', `${line}\n`), []);
    for (const pattern of ['(a)\\1', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(unclosed']) {
      assert.throws(
        () => compileMatcher(pattern, { regex: true, caseSensitive: true }),
        (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_PATTERN',
        pattern,
      );
    }
  });

  it('screens blocks on their bytes with the same answers as the engine on each line', () => {
    assert.equal(byteScreenActive(), true, 'the pinned rregex exposes the raw exports the fast path uses');
    // Several 64 KiB blocks of non-matching text (non-ASCII too), matches in some of them only, one
    // on a line longer than a block, one on the very last line without a newline.
    const filler = 'const naïve = compute(alpha, beta); // ordinary € line 1234567\n';
    const lines: string[] = [];
    for (let i = 0; i < 6000; i++) lines.push(filler.trimEnd());
    lines[1500] = 'let key9876543 = abcdefghijabcdefghijabcdefghij_tail';
    lines[4200] = `${'x'.repeat(70_000)} id1234567=${'y'.repeat(30)}`;
    lines.push('é1234567 = ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ');
    const text = lines.join('\n');
    const pattern = '\\w+\\d{7}\\s*=\\s*\\w{30}';
    const reference = new RRegex(pattern);
    const expected = lines.flatMap((line, i) => (reference.isMatch(line) ? [i + 1] : []));
    reference.free();
    assert.deepEqual(expected, [1501, 4201, 6001]);
    assert.deepEqual(
      scan(pattern, text).map((m) => m.line),
      expected,
    );
    // Invalid UTF-8 is searched as its replacement character, whatever path the block takes.
    const invalid = Buffer.concat([
      Buffer.from('ok\nbad '),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(' x1234567\n'),
    ]);
    const found: LineMatch[] = [];
    compileMatcher('\\w\\d{7}$', { regex: true, caseSensitive: true }).scan(
      invalid,
      (m) => {
        found.push(m);
        return true;
      },
      () => false,
    );
    assert.deepEqual(found, [{ line: 2, column: 8, text: 'bad \uFFFD\uFFFD x1234567' }]);
  });

  it('extracts only literals every match must contain', () => {
    assert.equal(requiredLiteral('function\\s+mcpwBench\\w*'), 'mcpwBench');
    assert.equal(requiredLiteral('foo|barbaz'), undefined);
    assert.equal(requiredLiteral('(?i)needle'), undefined);
    assert.equal(requiredLiteral('colou?r'), 'colo');
    assert.equal(requiredLiteral('ab[cd]efg(h|i)jk'), 'efg');
    assert.equal(requiredLiteral('a\\.b\\.c'), 'a.b.c');
    assert.equal(requiredLiteral('\\w+\\d{7}'), undefined);
    assert.equal(requiredLiteral('xyz{0,3}q'), undefined);
  });
});

describe('needle finder', () => {
  it('finds exactly what Buffer.indexOf finds, also where the rare byte is common and it falls back', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const alphabets = ['ab', 'abcB', 'eB\n', 'xyzQ\u00e9'];
    let compared = 0;
    let found = 0;
    for (let round = 0; round < 400; round++) {
      const alphabet = Buffer.from(alphabets[round % alphabets.length]!, 'utf8');
      const text = Buffer.alloc(1 + rnd(3000), 0);
      for (let i = 0; i < text.length; i++) text[i] = alphabet[rnd(alphabet.length)]!;
      const needle = Buffer.alloc(1 + rnd(6), 0);
      for (let i = 0; i < needle.length; i++) needle[i] = alphabet[rnd(alphabet.length)]!;
      const finder = new NeedleFinder(needle);
      for (const from of [0, 1, rnd(text.length + 2), text.length, text.length + 3]) {
        const expected = text.indexOf(needle, from);
        assert.equal(finder.find(text, from), expected, `${needle.toString('latin1')} from ${from}`);
        compared++;
        if (expected !== -1) found++;
      }
    }
    assert.ok(compared === 2000 && found > 200, `${found} of ${compared} searches found something`);
    // A needle at the very end, and one longer than the text.
    assert.equal(new NeedleFinder(Buffer.from('Bz')).find(Buffer.from('aaaBz'), 0), 3);
    assert.equal(new NeedleFinder(Buffer.from('aaaaaB')).find(Buffer.from('aaB'), 0), -1);
  });
});

describe('gitignore rules', () => {
  const files = [
    parseIgnoreFile('.', 'build/\n*.log\n!keep.log\n/top.txt\ndocs/**/gen-*\n\\#literal\n'),
    parseIgnoreFile('src', 'secret-*\n!secret-ok.txt\n'),
  ];
  const cases: Array<[string, boolean, boolean]> = [
    ['build', true, true],
    ['build', false, false],
    ['lib/build', true, true],
    ['x.log', false, true],
    ['deep/keep.log', false, false],
    ['top.txt', false, true],
    ['src/top.txt', false, false],
    ['docs/a/b/gen-1.md', false, true],
    ['docs/gen-1.md', false, true],
    ['#literal', false, true],
    ['src/secret-a', false, true],
    ['src/secret-ok.txt', false, false],
    ['secret-a', false, false],
  ];
  for (const [rel, isDirectory, ignored] of cases) {
    it(`${ignored ? 'ignores' : 'keeps'} ${rel}${isDirectory ? '/' : ''}`, () => {
      const active = rel.startsWith('src/') ? files : files.slice(0, 1);
      assert.equal(isIgnored(active, rel, isDirectory), ignored);
    });
  }
});

describe('walk order', () => {
  it('sorts paths as a depth-first walk in name order visits them', () => {
    const paths = ['a.txt', 'a/b', 'b', 'a/a/z', '.x'];
    assert.deepEqual([...paths].sort(compareWalkOrder), ['.x', 'a/a/z', 'a/b', 'a.txt', 'b']);
  });
});

describe('bounded diff', () => {
  it('cuts a huge diff with a note instead of rendering all of it', () => {
    const line = 'const value = computeSomething(alpha); // line\n';
    const before = line.repeat(100_000);
    const after = before.replaceAll('computeSomething', 'computeOther');
    const diff = unifiedDiff('big.ts', before, after);
    assert.ok(diff.length <= MAX_DIFF_CHARS + 200, `diff is ${diff.length} characters`);
    assert.match(diff, /# diff cut at \d+ characters/);
  });

  it('still finds the minimal diff of a small change in a large file', () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => `line ${i}\n`);
    const before = lines.join('');
    lines[25_000] = 'changed\n';
    const diff = unifiedDiff('f.txt', before, lines.join(''));
    assert.match(diff, /@@ -24998,7 \+24998,7 @@\n/);
    assert.match(diff, /\n-line 25000\n\+changed\n/);
  });
});

describe('JSON depth limit', () => {
  it('refuses deep nesting before parsing and ignores brackets inside strings', () => {
    assert.throws(
      () => assertJsonDepth(Buffer.from('['.repeat(100) + ']'.repeat(100))),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'INVALID_ARGUMENT',
    );
    assertJsonDepth(Buffer.from(JSON.stringify({ content: '['.repeat(10_000) + '\\"[[[' })));
    assertJsonDepth(Buffer.from(JSON.stringify({ a: [[[{ b: [1, 2, { c: '"]]]' }] }]]] })));
  });
});

describe('large edits on a worker thread', () => {
  let base: string;
  let rm: ResourceManager;

  beforeEach(async () => {
    base = await makeTempDir('edit');
    rm = await ResourceManager.create({ root: base });
  });

  afterEach(async () => {
    await rm.close();
    await removeTempDir(base);
  });

  it('applies, diffs and reports edit errors for a file above the inline size', async () => {
    const line = 'const value = computeSomething(alpha); // line\n';
    await fs.writeFile(path.join(base, 'big.ts'), line.repeat(20_000) + 'unique marker\n');
    const dry = await rm.edit('big.ts', [{ oldText: 'unique marker', newText: 'changed marker' }], {
      dryRun: true,
    });
    assert.equal(dry.applied, 1);
    assert.match(dry.diff, /-unique marker\n\+changed marker\n/);
    const done = await rm.edit('big.ts', [{ oldText: 'computeSomething', newText: 'f', replaceAll: true }]);
    assert.equal(done.applied, 20_000);
    const text = await fs.readFile(path.join(base, 'big.ts'), 'utf8');
    assert.ok(!text.includes('computeSomething'));
    assert.equal(done.revision, ResourceManager.revisionOf(Buffer.from(text)));
    await assert.rejects(
      rm.edit('big.ts', [{ oldText: 'nowhere to be found', newText: 'x' }]),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'EDIT_NO_MATCH',
    );
    await assert.rejects(
      rm.edit('big.ts', [{ oldText: 'const value', newText: 'x' }]),
      (err: unknown) => err instanceof WorkspaceError && err.code === 'EDIT_AMBIGUOUS',
    );
  });
});

describe('search glob filters', () => {
  let ws: TempWorkspace;
  let rm: ResourceManager;
  const longName = `${'a'.repeat(240)}.txt`;

  beforeEach(async () => {
    ws = await makeTempWorkspace('glob', {
      files: { [`deep/${longName}`]: 'needle\n', '.hidden/x.ts': 'needle\n', 'src/b.ts': 'needle\n' },
      outsideFiles: { 'secret.ts': 'needle\n' },
    });
    rm = await ResourceManager.create({ root: ws.root });
  });

  afterEach(async () => {
    await rm.close();
    await ws.remove();
  });

  it('answers a hostile glob over long names in full, before any deadline', async () => {
    const hostile = `**/${'*a'.repeat(30)}*b`;
    const result = await rm.search('needle', { glob: hostile, timeoutMs: 20_000 });
    assert.deepEqual(result.matches, []);
    assert.equal(result.truncated, false, `cut short: ${result.truncatedReason}`);
    const found = await rm.search('needle', { glob: `**/${'*a'.repeat(30)}*.txt`, timeoutMs: 20_000 });
    assert.deepEqual(
      found.matches.map((m) => m.path),
      [`deep/${longName}`],
    );
  });

  it('matches dot folders and reads ! and extglob syntax literally', async () => {
    const paths = async (glob: string) =>
      (await rm.search('needle', { glob })).matches.map((m) => m.path).sort();
    assert.deepEqual(await paths('**/*.ts'), ['.hidden/x.ts', 'src/b.ts']);
    assert.deepEqual(await paths('!src/**'), []);
    assert.deepEqual(await paths('+(src|deep)/**'), []);
    await assert.rejects(rm.search('needle', { glob: 'src/[b' }), /INVALID_PATTERN|invalid/);
  });
});
