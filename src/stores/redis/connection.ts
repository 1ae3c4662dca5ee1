import { Redis, type RedisOptions } from 'ioredis';
import { scriptCommands } from './scripts.js';

/**
 * A connection that fails fast instead of queueing: while Redis is away, commands are refused
 * at once (the buyer gets 503 busy) and the client reconnects in the background.
 */
export function redisConnection(url: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 2000,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 500),
    scripts: scriptCommands(),
    ...extra,
  });
}

/** Connect, waiting up to `ms` for Redis to answer. */
export async function connectRedis(redis: Redis, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
      await redis.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * A 202 in distributed mode means "in the Redis stream", so Redis must keep what it has: refuse
 * to run on a Redis without an append-only file unless the operator says it may lose data.
 */
export async function checkPersistence(redis: Redis, allowVolatile: boolean): Promise<string> {
  let aof = 'unknown';
  let fsync = 'unknown';
  try {
    const a = (await redis.config('GET', 'appendonly')) as string[];
    const f = (await redis.config('GET', 'appendfsync')) as string[];
    aof = a[1] ?? 'unknown';
    fsync = f[1] ?? 'unknown';
  } catch {
    // Managed Redis often disables CONFIG; then the operator's word is all we have.
  }
  const summary = `appendonly=${aof} appendfsync=${fsync}`;
  if (aof !== 'yes' && !allowVolatile) {
    throw new Error(
      `Redis persistence is off (${summary}): an accepted order could be lost in a Redis restart. ` +
        'Turn on the append-only file (appendonly yes, appendfsync everysec or always), ' +
        'or set SECKILL_ALLOW_VOLATILE_REDIS=1 to accept that risk (tests only).',
    );
  }
  return summary;
}

/**
 * Redis must never drop a key by itself: an evicted stream entry is a lost 202, an evicted stock
 * record or holdings hash sells what is not there. Refuse any maxmemory-policy but noeviction.
 * Returns the policy, or 'unknown' when CONFIG is unavailable (managed Redis): the caller warns.
 */
export async function checkEviction(redis: Redis): Promise<string> {
  let policy: string;
  try {
    const r = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = r[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
  if (policy !== 'noeviction') {
    throw new Error(
      `Redis may evict keys (maxmemory-policy=${policy}): an accepted order or a sale's stock could vanish when memory runs short. ` +
        'Set maxmemory-policy noeviction (in redis.conf, or CONFIG SET maxmemory-policy noeviction) and give Redis enough memory.',
    );
  }
  return policy;
}
