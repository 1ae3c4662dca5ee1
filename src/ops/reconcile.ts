import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { SeckillError } from '../domain/errors.js';
import type { Order } from '../domain/order.js';
import { busy } from '../stores/redis/codes.js';
import type { RedisKeys } from '../stores/redis/keys.js';
import { SaleRebuilder } from '../stores/redis/rebuild.js';
import { pendingWrites as pending, readSaleState } from '../stores/redis/sale-state.js';
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
  const { available, holdings: redisHeld, orders: redisOrders } = await readSaleState(redis, keys, saleId);
  const dbHeld = await repo.holdings(saleId);
  const totals = await repo.totals(saleId);
  const dbOrders = new Map<string, Order>();
  for await (const o of repo.iterateOrders(saleId, undefined)) dbOrders.set(o.orderId, o);

  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  // Refunded units stay sold unless the sale restocks on refund.
  const dbAvailable = sale.stock - totals.reserved - totals.paid - (sale.restockOnRefund ? 0 : totals.refunded);
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
      if (d.status === 'reserved' || (d.status === 'paid' && o.status === 'refunded')) stale.push(o);
    }
  }

  let repaired = false;
  if (opts.repair && differences.length > 0 && pendingWrites === 0) {
    await repo.applyBatch(missing, stale);
    // Recompute Redis's counters from the record. The sale stops being `ready` (every script then
    // leaves it alone) and is rebuilt the safe way: the writers drain its stream, the database is
    // read inside the rebuild fence, the record is written whole (src/stores/redis/rebuild.ts). On
    // a live sale, buys wait for the rebuild or get 503 busy; none is lost.
    await redis.hdel(keys.sale(saleId), 'ready');
    // A failure reads as the engine's own load would put it: 503 busy, nothing changed.
    await new SaleRebuilder(redis, keys, repo, pino({ level: 'silent' })).ensureLoaded(sale).catch((err: unknown) => {
      throw err instanceof SeckillError ? err : busy(err);
    });
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
