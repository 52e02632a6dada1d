import { mkdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { WorkspaceError } from '../../protocol/errors';
import { errnoCode, isErrno, writeFileAtomic } from '../shared/fs';
import { validatePolicy, type Policy } from './rules';

/** Re-throws a policy error with `prefix` prepended, keeping its code and details. */
function withContext(err: unknown, prefix: string): never {
  if (err instanceof WorkspaceError)
    throw new WorkspaceError(err.code, `${prefix}${err.message}`, err.details);
  throw err;
}

/** Persists the active policy as `<stateDir>/policy.json` and reads owner-supplied policy files. */
export class PolicyStore {
  /** Path of the persisted policy file. */
  readonly file: string;

  constructor(private readonly stateDir: string) {
    this.file = join(stateDir, 'policy.json');
  }

  /** Loads the persisted policy; null when none was saved, INVALID_POLICY when the file is corrupt. */
  async load(): Promise<Policy | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw new WorkspaceError('INTERNAL', `Could not read ${this.file}: ${errnoCode(err) ?? String(err)}.`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new WorkspaceError(
        'INVALID_POLICY',
        `The saved policy ${this.file} is corrupt (${(err as Error).message}); fix or delete it.`,
      );
    }
    try {
      return validatePolicy(value);
    } catch (err) {
      return withContext(err, `The saved policy ${this.file} is invalid: `);
    }
  }

  /** Validates and saves `policy` atomically with mode 0600 (the state directory is created 0700). */
  async save(policy: Policy): Promise<void> {
    const valid = validatePolicy(policy);
    try {
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.file, JSON.stringify(valid, null, 2) + '\n', 0o600);
    } catch (err) {
      throw new WorkspaceError(
        'INTERNAL',
        `Could not save the policy to ${this.file}: ${errnoCode(err) ?? err}.`,
      );
    }
  }

  /**
   * Reads an owner-controlled policy file: JSON `{id, rules}` (a `.json` file or text starting with
   * `{`), or plain text with one rule per line (`#` comment lines and blank lines ignored; id = file name).
   */
  static async loadFile(path: string): Promise<Policy> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') throw new WorkspaceError('NOT_FOUND', `Policy file not found: ${path}`);
      if (code === 'EISDIR') {
        throw new WorkspaceError('INVALID_POLICY', `Policy file ${path} is a directory; pass a file.`);
      }
      throw new WorkspaceError('INTERNAL', `Could not read policy file ${path}: ${code ?? String(err)}.`);
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

    if (extname(path).toLowerCase() === '.json' || text.trimStart().startsWith('{')) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new WorkspaceError(
          'INVALID_POLICY',
          `Policy file ${path} is not valid JSON (${(err as Error).message}). Expected {"id": "...", "rules": [...]} ` +
            'or a text file with one rule per line.',
        );
      }
      try {
        return validatePolicy(value);
      } catch (err) {
        return withContext(err, `In policy file ${path}: `);
      }
    }

    const rules: string[] = [];
    const lines: number[] = [];
    text.split(/\r?\n/).forEach((line, i) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      rules.push(trimmed);
      lines.push(i + 1);
    });
    try {
      return validatePolicy({ id: basename(path), rules });
    } catch (err) {
      const ruleIndex = err instanceof WorkspaceError ? err.details?.ruleIndex : undefined;
      const where = typeof ruleIndex === 'number' ? ` (line ${lines[ruleIndex]})` : '';
      return withContext(err, `In policy file ${path}${where}: `);
    }
  }
}
