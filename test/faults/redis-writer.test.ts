// Distributed mode, the order writer and the hints of each process (issue 9):
// - defect 5: an order record PostgreSQL refuses (U+0000 in a string) is quarantined, the
//   others are written (before: the writer re-read the same batch forever);
// - prune: settled orders, once written, leave Redis's orders hash and index; they are still
//   answered (from PostgreSQL);
// - defect 8: trimming a stream never drops entries a writer holds unacknowledged, even when a
//   writer reads in the middle of the trim;
// - defect 7: a process whose subscriber lost messages (link cut) converges: at-limit memo,
//   paused state, switches; a switch changed with no message at all is picked up too;
// - seckill refuses to start on a Redis whose maxmemory-policy can evict keys.
// Defects 5 and 8 and the prune use the shared Redis under a per-test key prefix; defect 7 and
// the eviction check use a test-owned redis-server (its config is changed, its links are cut).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { connectRedis, redisConnection } from '../../src/stores/redis/connection.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import type { SharedRecordStore } from '../../src/stores/record-store.js';
import { StreamOrderWriter } from '../../src/stores/redis/stream-writer.js';
import { REDIS_URL, TestCluster, skipUnlessServices } from '../support/cluster.js';
import { FaultCluster, RedisServer, dbOrders, killTracked, timedCall, until, type Answer } from '../support/distributed.js';
import { ADMIN_KEY, userToken } from '../support/server.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { metric } from '../support/metrics.js';

after(killTracked);

const skip = await skipUnlessServices();

async function buy(base: string, saleId: string, userId: string): Promise<Answer> {
  const token = userToken(userId);
  const p = await timedCall(base, 'POST', `/api/sales/${saleId}/path`, { token, body: {} }, 10_000);
  if (p.status !== 200) return p;
  return timedCall(base, 'POST', `/api/sales/${saleId}/buy/${String(p.body.path)}`, { token, body: {} }, 10_000);
}

