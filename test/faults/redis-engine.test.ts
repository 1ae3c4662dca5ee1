// The Redis engine under faults, without HTTP: each test has its own redis-server (RedisServer:
// its own port and directory, so FLUSHALL and CLIENT PAUSE touch nobody else) and its own
// PostgreSQL database, and drives RedisStockEngine, the stream writer and the expiry sweep
// directly.
// - issue 9 defect 2: Redis loses its data while a writer holds a batch it read and has not
//   committed; the rebuild must wait for that batch (the rebuild fence) and not oversell; an
//   order the database has as reserved but Redis does not know can still be expired (adopted);
// - the expiry sweep is not held up by orders it cannot expire;
// - defect 3: a cancel while the sale's state is half rebuilt does not write into it; the
//   rebuild lock lives as long as the rebuild (watchdog) and the sale sells on exactly;
// - defect 6: Redis stalls 7 s: every buyer's answer is true (a 503 buyer has no order anywhere),
//   and a retry after the stall buys.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';
import { connectRedis, redisConnection } from '../../src/stores/redis/connection.js';
import { RedisStockEngine } from '../../src/stores/redis/redis-engine.js';
import { parseStoredOrder } from '../../src/stores/redis/stored-order.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import type { ReserveResult, StockEngine } from '../../src/engine/stock-engine.js';
import { ExpirySweeper } from '../../src/services/expiry-sweeper.js';
import { OrderService } from '../../src/services/order-service.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import type { RecordStore, SharedRecordStore } from '../../src/stores/record-store.js';
import { StreamOrderWriter } from '../../src/stores/redis/stream-writer.js';
import { createDatabase, skipUnlessServices } from '../support/cluster.js';
import { RedisServer, killTracked, until } from '../support/distributed.js';

after(killTracked);

const log = pino({ level: process.env.TEST_LOG ?? 'silent' });

function newSale(stock: number, perUserLimit: number, paymentWindowSeconds = 600): Sale {
  const now = Date.now();
  return {
    id: crypto.randomUUID(), name: 'fault test', description: '', priceCents: 100, stock, startsAt: now - 1000, endsAt: null,
    perUserLimit, paymentWindowSeconds, paused: false, restockOnRefund: false, secret: crypto.randomBytes(8).toString('hex'), createdAt: now,
  };
}

/** One test's world: its own redis-server and database, engines, a writer when asked. */
class World {
  readonly redisServer = new RedisServer();
  readonly keys = new RedisKeys(`t${crypto.randomBytes(3).toString('hex')}`);
  readonly closers: Array<() => Promise<unknown> | unknown> = [];
  repo!: PgRecordStore;
  admin!: Redis;
  private dropDb: (() => Promise<void>) | null = null;

  async start(): Promise<this> {
    await this.redisServer.start();
    const db = await createDatabase();
    this.dropDb = db.drop;
    this.repo = new PgRecordStore(db.url);
    await this.repo.init();
    this.admin = await this.connection({ commandTimeout: 20_000 });
    return this;
  }

  async connection(extra: Parameters<typeof redisConnection>[1] = {}): Promise<Redis> {
    const r = redisConnection(this.redisServer.url, extra);
    r.on('error', () => undefined);
    await connectRedis(r);
    this.closers.push(() => r.disconnect());
    return r;
  }

  async engine(): Promise<RedisStockEngine> {
    const e = new RedisStockEngine(await this.connection(), this.keys, this.repo, log);
    this.closers.push(() => e.close());
    return e;
  }

  async writer(saleIds: () => string[], pauseBeforeCommitMs = 0, repo: SharedRecordStore = this.repo): Promise<StreamOrderWriter> {
    const w = new StreamOrderWriter(await this.connection({ commandTimeout: 5000 }), this.keys, repo, saleIds, {
      batch: 100, claimIdleMs: 5000, testPauseBeforeCommitMs: pauseBeforeCommitMs,
    }, log);
    w.start();
    this.closers.unshift(() => w.close()); // first: before its connection goes
    return w;
  }

  async rows(saleId: string): Promise<Order[]> {
    const out: Order[] = [];
    for await (const o of this.repo.iterateOrders(saleId, undefined)) out.push(o);
    return out;
  }

