// reconcile --repair rebuilds a sale's Redis state through the rebuild module (no engine): after
// it, Redis's stock, holdings and open orders are the database's, and a second reconcile finds
// nothing. Uses the shared Redis under a key prefix of its own and a database of its own;
// skipped when either service is missing.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';
import { reconcile } from '../../src/ops/reconcile.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import { connectRedis, redisConnection } from '../../src/stores/redis/connection.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import { readSaleState } from '../../src/stores/redis/sale-state.js';
import { REDIS_URL, createDatabase, skipUnlessServices } from '../support/cluster.js';

test('reconcile --repair rebuilds a sale Redis does not have from the database', { timeout: 60_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return t.skip(reason);
  const db = await createDatabase();
  const repo = new PgRecordStore(db.url);
  const redis = redisConnection(REDIS_URL, { commandTimeout: 10_000 });
  const keys = new RedisKeys(`t${crypto.randomBytes(4).toString('hex')}`);
  const now = Date.now();
  const sale: Sale = {
    id: crypto.randomUUID(), name: 'reconcile', description: '', priceCents: 100, stock: 10, startsAt: now - 1000, endsAt: null,
    perUserLimit: 5, paymentWindowSeconds: 600, paused: false, restockOnRefund: false, secret: crypto.randomBytes(8).toString('hex'), createdAt: now,
  };
  const order = (userId: string, quantity: number, status: Order['status']): Order => ({
    orderId: crypto.randomUUID(), saleId: sale.id, userId, quantity, priceCents: 100, status, createdAt: now, expiresAt: now + 600_000,
    paidAt: status === 'paid' ? now : null, paymentRef: status === 'paid' ? 'ref-1' : null, refundedAt: null, refundReason: null,
  });
  try {
    await repo.init();
    await connectRedis(redis);
    await repo.insertSale(sale);
    const reserved = order('alice', 2, 'reserved');
    await repo.insertOrders([reserved, order('bob', 3, 'paid'), order('carol', 1, 'cancelled')]);

    const before = await reconcile(redis, keys, repo, sale.id, { repair: true, drainMs: 1000 });
    assert.ok(before.differences.some((d) => d.includes('no stock record in Redis')), JSON.stringify(before.differences));
    assert.equal(before.repaired, true);

    const state = await readSaleState(redis, keys, sale.id);
    assert.equal(state.available, 5);
    assert.deepEqual(Object.fromEntries(state.holdings), { alice: 2, bob: 3 });
    assert.deepEqual(state.orders.get(reserved.orderId), reserved);
    assert.equal(await redis.hget(keys.sale(sale.id), 'ready'), '1');
    assert.equal(await redis.exists(keys.rebuildLock(sale.id)), 0, 'rebuild lock released');

    const after = await reconcile(redis, keys, repo, sale.id, { repair: false, drainMs: 1000 });
    assert.deepEqual(after.differences, []);
  } finally {
    const k = keys;
    await redis.del(k.sale(sale.id), k.holdings(sale.id), k.orders(sale.id), k.stream(sale.id), k.rebuildLock(sale.id), k.orderIndex()).catch(() => undefined);
    redis.disconnect();
    await repo.close().catch(() => undefined);
    await db.drop();
  }
});
