// Merged reserves (issue 12): the reserves that reach one process in one event-loop turn go to
// Redis as one reserve-many call per sale, and each buyer still gets his own answer, decided in
// order with the single reserve's rules. Drives RedisStockEngine directly on the shared Redis
// under a key prefix of its own, with its own PostgreSQL database.
// - mixed outcomes in one call: the per-user limit hit by the same user twice, sold out mid-call
//   (a later, smaller request still fits), other buyers reserved;
// - a paused sale refuses every buyer of the call and changes nothing; two sales in one turn
//   are two calls, each decided on its own;
// - a call whose reply is lost after it ran: each buyer finds out about his own order (the
//   reserved ones get their 202, the refused ones a busy that is true: no order anywhere).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { SeckillError } from '../../src/domain/errors.js';
import type { Sale } from '../../src/domain/sale.js';
import type { ReserveResult } from '../../src/engine/stock-engine.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import { connectRedis, redisConnection } from '../../src/stores/redis/connection.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import { RedisStockEngine } from '../../src/stores/redis/redis-engine.js';
import { parseStoredOrder } from '../../src/stores/redis/stored-order.js';
import { REDIS_URL, createDatabase, skipUnlessServices } from '../support/cluster.js';

const log = pino({ level: process.env.TEST_LOG ?? 'silent' });

function newSale(stock: number, perUserLimit: number): Sale {
  const now = Date.now();
  return {
    id: crypto.randomUUID(), name: 'merged reserves', description: '', priceCents: 100, stock, startsAt: now - 1000, endsAt: null,
    perUserLimit, paymentWindowSeconds: 600, paused: false, restockOnRefund: false, secret: crypto.randomBytes(8).toString('hex'), createdAt: now,
  };
}