  async redisOrders(saleId: string): Promise<Order[]> {
    return Object.values(await this.admin.hgetall(this.keys.orders(saleId))).map(parseStoredOrder);
  }

  async stop(): Promise<void> {
    for (const c of this.closers) await Promise.resolve(c()).catch(() => undefined);
    await this.repo?.close().catch(() => undefined);
    await this.dropDb?.();
    await this.redisServer.destroy();
  }
}

const held = (orders: Order[]) => orders.filter((o) => o.status === 'reserved' || o.status === 'paid').reduce((a, o) => a + o.quantity, 0);

async function made(p: Promise<ReserveResult>): Promise<Order> {
  const r = await p;
  assert.ok(r.ok, `reserve refused: ${JSON.stringify(r)}`);
  return r.order;
}

async function refusal(p: Promise<ReserveResult>): Promise<string> {
  const r = await p;
  assert.ok(!r.ok, `reserve made an order: ${JSON.stringify(r)}`);
  return r.refusal;
}

async function skip(t: { skip(m: string): void }): Promise<boolean> {
  const reason = await skipUnlessServices();
  if (reason) t.skip(reason);
  return Boolean(reason);
}

// ---------------------------------------------------------------------------------------------

test('defect 2: Redis loses its data while a writer holds an uncommitted batch: the rebuild waits for it, no oversell, the orders can be cancelled', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(5, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    const orders: Order[] = [];
    for (let i = 0; i < 5; i++) orders.push(await made(engine.reserve(sale, `u${i}`, 1, Date.now())));
    // The writer reads the five as one batch, then waits 3 s before committing it.
    await w.writer(() => [sale.id], 3000);
    await until('the writer holding the batch', async () => (await w.admin.xpending(w.keys.stream(sale.id), w.keys.writerGroup) as [number])[0] === 5, 10_000);
    assert.equal((await w.rows(sale.id)).length, 0, 'not committed yet');

    await w.admin.flushall(); // Redis restarted empty (our own instance)
    // The next buy finds the sale gone and rebuilds it: only after the writer's commit.
    assert.equal(await refusal(engine.reserve(sale, 'late', 1, Date.now())), 'sold_out');
    const rows = await until('the batch committed', async () => {
      const r = await w.rows(sale.id);
      return r.length === 5 && r;
    }, 15_000);
    assert.equal(held(rows), 5);
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '0');

    // Each order left from before the loss can be cancelled, and its unit sells again, once.
    const cancelled = await engine.transition(orders[0], { to: 'cancelled' }, Date.now());
    assert.equal(cancelled?.status, 'cancelled');
    await made(engine.reserve(sale, 'late2', 1, Date.now()));
    assert.equal(await refusal(engine.reserve(sale, 'late3', 1, Date.now())), 'sold_out');
    const final = await until('the writer caught up', async () => {
      const r = await w.rows(sale.id);
      return r.length === 6 && r.some((o) => o.status === 'cancelled') && r;
    }, 15_000);
    assert.equal(held(final), 5, 'never more than the stock');
  } finally {
    await w.stop();
  }
});

