import type { Redis } from 'ioredis';

type Counts = Record<string, number>;

/**
 * Where the processes of a distributed deployment add up their per-sale buy outcomes: one Redis
 * hash per sale, outcome → count, added to with HINCRBY. It is the SharedCounts of
 * src/services/metrics.ts (matched by shape: a store does not import the services above it).
 */
export class RedisCounts {
  constructor(
    private readonly redis: Redis,
    private readonly key: (saleId: string) => string,
  ) {}

  async add(deltas: Map<string, Counts>): Promise<void> {
    const p = this.redis.pipeline();
    for (const [saleId, counts] of deltas) for (const [outcome, n] of Object.entries(counts)) p.hincrby(this.key(saleId), outcome, n);
    const results = (await p.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async read(saleId: string): Promise<Counts> {
    const h = await this.redis.hgetall(this.key(saleId));
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }
}
