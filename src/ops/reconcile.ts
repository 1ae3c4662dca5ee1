import type { Redis } from 'ioredis';
import { pino } from 'pino';
import type { Order } from '../domain/order.js';
import { RedisStockEngine, parseStoredOrder } from '../stores/redis/redis-engine.js';
import type { RedisKeys } from '../stores/redis/keys.js';
import { backlogOf, writerGroupInfo } from '../stores/redis/writer-group.js';
import type { SharedRecordStore } from '../stores/record-store.js';

export interface ReconcileReport {
  saleId: string;
  stock: number;
  /** Order records still waiting in the stream when the comparison was made. */
  pendingWrites: number;
  redis: { available: number; heldUnits: number; orders: number };
  database: { available: number; heldUnits: number; orders: number; reserved: number; paid: number };
  differences: string[];
  repaired: boolean;
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

async function pending(redis: Redis, keys: RedisKeys, saleId: string): Promise<number> {
  try {
    return backlogOf(await writerGroupInfo(redis, keys.stream(saleId), keys.writerGroup));
  } catch {
    return 0; // no stream: nothing pending
  }
}

/**
 * Compare a sale's Redis state (the decider) with PostgreSQL (the record), after waiting for
 * the order writers to drain the stream. With `repair`: orders Redis decided but PostgreSQL
 * lacks (or has in an older status) are written, then Redis's counters are recomputed from
 * the database.
 */
export async function reconcile(
  redis: Redis,
  keys: RedisKeys,
  repo: SharedRecordStore,
  saleId: string,
  opts: { repair: boolean; drainMs: number },
): Promise<ReconcileReport> {
  const sale = await repo.getSale(saleId);
  if (!sale) throw new Error(`no sale ${saleId} in the database`);
  const deadline = Date.now() + opts.drainMs;
  let pendingWrites = await pending(redis, keys, saleId);
  while (pendingWrites > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pendingWrites = await pending(redis, keys, saleId);
  }

  const differences: string[] = [];
  const available = Number((await redis.hget(keys.sale(saleId), 'available')) ?? NaN);
  const redisHeld = new Map([...(await hscanAll(redis, keys.holdings(saleId)))].map(([u, q]) => [u, Number(q)]));
  const redisOrders = new Map([...(await hscanAll(redis, keys.orders(saleId)))].map(([id, json]) => [id, parseStoredOrder(json)]));
  const dbHeld = await repo.holdings(saleId);
  const totals = await repo.totals(saleId);
  const dbOrders = new Map<string, Order>();
  for await (const o of repo.iterateOrders(saleId, undefined)) dbOrders.set(o.orderId, o);

  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const dbAvailable = sale.stock - totals.reserved - totals.paid;
  if (pendingWrites > 0) differences.push(`${pendingWrites} order records still waiting in the stream`);
  if (Number.isNaN(available)) differences.push('no stock record in Redis (it is rebuilt from the database on the next start or buy)');
  else if (available !== dbAvailable) differences.push(`available: redis ${available}, database ${dbAvailable}`);
  for (const u of new Set([...redisHeld.keys(), ...dbHeld.keys()])) {
    const r = redisHeld.get(u) ?? 0;
    const d = dbHeld.get(u) ?? 0;
    if (r !== d) differences.push(`user ${u} holds: redis ${r}, database ${d}`);
  }
  const missing: Order[] = [];
  const stale: Order[] = [];
  for (const [id, o] of redisOrders) {
    const d = dbOrders.get(id);
    if (!d) {
      differences.push(`order ${id} (${o.status}) is in Redis only`);
      missing.push(o);
    } else if (d.status !== o.status) {
      differences.push(`order ${id}: redis ${o.status}, database ${d.status}`);
      if (d.status === 'reserved') stale.push(o);
    }
  }

  let repaired = false;
  if (opts.repair && differences.length > 0 && pendingWrites === 0) {
    await repo.applyBatch(missing, stale);
    // Recompute Redis's counters from the record. The sale stops being `ready` (every script then
    // leaves it alone) and is rebuilt the safe way: the writers drain its stream, the database is
    // read inside the rebuild fence, the record is written whole (RedisStockEngine.rebuild). On a
    // live sale, buys wait for the rebuild or get 503 busy; none is lost.
    await redis.hdel(keys.sale(saleId), 'ready');
    await new RedisStockEngine(redis, keys, repo, pino({ level: 'silent' })).load(sale);
    repaired = true;
  }
  return {
    saleId,
    stock: sale.stock,
    pendingWrites,
    redis: { available, heldUnits: sum(redisHeld), orders: redisOrders.size },
    database: { available: dbAvailable, heldUnits: sum(dbHeld), orders: dbOrders.size, reserved: totals.reserved, paid: totals.paid },
    differences,
    repaired,
  };
}
