import type { Clock } from '../common/di.js';

/**
 * Fixed-window counter of login attempts per key (client address + account). In memory: each
 * control plane limits on its own, so N replicas allow N × limit — acceptable for slowing
 * password guessing, and it needs no write per attempt.
 */
export class LoginRateLimiter {
  private readonly hits = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /** Seconds to wait when over the limit, else 0 (and the attempt is counted). */
  hit(key: string): number {
    const now = this.clock.now().getTime();
    const cur = this.hits.get(key);
    if (!cur || cur.resetAt <= now) {
      this.hits.set(key, { count: 1, resetAt: now + this.windowMs });
      if (this.hits.size > 10_000) this.sweep(now);
      return 0;
    }
    cur.count += 1;
    return cur.count > this.limit ? Math.ceil((cur.resetAt - now) / 1000) : 0;
  }

  reset(key: string): void {
    this.hits.delete(key);
  }

  private sweep(now: number): void {
    for (const [k, v] of this.hits) if (v.resetAt <= now) this.hits.delete(k);
  }
}
