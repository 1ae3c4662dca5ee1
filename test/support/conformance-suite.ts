// The conformance suite of one engine+store combination: the same spec for every one of them.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { skipUnlessServices } from './cluster.js';
import { Backend, usesPostgres, usesRedis, type Combo } from './backends.js';
import Database from 'better-sqlite3';
import type { Order } from '../../src/domain/order.js';
import { PgRecordStore } from '../../src/stores/postgres/pg-record-store.js';
import { faultReport, runInterleavings, runModel, runRefundPath, type FaultStat } from './sale-model.js';

const num = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);

/** Sizes: small enough for the whole tier to take a few minutes on a loaded 2-core machine. */
export interface SuiteSize {
  modelRuns: number;
  faultRuns: number;
  interleavingRuns: number;
  maxCommands: number;
}

/** The event types an order in each status has written, in order. */
const LIFECYCLE: Record<string, string[]> = {
  reserved: ['order.reserved'],
  paid: ['order.reserved', 'order.paid'],
  expired: ['order.reserved', 'order.expired'],
  cancelled: ['order.reserved', 'order.cancelled'],
  refunded: ['order.reserved', 'order.paid', 'order.refunded'],
};

/** Every order and every order event in the database of record, read directly. */
async function outboxRows(b: Backend): Promise<{ orders: Array<{ order_id: string; status: string }>; events: Array<{ event_key: string; type: string; seq: number | string }> }> {
  const ordersSql = 'SELECT order_id, status FROM orders';
  const eventsSql = "SELECT event_key, type, seq FROM outbox_events WHERE type LIKE 'order.%'";
  if (b.pgDirect) {
    return { orders: (await b.pgDirect.query(ordersSql)).rows, events: (await b.pgDirect.query(eventsSql)).rows };
  }
  const db = new Database(path.join(b.dataDir, 'seckill.db'), { readonly: true, fileMustExist: true });
  try {
    return { orders: db.prepare(ordersSql).all() as Array<{ order_id: string; status: string }>, events: db.prepare(eventsSql).all() as Array<{ event_key: string; type: string; seq: number }> };
  } finally {
    db.close();
  }
}

export function conformanceSuite(combo: Combo, size: SuiteSize): void {
  let b: Backend | null = null;
  const stats = new Map<string, FaultStat>();
  let skip: string | false = false;
  const scale = num('CONFORMANCE_SCALE', 1);
  const runs = (n: number) => Math.max(1, Math.round(n * scale));

  before(async () => {
    if (usesPostgres(combo) || usesRedis(combo)) skip = await skipUnlessServices();
    if (!skip) b = await Backend.start(combo);
  });
  after(async () => {
    await b?.close();
    // A client that a failed start left behind (reconnecting to a closed proxy) must not keep this
    // file's process alive: the runner waits for it, and the next file never starts.
    setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
    if (stats.size > 0) process.stdout.write(`# ${combo} faults:\n${faultReport(stats).replace(/^/gm, '#   ')}\n`);
  });

  const timed = async <T extends object>(name: string, f: () => Promise<T>) => {
    const t0 = Date.now();
    const r = await f();
    process.stdout.write(`# ${combo} ${name}: ${JSON.stringify(r)} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  };

  test(`${combo}: reserve, pay, cancel, refund, expire, restart follow the model`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('model', () => runModel(b!, { numRuns: runs(size.modelRuns), maxCommands: size.maxCommands, withFaults: false }, stats));
  });

  test(`${combo}: a refund keeps or returns the units per restockOnRefund, once, across a restart`, async (t) => {
    if (skip) return t.skip(String(skip));
    for (const restock of [false, true]) await timed(`refund path (restockOnRefund ${restock})`, () => runRefundPath(b!, restock));
  });

  test(`${combo}: concurrent reserves and transitions in scheduled orders form a legal history`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('interleavings', () => runInterleavings(b!, runs(size.interleavingRuns)));
  });

  if (!usesRedis(combo)) {
    test(`${combo}: a second instance on the same data refuses to start (one seller per stock)`, async (t) => {
      if (skip) return t.skip(String(skip));
      // Waiting for the first to go is no refusal: after 30 s this resolves, and the assertion fails.
      const started = Promise.race([b!.startSecond(), new Promise<void>((r) => setTimeout(r, 30_000).unref())]);
      await assert.rejects(started, 'a second process on the same data would sell the same stock again');
    });
  }

  test(`${combo}: under faults every answer is true (busy means nothing changed)`, async (t) => {
    if (skip) return t.skip(String(skip));
    await timed('faults', () => runModel(b!, { numRuns: runs(size.faultRuns), maxCommands: size.maxCommands, withFaults: true }, stats));
  });

  // The outbox (issue 13), over every order the runs above left: each change wrote exactly one
  // event, in its transaction, numbered by the lifecycle.
  test(`${combo}: every order has exactly the outbox events of its lifecycle, seq 1…n`, async (t) => {
    if (skip) return t.skip(String(skip));
    await b!.ensureRunning();
    for (const s of b!.at(0).sales.all()) await b!.drained(s.id);
    const { orders, events } = await outboxRows(b!);
    assert.ok(orders.length > 0);
    const byKey = new Map<string, Array<{ type: string; seq: number }>>();
    for (const e of events) byKey.set(e.event_key, [...(byKey.get(e.event_key) ?? []), { type: e.type, seq: Number(e.seq) }]);
    for (const o of orders) {
      const got = (byKey.get(o.order_id) ?? []).sort((x, y) => x.seq - y.seq);
      const want = LIFECYCLE[o.status];
      assert.deepEqual(got.map((e) => e.type), want, `order ${o.order_id} (${o.status}): its events`);
      assert.deepEqual(got.map((e) => e.seq), want.map((_, i) => i + 1), `order ${o.order_id}: seq 1…n`);
    }
    process.stdout.write(`# ${combo} outbox: ${orders.length} orders, ${events.length} events\n`);
  });

  if (usesPostgres(combo)) {
    test(`${combo}: a replayed writer batch (applyBatch) adds no event`, async (t) => {
      if (skip) return t.skip(String(skip));
      const pgStore = new PgRecordStore(b!.databaseUrl!, 1);
      try {
        const before = await outboxRows(b!);
        const some = before.orders.slice(0, 50);
        const orders = (await Promise.all(some.map((o) => pgStore.getOrder(o.order_id)))).filter((o): o is Order => o !== null);
        const reserved = orders.map((o) => ({ ...o, status: 'reserved' as const, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null }));
        await pgStore.applyBatch(reserved, orders.filter((o) => o.status !== 'reserved'));
        await pgStore.applyBatch([], orders.filter((o) => o.status !== 'reserved'));
        assert.equal((await outboxRows(b!)).events.length, before.events.length);
      } finally {
        await pgStore.close();
      }
    });
  }
}
