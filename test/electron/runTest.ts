/**
 * The @vscode/test-electron route, for machines that can download VS Code from Microsoft (this
 * project's CI cannot: it uses code-server, see test/e2e). `npm run test:electron` downloads the
 * minimum supported VS Code (engines.vscode) and the current stable, and runs suite/index.ts
 * inside each with the built extension.
 */
import { resolve } from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const extensionDevelopmentPath = resolve(__dirname, '../..');
  const extensionTestsPath = resolve(__dirname, 'suite/index.js');
  const workspace = resolve(__dirname, '../../test/electron/fixture');
  for (const version of ['1.101.0', 'stable']) {
    await runTests({
      version,
      extensionDevelopmentPath,
      extensionTestsPath,
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
    });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`VS Code tests failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