/** An engine on its own key prefix and database; `calls` records the buyers of each reserve-many call. */
async function world() {
  const db = await createDatabase();
  const repo = new PgRecordStore(db.url);
  await repo.init();
  const keys = new RedisKeys(`rm${crypto.randomBytes(4).toString('hex')}`);
  const redis: Redis = redisConnection(REDIS_URL);
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const calls: number[] = [];
  /** When set, the next call runs on Redis but its reply is thrown away (a reply lost on the way back). */
  let loseNextReply = false;
  const send = redis.seckillReserveMany.bind(redis);
  redis.seckillReserveMany = (async (...args: Parameters<typeof send>) => {
    calls.push((args.length - 7) / 4);
    const reply = await send(...args);
    if (loseNextReply) {
      loseNextReply = false;
      throw new Error('Connection is closed.');
    }
    return reply;
  }) as typeof send;
  const engine = new RedisStockEngine(redis, keys, repo, log);
  const stop = async () => {
    await engine.close();
    const found = await redis.keys(`${keys.prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
    await repo.close();
    await db.drop();
  };
  const sale = async (stock: number, perUserLimit: number) => {
    const s = newSale(stock, perUserLimit);
    await repo.insertSale(s);
    await engine.load(s);
    return s;
  };
  const orders = async (saleId: string) => Object.values(await redis.hgetall(keys.orders(saleId))).map(parseStoredOrder);
  return { engine, redis, keys, calls, sale, orders, stop, loseNext: () => (loseNextReply = true) };
}

/** Every reserve started in the same turn (so they share one call), answers in the order asked. */
function sameTurn(engine: RedisStockEngine, buys: Array<[Sale, string, number]>): Promise<PromiseSettledResult<ReserveResult>[]> {
  const now = Date.now();
  return Promise.allSettled(buys.map(([s, u, q]) => engine.reserve(s, u, q, now)));
}

const outcome = (a: PromiseSettledResult<ReserveResult>) =>
  a.status === 'rejected' ? `error ${(a.reason as SeckillError).code}` : a.value.ok ? `reserved ${a.value.order.quantity}` : a.value.refusal;

test('one call, mixed outcomes: the same user past his limit, sold out mid-call, the rest reserved, each buyer his own answer', { timeout: 30_000 }, async (t) => {
  if (await skipUnlessServices()) return t.skip('services unavailable');
  const w = await world();
  try {
    const s = await w.sale(5, 2);
    w.calls.length = 0;
    const answers = await sameTurn(w.engine, [
      [s, 'ann', 1], [s, 'ann', 1], [s, 'ann', 1], // the third is past ann's limit of 2
      [s, 'bob', 2], // 2 of the 3 left
      [s, 'cy', 2], // 1 left: sold out for 2 …
      [s, 'dee', 1], // … but not for 1
      [s, 'eve', 1], // nothing left
    ]);
    assert.deepEqual(answers.map(outcome), ['reserved 1', 'reserved 1', 'limit_reached', 'reserved 2', 'sold_out', 'reserved 1', 'sold_out']);
    assert.deepEqual(w.calls, [7], 'the seven reserves went as one call');
    // Each answer carries the figures as that buyer's turn left them.
    const values = answers.map((a) => (a.status === 'fulfilled' ? [a.value.available, a.value.held] : null));
    assert.deepEqual(values, [[4, 1], [3, 2], [3, 2], [1, 2], [1, 0], [0, 1], [0, 0]]);
    const made = await w.orders(s.id);
    assert.deepEqual(made.map((o) => `${o.userId} ${o.quantity}`).sort(), ['ann 1', 'ann 1', 'bob 2', 'dee 1']);
    for (const a of answers) {
      const r = a.status === 'fulfilled' ? a.value : null;
      if (r?.ok) assert.ok(made.some((o) => o.orderId === r.order.orderId));
    }
    assert.equal(await w.redis.hget(w.keys.sale(s.id), 'available'), '0');
    assert.deepEqual(await w.redis.hgetall(w.keys.holdings(s.id)), { ann: '2', bob: '2', dee: '1' });
    assert.equal(await w.redis.xlen(w.keys.stream(s.id)), 4, 'one stream entry per order made');
  } finally {
    await w.stop();
  }
});

test('a paused sale refuses every buyer of the call and changes nothing; another sale in the same turn sells in its own call', { timeout: 30_000 }, async (t) => {
  if (await skipUnlessServices()) return t.skip('services unavailable');
  const w = await world();
  try {
    const paused = await w.sale(10, 5);
    const live = await w.sale(10, 5);
    await w.engine.setPaused(paused.id, true);
    w.calls.length = 0;
    const answers = await sameTurn(w.engine, [[paused, 'p1', 1], [live, 'l1', 1], [paused, 'p2', 3], [live, 'l1', 1], [paused, 'p1', 1]]);
    assert.deepEqual(answers.map(outcome), ['paused', 'reserved 1', 'paused', 'reserved 1', 'paused']);
    assert.deepEqual(w.calls.sort(), [2, 3], 'one call per sale');
    assert.deepEqual(await w.orders(paused.id), []);
    assert.equal(await w.redis.hget(w.keys.sale(paused.id), 'available'), '10');
    assert.deepEqual(await w.redis.hgetall(w.keys.holdings(paused.id)), {});
    assert.equal(await w.redis.hget(w.keys.holdings(live.id), 'l1'), '2');
    // Resumed: the same buyers buy.
    await w.engine.setPaused(paused.id, false);
    assert.deepEqual((await sameTurn(w.engine, [[paused, 'p1', 1], [paused, 'p2', 3]])).map(outcome), ['reserved 1', 'reserved 3']);
  } finally {
    await w.stop();
  }
});

test('a call whose reply is lost after it ran: each buyer finds out about his own order (202 if made, else a true busy)', { timeout: 60_000 }, async (t) => {
  if (await skipUnlessServices()) return t.skip('services unavailable');
  const w = await world();
  try {
    const s = await w.sale(2, 1);
    w.calls.length = 0;
    w.loseNext();
    const answers = await sameTurn(w.engine, [[s, 'a', 1], [s, 'a', 1], [s, 'b', 1], [s, 'c', 1]]);
    assert.deepEqual(w.calls, [4], 'one call');
    const made = await w.orders(s.id);
    assert.deepEqual(made.map((o) => o.userId).sort(), ['a', 'b']);
    assert.deepEqual(answers.map(outcome), ['reserved 1', 'error busy', 'reserved 1', 'error busy']);
    for (const [i, a] of answers.entries()) {
      const r = a.status === 'fulfilled' ? a.value : null;
      if (r?.ok) {
        const id = r.order.orderId;
        assert.ok(made.some((o) => o.orderId === id), `buyer ${i}: his 202 has his order`);
      } else {
        assert.equal(a.status, 'rejected');
        const err = (a as PromiseRejectedResult).reason as SeckillError;
        assert.match(err.message, /nothing was changed/, `buyer ${i}: busy means nothing changed`);
      }
    }
    assert.equal(await w.redis.hget(w.keys.sale(s.id), 'available'), '0');
  } finally {
    await w.stop();
  }
});
