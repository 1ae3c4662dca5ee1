// The outbox relay with fake sinks over the SQLite store (and PostgreSQL for the lease): at least
// once and in per-order order under a sink that fails at random (partly delivered batches
// included), dead letters after the attempts and the order held behind them, redrive, prune,
// and, on PostgreSQL, the lease taken over when its holder's connection dies.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import type { OutboxEvent } from '../../src/domain/events.js';
import type { Order } from '../../src/domain/order.js';
import { OutboxRelay, HELD_LEASE, backoffMs, type RelaySettings } from '../../src/services/outbox-relay.js';
import type { EventSink } from '../../src/sinks/sink.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import type { RecordStore, RelayLease } from '../../src/stores/record-store.js';
import { SqliteRecordStore } from '../../src/stores/sqlite/sqlite-record-store.js';
import { PG_ADMIN_URL, createDatabase } from '../support/cluster.js';
import { until } from '../support/wait.js';

const log = pino({ level: 'silent' });
const FAST: Partial<RelaySettings> = { idleMs: 20, backoffBaseMs: 5, backoffMaxMs: 40, leaseRetryMs: 100, batch: 50 };

let n = 0;
function order(now: number): Order {
  n++;
  return {
    orderId: `rl-${String(n).padStart(5, '0')}`, saleId: 's1', userId: `u${n}`, quantity: 1, priceCents: 100, status: 'reserved',
    createdAt: now, expiresAt: now + 60_000, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
  };
}

/** A sink that keeps what it received; `fail` decides per batch whether (and after how many events) it fails. */
class FakeSink implements EventSink {
  readonly received: OutboxEvent[] = [];
  fail: (events: readonly OutboxEvent[]) => number | null = () => null;
  constructor(readonly name: string) {}
  async publish(events: readonly OutboxEvent[]): Promise<void> {
    await new Promise((r) => setImmediate(r));
    const cut = this.fail(events);
    // A failed batch may still have delivered some of its events (the receiver de-duplicates).
    this.received.push(...events.slice(0, cut ?? events.length));
    if (cut !== null) throw new Error('sink refused');
  }
  async close(): Promise<void> {}
}

function sqliteStore(): { store: SqliteRecordStore; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-relay-'));
  return { store: new SqliteRecordStore(dir, 'NORMAL'), dir };
}

/** Every outbox event arrived, and each key's seqs arrived in order (seq n first seen after n − 1). */
async function assertDelivered(store: RecordStore, keys: string[], sink: FakeSink): Promise<void> {
  const firstSeen = new Map<string, number>();
  sink.received.forEach((e, i) => { if (!firstSeen.has(e.id)) firstSeen.set(e.id, i); });
  for (const key of keys) {
    const events = await store.eventsOf(key);
    let last = -1;
    for (const e of events) {
      const at = firstSeen.get(e.id);
      assert.ok(at !== undefined, `${e.type} of ${key} was delivered`);
      assert.ok(at > last, `${key}: seq ${e.seq} after seq ${e.seq - 1}`);
      last = at;
    }
  }
}

test('backoff grows exponentially, capped, half of it random', () => {
  assert.equal(backoffMs(1, 100, 10_000, () => 0), 50);
  assert.equal(backoffMs(4, 100, 10_000, () => 1), 800);
  assert.equal(backoffMs(30, 100, 10_000, () => 0.5), 7500);
});

