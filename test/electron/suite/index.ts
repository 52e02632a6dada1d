/**
 * Runs inside VS Code (Electron) under @vscode/test-electron: the extension activates, starts its
 * server on the fixture folder and contributes its commands.
 */
import assert from 'node:assert/strict';
import * as vscode from 'vscode';

/** Entry point called by the VS Code test runner. */
export async function run(): Promise<void> {
  const extension = vscode.extensions.getExtension('mcp-workspace.mcp-workspace');
  assert.ok(extension, 'the extension is installed');
  await extension.activate();
  const commands = await vscode.commands.getCommands(true);
  for (const id of [
    'mcpWorkspace.start',
    'mcpWorkspace.stop',
    'mcpWorkspace.showAuditLog',
    'mcpWorkspace.verifyAuditLog',
  ]) {
    assert.ok(commands.includes(id), `command ${id}`);
  }
  await vscode.commands.executeCommand('mcpWorkspace.restart');
  await vscode.commands.executeCommand('mcpWorkspace.stop');
}