test('a batch whose commit fails after Redis lost its stream is written from the writer\'s memory before any rebuild reads the database', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(5, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    const orders: Order[] = [];
    for (let i = 0; i < 3; i++) orders.push(await made(engine.reserve(sale, `u${i}`, 1, Date.now())));
    // The writer's first commit hangs 1.5 s, then fails (a connection lost, say); later ones work.
    let attempts = 0;
    const flaky = new Proxy(w.repo, {
      get(target, prop) {
        if (prop === 'applyBatch') {
          return async (...args: Parameters<SharedRecordStore['applyBatch']>) => {
            if (attempts++ === 0) {
              await sleep(1500);
              throw new Error('Connection terminated unexpectedly');
            }
            return target.applyBatch(...args);
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    await w.writer(() => [sale.id], 0, flaky);
    await until('the writer holding the batch', async () => attempts === 1, 10_000);
    await w.admin.flushall(); // the stream, and the entries pending in it, are gone

    // The rebuild waits for the writer, which writes the batch it still holds (old code: re-read
    // from the stream, which is empty now: the three orders were lost and their stock sold again).
    await made(engine.reserve(sale, 'late', 1, Date.now()));
    const rows = await until('the held batch and the late order written', async () => {
      const r = await w.rows(sale.id);
      return r.length === 4 && r;
    }, 15_000);
    for (const o of orders) assert.ok(rows.some((r) => r.orderId === o.orderId), `order ${o.orderId} (answered reserved) has its row`);
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '1', 'the rebuild counted the held batch');
    assert.ok(attempts >= 2);
  } finally {
    await w.stop();
  }
});

test('defect 2: an order the database has as reserved but Redis does not know is adopted and expires', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(5, 2, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    await w.writer(() => [sale.id]);
    const order = await made(engine.reserve(sale, 'alice', 2, Date.now()));
    await until('the order in PostgreSQL', async () => (await w.rows(sale.id)).length === 1, 10_000);
    // The state an old rebuild left: the sale loaded without this order (its units counted free).
    await w.admin.hdel(w.keys.orders(sale.id), order.orderId);
    await w.admin.hdel(w.keys.holdings(sale.id), 'alice');
    await w.admin.hincrby(w.keys.sale(sale.id), 'available', 2);
    await sleep(1100); // past its payment window

    const service = new OrderService(w.repo, engine, { onRelease: () => undefined }, log);
    assert.equal(await service.expireDue(Date.now(), 1000), 1);
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '5');
    assert.equal(await w.admin.hget(w.keys.holdings(sale.id), 'alice'), null);
    await until('expired in PostgreSQL', async () => (await w.rows(sale.id))[0]?.status === 'expired', 10_000);
    assert.equal(await service.expireDue(Date.now(), 1000), 0, 'once');
  } finally {
    await w.stop();
  }
});

test('the expiry sweep goes past orders it cannot expire (1,000 failing ones hold up nothing)', async () => {
  const now = Date.now();
  const order = (i: number, bad: boolean): Order => ({
    orderId: `${bad ? 'bad' : 'good'}-${String(i).padStart(5, '0')}`, saleId: 's', userId: `u${i}`, quantity: 1, priceCents: 1,
    status: 'reserved', createdAt: 0, expiresAt: now - 100_000 + i + (bad ? 0 : 50_000), paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
  });
  // The oldest 1,200 cannot be expired: half never change (Redis does not know them), half throw.
  const due = [...Array.from({ length: 1200 }, (_, i) => order(i, true)), ...Array.from({ length: 3 }, (_, i) => order(i, false))];
  const repo = {
    dueForExpiry: async (_now: number, limit: number) => due.filter((o) => o.status === 'reserved').slice(0, limit),
  } as unknown as RecordStore;
  const engine = {
    transition: async (o: Order) => {
      if (o.orderId.startsWith('good')) {
        o.status = 'expired';
        return { ...o };
      }
      if (Number(o.orderId.slice(4)) % 2 === 0) return null;
      throw new SeckillError('busy');
    },
  } as unknown as StockEngine;
  const service = new OrderService(repo, engine, { onRelease: () => undefined }, log);
  const sweeper = new ExpirySweeper(service, 1000, log);
  const expired = await sweeper.sweep();
  assert.equal(expired, 3);
  assert.deepEqual(due.filter((o) => o.status === 'expired').map((o) => o.orderId), ['good-00000', 'good-00001', 'good-00002']);
});

test('defect 3: a cancel while the sale is half rebuilt writes nothing into it; the sale sells on exactly', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(5, 2);
    await w.repo.insertSale(sale);
    const a = await w.engine();
    await a.load(sale);
    await w.writer(() => [sale.id]);
    const o1 = await made(a.reserve(sale, 'u1', 1, Date.now()));
    await made(a.reserve(sale, 'u2', 1, Date.now()));
    await until('both orders in PostgreSQL', async () => (await w.rows(sale.id)).length === 2, 10_000);
    // A rebuild's first phases done by hand: orders and holdings are there, the record is not.
    await w.admin.del(w.keys.sale(sale.id));

    const b = await w.engine(); // another process, which has not loaded the sale yet
    const cancelled = await b.transition(o1, { to: 'cancelled' }, Date.now());
    assert.equal(cancelled?.status, 'cancelled');
    const rec = await w.admin.hgetall(w.keys.sale(sale.id));
    assert.equal(rec.available, '4', `record: ${JSON.stringify(rec)}`);
    assert.equal(rec.ready, '1', `record complete: ${JSON.stringify(rec)}`);
    for (const u of ['a', 'b', 'c', 'd']) await made(a.reserve(sale, u, 1, Date.now()));
    assert.equal(await refusal(b.reserve(sale, 'e', 1, Date.now())), 'sold_out');
    const rows = await until('all in PostgreSQL', async () => {
      const r = await w.rows(sale.id);
      return r.length === 6 && r.some((o) => o.status === 'cancelled') && r;
    }, 10_000);
    assert.equal(held(rows), 5);
  } finally {
    await w.stop();
  }
});

