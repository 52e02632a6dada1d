import assert from 'node:assert/strict';

/**
 * Polls `check` up to `attempts` times, `everyMs` apart, until it returns true (bounded retries: no
 * wall-clock assertion); fails the test naming `what` otherwise.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  attempts = 400,
  everyMs = 25,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

/**
 * Polls `check` until it returns a value other than undefined (at most `attempts` times, `everyMs`
 * apart) and returns it; fails the test naming `what` otherwise.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  attempts = 100,
  everyMs = 100,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  assert.fail(`timed out waiting for: ${what}`);
}
