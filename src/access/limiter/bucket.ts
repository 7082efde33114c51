/**
 * A token bucket (the model of Go's x/time/rate, which gost uses): `rate` tokens per second
 * refill up to `burst`; the bucket starts full. `reserve` lets the balance go negative and
 * returns how long the caller must wait, so concurrent users queue in arrival order instead of
 * polling.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(readonly rate: number, readonly burst: number) {
    this.tokens = burst;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes `n` tokens if available now. */
  tryTake(n: number): boolean {
    this.refill(performance.now());
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes `n` tokens (n ≤ burst), returning the milliseconds to wait before using them. */
  reserve(n: number): number {
    this.refill(performance.now());
    this.tokens -= n;
    return this.tokens < 0 ? (-this.tokens * 1000) / this.rate : 0;
  }

  /** True when the bucket is full (nothing to remember about it). */
  get idle(): boolean {
    this.refill(performance.now());
    return this.tokens >= this.burst;
  }
}

/** Waits for `ms` milliseconds with a timer (no spinning). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
