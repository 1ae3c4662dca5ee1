import type { Redis } from 'ioredis';
import type { Order } from '../../domain/order.js';
import type { RedisKeys } from './keys.js';
import { parseStoredOrder } from './stored-order.js';
import { backlogOf, writerGroupInfo } from './writer-group.js';

/** What Redis holds of one sale, read key by key (not one atomic snapshot): for comparing with the database. */
export interface RedisSaleState {
  /** NaN when Redis has no stock record of the sale. */
  available: number;
  /** userId → units held. */
  holdings: Map<string, number>;
  /** The orders Redis still keeps (settled ones are pruned once written). */
  orders: Map<string, Order>;
}

async function hscanAll(redis: Redis, key: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 1000);
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i], flat[i + 1]);
    cursor = next;
  } while (cursor !== '0');
  return out;
}

export async function readSaleState(redis: Redis, keys: RedisKeys, saleId: string): Promise<RedisSaleState> {
  const available = Number((await redis.hget(keys.sale(saleId), 'available')) ?? NaN);
  const holdings = new Map([...(await hscanAll(redis, keys.holdings(saleId)))].map(([u, q]) => [u, Number(q)]));
  const orders = new Map([...(await hscanAll(redis, keys.orders(saleId)))].map(([id, json]) => [id, parseStoredOrder(json)]));
  return { available, holdings, orders };
}

/** Order records of the sale still waiting in its stream for the writers; 0 when it has no stream. */
export async function pendingWrites(redis: Redis, keys: RedisKeys, saleId: string): Promise<number> {
  try {
    return backlogOf(await writerGroupInfo(redis, keys.stream(saleId), keys.writerGroup));
  } catch {
    return 0; // no stream: nothing pending
  }
}