test('a sink failing at random gets every event at least once, each order in its order', async () => {
  const { store, dir } = sqliteStore();
  const sink = new FakeSink('flaky');
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  sink.fail = (events) => (rnd() < 0.3 ? Math.floor(rnd() * events.length) : null);
  const relay = new OutboxRelay(store, [sink], () => HELD_LEASE, log, FAST);
  try {
    const now = Date.now();
    const orders: Order[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 20 }, () => order(now));
      orders.push(...batch);
      await store.insertOrders(batch);
      for (const [i, o] of batch.entries()) {
        if (i % 3 === 0) await store.transition(o.orderId, { to: 'paid', paidAt: now + 1, paymentRef: 'p' }, now + 1);
        if (i % 6 === 0) await store.transition(o.orderId, { to: 'refunded', refundedAt: now + 2, reason: 'r' }, now + 2);
        if (i % 3 === 1) await store.transition(o.orderId, { to: 'cancelled' }, now + 3);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await until('the relay', async () => (await relay.status())[0].backlog === 0 && (await store.outboxStats(['flaky']))[0].backlog === 0, 60_000);
    await assertDelivered(store, orders.map((o) => o.orderId), sink);
    assert.equal((await store.outboxStats(['flaky']))[0].dead, 0);
  } finally {
    await relay.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an event failing every attempt becomes a dead letter and holds its order; redrive delivers them; prune keeps only what is unsent', async () => {
  const { store, dir } = sqliteStore();
  const sink = new FakeSink('picky');
  const other = new FakeSink('other');
  const now = Date.now();
  const [bad, good] = [order(now), order(now)];
  await store.insertOrders([bad, good]);
  await store.transition(bad.orderId, { to: 'cancelled' }, now);
  await store.transition(good.orderId, { to: 'cancelled' }, now);
  let broken = true;
  sink.fail = (events) => (broken && events.some((e) => e.key === bad.orderId) ? 0 : null);
  const relay = new OutboxRelay(store, [sink, other], () => HELD_LEASE, log, { ...FAST, maxAttempts: 3, retentionMs: 0 });
  try {
    await until('the relay', async () => (await store.deadLetters('picky', 10)).length === 1, 30_000);
    await until('the relay', async () => other.received.length === 4 && sink.received.length === 2, 30_000);
    assert.deepEqual(sink.received.map((e) => e.key), [good.orderId, good.orderId]);
    const [dead] = await store.deadLetters('picky', 10);
    assert.deepEqual([dead.key, dead.seq, dead.attempts], [bad.orderId, 1, 3]);
    assert.match(dead.error ?? '', /sink refused/);
    // Held behind it: the cancelled event of the same order stays pending.
    assert.equal((await store.outboxStats(['picky']))[0].backlog, 1);
    // Prune: the good order's events were sent to both sinks; the bad one's were not.
    assert.equal(await relay.prune(Date.now() + 1), 2);
    assert.equal((await store.eventsOf(bad.orderId)).length, 2);
    broken = false;
    assert.equal(await store.redrive('picky'), 1);
    await until('the relay', async () => (await store.outboxStats(['picky']))[0].backlog === 0, 30_000);
    await assertDelivered(store, [bad.orderId], sink);
    assert.equal(await relay.prune(Date.now() + 1), 2);
  } finally {
    await relay.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A lease whose process "died": it stops taking or confirming the lease and never releases it. */
class DyingLease implements RelayLease {
  dead = false;
  constructor(private readonly inner: RelayLease) {}
  acquire(): Promise<boolean> {
    return this.dead ? Promise.resolve(false) : this.inner.acquire();
  }
  held(): boolean {
    return !this.dead && this.inner.held();
  }
  async release(): Promise<void> {
    if (!this.dead) await this.inner.release();
  }
}

test('PostgreSQL: one relay per sink; when the holder\'s connection dies another takes over within seconds', async (t) => {
  const probe = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1000 });
  const up = await probe.connect().then(() => true, (err: unknown) => {
    if (process.env.CI) throw err;
    return false;
  });
  await probe.end().catch(() => undefined);
  if (!up) return t.skip('PostgreSQL unreachable');
  const db = await createDatabase();
  const stores = [new PgRecordStore(db.url, 2), new PgRecordStore(db.url, 2)];
  await stores[0].init();
  const sinks = [new FakeSink('shared'), new FakeSink('shared')];
  const leases = stores.map((s) => new DyingLease(s.relayLease('shared')));
  const relays = stores.map((s, i) => new OutboxRelay(s, [sinks[i]], () => leases[i], log, FAST));
  after(async () => {
    for (const r of relays) await r.close().catch(() => undefined);
    for (const s of stores) await s.close().catch(() => undefined);
    await db.drop();
  });
  const now = Date.now();
  const first = Array.from({ length: 30 }, () => order(now));
  await stores[0].insertOrders(first);
  await until('the relay', async () => (await stores[0].outboxStats(['shared']))[0].backlog === 0, 30_000);
  const holder = leases.findIndex((l) => l.held());
  assert.ok(holder >= 0);
  assert.equal(leases.filter((l) => l.held()).length, 1, 'one holder');
  assert.equal(sinks[1 - holder].received.length, 0, 'the other relay published nothing');
  // The holder's process dies: its loop stops taking the lease, and its connection is gone.
  leases[holder].dead = true;
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(`SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 7413 AND l.granted`);
  await admin.end();
  const t0 = Date.now();
  const second = Array.from({ length: 30 }, () => order(now));
  await stores[0].insertOrders(second);
  await until('the relay', async () => (await stores[0].outboxStats(['shared']))[0].backlog === 0, 30_000);
  const tookOver = Date.now() - t0;
  process.stdout.write(`# lease taken over and backlog delivered in ${tookOver} ms\n`);
  const survivor = sinks[1 - holder];
  const ids = new Set(survivor.received.map((e) => e.key));
  for (const o of second) assert.ok(ids.has(o.orderId), 'the survivor delivered the new events');
});
