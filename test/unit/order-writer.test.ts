// The group-commit OrderWriter against a fake repository.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import { OrderWriter } from '../../src/engine/group-commit.js';
import type { RecordStore } from '../../src/stores/record-store.js';
import { deferred, order, silent } from '../support/fakes.js';

class Repo {
  readonly batches: Order[][] = [];
  next: (() => Promise<void>) | null = null;
  async insertOrders(orders: Order[]) {
    this.batches.push(orders);
    if (this.next) await this.next();
  }
}

const writer = (repo: Repo, groupCommitMs = 0, maxBatch = 100) =>
  new OrderWriter(repo as unknown as RecordStore, { groupCommitMs, maxBatch }, silent);

test('reservations of one event-loop turn are committed in one batch; each caller hears after it', async () => {
  const repo = new Repo();
  const w = writer(repo);
  const orders = [order(), order(), order()];
  await Promise.all(orders.map((o) => w.submit(o)));
  assert.equal(repo.batches.length, 1);
  assert.deepEqual(repo.batches[0].map((o) => o.orderId), orders.map((o) => o.orderId));
  assert.equal(w.ordersWritten, 3);
  assert.equal(w.backlog, 0);
});

test('a group-commit window gathers what arrives within it', async () => {
  const repo = new Repo();
  // A wide window: on a loaded machine one event-loop turn may take tens of milliseconds.
  const w = writer(repo, 1000);
  const a = w.submit(order());
  await new Promise((r) => setImmediate(r));
  const b = w.submit(order());
  await Promise.all([a, b]);
  assert.equal(repo.batches.length, 1);
  assert.equal(repo.batches[0].length, 2);
});

test('maxBatch splits the queue; batches commit one at a time, in arrival order', async () => {
  const repo = new Repo();
  let inFlight = 0;
  let most = 0;
  repo.next = async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
  };
  const w = writer(repo, 0, 2);
  const orders = Array.from({ length: 5 }, () => order());
  await Promise.all(orders.map((o) => w.submit(o)));
  assert.deepEqual(repo.batches.map((b) => b.length), [2, 2, 1]);
  assert.deepEqual(repo.batches.flat().map((o) => o.orderId), orders.map((o) => o.orderId));
  assert.equal(most, 1, 'one batch in flight at a time');
});

test('a failed batch: every caller of it hears busy, the backlog is 0, the next batch goes on', async () => {
  const repo = new Repo();
  const w = writer(repo);
  repo.next = async () => {
    throw new Error('database down');
  };
  const results = await Promise.allSettled([w.submit(order()), w.submit(order())]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const err = (r as PromiseRejectedResult).reason;
    assert.ok(err instanceof SeckillError && err.code === 'busy');
  }
  assert.equal(w.backlog, 0);
  assert.ok(w.lastError);
  repo.next = null;
  await w.submit(order());
  assert.equal(w.lastError, null);
  assert.equal(w.ordersWritten, 1);
});

test('backlog counts the reservations waiting for their commit', async () => {
  const repo = new Repo();
  const gate = deferred();
  repo.next = () => gate.promise;
  const w = writer(repo);
  const all = Promise.all([w.submit(order()), w.submit(order())]);
  assert.equal(w.backlog, 2);
  gate.resolve();
  await all;
  assert.equal(w.backlog, 0);
});

test('close writes what is waiting, then refuses new work with busy', async () => {
  const repo = new Repo();
  const w = writer(repo, 1000);
  const p = w.submit(order());
  await w.close();
  await p;
  assert.equal(repo.batches.length, 1);
  await assert.rejects(w.submit(order()), (err: unknown) => err instanceof SeckillError && err.code === 'busy');
});
