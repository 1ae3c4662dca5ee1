import type { Redis } from 'ioredis';
import type { SpentChallenges } from '../../domain/challenge.js';
import type { RedisKeys } from './keys.js';

/**
 * Spent challenges shared by every process (distributed mode): `SET key 1 NX PX ttl`, so the first
 * process to give a path for a challenge spends it and every other process sees it spent. The key
 * expires with the token (a used token is refused as expired after that anyway).
 */
export class RedisSpentChallenges implements SpentChallenges {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async spend(saleId: string, nonce: string, ttlMs: number): Promise<boolean> {
    const r = await this.redis.set(this.keys.challengeSpent(saleId, nonce), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }
}
