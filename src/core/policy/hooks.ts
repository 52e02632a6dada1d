/**
 * Finds the `core.hooksPath` target of the workspace's repository, so that a hooks folder outside
 * `.git` (say `tools/hooks`) is protected like `.git/hooks`. Private to the policy engine.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Reads a file, or null when it cannot be read. */
async function readText(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}

/** The git directories whose `config` applies: `.git`, or a worktree's gitdir and its common dir. */
async function gitConfigFiles(workspace: string): Promise<string[]> {
  const dotGit = join(workspace, '.git');
  const pointer = await readText(dotGit);
  if (pointer === null) return [join(dotGit, 'config')];
  const gitdir = /^gitdir:\s*(.+?)\s*$/m.exec(pointer)?.[1];
  if (!gitdir) return [];
  const dir = resolve(workspace, gitdir);
  const common = (await readText(join(dir, 'commondir')))?.trim();
  return [join(dir, 'config'), ...(common ? [join(resolve(dir, common), 'config')] : [])];
}

/** Every `hooksPath` value of `[core]` sections in a git config text (last one wins in git). */
function hooksPaths(text: string): string[] {
  const values: string[] = [];
  let inCore = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const section = /^\[\s*([^\]\s"]+)[^\]]*\]/.exec(line);
    if (section) {
      inCore = section[1].toLowerCase() === 'core';
      continue;
    }
    if (!inCore) continue;
    const entry = /^hookspath\s*=\s*(.*)$/i.exec(line);
    if (!entry) continue;
    let value = entry[1].replace(/\s[#;].*$/, '').trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (value !== '') values.push(value);
  }
  return values;
}

/**
 * Workspace-relative folders named by `core.hooksPath` in the workspace repository's config (only
 * those inside the workspace; `.git/hooks` is protected with `.git` anyway). Never throws.
 */
export async function gitHooksFolders(workspace: string): Promise<string[]> {
  const folders = new Set<string>();
  for (const file of await gitConfigFiles(workspace)) {
    const text = await readText(file);
    if (text === null) continue;
    for (const value of hooksPaths(text)) {
      if (value.startsWith('~')) continue;
      const rel = relative(workspace, isAbsolute(value) ? value : resolve(workspace, value));
      if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel)) continue;
      folders.add(rel.split(sep).join('/'));
    }
  }
  return [...folders];
}