test('defect 3: a cancel from another process during a rebuild that outlives the lock lifetime waits for it; the sale sells on exactly', { timeout: 90_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(5, 2);
    await w.repo.insertSale(sale);
    const a = await w.engine();
    await a.load(sale);
    await w.writer(() => [sale.id]);
    const o1 = await made(a.reserve(sale, 'u1', 1, Date.now()));
    await made(a.reserve(sale, 'u2', 2, Date.now()));
    await until('both orders in PostgreSQL', async () => (await w.rows(sale.id)).length === 2, 10_000);
    await w.admin.flushall(); // Redis lost the sale

    // Process A's rebuild stops after writing orders and holdings, for longer than the lock's
    // 15-s lifetime: the watchdog must keep the lock.
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let reachedFinish = false;
    a.testHooks.beforeFinish = async () => {
      reachedFinish = true;
      await paused;
    };
    const rebuilding = a.load(sale);
    await until('A between its phases', () => reachedFinish, 10_000);

    const b = await w.engine();
    const cancelling = (async () => {
      for (;;) {
        try {
          return await b.transition(o1, { to: 'cancelled' }, Date.now());
        } catch (err) {
          assert.ok(err instanceof SeckillError && err.code === 'busy', String(err));
        }
      }
    })();
    await sleep(17_000);
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'ready'), null, 'nothing complete yet');
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), null, 'nothing written into the record');
    assert.ok(Number(await w.admin.pttl(w.keys.rebuildLock(sale.id))) > 0, 'the rebuild lock still held past its first lifetime');
    release();
    await rebuilding;
    assert.equal((await cancelling)?.status, 'cancelled');
    assert.equal(await w.admin.exists(w.keys.rebuildLock(sale.id)), 0, 'lock released');
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '3');
    for (const u of ['a', 'b', 'c']) await made(b.reserve(sale, u, 1, Date.now()));
    assert.equal(await refusal(a.reserve(sale, 'd', 1, Date.now())), 'sold_out');
    const rows = await until('all in PostgreSQL', async () => {
      const r = await w.rows(sale.id);
      return r.length === 5 && r.some((o) => o.status === 'cancelled') && r;
    }, 10_000);
    assert.equal(held(rows), 5);
  } finally {
    await w.stop();
  }
});

/** Buys sent while Redis is stalled: each answer, and whether its buyer holds an order afterwards. */
async function buyDuringStall(w: World, engine: RedisStockEngine, sale: Sale, users: string[], stallMs: number) {
  await w.admin.call('CLIENT', 'PAUSE', String(stallMs), 'ALL');
  const t0 = Date.now();
  const answers = await Promise.allSettled(users.map((u) => engine.reserve(sale, u, 1, Date.now())));
  const ms = Date.now() - t0;
  await sleep(Math.max(0, stallMs - (Date.now() - t0)) + 300);
  return { answers, ms };
}

