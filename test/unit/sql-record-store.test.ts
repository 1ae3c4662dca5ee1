// The SQL record stores (SQLite and PostgreSQL) against the same cases: the exits from `reserved`
// follow the same rule as transition.lua (expired only from expiresAt on, paid only before it),
// and the shared statements and row mapping read back what was written.
// PostgreSQL: a database of its own on the test server (skipped when there is none, except in CI).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import type { RecordStore } from '../../src/stores/record-store.js';
import { render, statements } from '../../src/stores/sql/statements.js';
import { SqliteRecordStore } from '../../src/stores/sqlite/sqlite-record-store.js';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PG_ADMIN_URL, createDatabase } from '../support/cluster.js';

const T0 = Date.UTC(2026, 0, 1);
const WINDOW = 60_000;

function sale(id: string): Sale {
  return {
    id, name: `sale ${id}`, description: 'd', priceCents: 1999, stock: 10, startsAt: T0, endsAt: null,
    perUserLimit: 3, paymentWindowSeconds: WINDOW / 1000, paused: false, restockOnRefund: false, secret: 's3cret', createdAt: T0, archivedAt: null,
  };
}

let seq = 0;
function order(saleId: string, userId: string, quantity = 1): Order {
  seq++;
  return {
    orderId: `o-${String(seq).padStart(4, '0')}`, saleId, userId, quantity, priceCents: 1999 * quantity, status: 'reserved',
    createdAt: T0, expiresAt: T0 + WINDOW, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
  };
}

