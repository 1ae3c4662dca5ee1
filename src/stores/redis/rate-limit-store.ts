import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { LimiterStore } from '../../gateway/rate-limit.js';
import type { RedisKeys } from './keys.js';

/**
 * The per-user rate limit counted in Redis, shared by every process (rate-limiter-flexible's Redis
 * store). While Redis is unreachable each process counts on its own instead of refusing everyone.
 */
export function redisLimiterStore(redis: Redis, keys: RedisKeys): LimiterStore {
  return ({ points, duration }) =>
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: keys.rateLimitPrefix(),
      points,
      duration,
      insuranceLimiter: new RateLimiterMemory({ points, duration }),
    });
}