describe('order writer: quarantine and prune', { skip: skip || undefined }, () => {
  let cluster: FaultCluster;
  let redis: Redis;
  before(async () => {
    cluster = await new FaultCluster({ processes: 1 }).start();
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    redis?.disconnect();
    await cluster?.shutdown();
  });

  test('defect 5: a record PostgreSQL refuses is quarantined, every other order is written', async () => {
    const url = cluster.procs[0].url;
    const keys = cluster.keys;
    const saleId = await cluster.createSale({ stock: 50, perUserLimit: 1 });
    const first: Record<string, string> = {};
    for (let i = 0; i < 4; i++) {
      const r = await buy(url, saleId, `u${i}`);
      assert.equal(r.status, 202, r.text);
      first[`u${i}`] = String(r.body.orderId);
    }
    await until('the first orders written', async () => (await dbOrders(cluster.databaseUrl, saleId)).length === 4 || undefined, 15_000, 100);

    // Two poisoned records, as a store that admitted a NUL would have put them in the stream:
    // a new order with one in its userId, and a change (paid) with one in its paymentRef.
    const stream = keys.stream(saleId);
    const u0 = JSON.parse(String(await redis.hget(keys.orders(saleId), first.u0))) as Record<string, unknown>;
    const badNew = { ...u0, orderId: crypto.randomUUID(), userId: 'poison\u0000user' };
    const badChg = { ...u0, status: 'paid', paidAt: Date.now(), paymentRef: 'ref\u0000x' };
    const poisonIds = [
      String(await redis.xadd(stream, '*', 'k', 'new', 'o', JSON.stringify(badNew))),
      String(await redis.xadd(stream, '*', 'k', 'chg', 'o', JSON.stringify(badChg))),
    ];

    // Orders made after the poison, a payment and a cancel: all must reach PostgreSQL.
    for (let i = 4; i < 10; i++) assert.equal((await buy(url, saleId, `u${i}`)).status, 202);
    const paid = await timedCall(url, 'POST', `/api/orders/${first.u1}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'pay-1' } }, 10_000);
    assert.equal(paid.status, 200, paid.text);
    const cancelled = await timedCall(url, 'POST', `/api/orders/${first.u2}/cancel`, { token: userToken('u2'), body: {} }, 10_000);
    assert.equal(cancelled.status, 200, cancelled.text);

    const rows = await until(
      'every good order written (the poisoned ones set aside)',
      async () => {
        const r = await dbOrders(cluster.databaseUrl, saleId);
        const status = new Map(r.map((o) => [o.order_id, o.status]));
        return r.length === 10 && status.get(first.u1) === 'paid' && status.get(first.u2) === 'cancelled' ? r : undefined;
      },
      15_000,
      100,
    );
    assert.ok(!rows.some((o) => o.order_id === badNew.orderId), 'the poisoned order has no row');
    assert.equal(rows.find((o) => o.order_id === first.u0)?.status, 'reserved', 'the poisoned change was not applied');

    const q = (await redis.xrange(`${cluster.prefix}:quarantine`, '-', '+')).map(([, f]) => {
      const m = new Map<string, string>();
      for (let i = 0; i < f.length; i += 2) m.set(f[i], f[i + 1]);
      return m;
    });
    assert.deepEqual(q.map((m) => m.get('id')).sort(), [...poisonIds].sort(), 'exactly the poisoned entries are in quarantine');
    for (const m of q) {
      assert.equal(m.get('stream'), stream);
      assert.match(String(m.get('error')), /22021|0x00/);
      assert.ok(m.get('o') && m.get('k'), 'the entry itself is kept');
    }
    const pending = (await redis.xpending(stream, keys.writerGroup)) as [number];
    assert.equal(pending[0], 0, 'nothing left pending in the stream');
    await until(
      '/metrics shows the quarantine',
      async () => {
        const m = await timedCall(url, 'GET', '/metrics', { token: ADMIN_KEY }, 10_000);
        return metric(m.text, 'seckill_writer_quarantined') === 2 || undefined;
      },
      10_000,
      200,
    );
    // And on the dashboard's data (admin API).
    const live = await timedCall(url, 'GET', `/api/admin/sales/${saleId}/live`, { token: ADMIN_KEY }, 10_000);
    assert.equal(live.status, 200, live.text);
    assert.equal((live.body.writer as { quarantined?: number }).quarantined, 2, live.text.slice(0, 300));
  });

  test('settled orders leave Redis once written, and are still answered', async () => {
    const url = cluster.procs[0].url;
    const keys = cluster.keys;
    const saleId = await cluster.createSale({ stock: 20, perUserLimit: 1 });
    const ids: Record<string, string> = {};
    for (const u of ['p1', 'p2', 'p3']) {
      const r = await buy(url, saleId, u);
      assert.equal(r.status, 202, r.text);
      ids[u] = String(r.body.orderId);
    }
    assert.equal((await timedCall(url, 'POST', `/api/orders/${ids.p1}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'pay-p1' } }, 10_000)).status, 200);
    assert.equal((await timedCall(url, 'POST', `/api/orders/${ids.p2}/cancel`, { token: userToken('p2'), body: {} }, 10_000)).status, 200);
    await until(
      'the paid and cancelled orders pruned from Redis',
      async () => {
        const [a, b] = await Promise.all([redis.hexists(keys.orders(saleId), ids.p1), redis.hexists(keys.orders(saleId), ids.p2)]);
        return (a === 0 && b === 0) || undefined;
      },
      15_000,
      100,
    );
    assert.equal(await redis.hexists(keys.orderIndex(), ids.p1), 0, 'index entry of the paid order removed');
    assert.equal(await redis.hexists(keys.orderIndex(), ids.p2), 0, 'index entry of the cancelled order removed');
    assert.equal(await redis.hexists(keys.orders(saleId), ids.p3), 1, 'a reserved order stays in Redis');
    const rows = new Map((await dbOrders(cluster.databaseUrl, saleId)).map((o) => [o.order_id, o.status]));
    assert.equal(rows.get(ids.p1), 'paid');
    assert.equal(rows.get(ids.p2), 'cancelled');
    for (const [u, status] of [['p1', 'paid'], ['p2', 'cancelled'], ['p3', 'reserved']]) {
      const r = await timedCall(url, 'GET', `/api/orders/${ids[u]}`, { token: userToken(u) }, 10_000);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, status);
    }
    // A pruned order's stock stays right: paying the cancelled one again is refused, the sale counts.
    const again = await timedCall(url, 'POST', `/api/orders/${ids.p2}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'pay-p2' } }, 10_000);
    assert.ok(again.status >= 400 && again.status < 500, `pay after cancel: ${again.status} ${again.text}`);
    const sale = await timedCall(url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY }, 10_000);
    assert.equal((sale.body.stats as { available?: number }).available, 18, sale.text);
  });
});

describe('stream trimming', { skip: skip || undefined }, () => {
  test('defect 8: a read in the middle of a trim cannot make it drop unacknowledged entries', async () => {
    const keys = new RedisKeys(`t${crypto.randomBytes(4).toString('hex')}`);
    const redis = redisConnection(REDIS_URL);
    const other = new Redis(REDIS_URL);
    await connectRedis(redis);
    const stream = keys.stream('s1');
    const group = keys.writerGroup;
    try {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(String(await redis.xadd(stream, '*', 'k', 'new', 'o', `{"n":${i}}`)));
      // One writer has read and committed the first three: nothing pending.
      await redis.xreadgroup('GROUP', group, 'w1', 'COUNT', 3, 'STREAMS', stream, '>');
      await redis.xack(stream, group, ...ids.slice(0, 3));

      // Right after the trim pass's first command to Redis, another writer reads the other two
      // (delivered to it, not yet committed nor acknowledged).
      let hooked = false;
      const between = () => other.xreadgroup('GROUP', group, 'w2', 'COUNT', 10, 'STREAMS', stream, '>');
      const spied = new Proxy(redis, {
        get(target, prop) {
          const v: unknown = Reflect.get(target, prop, target);
          if (typeof v !== 'function') return v;
          return (...args: unknown[]) => {
            const res: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
            if (hooked || !(res instanceof Promise)) return res;
            hooked = true;
            return res.then(async (x: unknown) => {
              await between();
              return x;
            });
          };
        },
      });
      const repo = { applyBatch: async () => undefined } as unknown as SharedRecordStore;
      const writer = new StreamOrderWriter(spied, keys, repo, () => ['s1'], { batch: 10, claimIdleMs: 1000 }, pino({ level: 'silent' }));
      const trim = (writer as unknown as { trim(streams: string[]): Promise<void> }).trim.bind(writer);
      await trim([stream]);
      assert.ok(hooked, 'the trim pass talked to Redis');

      const left = (await redis.xrange(stream, '-', '+')).map(([id]) => id);
      assert.ok(left.includes(ids[3]) && left.includes(ids[4]), `unacknowledged entries kept (left: ${left.join(' ')})`);
      assert.ok(!left.includes(ids[0]), 'acknowledged entries trimmed');
      // And with them pending, a later trim keeps them too, down to the oldest pending one.
      assert.equal(((await redis.xpending(stream, group)) as [number])[0], 2);
      await trim([stream]);
      const after = (await redis.xrange(stream, '-', '+')).map(([id]) => id);
      assert.deepEqual(after.slice(-2), [ids[3], ids[4]]);
      assert.ok(!after.includes(ids[2]), 'below the oldest pending entry: trimmed');
      // The stolen entries can still be claimed (a writer that dies keeps nothing from the others).
      const claimed = (await redis.xautoclaim(stream, group, 'w3', 0, '0-0', 'COUNT', 10)) as [string, Array<[string, string[] | null]>];
      assert.deepEqual(claimed[1].map(([id, f]) => [id, f !== null]), [[ids[3], true], [ids[4], true]]);
    } finally {
      await redis.del(stream).catch(() => undefined);
      redis.disconnect();
      other.disconnect();
    }
  });
});

describe('hints after lost signals; Redis that evicts', { skip: skip || undefined }, () => {
  let server: RedisServer;
  before(async () => {
    server = new RedisServer();
    await server.start();
  });
  after(async () => {
    await server?.stop();
  });

  test('refuses to start on a Redis whose maxmemory-policy can evict keys', async () => {
    const admin = new Redis(server.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const cluster = new TestCluster({ processes: 1, redisUrl: server.url });
      let failure = '';
      try {
        await cluster.start();
      } catch (err) {
        failure = String((err as Error).message);
      } finally {
        for (const p of cluster.procs) p.child.kill('SIGKILL');
        await cluster.stop().catch(() => undefined);
      }
      assert.match(failure, /maxmemory-policy=allkeys-lru/, `start refused, naming the setting: ${failure.slice(0, 400)}`);
      assert.match(failure, /noeviction/, 'and the fix');
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      admin.disconnect();
    }
  });

  test('defect 7: a process that missed signals converges (memo, paused, switches)', async () => {
    // Process A talks to Redis directly; process B through a proxy whose links the test stalls and cuts.
    const proxy = await new FaultProxy('127.0.0.1', server.port).start();
    const cluster = new FaultCluster({ processes: 1, redisUrl: server.url });
    const redis = new Redis(server.url);
    try {
      await cluster.start();
      const a = cluster.procs[0].url;
      const b = (await cluster.spawnWith({ REDIS_URL: proxy.url(server.url) })).url;
      const saleId = await cluster.createSale({ stock: 10, perUserLimit: 1 });

      // B learns that u1 holds the limit (its memo).
      const first = await buy(b, saleId, 'u1');
      assert.equal(first.status, 202, first.text);
      const orderId = String(first.body.orderId);
      const second = await buy(b, saleId, 'u1');
      assert.equal(second.status, 409, second.text);

      // B's links hang: every signal A sends now is held, then lost with the links.
      proxy.stall();
      const cancelled = await timedCall(a, 'POST', `/api/orders/${orderId}/cancel`, { token: userToken('u1'), body: {} }, 10_000);
      assert.equal(cancelled.status, 200, cancelled.text);
      const paused = await timedCall(a, 'POST', `/api/admin/sales/${saleId}/pause`, { token: ADMIN_KEY, body: {} }, 10_000);
      assert.ok(paused.status === 200 || paused.status === 204, `pause: ${paused.status} ${paused.text}`);
      const sw = await timedCall(a, 'POST', '/api/admin/switches', { token: ADMIN_KEY, body: { degraded: true } }, 10_000);
      assert.equal(sw.status, 200, sw.text);
      await sleep(300);
      proxy.cut();
      proxy.restore();

      const t0 = Date.now();
      await until(
        'B sees the sale paused and the switch on',
        async () => {
          const [s, w] = await Promise.all([
            timedCall(b, 'GET', `/api/sales/${saleId}`, {}, 5000),
            timedCall(b, 'GET', '/api/admin/switches', { token: ADMIN_KEY }, 5000),
          ]);
          return (s.body.status === 'paused' && w.body.degraded === true) || undefined;
        },
        10_000,
        100,
      );
      const resumed = await timedCall(a, 'POST', `/api/admin/sales/${saleId}/resume`, { token: ADMIN_KEY, body: {} }, 10_000);
      assert.ok(resumed.status === 200 || resumed.status === 204, `resume: ${resumed.status} ${resumed.text}`);
      // u1's order was cancelled while B was deaf: B must not keep refusing u1 with limit_reached.
      await until(
        'B lets u1 buy again',
        async () => {
          const r = await buy(b, saleId, 'u1');
          return r.status === 202 || undefined;
        },
        10_000,
        200,
      );
      const convergedMs = Date.now() - t0;

      // A switch written with no signal at all (a message lost without any reconnect).
      await redis.hset(`${cluster.prefix}:switches`, { refuseBuys: '0', degraded: '0' });
      for (const p of [a, b]) {
        await until(
          `${p} picks up the switch without a signal`,
          async () => (await timedCall(p, 'GET', '/api/admin/switches', { token: ADMIN_KEY }, 5000)).body.degraded === false || undefined,
          10_000,
          100,
        );
      }
      process.stdout.write(`# defect 7: B converged ${convergedMs} ms after its links came back\n`);
    } finally {
      redis.disconnect();
      await cluster.shutdown();
      await proxy.close();
    }
  });
});
