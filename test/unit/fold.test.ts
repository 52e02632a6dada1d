import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PolicyEngine } from '../../src/core/policy';
import { ResourceManager } from '../../src/core/resources';
import { foldPathName } from '../../src/core/shared/fold';
import { WorkspaceError } from '../../src/protocol/errors';
import type { Principal } from '../../src/protocol/principal';
import { makeTempDir, removeTempDir } from '../helpers/fixtures';

const agent: Principal = { kind: 'agent', name: 'bob', role: 'agent' };

describe('case and Unicode folding of protected names', () => {
  it('folds case, normalisation and ignorable code points the way case-insensitive file systems do', () => {
    assert.equal(foldPathName('.GIT/config'), '.git/config');
    assert.equal(foldPathName('.Git/CONFIG'), '.git/config');
    assert.equal(foldPathName('.g\u200cit/config'), '.git/config', 'zero-width non-joiner (HFS+ ignores it)');
    assert.equal(foldPathName('\ufeff.envrc'), '.envrc', 'byte order mark');
    assert.equal(foldPathName('.e\u00adnv'), '.env', 'soft hyphen');
    assert.equal(foldPathName('cafe\u0301'), foldPathName('caf\u00e9'), 'NFD and NFC meet');
    assert.equal(foldPathName('STRASSE'), foldPathName('straße'), 'full case folding');
    assert.equal(foldPathName('\u212Aey'), 'key', 'Kelvin sign');
    assert.equal(foldPathName('src/a.ts'), 'src/a.ts');
  });

  it('folds every printable ASCII name exactly as the full Unicode folding would', () => {
    const full = (name: string): string =>
      name
        .normalize('NFC')
        .replace(/\p{Default_Ignorable_Code_Point}/gu, '')
        .toUpperCase()
        .toLowerCase()
        .normalize('NFC');
    let all = '';
    for (let c = 0x20; c <= 0x7e; c++) all += String.fromCharCode(c);
    assert.equal(foldPathName(all), full(all));
    for (const name of ['README.md', 'Src/Index.TS', '.GitHub', '~$Lock', 'a\u00e9', 'x\u200cy']) {
      assert.equal(foldPathName(name), full(name), name);
    }
  });

  it('lets deny rules on paths hold for every spelling a case-insensitive file system treats as the same', () => {
    const e = new PolicyEngine();
    for (const spelling of ['.GIT/config', '.Git/hooks/pre-commit', '.g\u200cit/config', '.git\ufeff/HEAD']) {
      const decision = e.decide(agent, 'write', spelling);
      assert.equal(decision.allowed, false, spelling);
      assert.equal(decision.rule, 'deny write(.git/**)');
    }
    for (const spelling of ['.ENV', 'sub/.Env.local', 'keys/ID_RSA', 'server.KEY', 'cert.P\u200bEM']) {
      assert.equal(e.decide(agent, 'read', spelling).allowed, false, spelling);
    }
    assert.equal(e.decide(agent, 'write', 'src/Main.ts').allowed, true);
  });

  it('never widens an allow rule by folding', () => {
    const e = new PolicyEngine({ id: 'narrow', rules: ['allow write(docs/**)'] });
    assert.equal(e.decide(agent, 'write', 'docs/a.md').allowed, true);
    assert.equal(e.decide(agent, 'write', 'DOCS/a.md').allowed, false);
  });

  it('refuses protected entries by folded name and listings skip ignored folders in any case', async () => {
    const root = await makeTempDir('fold');
    try {
      await fs.mkdir(path.join(root, '.state'));
      await fs.writeFile(path.join(root, '.state', 'tokens.json'), 'secret');
      await fs.mkdir(path.join(root, 'NODE_MODULES', 'pkg'), { recursive: true });
      await fs.writeFile(path.join(root, 'NODE_MODULES', 'pkg', 'index.js'), 'x');
      const rm = await ResourceManager.create({ root, protectedPaths: [path.join(root, '.state')] });
      for (const spelling of ['.STATE/tokens.json', '.St\u200date/tokens.json', '.state\ufeff/x']) {
        await assert.rejects(rm.readFile(spelling), (err: unknown) => {
          assert.ok(err instanceof WorkspaceError);
          assert.equal(err.code, 'PROTECTED_PATH', spelling);
          return true;
        });
        await assert.rejects(rm.writeFile(spelling, 'x'), /protected/);
      }
      const list = await rm.listFiles('.', { depth: 5 });
      assert.deepEqual(
        list.entries.map((e) => e.path),
        ['NODE_MODULES'],
      );
    } finally {
      await removeTempDir(root);
    }
  });
});
