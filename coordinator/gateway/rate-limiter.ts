export interface RateLimit {
  /** Messages a sender may send at once. */
  burst: number;
  /** Messages per second it earns back. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per sender. Junk on an agent's subjects costs a map lookup
 * and a subtraction before it is dropped, however fast it comes, so it
 * cannot push the real agents' messages far back; the buckets are bounded
 * by the senders the spec knows of.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxSenders: number,
  ) {}

  allow(sender: string, now: number): boolean {
    let b = this.buckets.get(sender);
    if (!b) {
      if (this.buckets.size >= this.maxSenders) this.evictIdle(now);
      b = { tokens: this.limit.burst, at: now };
      this.buckets.set(sender, b);
    } else {
      b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets the senders that have earned a full bucket back: they lose nothing by it. */
  private evictIdle(now: number): void {
    const full = (this.limit.burst / this.limit.perSecond) * 1000;
    for (const [k, b] of this.buckets) if (now - b.at >= full) this.buckets.delete(k);
    if (this.buckets.size >= this.maxSenders) this.buckets.delete(this.buckets.keys().next().value!);
  }

  get size(): number {
    return this.buckets.size;
  }
}
