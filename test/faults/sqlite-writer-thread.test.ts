// The group commit on SQLite's worker thread (src/stores/sqlite/order-insert-thread.ts): batches
// committed on the thread's own connection; a failed batch is busy and wrote nothing; a thread
// that dies with a batch in flight is answered from what the database holds; a clean close.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import { OrderWriter } from '../../src/engine/group-commit.js';
import { OrderInsertThread } from '../../src/stores/sqlite/order-insert-thread.js';
import { SqliteRecordStore } from '../../src/stores/sqlite/sqlite-record-store.js';
import { order, silent } from '../support/fakes.js';
import { until } from '../support/wait.js';

async function open() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-thread-'));
  const store = new SqliteRecordStore(dir, 'NORMAL');
  const thread = await OrderInsertThread.open(dir, 'NORMAL', store, silent);
  const writer = new OrderWriter(thread, { groupCommitMs: 0, maxBatch: 100, outcomeWaitMs: 20_000 }, silent);
  const close = async () => {
    await writer.close();
    await thread.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return { dir, store, thread, writer, close };
}

/** Whether each order is in the database. */
async function inDb(store: SqliteRecordStore, orders: Order[]): Promise<boolean[]> {
  return Promise.all(orders.map(async (o) => (await store.getOrder(o.orderId)) !== null));
}

test('batches are committed by the thread before their callers hear; the main connection reads them, and still writes', async () => {
  const t = await open();
  try {
    const orders = Array.from({ length: 50 }, (_, i) => order({ userId: `u${i}` }));
    await Promise.all(orders.map((o) => t.writer.submit(o)));
    assert.deepEqual(await inDb(t.store, orders), orders.map(() => true));
    assert.equal(t.writer.ordersWritten, 50);
    // What SqliteRecordStore.insertOrders writes with the orders (the outbox) came with them.
    const check = new Database(path.join(t.dir, 'seckill.db'), { readonly: true });
    const events = check.prepare("SELECT count(*) AS n FROM outbox_events WHERE type = 'order.reserved'").get() as { n: number };
    check.close();
    assert.equal(events.n, 50);
    // The main connection's own writes (pay, cancel, expiry) go on beside the thread's.
    const more = [order(), order()];
    const [, paid] = await Promise.all([
      Promise.all(more.map((o) => t.writer.submit(o))),
      t.store.transition(orders[0]!.orderId, { to: 'paid', paidAt: 3_000, paymentRef: 'p-1' }, 3_000),
    ]);
    assert.equal(paid?.status, 'paid');
    assert.deepEqual(await inDb(t.store, more), [true, true]);
  } finally {
    await t.close();
  }
});

test('a batch the database refuses is busy and wrote nothing; the next one goes through', async () => {
  const t = await open();
  try {
    // Another connection makes one order of the batch fail, as a failing disk or constraint would.
    const side = new Database(path.join(t.dir, 'seckill.db'));
    side.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT ON orders WHEN NEW.user_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    const batch = [order({ userId: 'good' }), order({ userId: 'bad' })];
    const results = await Promise.allSettled(batch.map((o) => t.writer.submit(o)));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof SeckillError && r.reason.code === 'busy', String(r.reason));
    }
    assert.deepEqual(await inDb(t.store, batch), [false, false]);
    side.exec('DROP TRIGGER refuse_bad');
    side.close();
    const next = order({ userId: 'good' });
    await t.writer.submit(next);
    assert.deepEqual(await inDb(t.store, [next]), [true]);
    assert.equal(t.thread.started, 1);
  } finally {
    await t.close();
  }
});

test('the thread dies with batches in flight: each buyer hears what the database holds, and a new thread takes over', async () => {
  const t = await open();
  try {
    const orders = Array.from({ length: 300 }, (_, i) => order({ userId: `k${i}` }));
    const submitted = orders.map((o) => t.writer.submit(o).then(() => 'written' as const, (err: unknown) => err));
    // Killed while the batches are on their way or being written: some may have committed.
    await new Promise((r) => setImmediate(r));
    await t.thread.thread!.terminate();
    const outcomes = await Promise.all(submitted);
    const present = await inDb(t.store, orders);
    outcomes.forEach((o, i) => {
      if (o === 'written') assert.equal(present[i], true, 'a 202 without its order');
      else {
        assert.ok(o instanceof SeckillError && o.code === 'busy', String(o));
        assert.equal(present[i], false, 'busy but the order exists');
      }
    });
    const after = order();
    await t.writer.submit(after);
    assert.deepEqual(await inDb(t.store, [after]), [true]);
    await until('a second thread', () => t.thread.started === 2, 10_000);
  } finally {
    await t.close();
  }
});

test('close: what is waiting is written, then the thread is gone and new batches are refused', async () => {
  const t = await open();
  const last = order();
  const p = t.writer.submit(last);
  await t.writer.close();
  await p;
  assert.ok(t.thread.thread);
  await t.thread.close();
  assert.equal(t.thread.thread, null); // it exited
  await assert.rejects(t.thread.insertOrders([order()]), (err: unknown) => err instanceof SeckillError && err.code === 'busy');
  assert.deepEqual(await inDb(t.store, [last]), [true]);
  await t.close();
});

test('the process lost its own connection to the database: the thread takes no batch either (busy, nothing written)', async () => {
  const t = await open();
  try {
    await t.store.close();
    const o = order();
    await assert.rejects(t.writer.submit(o), (err: unknown) => err instanceof SeckillError && err.code === 'busy');
    const check = new Database(path.join(t.dir, 'seckill.db'), { readonly: true });
    assert.deepEqual(check.prepare('SELECT count(*) AS n FROM orders WHERE order_id = ?').get(o.orderId), { n: 0 });
    check.close();
  } finally {
    await t.close();
  }
});
