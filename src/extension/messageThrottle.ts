/**
 * Rate limiting of message notifications, free of `vscode` so it is tested under plain Node: each
 * sender gets at most one notification per window; what it sends meanwhile is shown once, together,
 * when the window ends ("alice sent 5 messages").
 */

/** Default time (ms) between two notifications of one sender. */
export const DEFAULT_NOTIFY_WINDOW_MS = 10_000;
/** Messages kept per sender while they wait to be shown (the oldest are dropped first). */
export const MAX_PENDING_PER_SENDER = 100;

/** What is shown at once: one message, or several of one sender coalesced. */
export interface MessageBatch<M> {
  /** The sender's key (e.g. its agent name). */
  from: string;
  messages: M[];
  /** Messages dropped because the sender sent more than {@link MAX_PENDING_PER_SENDER} in a window. */
  dropped: number;
}

/** Timer functions (injectable for tests). */
export interface ThrottleClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: ThrottleClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface SenderState<M> {
  lastShownAt: number;
  pending: M[];
  dropped: number;
  timer: unknown;
}

/**
 * Shows the first message of a sender at once, then holds the sender's further messages until its
 * window ends and shows them as one batch: one chatty agent yields one notification per window.
 */
export class MessageThrottle<M> {
  private readonly senders = new Map<string, SenderState<M>>();
  private readonly clock: ThrottleClock;

  constructor(
    private readonly show: (batch: MessageBatch<M>) => void,
    private readonly windowMs = DEFAULT_NOTIFY_WINDOW_MS,
    clock: ThrottleClock = REAL_CLOCK,
  ) {
    this.clock = clock;
  }

  /** A message from `from` arrived. */
  push(from: string, message: M): void {
    const now = this.clock.now();
    let state = this.senders.get(from);
    if (!state) {
      state = { lastShownAt: -Infinity, pending: [], dropped: 0, timer: null };
      this.senders.set(from, state);
    }
    if (state.timer === null && now - state.lastShownAt >= this.windowMs) {
      state.lastShownAt = now;
      this.show({ from, messages: [message], dropped: 0 });
      return;
    }
    state.pending.push(message);
    if (state.pending.length > MAX_PENDING_PER_SENDER) {
      state.pending.shift();
      state.dropped++;
    }
    if (state.timer === null) {
      const wait = Math.max(0, state.lastShownAt + this.windowMs - now);
      const current = state;
      state.timer = this.clock.setTimeout(() => this.flush(from, current), wait);
    }
  }

  /** Forgets everything held and stops the timers (nothing more is shown). */
  dispose(): void {
    for (const state of this.senders.values()) {
      if (state.timer !== null) this.clock.clearTimeout(state.timer);
    }
    this.senders.clear();
  }

  private flush(from: string, state: SenderState<M>): void {
    state.timer = null;
    if (state.pending.length === 0) return;
    const batch = { from, messages: state.pending, dropped: state.dropped };
    state.pending = [];
    state.dropped = 0;
    state.lastShownAt = this.clock.now();
    this.show(batch);
  }
}
