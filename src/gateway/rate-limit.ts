import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { SeckillError } from '../domain/errors.js';

/**
 * Requests per second per key, allowing a burst of 2× the rate: the limiter counts
 * 2 × rate points over a 2 s window (rate-limiter-flexible). In memory for one process unless a
 * store is given (distributed mode: src/stores/redis/rate-limit-store.ts, shared by every
 * process). rate 0 turns the limit off.
 */
/** Where the counts live: a rate-limiter-flexible limiter for these points per duration (s). */
export type LimiterStore = (opts: { points: number; duration: number }) => RateLimiterAbstract;

export class RateLimit {
  private readonly limiter: RateLimiterAbstract | null;

  constructor(perSecond: number, store: LimiterStore = (opts) => new RateLimiterMemory(opts)) {
    this.limiter = perSecond > 0 ? store({ points: perSecond * 2, duration: 2 }) : null;
  }

  get enabled(): boolean {
    return this.limiter !== null;
  }

  /** Resolves when allowed; throws rate_limited with Retry-After otherwise. */
  async take(key: string): Promise<void> {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(key, 1);
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        throw new SeckillError('rate_limited', undefined, Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
      }
      throw res;
    }
  }
}
