// One waiting-room suite over both room stores (src/stores/room-store.ts): the in-memory store
// (embedded, postgres) and the Redis store (distributed; a unique key prefix, the caller's clock so
// that the tests drive time). Then two Redis stores — two processes — on one room, on the caller's
// clock and on Redis's own: one line, nobody let out twice, never above the rate.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Sale } from '../../src/domain/sale.js';
import { maxCarry, roomSeed, shuffled } from '../../src/domain/waiting-room.js';
import { WaitingRoomService } from '../../src/services/waiting-room.js';
import { redisConnection } from '../../src/stores/redis/connection.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import { RedisRoomStore } from '../../src/stores/redis/room-store.js';
import { REDIS_URL, servicesUnavailable } from '../support/cluster.js';
import { sale as fakeSale } from '../support/fakes.js';

const OPEN = 1_000_000;
const redisDown = await servicesUnavailable().then((why) => (why?.startsWith('Redis') ? why : null));
const prefix = `wr-${crypto.randomBytes(4).toString('hex')}`;
const keys = new RedisKeys(prefix);
const clients: Redis[] = [];

after(async () => {
  if (clients.length === 0) return;
  const redis = clients[0];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (found.length > 0) await redis.del(...found);
    cursor = next;
  } while (cursor !== '0');
  for (const c of clients) c.disconnect();
});

async function client(): Promise<Redis> {
  const c = redisConnection(REDIS_URL);
  await c.connect();
  clients.push(c);
  return c;
}

type Kind = 'memory' | 'redis';
let saleNo = 0;

/** A room sale (and a second one, for passes of another sale), a service on the store of `kind`, the stock as a knob. */
async function setup(kind: Kind, room: Partial<NonNullable<Sale['waitingRoom']>> = {}, available = 100, o: { services?: number } = {}) {
  const n = ++saleNo;
  const s = fakeSale({ id: `room-${n}`, startsAt: OPEN, endsAt: null, waitingRoom: { method: 'fifo', admitPerSecond: 10, stockFactor: 1, ...room } });
  const other = fakeSale({ id: `room-${n}-other`, startsAt: OPEN, endsAt: null, waitingRoom: s.waitingRoom });
  const state = { available };
  const sales = {
    get: (id: string) => [s, other].find((x) => x.id === id),
    find: async (id: string) => [s, other].find((x) => x.id === id),
    available: () => state.available,
    all: () => [s, other],
  };
  const redis = kind === 'redis' ? await client() : null;
  /** The stock as the engine holds it: the memory store asks `available`, the Redis store reads the engine's hash. */
  const setStock = async (units: number) => {
    state.available = units;
    if (redis) for (const id of [s.id, other.id]) await redis.hset(keys.sale(id), { available: units, paused: 0, ready: 1 });
  };
  await setStock(available);
  const make = async () => {
    const c = kind === 'redis' ? await client() : null;
    return new WaitingRoomService(sales, {
      abandonAfterMs: 5_000,
      passTtlMs: 10_000,
      claimTtlMs: 3_000,
      store: c ? (opts) => new RedisRoomStore(c, keys, opts, { callerClock: true }) : undefined,
    });
  };
  const wrs: WaitingRoomService[] = [];
  for (let i = 0; i < (o.services ?? 1); i++) wrs.push(await make());
  const wr = wrs[0];
  /** Tick every 100 ms from `from` to `to` (inclusive), polling `keep` users at each second. */
  const run = async (from: number, to: number, keep: string[] = []) => {
    for (let t = from; t <= to; t += 100) {
      await wr.tick(t);
      if (t % 1000 === 0) for (const u of keep) await wr.poll(s.id, u, t).catch(() => undefined);
    }
  };
  return { s, other, state, setStock, wr, wrs, run };
}

const users = (n: number, p = 'u') => Array.from({ length: n }, (_, i) => `${p}${i}`);

