/**
 * The harness's own check: a throwaway extension (built and packaged here) is installed into a
 * real code-server, its command is run from the palette in headless Chromium, and its webview
 * is read through the two-frame locator.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  REPO_ROOT,
  launchBrowser,
  quickPickRows,
  openWorkbench,
  provisionE2E,
  runCommand,
  screenshot,
  startCodeServer,
  waitFor,
  waitForActivation,
  waitVisible,
  webviewFrame,
  type BrowserSession,
  type RunningCodeServer,
} from './harness';

const execFileAsync = promisify(execFile);

const SMOKE_COMMAND = 'E2E Smoke: Hello';
const PICK_COMMAND = 'E2E Smoke: Pick';

const EXTENSION_JS = `
const vscode = require('vscode');
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
exports.activate = (context) => {
  context.subscriptions.push(
    vscode.commands.registerCommand('e2eSmoke.hello', () => {
      const panel = vscode.window.createWebviewPanel('e2eSmoke', 'E2E Smoke', vscode.ViewColumn.One, {});
      const token = process.env.MCPW_E2E_SMOKE_TOKEN || '(unset)';
      const setting = vscode.workspace.getConfiguration('e2eSmoke').get('marker', '(unset)');
      panel.webview.html =
        '<!DOCTYPE html><html><body>' +
        '<h1 id="greeting">hello from webview</h1>' +
        '<p id="env">' + escape(token) + '</p>' +
        '<p id="setting">' + escape(setting) + '</p>' +
        '</body></html>';
    }),
    vscode.commands.registerCommand('e2eSmoke.pick', () =>
      vscode.window.showQuickPick(
        [
          { label: 'alpha', description: 'first item' },
          { label: 'beta', description: 'second item' },
        ],
        { placeHolder: 'Pick one' },
      ),
    ),
  );
};
exports.deactivate = () => {};
`;

/** Writes and packages the throwaway extension; returns the VSIX path. */
async function buildSmokeVsix(dir: string): Promise<string> {
  const manifest = {
    name: 'e2e-smoke',
    displayName: 'E2E Smoke',
    description: 'Throwaway extension that checks the e2e harness.',
    publisher: 'mcpw-test',
    version: '0.0.1',
    engines: { vscode: '^1.101.0' },
    activationEvents: ['onStartupFinished'],
    main: './extension.js',
    contributes: {
      commands: [
        { command: 'e2eSmoke.hello', title: 'Hello', category: 'E2E Smoke' },
        { command: 'e2eSmoke.pick', title: 'Pick', category: 'E2E Smoke' },
      ],
      configuration: {
        title: 'E2E Smoke',
        properties: { 'e2eSmoke.marker': { type: 'string', default: '(default)' } },
      },
    },
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  await writeFile(join(dir, 'extension.js'), EXTENSION_JS);
  await writeFile(join(dir, 'README.md'), '# E2E Smoke\n\nThrowaway extension for the e2e harness.\n');
  const vsix = join(dir, 'e2e-smoke.vsix');
  // The repository's own vsce (what `npx vsce` resolves to from the repo), run in the temp dir.
  await execFileAsync(
    join(REPO_ROOT, 'node_modules', '.bin', 'vsce'),
    ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', vsix],
    { cwd: dir, timeout: 120_000 },
  );
  await stat(vsix);
  return vsix;
}

describe('e2e harness smoke (code-server + Chromium)', function () {
  this.timeout(60_000);

  let tmp = '';
  let workspace = '';
  let server: RunningCodeServer | null = null;
  let browser: BrowserSession | null = null;
  const token = randomBytes(8).toString('hex');
  const marker = `setting-${randomBytes(4).toString('hex')}`;

  before(async function () {
    this.timeout(600_000);
    await provisionE2E();
    tmp = await mkdtemp(join(tmpdir(), 'mcpw-e2e-smoke-'));
    workspace = join(tmp, 'workspace');
    await mkdir(join(tmp, 'ext'), { recursive: true });
    await mkdir(workspace, { recursive: true });
    await writeFile(join(workspace, 'README.md'), '# smoke workspace\n');
    const vsix = await buildSmokeVsix(join(tmp, 'ext'));
    server = await startCodeServer({
      vsix,
      workspace,
      env: { MCPW_E2E_SMOKE_TOKEN: token },
      settings: { 'e2eSmoke.marker': marker },
      name: 'smoke',
    });
    browser = await launchBrowser();
    await openWorkbench(browser.page, server.url, workspace);
    await waitForActivation(server, 'mcpw-test.e2e-smoke', 30_000, browser.page);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && browser) {
      await screenshot(browser.page, `smoke-failed-${this.currentTest.title}`).catch(() => undefined);
    }
  });

  after(async function () {
    this.timeout(60_000);
    await browser?.close();
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs a command from the palette and reads its webview two frames deep', async function () {
    const page = browser!.page;
    await runCommand(page, SMOKE_COMMAND);
    const frame = webviewFrame(page);
    await waitVisible(page, frame.locator('#greeting'), 'the smoke webview greeting', 30_000);
    assert.equal((await frame.locator('#greeting').innerText()).trim(), 'hello from webview');
    assert.equal((await frame.locator('#env').innerText()).trim(), token, 'env reaches the extension host');
    assert.equal((await frame.locator('#setting').innerText()).trim(), marker, 'user settings are applied');
    const shot = await screenshot(page, 'smoke-webview');
    assert.ok((await stat(shot)).size > 0, 'screenshot written');
  });

  it('lists the rows of a quick pick a command opens', async function () {
    const page = browser!.page;
    await runCommand(page, PICK_COMMAND);
    const rows = await waitFor(
      async () => {
        const texts = await quickPickRows(page);
        return texts.length === 2 ? texts : null;
      },
      10_000,
      { what: 'the two quick pick rows', page },
    );
    assert.deepEqual(rows, ['alpha, first item', 'beta, second item']);
    await page.keyboard.press('Escape');
  });

  it('kept the browser on 127.0.0.1 and stops code-server with its children', async function () {
    assert.deepEqual(browser!.externalRequests, [], 'the browser only talks to 127.0.0.1');
    const { port, pid } = server!;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    assert.ok(children.length > 0, 'code-server has child processes');
    await browser!.close();
    await server!.stop();
    for (const p of [pid, ...children])
      assert.throws(() => process.kill(p, 0), `process ${p} is gone after stop()`);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch((e: Error) => e);
    assert.ok(res instanceof Error, 'the port no longer answers after stop()');
  });
});