test('defect 6: Redis stalls 7 s: every buyer hears the truth (503 = no order anywhere), a retry after the stall buys', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(10, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    await w.writer(() => [sale.id]);
    await made(engine.reserve(sale, 'before', 1, Date.now()));
    const users = ['s0', 's1', 's2', 's3'];
    const { answers, ms } = await buyDuringStall(w, engine, sale, users, 7000);
    t.diagnostic(`answers after ${ms} ms: ${answers.map((a) => (a.status === 'fulfilled' ? '202' : (a.reason as Error).message)).join(' | ')}`);
    const redisOrders = await w.redisOrders(sale.id);
    for (const [i, a] of answers.entries()) {
      const has = redisOrders.filter((o) => o.userId === users[i]);
      if (a.status === 'fulfilled') {
        assert.ok(a.value.ok);
        assert.deepEqual(has.map((o) => o.orderId), [a.value.order.orderId], `${users[i]}: a 202 has its order`);
      } else {
        assert.ok(a.reason instanceof SeckillError && a.reason.code === 'busy', String(a.reason));
        assert.match(a.reason.message, /nothing was changed/);
        assert.deepEqual(has, [], `${users[i]} heard 503 nothing changed, and holds an order`);
      }
    }
    // A retry after the stall buys (no limit_reached from an order the buyer was told did not exist).
    for (const [i, a] of answers.entries()) if (a.status === 'rejected') await made(engine.reserve(sale, users[i], 1, Date.now()));
    const rows = await until('every order in PostgreSQL', async () => {
      const r = await w.rows(sale.id);
      return r.length === 5 && r;
    }, 10_000);
    assert.deepEqual(rows.map((o) => o.userId).sort(), ['before', ...users].sort());
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '5');
  } finally {
    await w.stop();
  }
});

test('defect 6: Redis silent past the outcome window: 503 that says the outcome is unknown, and nothing stays held', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(3, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    const { answers, ms } = await buyDuringStall(w, engine, sale, ['x'], 12_000);
    const a = answers[0];
    assert.equal(a.status, 'rejected');
    const err = (a as PromiseRejectedResult).reason as SeckillError;
    assert.equal(err.code, 'busy');
    assert.match(err.message, /cancelled automatically/);
    t.diagnostic(`answered after ${ms} ms: ${err.message}`);
    // The script ran after the stall, past its deadline: it made nothing.
    assert.deepEqual(await w.redisOrders(sale.id), []);
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), '3');
    await made(engine.reserve(sale, 'x', 1, Date.now()));
  } finally {
    await w.stop();
  }
});

test('a cancel sent while Redis stalls 7 s: its answer is true (503 = still reserved, ok = cancelled once)', { timeout: 60_000 }, async (t) => {
  if (await skip(t)) return;
  const w = await new World().start();
  try {
    const sale = newSale(3, 1);
    await w.repo.insertSale(sale);
    const engine = await w.engine();
    await engine.load(sale);
    await w.writer(() => [sale.id]);
    const orders = await Promise.all(['c0', 'c1'].map((u) => made(engine.reserve(sale, u, 1, Date.now()))));
    await w.admin.call('CLIENT', 'PAUSE', '7000', 'ALL');
    const t0 = Date.now();
    const answers = await Promise.allSettled(orders.map((o) => engine.transition(o, { to: 'cancelled' }, Date.now())));
    await sleep(Math.max(0, 7000 - (Date.now() - t0)) + 300);
    t.diagnostic(`answers after ${Date.now() - t0} ms: ${answers.map((a) => (a.status === 'fulfilled' ? a.value?.status : (a.reason as Error).message)).join(' | ')}`);
    const redisOrders = await w.redisOrders(sale.id);
    for (const [i, a] of answers.entries()) {
      const now = redisOrders.find((o) => o.orderId === orders[i].orderId);
      if (a.status === 'fulfilled') {
        assert.equal(a.value?.status, 'cancelled');
        assert.ok(!now || now.status === 'cancelled', `answered cancelled, Redis says ${now?.status}`);
      } else {
        assert.ok(a.reason instanceof SeckillError && a.reason.code === 'busy', String(a.reason));
        assert.equal(now?.status, 'reserved', 'answered 503 busy, but the order changed');
      }
    }
    // Stock adds up: 3 minus what is still reserved.
    const reserved = redisOrders.filter((o) => o.status === 'reserved').length;
    assert.equal(await w.admin.hget(w.keys.sale(sale.id), 'available'), String(3 - reserved));
  } finally {
    await w.stop();
  }
});