for (const kind of ['memory', 'redis'] as const) {
  describe(`room store: ${kind}`, { skip: kind === 'redis' && redisDown ? redisDown : false }, () => {
    test('one place per user: joining again keeps the place; records keep the first join', async () => {
      const { s, wr } = await setup(kind);
      for (const u of ['ann', 'bob', 'cy']) await wr.join(s.id, u, OPEN - 5_000);
      await wr.tick(OPEN - 4_900);
      const again = await wr.join(s.id, 'bob', OPEN - 4_800);
      assert.deepEqual({ state: again.state, position: again.position, ahead: again.ahead }, { state: 'waiting', position: 2, ahead: 1 });
      assert.equal((await wr.stats(s.id, OPEN - 4_800))?.waiting, 3);
      const recs = (await wr.records(s.id)).sort((a, b) => a.userId.localeCompare(b.userId));
      assert.deepEqual(recs, ['ann', 'bob', 'cy'].map((userId) => ({ userId, firstJoinedAt: OPEN - 5_000, joinedAt: OPEN - 5_000, admittedAt: null })));
    });

    test('fifo: arrival order, before and after the open', async () => {
      const { s, wr } = await setup(kind, { admitPerSecond: 0.001 });
      const early = users(8);
      for (const [i, u] of early.entries()) await wr.join(s.id, u, OPEN - 1_000 + i);
      await wr.tick(OPEN);
      await wr.join(s.id, 'late', OPEN + 50);
      await wr.tick(OPEN + 100);
      for (const [i, u] of [...early, 'late'].entries()) assert.equal((await wr.poll(s.id, u, OPEN + 200)).position, i + 1, u);
    });

    test('random: no place before the open; then the order recomputed from the revealed seed, later arrivals behind', async () => {
      const { s, wr } = await setup(kind, { method: 'random', admitPerSecond: 0.001 });
      const early = users(30);
      for (const u of early) assert.deepEqual(await wr.join(s.id, u, OPEN - 3_000), { state: 'waiting', position: null, ahead: null, etaSeconds: null });
      await wr.tick(OPEN);
      await wr.join(s.id, 'late-1', OPEN + 10);
      await wr.join(s.id, 'late-2', OPEN + 20);
      await wr.tick(OPEN + 100);
      const seed = (await wr.seed(s.id, OPEN + 100)).seed ?? '';
      assert.equal(seed, roomSeed(s.id, s.secret));
      const got: string[] = [];
      for (const u of [...early, 'late-1', 'late-2']) got[((await wr.poll(s.id, u, OPEN + 200)).position ?? 0) - 1] = u;
      assert.deepEqual(got, [...shuffled(seed, early), 'late-1', 'late-2']);
    });

    test('abandonment: a place not polled is dropped; coming back joins at the back (records: joinedAt moves, firstJoinedAt stays)', async () => {
      const { s, wr, run } = await setup(kind, { admitPerSecond: 0.001 });
      for (const u of ['ann', 'bob', 'cy']) await wr.join(s.id, u, OPEN - 1_000);
      await run(OPEN, OPEN + 7_000, ['bob', 'cy']);
      await assert.rejects(wr.poll(s.id, 'ann', OPEN + 7_000), /Not in this sale/);
      assert.equal((await wr.poll(s.id, 'bob', OPEN + 7_000)).position, 1);
      assert.equal((await wr.join(s.id, 'ann', OPEN + 7_000)).position, 3);
      assert.equal((await wr.stats(s.id, OPEN + 7_000))?.abandoned, 1);
      const ann = (await wr.records(s.id)).find((r) => r.userId === 'ann');
      assert.deepEqual(ann, { userId: 'ann', firstJoinedAt: OPEN - 1_000, joinedAt: OPEN + 7_000, admittedAt: null });
    });

    test('passes: single use, bound to user and sale, refused after expiry; a claim lapses', async () => {
      const { s, other, wr, run } = await setup(kind, { admitPerSecond: 100 });
      for (const u of ['ann', 'bob', 'cy']) await wr.join(s.id, u, OPEN - 100);
      await run(OPEN, OPEN + 500);
      const ann = await wr.poll(s.id, 'ann', OPEN + 500);
      assert.equal(ann.state, 'admitted');
      const pass = ann.pass ?? null;
      assert.ok(pass);
      assert.equal(await wr.checkPass(s, 'bob', pass, OPEN + 500), false, "ann's pass is not bob's");
      assert.equal(await wr.checkPass(other, 'ann', pass, OPEN + 500), false, 'nor good for another sale');
      assert.equal(await wr.checkPass(s, 'ann', pass.slice(0, -2) + 'xx', OPEN + 500), false, 'forged');
      assert.equal(await wr.checkPass(s, 'ann', pass, OPEN + 500), true);
      assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 600), true);
      assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 600), false, 'one buy at a time');
      await wr.settlePass(s.id, 'ann', false);
      assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 700), true, 'given back');
      await wr.settlePass(s.id, 'ann', true);
      assert.equal(await wr.checkPass(s, 'ann', pass, OPEN + 800), false, 'spent');
      assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 800), false, 'spent');
      assert.equal((await wr.poll(s.id, 'ann', OPEN + 800)).pass, undefined);
      assert.equal((await wr.join(s.id, 'ann', OPEN + 800)).state, 'waiting', 'one pass, one buy: back in line');
      // A claim whose buy never settles (its process died) lapses: the pass can be claimed again.
      const cy = (await wr.poll(s.id, 'cy', OPEN + 800)).pass ?? null;
      assert.equal(await wr.claimPass(s, 'cy', cy, OPEN + 900), true);
      assert.equal(await wr.claimPass(s, 'cy', cy, OPEN + 2_000), false);
      assert.equal(await wr.claimPass(s, 'cy', cy, OPEN + 4_000), true, 'after claimTtlMs (3 s)');
      // Expired: refused, and once swept the user is out of the room (joins again at the back).
      const bob = (await wr.poll(s.id, 'bob', OPEN + 800)).pass ?? null;
      assert.equal(await wr.checkPass(s, 'bob', bob, OPEN + 500 + 10_000), false, 'expired');
      assert.equal(await wr.claimPass(s, 'bob', bob, OPEN + 500 + 10_000), false, 'expired');
      await run(OPEN + 10_600, OPEN + 12_000);
      await assert.rejects(wr.poll(s.id, 'bob', OPEN + 12_000), /Not in this sale/);
    });

    test('admission: never above rate × T (from an empty bucket), nor units × factor less those out', async () => {
      const { s, wr, run } = await setup(kind, { admitPerSecond: 10 });
      const all = users(100);
      for (const u of all) await wr.join(s.id, u, OPEN - 100);
      await run(OPEN, OPEN + 3_000, all);
      const st = await wr.stats(s.id, OPEN + 3_000);
      assert.ok(st && st.admitted <= 30 && st.admitted >= 29, `${st?.admitted} let out in 3 s at 10/s`);
      assert.equal(st.configuredPerSecond, 10);
      assert.ok(st.admittedPerSecond > 9 && st.admittedPerSecond <= 10, `${st.admittedPerSecond}/s measured`);
      const last = await wr.poll(s.id, 'u99', OPEN + 3_000);
      assert.equal(last.ahead, 99 - st.admitted);
      assert.ok(last.etaSeconds !== null && last.etaSeconds >= 6 && last.etaSeconds <= 8, `eta ${last.etaSeconds}`);
      // Everyone polled each second after the open: the estimates are checked as users come out.
      assert.ok(st.etaErrorSeconds !== null && st.etaErrorSeconds <= 1.5, `eta error ${st.etaErrorSeconds}`);
      const admittedAt = (await wr.records(s.id)).filter((r) => r.admittedAt !== null);
      assert.equal(admittedAt.length, st.admitted);

      const capped = await setup(kind, { admitPerSecond: 1000, stockFactor: 1.5 }, 4);
      for (const u of users(20)) await capped.wr.join(capped.s.id, u, OPEN - 100);
      await capped.run(OPEN, OPEN + 2_000, users(20));
      assert.equal((await capped.wr.stats(capped.s.id, OPEN + 2_000))?.admitted, 6, '4 units × 1.5');
      const p0 = (await capped.wr.poll(capped.s.id, 'u0', OPEN + 2_000)).pass ?? null;
      assert.ok(await capped.wr.claimPass(capped.s, 'u0', p0, OPEN + 2_000));
      await capped.setStock(3);
      await capped.wr.settlePass(capped.s.id, 'u0', true);
      await capped.run(OPEN + 2_100, OPEN + 4_000, users(20));
      assert.equal((await capped.wr.stats(capped.s.id, OPEN + 4_000))?.admitted, 6, 'floor(3 × 1.5) − 5 out: nobody more');
      // The five unused passes run out (10 s): floor(3 × 1.5) = 4 more out.
      await capped.run(OPEN + 4_100, OPEN + 13_000, users(20).slice(6));
      const end = await capped.wr.stats(capped.s.id, OPEN + 13_000);
      assert.equal(end?.outstanding, 4);
      assert.equal(end?.admitted, 10);
    });

    test('sold out: told at the next poll, admission stops; stock back, it resumes', async () => {
      const { s, setStock, wr, run } = await setup(kind, { admitPerSecond: 1 }, 5);
      const all = users(10);
      for (const u of all) await wr.join(s.id, u, OPEN - 100);
      await run(OPEN, OPEN + 1_000, all);
      const out = (await wr.stats(s.id, OPEN + 1_000))?.admitted ?? 0;
      await setStock(0);
      for (const u of all.slice(out)) assert.equal((await wr.poll(s.id, u, OPEN + 1_001)).state, 'sold_out', u);
      await run(OPEN + 1_100, OPEN + 4_000, all);
      assert.equal((await wr.stats(s.id, OPEN + 4_000))?.admitted, out, 'nobody let out while sold out');
      await setStock(2);
      await run(OPEN + 4_100, OPEN + 7_000, all);
      assert.ok(((await wr.stats(s.id, OPEN + 7_000))?.admitted ?? 0) > out, 'admission resumed');
      assert.equal((await wr.poll(s.id, 'u9', OPEN + 7_000)).state, 'waiting');
    });
  });
}

