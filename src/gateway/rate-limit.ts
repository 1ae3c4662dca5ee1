import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { SeckillError } from '../domain/errors.js';

/**
 * Requests per second per key, allowing a burst of 2× the rate: the limiter counts
 * 2 × rate points over a 2 s window (rate-limiter-flexible). In memory for one process; with
 * a Redis client the count is shared by every process, and falls back to a per-process count
 * while Redis is unreachable. rate 0 turns the limit off.
 */
export class RateLimit {
  private readonly limiter: RateLimiterAbstract | null;

  constructor(perSecond: number, shared?: { redis: Redis; keyPrefix: string }) {
    const points = perSecond * 2;
    const duration = 2;
    if (perSecond <= 0) this.limiter = null;
    else if (shared) {
      this.limiter = new RateLimiterRedis({
        storeClient: shared.redis,
        keyPrefix: shared.keyPrefix,
        points,
        duration,
        insuranceLimiter: new RateLimiterMemory({ points, duration }),
      });
    } else this.limiter = new RateLimiterMemory({ points, duration });
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
