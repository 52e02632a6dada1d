import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse } from 'jsonc-parser';
import * as vscode from 'vscode';
import {
  ignoredSettingsMessage,
  ignoredWorkspaceSettings,
  SETTINGS_SECTION,
  NARROW_ONLY_SETTINGS,
  USER_ONLY_SETTINGS,
  type IgnoredSetting,
  type UserNarrowOnly,
} from './settings';

/**
 * Watches the workspace-level settings (each folder's `.vscode/settings.json` and the
 * `.code-workspace` file) for this extension's user-only settings. They are never applied; the
 * user is told, once per file and content, with a warning naming the settings and the file, and a
 * line in the log.
 */
export class WorkspaceSettingsGuard implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** Per settings file, the ignored settings last warned about (to warn once per change). */
  private readonly warned = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    /** The user's values of the settings a workspace may only turn off. */
    private readonly userValues: () => UserNarrowOnly,
  ) {
    const folderSettings = vscode.workspace.createFileSystemWatcher('**/.vscode/settings.json');
    const schedule = (): void => this.schedule();
    this.disposables.push(
      folderSettings,
      folderSettings.onDidCreate(schedule),
      folderSettings.onDidChange(schedule),
      folderSettings.onDidDelete(schedule),
      vscode.workspace.onDidChangeWorkspaceFolders(schedule),
    );
    const workspaceFile = vscode.workspace.workspaceFile;
    if (workspaceFile?.scheme === 'file') {
      const watcher = vscode.workspace.createFileSystemWatcher(
        new vscode.RelativePattern(dirname(workspaceFile.fsPath), basename(workspaceFile.fsPath)),
      );
      this.disposables.push(watcher, watcher.onDidChange(schedule), watcher.onDidCreate(schedule));
    }
  }

  /** Stops watching. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const d of this.disposables.splice(0)) d.dispose();
  }

  /** Checks soon (events come in bursts while a file is written). */
  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.check().catch((err: unknown) =>
        this.log.error(`could not check workspace settings: ${(err as Error).message}`),
      );
    }, 150);
  }

  /** Reads the workspace-level settings now and warns about user-only settings found in them. */
  async check(): Promise<void> {
    const byFile = new Map<string, IgnoredSetting[]>();
    for (const found of await this.findIgnored()) {
      const list = byFile.get(found.file) ?? [];
      if (!list.some((f) => f.key === found.key)) list.push(found);
      byFile.set(found.file, list);
    }
    for (const file of [...this.warned.keys()]) if (!byFile.has(file)) this.warned.delete(file);
    for (const [file, ignored] of byFile) {
      const fingerprint = JSON.stringify(ignored.map((i) => [i.key, i.value]));
      if (this.warned.get(file) === fingerprint) continue;
      this.warned.set(file, fingerprint);
      const message = ignoredSettingsMessage(
        file,
        ignored.map((i) => i.key),
      );
      this.log.warn(message);
      void vscode.window.showWarningMessage(message, 'Open User Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', SETTINGS_SECTION);
      });
    }
  }

  private async findIgnored(): Promise<IgnoredSetting[]> {
    const userValues = this.userValues();
    const found: IgnoredSetting[] = [];
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
    for (const folder of folders) {
      const file = join(folder.uri.fsPath, '.vscode', 'settings.json');
      found.push(...ignoredWorkspaceSettings(await readJsonc(file), file, userValues));
      // What VS Code itself reports at folder level, should it hold a value the file read missed.
      const config = vscode.workspace.getConfiguration(SETTINGS_SECTION, folder.uri);
      found.push(...this.fromInspect(config, 'workspaceFolderValue', file, userValues));
    }
    const workspaceFile = vscode.workspace.workspaceFile;
    const workspaceSettingsFile =
      workspaceFile?.scheme === 'file'
        ? workspaceFile.fsPath
        : folders[0]
          ? join(folders[0].uri.fsPath, '.vscode', 'settings.json')
          : null;
    if (workspaceSettingsFile) {
      if (workspaceFile?.scheme === 'file') {
        const parsed = (await readJsonc(workspaceFile.fsPath)) as { settings?: unknown } | undefined;
        found.push(...ignoredWorkspaceSettings(parsed?.settings, workspaceSettingsFile, userValues));
      }
      const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
      found.push(...this.fromInspect(config, 'workspaceValue', workspaceSettingsFile, userValues));
    }
    return found;
  }

  private fromInspect(
    config: vscode.WorkspaceConfiguration,
    level: 'workspaceValue' | 'workspaceFolderValue',
    file: string,
    userValues: UserNarrowOnly,
  ): IgnoredSetting[] {
    const values: Record<string, unknown> = {};
    for (const key of [...USER_ONLY_SETTINGS, ...NARROW_ONLY_SETTINGS]) {
      const value = config.inspect(key)?.[level];
      if (value !== undefined) values[`${SETTINGS_SECTION}.${key}`] = value;
    }
    return ignoredWorkspaceSettings(values, file, userValues);
  }
}

async function readJsonc(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch(() => null);
  return text === null ? undefined : (parse(text, [], { allowTrailingComma: true }) as unknown);
}
