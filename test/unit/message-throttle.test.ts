import assert from 'node:assert/strict';
import {
  MAX_PENDING_PER_SENDER,
  MessageThrottle,
  type MessageBatch,
  type ThrottleClock,
} from '../../src/extension/messageThrottle';

/** A clock whose time only moves when the test says so. */
function fakeClock(): ThrottleClock & { advance(ms: number): void; timers: number } {
  let now = 1_000_000;
  let id = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(++id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    advance(ms: number) {
      now += ms;
      for (const [key, timer] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (timer.at <= now) {
          timers.delete(key);
          timer.fn();
        }
      }
    },
    get timers() {
      return timers.size;
    },
  };
}

describe('message notifications: one per sender per window, the rest coalesced', () => {
  it('shows a first message at once and coalesces a burst into one batch at the end of the window', () => {
    const clock = fakeClock();
    const shown: MessageBatch<string>[] = [];
    const throttle = new MessageThrottle<string>((b) => shown.push(b), 10_000, clock);
    throttle.push('alice', 'm1');
    assert.deepEqual(shown, [{ from: 'alice', messages: ['m1'], dropped: 0 }]);
    for (let i = 2; i <= 6; i++) throttle.push('alice', `m${i}`);
    assert.equal(shown.length, 1, 'nothing more during the window');
    clock.advance(9_999);
    assert.equal(shown.length, 1);
    clock.advance(1);
    assert.deepEqual(shown[1], { from: 'alice', messages: ['m2', 'm3', 'm4', 'm5', 'm6'], dropped: 0 });
    // The batch opened a new window: a message right after it waits for that window too.
    throttle.push('alice', 'm7');
    assert.equal(shown.length, 2);
    clock.advance(10_000);
    assert.deepEqual(shown[2], { from: 'alice', messages: ['m7'], dropped: 0 });
    // After a quiet window, a message is shown at once again.
    clock.advance(10_000);
    throttle.push('alice', 'm8');
    assert.deepEqual(shown[3], { from: 'alice', messages: ['m8'], dropped: 0 });
    throttle.dispose();
  });

  it('keeps senders apart: a chatty agent does not hold back another', () => {
    const clock = fakeClock();
    const shown: MessageBatch<string>[] = [];
    const throttle = new MessageThrottle<string>((b) => shown.push(b), 10_000, clock);
    for (let i = 0; i < 50; i++) throttle.push('chatty', `c${i}`);
    throttle.push('quiet', 'q1');
    assert.deepEqual(
      shown.map((b) => [b.from, b.messages.length]),
      [
        ['chatty', 1],
        ['quiet', 1],
      ],
    );
    clock.advance(10_000);
    assert.deepEqual(
      shown.map((b) => [b.from, b.messages.length]),
      [
        ['chatty', 1],
        ['quiet', 1],
        ['chatty', 49],
      ],
    );
    throttle.dispose();
  });

  it('bounds what it holds per sender and counts what it dropped; dispose stops every timer', () => {
    const clock = fakeClock();
    const shown: MessageBatch<number>[] = [];
    const throttle = new MessageThrottle<number>((b) => shown.push(b), 10_000, clock);
    const total = MAX_PENDING_PER_SENDER + 26;
    for (let i = 0; i < total; i++) throttle.push('flood', i);
    clock.advance(10_000);
    const batch = shown[1]!;
    assert.equal(batch.messages.length, MAX_PENDING_PER_SENDER);
    assert.equal(batch.dropped, total - 1 - MAX_PENDING_PER_SENDER);
    assert.equal(batch.messages[batch.messages.length - 1], total - 1, 'the newest are kept');
    throttle.push('flood', -1);
    assert.equal(clock.timers, 1);
    throttle.dispose();
    assert.equal(clock.timers, 0);
    clock.advance(60_000);
    assert.equal(shown.length, 2, 'nothing is shown after dispose');
  });
});
