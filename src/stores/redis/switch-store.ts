import type { ChainableCommander, Redis } from 'ioredis';
import { SeckillError } from '../../domain/errors.js';
import type { SwitchValues } from '../../gateway/switches.js';
import type { RedisKeys } from './keys.js';

/**
 * The operators' switches as every process reads them: one Redis hash, so that a process starting
 * later (or one that missed the signal) finds what was set. One home for its encoding ('1'/'0').
 */
export class RedisSwitchStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async read(): Promise<SwitchValues> {
    return decodeSwitches(await this.redis.hgetall(this.keys.switches()));
  }

  /** Queue the read on a pipeline (the hint refresher reads switches and sales in one round trip). */
  queueRead(p: ChainableCommander): void {
    p.hgetall(this.keys.switches());
  }

  /** Stored for every process; busy (nothing changed here either) when Redis cannot keep it. */
  async write(values: SwitchValues): Promise<void> {
    try {
      await this.redis.hset(this.keys.switches(), { refuseBuys: values.refuseBuys ? '1' : '0', degraded: values.degraded ? '1' : '0' });
    } catch (err) {
      throw new SeckillError('busy', 'The switches could not be shared with the other processes; try again.', 1, err);
    }
  }
}

/** An empty hash: no operator ever set a switch in this deployment; both are off. */
export function decodeSwitches(stored: Record<string, string>): SwitchValues {
  return { refuseBuys: stored.refuseBuys === '1', degraded: stored.degraded === '1' };
}