describe('room store: two processes on one Redis', { skip: redisDown ?? false }, () => {
  test('one line: joins through either are seen by both; ticks from both never double-admit nor exceed the rate', async () => {
    const { s, wrs } = await setup('redis', { admitPerSecond: 10 }, 1000, { services: 2 });
    const [a, b] = wrs;
    const all = users(60);
    for (const [i, u] of all.entries()) await (i % 2 ? a : b).join(s.id, u, OPEN - 1_000 + i);
    // Both processes see one line, in arrival order.
    await a.tick(OPEN - 500);
    assert.equal((await b.poll(s.id, 'u59', OPEN - 400)).position, 60);
    assert.equal((await a.poll(s.id, 'u0', OPEN - 400)).position, 1);
    // Both tick every 100 ms, a little apart: the credit is shared, so together they let out 10/s.
    for (let t = OPEN; t <= OPEN + 3_000; t += 100) {
      await a.tick(t);
      await b.tick(t + 30);
    }
    const st = await a.stats(s.id, OPEN + 3_030);
    assert.ok(st && st.admitted <= 31 && st.admitted >= 29, `${st?.admitted} let out in 3.03 s at 10/s`);
    const out = (await b.records(s.id)).filter((r) => r.admittedAt !== null).map((r) => r.userId);
    assert.equal(new Set(out).size, st.admitted, 'each let out once');
    assert.deepEqual(out.sort(), all.slice(0, st.admitted).sort(), 'the first in line');
  });

  test("on Redis's clock: two stores ticking every 20 ms for 2 s stay within rate × T + burst", async () => {
    const redis = await client();
    const s = fakeSale({ id: `room-live-${crypto.randomBytes(3).toString('hex')}`, startsAt: Date.now() - 1_000, endsAt: null, waitingRoom: { method: 'fifo', admitPerSecond: 20, stockFactor: 1 } });
    await redis.hset(keys.sale(s.id), { available: 1000, paused: 0, ready: 1 });
    const sales = { get: () => s, find: async () => s, available: () => 1000, all: () => [s] };
    const wrs = [await client(), await client()].map((c) => new WaitingRoomService(sales, { store: (o) => new RedisRoomStore(c, keys, o) }));
    for (const u of users(200)) await wrs[0].join(s.id, u);
    const started = Date.now();
    let stop = false;
    const loop = async (wr: WaitingRoomService) => {
      while (!stop) {
        await wr.tick(Date.now());
        await sleep(20);
      }
    };
    const loops = wrs.map(loop);
    await sleep(2_000);
    stop = true;
    await Promise.all(loops);
    const seconds = (Date.now() - started) / 1000;
    const admitted = (await wrs[1].stats(s.id))?.admitted ?? 0;
    assert.ok(admitted <= 20 * seconds + maxCarry(20), `${admitted} let out in ${seconds.toFixed(2)} s at 20/s`);
    assert.ok(admitted >= 20, `${admitted} let out: admission ran`);
  });
});
