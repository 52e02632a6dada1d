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
