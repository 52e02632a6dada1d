import { WorkspaceError } from '../../protocol/errors';

/** The outcome of `RateLimiter.take`: when not ok, `retryAfterMs` says how long until it would succeed. */
export interface RateLimitResult {
  ok: boolean;
  retryAfterMs: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Tolerance for floating-point drift in token arithmetic. */
const EPSILON = 1e-9;
/** Above this many buckets, full (idle) ones are dropped on the next insert. */
const PRUNE_THRESHOLD = 10_000;

/** A token bucket per key: each bucket starts full with `capacity` tokens and refills continuously. */
export class RateLimiter {
  private readonly capacity: number;
  private readonly refillPerMs: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: { capacity: number; refillPerSec: number; now?: () => number }) {
    const { capacity, refillPerSec } = options;
    if (
      !(Number.isFinite(capacity) && capacity > 0) ||
      !(Number.isFinite(refillPerSec) && refillPerSec > 0)
    ) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        'RateLimiter capacity and refillPerSec must be positive numbers.',
      );
    }
    this.capacity = capacity;
    this.refillPerMs = refillPerSec / 1000;
    this.now = options.now ?? Date.now;
  }

  /** Takes `cost` tokens (default 1) from `key`'s bucket if available. */
  take(key: string, cost = 1): RateLimitResult {
    if (!(Number.isFinite(cost) && cost >= 0 && cost <= this.capacity)) {
      throw new WorkspaceError(
        'INVALID_ARGUMENT',
        `Rate limit cost must be between 0 and the bucket capacity (${this.capacity}); got ${cost}.`,
      );
    }
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      const elapsed = Math.max(0, now - bucket.updatedAt);
      bucket.tokens = Math.min(this.capacity, bucket.tokens + elapsed * this.refillPerMs);
      bucket.updatedAt = now;
    } else {
      if (this.buckets.size >= PRUNE_THRESHOLD) this.prune(now);
      bucket = { tokens: this.capacity, updatedAt: now };
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens + EPSILON >= cost) {
      bucket.tokens = Math.max(0, bucket.tokens - cost);
      return { ok: true, retryAfterMs: 0 };
    }
    return { ok: false, retryAfterMs: Math.ceil((cost - bucket.tokens) / this.refillPerMs - EPSILON) };
  }

  /** Drops `key`'s bucket (for example when its session ends). */
  forget(key: string): void {
    this.buckets.delete(key);
  }

  /** Removes buckets that have refilled completely; they behave exactly like absent ones. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) * this.refillPerMs >= this.capacity)
        this.buckets.delete(key);
    }
  }
}
