import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { SeckillError } from '../domain/errors.js';

/**
 * Requests per second per key, allowing a burst of 2× the rate: the limiter counts
 * 2 × rate points over a 2 s window (rate-limiter-flexible, in memory; a Redis store
 * fits the same interface in distributed mode). rate 0 turns the limit off.
 */
export class RateLimit {
  private readonly limiter: RateLimiterMemory | null;

  constructor(perSecond: number) {
    this.limiter = perSecond > 0 ? new RateLimiterMemory({ points: perSecond * 2, duration: 2 }) : null;
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
