/**
 * One VS Code window with the built extension, for the extension's end-to-end suites: a fresh
 * folder and state home, the VSIX installed into a fresh code-server, headless Chromium on the
 * workbench, and the extension activated.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { discoveryDir, readDiscoveryFiles, type DiscoveredServer } from '../../src/extension/discovery';
import {
  launchBrowser,
  openWorkbench,
  packageVsix,
  provisionE2E,
  startCodeServer,
  waitFor,
  waitForActivation,
  type BrowserSession,
  type RunningCodeServer,
} from './harness';

/** The extension's identifier in VS Code. */
export const EXTENSION_ID = 'mcp-workspace.mcp-workspace';

/** Options of {@link openExtensionWindow}. */
export interface ExtensionWindowOptions {
  /** Name of the run (temp dir prefix and code-server log folder). */
  name: string;
  /** User settings, over the harness defaults. */
  settings?: Record<string, unknown>;
  /** Fills the folder (and `root`, outside it) before VS Code opens it. */
  populate?: (workspace: string, root: string) => Promise<void>;
}

/** A running window; {@link close} it in an `after` hook. */
export interface ExtensionWindow {
  /** Temporary root holding the folder, the state home and the VSIX. */
  root: string;
  /** The folder VS Code has open (`<root>/project`). */
  workspace: string;
  /** XDG_STATE_HOME of the extension host (its discovery files live below). */
  stateHome: string;
  codeServer: RunningCodeServer;
  browser: BrowserSession;
  page: Page;
  /** The first server of the window's discovery file, or null while there is none. */
  discovered(): Promise<DiscoveredServer | null>;
  /** Closes the browser, stops code-server and removes the temporary root. */
  close(): Promise<void>;
}

/** Opens a VS Code window on a new folder with the packaged extension installed and activated. */
export async function openExtensionWindow(options: ExtensionWindowOptions): Promise<ExtensionWindow> {
  await provisionE2E();
  const root = await mkdtemp(join(tmpdir(), `mcpw-e2e-${options.name}-`));
  const workspace = join(root, 'project');
  const stateHome = join(root, 'state-home');
  await mkdir(workspace);
  await mkdir(stateHome);
  await options.populate?.(workspace, root);
  const vsix = packageVsix(join(root, 'mcp-workspace.vsix'));
  const codeServer = await startCodeServer({
    vsix,
    workspace,
    name: options.name,
    env: { XDG_STATE_HOME: stateHome },
    ...(options.settings ? { settings: options.settings } : {}),
  });
  const browser = await launchBrowser({ viewport: { width: 1400, height: 900 } });
  const { page } = browser;
  await openWorkbench(page, codeServer.url, workspace);
  await waitForActivation(codeServer, EXTENSION_ID, 60_000, page);
  return {
    root,
    workspace,
    stateHome,
    codeServer,
    browser,
    page,
    discovered: async () =>
      (await readDiscoveryFiles(discoveryDir({ XDG_STATE_HOME: stateHome })))[0]?.servers[0] ?? null,
    close: async () => {
      await browser.close();
      await codeServer.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** JSON calls to a server's REST API with `token` (the parsed body, whatever the status). */
export function restClient(
  url: () => string,
  token: () => string,
): (path: string, init?: { method?: string; body?: unknown }) => Promise<any> {
  return async (path, init = {}) => {
    const res = await fetch(`${url()}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    return res.json();
  };
}

/** Waits for the window's server to be discovered; returns it and its owner token. */
export async function ownedServer(
  win: ExtensionWindow,
  what = 'the discovery file of the window',
): Promise<{ server: DiscoveredServer; ownerToken: string }> {
  const server = (await waitFor(() => win.discovered(), 60_000, {
    what,
    page: win.page,
  })) as DiscoveredServer;
  return { server, ownerToken: (await readFile(server.tokenFile, 'utf8')).trim() };
}
