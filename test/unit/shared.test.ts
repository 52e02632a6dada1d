import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseEnvEntry, parseEnvList } from '../../src/core/shared/env';
import { compileNameGlob, compilePathGlob } from '../../src/core/shared/glob';
import { errnoCode, isErrno, writeFileAtomic } from '../../src/core/shared/fs';
import { quote } from '../../src/core/shared/text';
import { makeTempDir, removeTempDir } from '../helpers/fixtures';

describe('shared helpers', () => {
  describe('isErrno / errnoCode', () => {
    it('names the code of a real failed fs call and matches any of the given codes', async () => {
      const err = await fs.readFile('/nonexistent-mcpw-path/x').catch((e: unknown) => e);
      assert.equal(errnoCode(err), 'ENOENT');
      assert.equal(isErrno(err, 'ENOENT'), true);
      assert.equal(isErrno(err, 'EEXIST', 'ENOENT'), true);
      assert.equal(isErrno(err, 'EEXIST'), false);
    });

    it('is false for values that carry no code', () => {
      for (const value of [undefined, null, 'ENOENT', 42, new Error('ENOENT'), {}]) {
        assert.equal(isErrno(value, 'ENOENT'), false, String(value));
      }
    });
  });

  describe('globs on unnormalised input', () => {
    it('lets only ** span an empty path segment, and * in a name match nothing', () => {
      assert.equal(compilePathGlob('src/*').test('src/'), false);
      assert.equal(compilePathGlob('a/*/b').test('a//b'), false);
      assert.equal(compilePathGlob('src/**').test('src/'), true);
      assert.equal(compilePathGlob('a/**/b').test('a//b'), true);
      assert.equal(compileNameGlob('A*').test('A'), true);
    });

    it('says a path glob looks at the last segment only exactly when every alternative is ** or **/NAME', () => {
      for (const pattern of ['**', '**/*.pem', '**/.env*', '**/{a,b}', './**/id_*', '{**,**/x}', '**/**']) {
        assert.equal(compilePathGlob(pattern).nameOnly, true, pattern);
      }
      for (const pattern of ['*.pem', 'src/**', '**/{a,b/c}', '**/a/**', 'a', '**/a/b', '{**/x,y}']) {
        assert.equal(compilePathGlob(pattern).nameOnly, false, pattern);
      }
    });
  });

  describe('quote', () => {
    it('shows control characters and quotes, and shortens very long text', () => {
      assert.equal(quote('a"b\nc'), '"a\\"b\\nc"');
      const long = quote('x'.repeat(500));
      assert.equal(long, JSON.stringify(`${'x'.repeat(200)}...`));
    });
  });

  describe('K=V env parsing', () => {
    it('splits at the first = and keeps the rest of the value', () => {
      assert.deepEqual(parseEnvEntry('A=b=c'), ['A', 'b=c']);
      assert.deepEqual(parseEnvEntry('EMPTY='), ['EMPTY', '']);
    });

    it('refuses an entry without a key or without =', () => {
      assert.equal(parseEnvEntry('=x'), undefined);
      assert.equal(parseEnvEntry('HOST_COPY'), undefined);
    });

    it('builds a record where later keys win and bad entries are skipped', () => {
      assert.deepEqual(parseEnvList(['A=1', 'B', '=2', 'A=3', 'PATH=/bin:/usr/bin']), {
        A: '3',
        PATH: '/bin:/usr/bin',
      });
    });
  });

  describe('writeFileAtomic', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await makeTempDir('shared');
    });
    afterEach(async () => {
      await removeTempDir(dir);
    });

    it('replaces the file with the given mode and leaves no temp file behind', async () => {
      const file = path.join(dir, 'tokens.json');
      await fs.writeFile(file, 'old', { mode: 0o644 });
      await writeFileAtomic(file, 'new', 0o600);
      assert.equal(await fs.readFile(file, 'utf8'), 'new');
      assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
      assert.deepEqual(await fs.readdir(dir), ['tokens.json']);
    });

    it('fails without touching the target when its folder is missing', async () => {
      await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'f'), 'x', 0o600), (err: unknown) =>
        isErrno(err, 'ENOENT'),
      );
      assert.deepEqual(await fs.readdir(dir), []);
    });
  });
});
