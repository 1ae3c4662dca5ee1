// Lost replies without a database (issue 9, defect 1): the group-commit writer and the memory engine
// facing a repository whose writes end in AmbiguousOutcome. What is known committed answers as
// written, what is known not committed answers busy and returns its stock, and what stays unknown
// past the wait answers a 500 that says so while its stock stays held until the outcome is known.
// A transition whose reply was lost returns its stock exactly once, only if it applied.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';
import { MemoryStockEngine } from '../../src/engine/memory-engine.js';
import { AmbiguousOutcome, OutcomeUnknown } from '../../src/domain/outcome.js';
import { OrderWriter } from '../../src/engine/group-commit.js';
import type { RecordStore } from '../../src/stores/record-store.js';
import type { Transition } from '../../src/domain/transition.js';
import { until } from '../support/wait.js';

const silent = pino({ level: 'silent' });

function saleOf(stock: number): Sale {
  const now = Date.now();
  return { id: 's1', name: 'n', description: '', priceCents: 100, stock, startsAt: now - 1000, endsAt: null, perUserLimit: 1, paymentWindowSeconds: 60, paused: false, restockOnRefund: false, secret: 'x', createdAt: now };
}

/** A repository whose every batch insert loses its reply; the test decides each outcome. */
function lossyRepo() {
  const batches: Array<{ orders: Order[]; settle: (committed: Set<string>) => void }> = [];
  let transition: (orderId: string, t: Transition) => Promise<Order | null> = async () => null;
  const repo = {
    holdings: async () => new Map<string, number>(),
    insertOrders: async (orders: Order[]) => {
      let settle!: (committed: Set<string>) => void;
      const outcome = new Promise<Set<string>>((resolve) => (settle = resolve));
      batches.push({ orders, settle });
      throw new AmbiguousOutcome(outcome, new Error('connection cut after COMMIT was sent'));
    },
    transition: (orderId: string, t: Transition) => transition(orderId, t),
  } as unknown as RecordStore;
  return { repo, batches, onTransition: (f: typeof transition) => (transition = f) };
}

test('lost commit reply: committed orders answer as written, the others busy with their stock back', async () => {
  const { repo, batches } = lossyRepo();
  const writer = new OrderWriter(repo, { groupCommitMs: 0, maxBatch: 100, outcomeWaitMs: 5000 }, silent);
  const released: string[] = [];
  const engine = new MemoryStockEngine(writer, repo, { onRelease: (_s, u) => released.push(u) });
  const sale = saleOf(3);
  await engine.load(sale);
  const a = engine.reserve(sale, 'a', 1, Date.now());
  const b = engine.reserve(sale, 'b', 1, Date.now());
  b.catch(() => undefined);
  await until('one batch', () => batches.length === 1, 5000, 5);
  assert.equal(engine.available(sale.id), 1, 'stock held while the outcome is checked');
  const [batch] = batches;
  const aOrder = batch.orders.find((o) => o.userId === 'a')!;
  batch.settle(new Set([aOrder.orderId]));
  const ra = await a;
  assert.equal(ra.ok, true);
  await assert.rejects(b, (err: SeckillError) => err.code === 'busy');
  assert.equal(engine.available(sale.id), 2, 'only the order known not committed gave its stock back');
  assert.deepEqual(released, ['b']);
  assert.equal(writer.inDoubt, 0);
});

test('outcome still unknown after the wait: a 500 that says so, the stock held until the database answers', async () => {
  const { repo, batches } = lossyRepo();
  const writer = new OrderWriter(repo, { groupCommitMs: 0, maxBatch: 100, outcomeWaitMs: 50 }, silent);
  const engine = new MemoryStockEngine(writer, repo);
  const sale = saleOf(2);
  await engine.load(sale);
  const a = engine.reserve(sale, 'a', 1, Date.now());
  const err = await a.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OutcomeUnknown, String(err));
  assert.equal(err.code, 'internal');
  assert.notEqual(err.code, 'busy', 'never busy: the order may exist');
  assert.equal(engine.available(sale.id), 1, 'its stock stays held');
  assert.equal(writer.inDoubt, 1);
  // The database answers later: not committed, so the stock comes back, once.
  batches[0].settle(new Set());
  await until('two units available', () => engine.available(sale.id) === 2, 5000, 5);
  await sleep(20);
  assert.equal(engine.available(sale.id), 2);
  assert.equal(writer.inDoubt, 0);

  // Committed after all: the stock stays taken.
  const b = engine.reserve(sale, 'b', 1, Date.now());
  const errB = await b.then(() => null, (e: unknown) => e);
  assert.ok(errB instanceof OutcomeUnknown);
  batches[1].settle(new Set([batches[1].orders[0].orderId]));
  assert.equal(await errB.applied, true);
  await sleep(20);
  assert.equal(engine.available(sale.id), 1);
});

test('lost transition reply: the order read back says whether it applied; stock returns exactly once', async () => {
  const { repo, onTransition } = lossyRepo();
  const writer = new OrderWriter({ insertOrders: async () => undefined } as unknown as RecordStore, { groupCommitMs: 0, maxBatch: 100 }, silent);
  const engine = new MemoryStockEngine(writer, repo, { outcomeWaitMs: 1000 });
  const sale = saleOf(1);
  await engine.load(sale);
  const r = await engine.reserve(sale, 'a', 1, Date.now());
  assert.ok(r.ok);
  const order = r.order;
  assert.equal(engine.available(sale.id), 0);

  // Applied: the cancel is reported, the stock returns once.
  onTransition(async () => {
    throw new AmbiguousOutcome(Promise.resolve<Order | null>({ ...order, status: 'cancelled' }), new Error('reply lost'));
  });
  const cancelled = await engine.transition(order, { to: 'cancelled' }, Date.now());
  assert.equal(cancelled?.status, 'cancelled');
  assert.equal(engine.available(sale.id), 1);

  // Not applied (still reserved): busy, nothing returned.
  const r2 = await engine.reserve(sale, 'b', 1, Date.now());
  assert.ok(r2.ok);
  onTransition(async () => {
    throw new AmbiguousOutcome(Promise.resolve<Order | null>({ ...r2.order }), new Error('reply lost'));
  });
  await assert.rejects(engine.transition(r2.order, { to: 'cancelled' }, Date.now()), (err: SeckillError) => err.code === 'busy');
  assert.equal(engine.available(sale.id), 0);

  // Another transition won (expired by someone else): null, nothing returned here.
  onTransition(async () => {
    throw new AmbiguousOutcome(Promise.resolve<Order | null>({ ...r2.order, status: 'expired' }), new Error('reply lost'));
  });
  assert.equal(await engine.transition(r2.order, { to: 'cancelled' }, Date.now()), null);
  assert.equal(engine.available(sale.id), 0);
});
