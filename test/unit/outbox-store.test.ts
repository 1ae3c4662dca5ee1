// The outbox in both SQL record stores: every order write puts its event in the outbox in the
// same transaction (insertOrders, transition, applyBatch, replays adding nothing), and the
// relay's reads follow each sink's delivery state: per-order order, a dead event holding its
// order's later ones, redrive, pruning.
// PostgreSQL: a database of its own on the test server (skipped when there is none, except in CI).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { eventId } from '../../src/domain/events.js';
import type { Order } from '../../src/domain/order.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import type { RecordStore } from '../../src/stores/record-store.js';
import { SqliteRecordStore } from '../../src/stores/sqlite/sqlite-record-store.js';
import { PG_ADMIN_URL, createDatabase } from '../support/cluster.js';

const T0 = Date.now();
const WINDOW = 60_000;
let n = 0;
function order(saleId = 's1'): Order {
  n++;
  return {
    orderId: `ob-${String(n).padStart(5, '0')}`, saleId, userId: `u${n}`, quantity: 1, priceCents: 100, status: 'reserved',
    createdAt: T0, expiresAt: T0 + WINDOW, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
  };
}

async function pgUnavailable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    return null;
  } catch (err) {
    if (process.env.CI) throw err;
    return `PostgreSQL unreachable: ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

type Open = { store: RecordStore; pgStore?: PgRecordStore; close(): Promise<void> };
const backends: Array<[string, () => Promise<Open | string>]> = [
  ['sqlite', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-outbox-'));
    const store = new SqliteRecordStore(dir, 'NORMAL');
    return { store, close: async () => { await store.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
  }],
  ['postgres', async () => {
    const why = await pgUnavailable();
    if (why) return why;
    const db = await createDatabase();
    const store = new PgRecordStore(db.url, 2);
    await store.init();
    return { store, pgStore: store, close: async () => { await store.close(); await db.drop(); } };
  }],
];

for (const [name, open] of backends) {
  describe(`outbox in ${name}`, () => {
    let o: Open | string;
    const opened = open().then((x) => (o = x));
    after(async () => {
      await opened;
      if (typeof o !== 'string') await o.close();
    });
    const store = async (t: { skip(m: string): void }) => {
      await opened;
      if (typeof o === 'string') {
        t.skip(o);
        return null;
      }
      return o;
    };

    test('each order write puts exactly its event in the outbox, with its seq; a replay adds none', async (t) => {
      const b = await store(t);
      if (!b) return;
      const a = order();
      const c = order();
      await b.store.insertOrders([a, c]);
      await b.store.insertOrders([a]); // replayed
      assert.deepEqual((await b.store.eventsOf(a.orderId)).map((e) => [e.type, e.seq]), [['order.reserved', 1]]);
      const paid = await b.store.transition(a.orderId, { to: 'paid', paidAt: T0 + 1, paymentRef: 'p' }, T0 + 1);
      assert.ok(paid);
      assert.equal(await b.store.transition(a.orderId, { to: 'cancelled' }, T0 + 2), null); // lost: no event
      await b.store.transition(a.orderId, { to: 'refunded', refundedAt: T0 + 3, reason: 'r' }, T0 + 3);
      await b.store.transition(c.orderId, { to: 'cancelled' }, T0 + 4);
      const ev = await b.store.eventsOf(a.orderId);
      assert.deepEqual(ev.map((e) => [e.type, e.seq]), [['order.reserved', 1], ['order.paid', 2], ['order.refunded', 3]]);
      assert.equal(ev[1].id, eventId(a.orderId, 'order.paid'));
      const body = JSON.parse(ev[2].body) as { id: string; type: string; seq: number; order: { status: string } };
      assert.deepEqual([body.id, body.type, body.seq, body.order.status], [ev[2].id, 'order.refunded', 3, 'refunded']);
      assert.deepEqual((await b.store.eventsOf(c.orderId)).map((e) => [e.type, e.at]), [['order.reserved', T0], ['order.cancelled', T0 + 4]]);
    });

    test('applyBatch: a change before its reservation brings the events before it; a replayed batch adds none', async (t) => {
      const b = await store(t);
      if (!b?.pgStore) return t.skip('distributed mode only (PostgreSQL)');
      const a = order();
      const refunded: Order = { ...a, status: 'refunded', paidAt: T0 + 1, paymentRef: 'p', refundedAt: T0 + 2, refundReason: 'r' };
      await b.pgStore.applyBatch([], [refunded]);
      await b.pgStore.applyBatch([a], []);
      await b.pgStore.applyBatch([a], [refunded]);
      const ev = await b.store.eventsOf(a.orderId);
      assert.deepEqual(ev.map((e) => [e.type, e.seq]), [['order.reserved', 1], ['order.paid', 2], ['order.refunded', 3]]);
      assert.equal((JSON.parse(ev[0].body) as { order: { status: string; paidAt: unknown } }).order.paidAt, null);
    });

    test('pending: per-order order per sink, sent and dead leave, a dead event holds its order, redrive, prune', async (t) => {
      const b = await store(t);
      if (!b) return;
      const s = b.store;
      const sink = `sink-${name}`;
      const first = await s.pendingEvents(sink, 1000);
      // Every reserved is pending; nothing whose predecessor is unsent.
      assert.ok(first.length > 0 && first.every((e) => e.seq === 1));
      await s.markSent(sink, first.map((e) => e.id), Date.now());
      const second = await s.pendingEvents(sink, 1000);
      assert.ok(second.every((e) => e.seq === 2));
      // Another sink still sees everything from the start.
      assert.equal((await s.pendingEvents(`${sink}-other`, 1000)).length, first.length);
      const [dead, ...rest] = second;
      await s.markDead(sink, dead.id, 5, 'boom', Date.now());
      await s.markSent(sink, rest.map((e) => e.id), Date.now());
      const third = await s.pendingEvents(sink, 1000);
      assert.ok(third.every((e) => e.seq === 3 && e.key !== dead.key), 'the dead event holds its order');
      await s.markSent(sink, third.map((e) => e.id), Date.now());
      assert.deepEqual((await s.deadLetters(sink, 10)).map((d) => [d.id, d.error, d.attempts]), [[dead.id, 'boom', 5]]);
      const [stats] = await s.outboxStats([sink]);
      assert.equal(stats.dead, 1);
      assert.equal(await s.redrive(sink, ['nope']), 0);
      assert.equal(await s.redrive(sink), 1);
      assert.deepEqual((await s.pendingEvents(sink, 1000)).map((e) => e.id), [dead.id]);
      await s.markSent(sink, [dead.id], Date.now());
      const after = await s.pendingEvents(sink, 1000);
      assert.ok(after.every((e) => e.key === dead.key), 'then its order follows');
      await s.markSent(sink, after.map((e) => e.id), Date.now());
      assert.equal((await s.outboxStats([sink]))[0].backlog, 0);
      // Prune: only what every sink named was sent; by age alone when none is named.
      const total = (await s.outboxStats([`${sink}-other`]))[0].backlog;
      assert.equal(await s.pruneEvents(Date.now() + 1000, [sink, `${sink}-other`], 1000), 0);
      assert.equal(await s.pruneEvents(Date.now() + 1000, [sink], 1000), total);
      assert.equal((await s.outboxStats([`${sink}-other`]))[0].backlog, 0);
      await s.appendEvents([{ id: eventId('s9', 'sale.interest'), type: 'sale.interest', key: 's9', seq: 1, at: T0, body: '{}' }]);
      assert.equal(await s.pruneEvents(Date.now() - 60_000, [], 1000), 0);
      assert.equal(await s.pruneEvents(Date.now() + 1000, [], 1000), 1);
    });
  });
}
