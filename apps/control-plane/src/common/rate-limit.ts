import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { AuthedRequest } from '../accounts/auth.guard.js';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from './di.js';
import { ApiError } from './errors.js';

/**
 * Token buckets per key: `burst` calls at once, refilled at `perMinute`. In memory, so each replica
 * limits on its own (N replicas allow N times the rate): an abuse brake that costs no write per
 * call, not an exact quota (quotas live in Postgres).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {}

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const now = this.clock.now().getTime();
    const ratePerMs = this.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * ratePerMs);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 50_000) this.sweep(now, ratePerMs);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000));
  }

  /** Drops buckets that have refilled completely: they hold nothing a fresh one would not. */
  private sweep(now: number, ratePerMs: number): void {
    for (const [k, b] of this.buckets)
      if (b.tokens + (now - b.at) * ratePerMs >= this.burst) this.buckets.delete(k);
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Runs after the auth guard: every mutating call counts against its user (or, before sign-in,
 * its client address). Reads are not limited here.
 */
@Injectable()
export class MutationRateLimitGuard implements CanActivate {
  private readonly buckets: TokenBuckets | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) clock: Clock,
  ) {
    if (config.mutationRatePerMinute > 0)
      this.buckets = new TokenBuckets(config.mutationRatePerMinute, config.mutationRateBurst, clock);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.buckets || context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    if (SAFE.has(req.method)) return true;
    const key = req.auth ? `user:${req.auth.userId}` : `ip:${req.ip ?? 'unknown'}`;
    const wait = this.buckets.take(key);
    if (wait === 0) return true;
    context.switchToHttp().getResponse<Response>().setHeader('retry-after', String(wait));
    throw new ApiError(
      429,
      'rate_limited',
      `too many changes: at most ${this.config.mutationRatePerMinute} per minute (bursts of ${this.config.mutationRateBurst}) per ${req.auth ? 'user' : 'client address'}`,
      `retry in ${wait} s (Retry-After); scripts should pace their calls or batch them`,
    );
  }
}