/** Why the test PostgreSQL cannot be used, or null. */
async function pgUnavailable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    return null;
  } catch (err) {
    return `PostgreSQL at ${PG_ADMIN_URL} unreachable: ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

interface Opened {
  store: RecordStore;
  close(): Promise<void>;
}

const stores: Array<[name: string, open: () => Promise<Opened | string>]> = [
  ['sqlite', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-sql-'));
    const store = new SqliteRecordStore(dir, 'NORMAL');
    return {
      store,
      async close() {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }],
  ['postgres', async () => {
    const reason = await pgUnavailable();
    if (reason) {
      if (process.env.CI) throw new Error(reason);
      return reason;
    }
    const db = await createDatabase();
    const store = new PgRecordStore(db.url, 2);
    await store.init();
    return {
      store,
      async close() {
        await store.close();
        await db.drop();
      },
    };
  }],
];

for (const [name, open] of stores) {
  describe(`${name} record store`, () => {
    let opened: Opened | null = null;
    let skip: string | null = null;
    const get = async (): Promise<RecordStore | null> => {
      if (!opened && !skip) {
        const o = await open();
        if (typeof o === 'string') skip = o;
        else opened = o;
      }
      return opened?.store ?? null;
    };
    after(async () => {
      await opened?.close();
    });

    test('an order is not expired before its expiresAt, and is from it on (as transition.lua)', async (t) => {
      const s = await get();
      if (!s) return void t.skip(skip ?? '');
      await s.insertSale(sale('x1'));
      const o = order('x1', 'alice');
      await s.insertOrders([o]);
      assert.equal(await s.transition(o.orderId, { to: 'expired' }, o.expiresAt - 1), null, 'refused 1 ms early');
      assert.equal((await s.getOrder(o.orderId))?.status, 'reserved');
      const expired = await s.transition(o.orderId, { to: 'expired' }, o.expiresAt);
      assert.equal(expired?.status, 'expired');
      assert.equal(await s.transition(o.orderId, { to: 'expired' }, o.expiresAt + 1), null, 'once only');
      assert.deepEqual(await s.totals('x1'), { reserved: 0, paid: 0, expired: 1, cancelled: 0, refunded: 0 });
    });

    test('paid only before expiresAt; cancelled at any time; each exit happens once', async (t) => {
      const s = await get();
      if (!s) return void t.skip(skip ?? '');
      await s.insertSale(sale('x2'));
      const [late, inTime, cancel] = [order('x2', 'bob'), order('x2', 'bob'), order('x2', 'carol', 2)];
      await s.insertOrders([late, inTime, cancel]);
      assert.equal(await s.transition(late.orderId, { to: 'paid', paidAt: late.expiresAt, paymentRef: 'p1' }, late.expiresAt), null);
      const paid = await s.transition(inTime.orderId, { to: 'paid', paidAt: T0 + 5, paymentRef: 'p2' }, T0 + 5);
      assert.deepEqual(paid, { ...inTime, status: 'paid', paidAt: T0 + 5, paymentRef: 'p2' });
      assert.equal(await s.transition(inTime.orderId, { to: 'cancelled' }, T0 + 6), null, 'a paid order is not cancelled');
      assert.equal((await s.transition(cancel.orderId, { to: 'cancelled' }, cancel.expiresAt + 1))?.status, 'cancelled');
      assert.deepEqual(await s.totals('x2'), { reserved: 1, paid: 1, expired: 0, cancelled: 2, refunded: 0 });
      assert.deepEqual([...(await s.holdings('x2'))], [['bob', 2]]);
      assert.deepEqual((await s.dueForExpiry(late.expiresAt, 10)).map((o) => o.orderId), [late.orderId]);
      assert.deepEqual(await s.dueForExpiry(late.expiresAt - 1, 10), []);
    });

    test('refunded only from paid, once; a refund keeps its units held unless the sale restocks on refund', async (t) => {
      const s = await get();
      if (!s) return void t.skip(skip ?? '');
      await s.insertSale(sale('r1'));
      await s.insertSale({ ...sale('r2'), restockOnRefund: true });
      assert.equal((await s.getSale('r2'))?.restockOnRefund, true);
      const [kept, back, open] = [order('r1', 'dan', 2), order('r2', 'dan', 2), order('r1', 'eve')];
      await s.insertOrders([kept, back, open]);
      const refund = { to: 'refunded', refundedAt: T0 + 9, reason: 'customer asked' } as const;
      assert.equal(await s.transition(open.orderId, refund, T0 + 9), null, 'a reserved order is not refunded');
      for (const o of [kept, back]) await s.transition(o.orderId, { to: 'paid', paidAt: T0 + 5, paymentRef: `p-${o.orderId}` }, T0 + 5);
      const refunded = await s.transition(kept.orderId, refund, T0 + 9);
      assert.deepEqual(refunded, { ...kept, status: 'refunded', paidAt: T0 + 5, paymentRef: `p-${kept.orderId}`, refundedAt: T0 + 9, refundReason: 'customer asked' });
      assert.equal(await s.transition(kept.orderId, refund, T0 + 10), null, 'once only');
      assert.equal(await s.transition(kept.orderId, { to: 'cancelled' }, T0 + 10), null, 'a refunded order is not cancelled');
      assert.equal((await s.transition(back.orderId, { to: 'refunded', refundedAt: T0 + 9, reason: null }, T0 + 9))?.refundReason, null);
      assert.deepEqual(await s.totals('r1'), { reserved: 1, paid: 0, expired: 0, cancelled: 0, refunded: 2 });
      // r1 keeps refunded units sold: dan still holds 2; r2 restocks: dan holds nothing there.
      assert.deepEqual(new Map(await s.holdings('r1')), new Map([['dan', 2], ['eve', 1]]));
      assert.deepEqual([...(await s.holdings('r2'))], []);
      assert.deepEqual((await s.listOrders('r1', 'refunded', undefined, 10)).orders.map((o) => o.orderId), [kept.orderId]);
    });

    test('sales, pages and replays read back as written', async (t) => {
      const s = await get();
      if (!s) return void t.skip(skip ?? '');
      const x3 = { ...sale('x3'), endsAt: T0 + 3_600_000 };
      await s.insertSale(x3);
      assert.deepEqual(await s.getSale('x3'), x3);
      await s.setPaused('x3', true);
      assert.equal((await s.getSale('x3'))?.paused, true);
      assert.ok((await s.loadSales()).some((x) => x.id === 'x3'));
      assert.equal(await s.getSale('nope'), null);

      const orders = Array.from({ length: 5 }, (_, i) => order('x3', `u${i % 2}`));
      await s.insertOrders(orders);
      await s.insertOrders([{ ...orders[0], quantity: 99 }]); // a replay changes nothing
      assert.deepEqual(await s.getOrder(orders[0].orderId), orders[0]);
      const first = await s.listOrders('x3', 'reserved', undefined, 3);
      assert.deepEqual(first.orders.map((o) => o.orderId), orders.slice(0, 3).map((o) => o.orderId));
      assert.equal(first.next, orders[2].orderId);
      const rest = await s.listOrders('x3', undefined, first.next ?? undefined, 3);
      assert.deepEqual(rest.orders.map((o) => o.orderId), orders.slice(3).map((o) => o.orderId));
      assert.equal(rest.next, null);
      assert.deepEqual((await s.listOrders('x3', 'paid', undefined, 3)).orders, []);
      const all: string[] = [];
      for await (const o of s.iterateOrders('x3', undefined)) all.push(o.orderId);
      assert.deepEqual(all, orders.map((o) => o.orderId));
      assert.deepEqual((await s.ordersOfUser('u1')).map((o) => o.orderId), [orders[1].orderId, orders[3].orderId]);
      await s.ping();
    });
  });
}

test('shared statements: `?` stays for SQLite and is numbered for PostgreSQL', () => {
  assert.equal(render('UPDATE t SET a = ? WHERE b = ? AND c > ?', 'postgres'), 'UPDATE t SET a = $1 WHERE b = $2 AND c > $3');
  const lite = statements('sqlite');
  const pg = statements('postgres');
  for (const name of Object.keys(lite) as (keyof typeof lite)[]) {
    const n = (lite[name].match(/\?/g) ?? []).length;
    assert.equal((pg[name].match(/\$\d+/g) ?? []).length, n, name);
    assert.ok(!pg[name].includes('?'), name);
  }
});

test('a SQLite data dir from before refunds gets the new columns, and its rows read back', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-sql-old-'));
  try {
    // The tables as an earlier version created them (no refund columns).
    const old = new Database(path.join(dir, 'seckill.db'));
    old.exec(`CREATE TABLE sales (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, price_cents BIGINT NOT NULL,
      stock BIGINT NOT NULL, starts_at BIGINT NOT NULL, ends_at BIGINT, per_user_limit INTEGER NOT NULL,
      payment_window_seconds INTEGER NOT NULL, paused INTEGER NOT NULL DEFAULT 0, secret TEXT NOT NULL, created_at BIGINT NOT NULL);
    CREATE TABLE orders (order_id TEXT PRIMARY KEY, sale_id TEXT NOT NULL, user_id TEXT NOT NULL, quantity INTEGER NOT NULL,
      price_cents BIGINT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, paid_at BIGINT, payment_ref TEXT);
    INSERT INTO sales VALUES ('m1', 'old', '', 100, 5, ${T0}, NULL, 1, 60, 0, 's', ${T0});
    INSERT INTO orders VALUES ('o-old', 'm1', 'ann', 1, 100, 'paid', ${T0}, ${T0 + WINDOW}, ${T0 + 1}, 'ref');`);
    old.close();
    const s = new SqliteRecordStore(dir, 'NORMAL');
    try {
      assert.equal((await s.getSale('m1'))?.restockOnRefund, false);
      assert.equal((await s.getOrder('o-old'))?.refundedAt, null);
      assert.equal((await s.transition('o-old', { to: 'refunded', refundedAt: T0 + 2, reason: null }, T0 + 2))?.status, 'refunded');
      assert.deepEqual([...(await s.holdings('m1'))], [['ann', 1]]);
    } finally {
      await s.close();
    }
    // Opening it again (columns present now) changes nothing.
    const again = new SqliteRecordStore(dir, 'NORMAL');
    assert.equal((await again.getOrder('o-old'))?.status, 'refunded');
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
