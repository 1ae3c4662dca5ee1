// The embedded engine with a fake order writer and repository: the stock rules without a database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import { MemoryStockEngine } from '../../src/engine/memory-engine.js';
import { LocalRefusals } from '../../src/gateway/local-refusals.js';
import type { OrderWriter } from '../../src/engine/group-commit.js';
import type { RecordStore } from '../../src/stores/record-store.js';
import type { Transition } from '../../src/domain/transition.js';
import { deferred, sale } from '../support/fakes.js';

/** A writer whose commits the test decides: each submit waits for `commit()` or `fail()`. */
class FakeWriter {
  readonly pending: Array<{ order: Order; d: ReturnType<typeof deferred<void>> }> = [];
  auto = true;
  submit(order: Order): Promise<void> {
    if (this.auto) return Promise.resolve();
    const d = deferred();
    this.pending.push({ order, d });
    return d.promise;
  }
  commit(): void {
    for (const p of this.pending.splice(0)) p.d.resolve();
  }
  fail(): void {
    for (const p of this.pending.splice(0)) p.d.reject(new SeckillError('busy', 'Could not record the order; nothing was changed.'));
  }
}

/** A repository of orders in a map, with the conditional transition of the real ones. */
class FakeRepo {
  readonly orders = new Map<string, Order>();
  held = new Map<string, number>();
  async holdings() {
    return new Map(this.held);
  }
  async getOrder(id: string) {
    return this.orders.get(id) ?? null;
  }
  async transition(id: string, t: Transition, now: number): Promise<Order | null> {
    const o = this.orders.get(id);
    if (!o || o.status !== 'reserved') return null;
    if (t.to === 'paid' && o.expiresAt <= now) return null;
    const after: Order = t.to === 'paid' ? { ...o, status: 'paid', paidAt: t.paidAt, paymentRef: t.paymentRef } : { ...o, status: t.to };
    this.orders.set(id, after);
    return after;
  }
}

function engine(opts: { onRelease?: (s: string, u: string) => void } = {}) {
  const writer = new FakeWriter();
  const repo = new FakeRepo();
  const Ctor = MemoryStockEngine as unknown as new (w: OrderWriter, r: RecordStore, o?: object) => MemoryStockEngine;
  const e = new Ctor(writer as unknown as OrderWriter, repo as unknown as RecordStore, opts);
  return { e, writer, repo };
}

test('load: available is the stock less what the database says is held', async () => {
  const { e, repo } = engine();
  repo.held = new Map([['ann', 1], ['bob', 1]]);
  await e.load(sale({ stock: 5 }));
  assert.equal(e.available('sale-1'), 3);
});

test('reserve: within the limit and the stock; the limit is checked before the stock', async () => {
  const { e } = engine();
  const s = sale({ stock: 2, perUserLimit: 1 });
  await e.load(s);
  const a = await e.reserve(s, 'ann', 1, 5_000);
  assert.ok(a.ok);
  assert.equal(a.available, 1);
  assert.equal(a.held, 1);
  assert.equal(a.order.expiresAt, 5_000 + 60_000);
  const again = await e.reserve(s, 'ann', 1, 5_000);
  assert.deepEqual([again.ok, !again.ok && again.refusal], [false, 'limit_reached']);
  assert.ok((await e.reserve(s, 'bob', 1, 5_000)).ok);
  const out = await e.reserve(s, 'cyd', 1, 5_000);
  assert.deepEqual([out.ok, !out.ok && out.refusal], [false, 'sold_out']);
  const over = await e.reserve(s, 'ann', 1, 5_000);
  assert.equal(!over.ok && over.refusal, 'limit_reached', 'at the limit and sold out: limit_reached');
});

test('reserve: a quantity over the remaining stock is refused, the stock untouched', async () => {
  const { e } = engine();
  const s = sale({ stock: 1, perUserLimit: 2 });
  await e.load(s);
  const r = await e.reserve(s, 'ann', 2, 5_000);
  assert.equal(!r.ok && r.refusal, 'sold_out');
  assert.equal(e.available('sale-1'), 1);
});

test('a failed commit: busy, and the stock and the holding go back', async () => {
  const { e, writer } = engine();
  const s = sale({ stock: 1, perUserLimit: 1 });
  await e.load(s);
  writer.auto = false;
  const p = e.reserve(s, 'ann', 1, 5_000);
  assert.equal(e.available('sale-1'), 0, 'held while the commit runs');
  writer.fail();
  await assert.rejects(p, (err: unknown) => err instanceof SeckillError && err.code === 'busy');
  assert.equal(e.available('sale-1'), 1);
  writer.auto = true;
  assert.ok((await e.reserve(s, 'ann', 1, 5_000)).ok, 'the same user may buy again');
});

test('a failed commit clears the hints set from answers computed while it held the stock (issue 9, defect 4)', async () => {
  const refusals = new LocalRefusals();
  const { e, writer } = engine({ onRelease: (saleId, userId) => refusals.released(saleId, userId) });
  const s = sale({ stock: 1, perUserLimit: 1 });
  await e.load(s);
  writer.auto = false;
  const first = e.reserve(s, 'ann', 1, 5_000);
  // Meanwhile another buyer is refused sold out; the gateway marks the sale sold out from that.
  const second = await e.reserve(s, 'bob', 1, 5_000);
  assert.equal(!second.ok && second.refusal, 'sold_out');
  refusals.markSoldOut('sale-1');
  refusals.markAtLimit('sale-1', 'ann');
  writer.fail();
  await assert.rejects(first);
  assert.equal(e.available('sale-1'), 1);
  assert.equal(refusals.isSoldOut('sale-1'), false, 'sold-out flag cleared with the stock');
  assert.equal(refusals.holdsLimit('sale-1', 'ann'), false, 'at-limit memo cleared with the holding');
});

test('the answer of a reserve reports the stock after its commit, not before', async () => {
  const { e, writer } = engine();
  const s = sale({ stock: 2, perUserLimit: 1 });
  await e.load(s);
  writer.auto = false;
  const a = e.reserve(s, 'ann', 1, 5_000);
  const b = e.reserve(s, 'bob', 1, 5_000);
  // ann's commit fails, bob's succeeds: bob's answer must not say sold out.
  const [pa, pb] = writer.pending.splice(0);
  pa.d.reject(new SeckillError('busy'));
  await assert.rejects(a);
  pb.d.resolve();
  const rb = await b;
  assert.ok(rb.ok);
  assert.equal(rb.available, 1);
});

test('transitions: cancel and expire return the stock once; pay keeps it; a lost race returns nothing', async () => {
  const { e, repo } = engine();
  const s = sale({ stock: 2, perUserLimit: 2 });
  await e.load(s);
  const a = await e.reserve(s, 'ann', 1, 5_000);
  const b = await e.reserve(s, 'ann', 1, 5_000);
  assert.ok(a.ok && b.ok);
  for (const r of [a, b]) repo.orders.set(r.order.orderId, r.order);
  assert.equal(e.available('sale-1'), 0);
  const paid = await e.transition(a.order, { to: 'paid', paidAt: 6_000, paymentRef: 'p1' }, 6_000);
  assert.equal(paid?.status, 'paid');
  assert.equal(e.available('sale-1'), 0, 'paid keeps its stock');
  const cancelled = await e.transition(b.order, { to: 'cancelled' }, 6_000);
  assert.equal(cancelled?.status, 'cancelled');
  assert.equal(e.available('sale-1'), 1);
  assert.equal(await e.transition(b.order, { to: 'expired' }, 100_000), null, 'already out of reserved');
  assert.equal(e.available('sale-1'), 1, 'returned exactly once');
});
