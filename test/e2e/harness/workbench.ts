/** Driving the VS Code workbench in the browser: commands, quick picks, webviews, screenshots. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { describeScreen } from './browser';
import { ARTIFACTS_DIR } from './provision';
import { exactText, sanitize, sleep } from './util';

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** What is being waited for, for the error message. */
  what?: string;
  /** Page whose screen is described in the error message. */
  page?: Page;
  /** Poll interval (default 250 ms). */
  intervalMs?: number;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or `timeoutMs` passes.
 * Exceptions thrown by the predicate count as "not yet"; the last one is reported on timeout,
 * together with what was on screen when `page` is given.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(options.intervalMs ?? 250);
  }
  let message = `timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}`;
  if (lastError) message += `\nlast error: ${(lastError as Error).message ?? String(lastError)}`;
  if (options.page) message += `\n--- on screen ---\n${await describeScreen(options.page)}`;
  throw new Error(message, lastError ? { cause: lastError } : undefined);
}

/** Waits for `locator` to be visible, failing with a description of the screen. */
export async function waitVisible(
  page: Page,
  locator: Locator,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: timeoutMs });
  } catch (err) {
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}: ${(err as Error).message.split('\n')[0]}\n` +
        `--- on screen ---\n${await describeScreen(page)}`,
      { cause: err },
    );
  }
}

/**
 * Opens the workbench at `url` on `folder` and waits for `.monaco-workbench` and for the
 * extension host to have started (the status bar is populated).
 */
export async function openWorkbench(
  page: Page,
  url: string,
  folder: string,
  timeoutMs = 60_000,
): Promise<void> {
  const target = `${url.replace(/\/$/, '')}/?folder=${encodeURIComponent(folder)}`;
  await page.goto(target, { waitUntil: 'domcontentloaded', timeout: timeoutMs });
  await waitVisible(
    page,
    page.locator('.monaco-workbench'),
    `the workbench (.monaco-workbench) at ${target}`,
    timeoutMs,
  );
  await waitVisible(page, page.locator('.part.statusbar'), 'the status bar', timeoutMs);
}

/**
 * Runs a command from the command palette: F1, types `>` + `title`, waits for a row whose label
 * is exactly `title`, and accepts it (Enter when it is the focused row, a click otherwise). Returns
 * once the palette has closed or the command has opened a quick input of its own (read it with
 * {@link quickPickRows}).
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const input = page.locator('.quick-input-widget input');
  // The first F1 can land before the workbench's keybindings are ready: retry until it opens.
  await waitFor(
    async () => {
      if (await input.isVisible()) return true;
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 1_500 }).catch(() => undefined);
      return input.isVisible();
    },
    timeoutMs,
    { what: 'the command palette to open (F1)', page },
  );
  await input.fill(`>${title}`);
  const row = page
    .locator('.quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: exactText(title) }) })
    .first();
  await waitVisible(page, row, `the command "${title}" in the command palette`, timeoutMs);
  const focused = (await row.getAttribute('class'))?.split(/\s+/).includes('focused') ?? false;
  if (focused) await page.keyboard.press('Enter');
  else await row.click();
  // Done once the palette closed or was replaced by a quick input the command opened itself.
  const widget = page.locator('.quick-input-widget');
  await waitFor(
    async () => !(await widget.isVisible()) || (await input.inputValue()) !== `>${title}`,
    10_000,
    { what: `the command palette to close after running "${title}"`, page },
  );
}

/**
 * The visible rows of the open quick pick, in order, as VS Code labels them for screen readers:
 * `label`, or `label, description` (an item's description, or a separator's text such as
 * "recently used"). Falls back to the row's text when it has no aria-label. Waits for one row.
 */
export async function quickPickRows(page: Page, timeoutMs = 10_000): Promise<string[]> {
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  await waitVisible(page, rows, 'quick pick rows', timeoutMs);
  const texts: string[] = [];
  for (const row of await rows.filter({ visible: true }).all()) {
    const text = (await row.getAttribute('aria-label')) || (await row.innerText());
    texts.push(text.replace(/\s+/g, ' ').trim());
  }
  return texts;
}

/**
 * The content of a webview, two frames deep (`iframe.webview.ready` → `#active-frame`). With
 * several webviews, the last visible one (or the `index`-th visible one) is taken.
 */
export function webviewFrame(page: Page, index?: number): FrameLocator {
  const outer = page.locator('iframe.webview.ready').filter({ visible: true });
  return (index === undefined ? outer.last() : outer.nth(index))
    .contentFrame()
    .locator('#active-frame')
    .contentFrame();
}

/** Saves a full-page screenshot as {@link ARTIFACTS_DIR}/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${sanitize(name)}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
