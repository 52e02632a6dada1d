/** Debian's headless Chromium through playwright-core, and descriptions of what it shows. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { runningCodeServers } from './codeServer';
import { CHROMIUM_PATH } from './provision';

/** A headless Chromium with a fresh profile; {@link close} it in an `after` hook. */
export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** URLs of requests to hosts other than 127.0.0.1/localhost (they fail: see the flags). */
  externalRequests: string[];
  /** Closes Chromium and removes its profile dir. Idempotent. */
  close(): Promise<void>;
}

/** Chromium flags verified on this kind of machine (RECIPES "Browser tests"). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // Belt and braces: no name other than localhost resolves, so nothing leaves the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Launches Debian's Chromium headless through playwright-core with a fresh temporary profile. */
export async function launchBrowser(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'mcpw-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: options.viewport ?? { width: 1400, height: 900 },
    env: { ...process.env, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
    args: [...CHROMIUM_ARGS],
  });
  const externalRequests: string[] = [];
  context.on('request', (req) => {
    const url = req.url();
    if (!/^https?:/.test(url)) return;
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') externalRequests.push(url);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  let closing: Promise<void> | null = null;
  return {
    context,
    page,
    externalRequests,
    close() {
      closing ??= (async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/**
 * What is on screen, for failure messages: the page URL and title, visible notifications,
 * dialogs, the quick input, the status bar, and the log tail of every running code-server.
 */
export async function describeScreen(page: Page): Promise<string> {
  const texts = async (selector: string): Promise<string[]> => {
    try {
      const all = await page.locator(selector).filter({ visible: true }).allInnerTexts();
      return all.map((t) => t.replace(/\s+/g, ' ').trim()).filter((t) => t.length > 0);
    } catch {
      return [];
    }
  };
  const lines: string[] = [];
  try {
    lines.push(`url: ${page.url()}`, `title: ${await page.title()}`);
  } catch (err) {
    lines.push(`page unavailable: ${(err as Error).message}`);
  }
  const sections: Array<[string, string]> = [
    [
      'notifications',
      '.notifications-toasts .notification-toast, .notifications-center .notification-list-item',
    ],
    ['dialogs', '.monaco-dialog-box'],
    ['quick input', '.quick-input-widget'],
    ['status bar', '.part.statusbar'],
  ];
  for (const [label, selector] of sections) {
    const found = await texts(selector);
    lines.push(`${label}: ${found.length ? found.map((t) => t.slice(0, 300)).join(' | ') : '(none)'}`);
  }
  for (const server of runningCodeServers()) {
    lines.push(`code-server ${server.url} log tail:\n${server.logTail(25)}`);
  }
  return lines.join('\n');
}
