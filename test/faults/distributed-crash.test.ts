// Distributed-mode crash tests: seckill processes on real Redis and PostgreSQL (test/cluster.ts).
// - kill -9 one of three processes under load, restart it, three rounds;
// - kill -9 an order writer holding a batch committed to PostgreSQL but not acknowledged in the
//   Redis stream (fault injection: SECKILL_TEST_WRITER_PAUSE_MS), with live peers that claim it;
// - kill -9 an order writer holding a batch it has not committed yet
//   (SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS), with entries not delivered to anyone yet.
// After each: every 202 has its row, no duplicates, rows without a 202 only from buys whose
// answer was lost in the crash, invariants 1–2, every refusal true, `seckill reconcile` clean.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { skipUnlessServices } from '../support/cluster.js';
import {
  BuyLoad,
  FaultCluster,
  acksWithoutRow,
  assertReconciled,
  checkAnswers,
  checkRowsWithoutAck,
  dbOrders,
  invariants,
  kill9,
  killTracked,
  orderIdsInDb,
  pendingEntries,
  tally,
  undelivered,
  until,
  type BuyRecord,
  type PendingEntry,
} from '../support/distributed.js';

const LIMIT = 2;

after(killTracked);

/** Everything the database must say after a crash, for the buys of `load` so far. */
async function verify(
  cluster: FaultCluster,
  load: BuyLoad,
  saleId: string,
  stock: number,
  unknownOutcome: BuyRecord[],
  where: string,
): Promise<{ rows: number; held: number; withoutAck: number }> {
  const rows = await cluster.orders(saleId); // waits until the writers drained the stream
  const held = invariants(rows, stock, LIMIT);
  const missing = acksWithoutRow(load.records, rows);
  assert.deepEqual(missing.map((r) => r.orderId), [], `${where}: 202s without a row`);
  const withoutAck = await checkRowsWithoutAck(load.records, rows, unknownOutcome, cluster.procs[0].url, (u) => load.token(u));
  checkAnswers(load.records, await dbOrders(cluster.databaseUrl, saleId), stock, LIMIT);
  await assertReconciled(cluster, saleId);
  return { rows: rows.length, held, withoutAck };
}

test('kill -9 one of three seckill processes under load, three rounds: every 202 has its row, reconcile clean', { timeout: 600_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) {
    t.skip(reason);
    return;
  }
  const started = Date.now();
  // Large enough never to sell out in three rounds: "the others kept selling" needs stock left.
  const STOCK = 1_000_000;
  const cluster = new FaultCluster({ processes: 3 });
  try {
    await cluster.start();
    const saleId = await cluster.createSale({ stock: STOCK, perUserLimit: LIMIT });
    const down = new Set<number>();
    const load = new BuyLoad({ saleId, targets: () => cluster.procs.map((p, i) => (down.has(i) ? null : p.url)), concurrency: 60, newUserShare: 0.75 });
    const unknownOutcome: BuyRecord[] = [];
    const first = Math.floor(Math.random() * 3);
    for (let round = 1; round <= 3; round++) {
      const before = load.records.length;
      load.start();
      await until('a 202 in this round', () => load.records.slice(before).some((r) => r.status === 202), 60_000);
      await sleep(300 + Math.random() * 1000);
      const victim = (first + round) % 3;
      // Mark it down, note what is in flight on it, and kill it, in one synchronous step.
      down.add(victim);
      const inflight = load.inflightOn(victim);
      const killedAt = Date.now();
      const restarted = cluster.crashAndRestart(victim); // SIGKILL is sent before this returns
      unknownOutcome.push(...inflight);
      await restarted;
      const restartMs = Date.now() - killedAt;
      down.delete(victim);
      await sleep(500); // all three again
      await load.stop();

      const mine = load.records.slice(before);
      const noAnswer = mine.filter((r) => r.status === null);
      assert.ok(noAnswer.every((r) => r.target === victim), `round ${round}: buys without an answer elsewhere than the killed process: ${noAnswer.filter((r) => r.target !== victim).map((r) => r.error).slice(0, 3).join('; ')}`);
      assert.ok(mine.filter((r) => r.target !== victim && r.t0 > killedAt && r.status === 202).length > 0, `round ${round}: the others kept selling during the restart`);
      const v = await verify(cluster, load, saleId, STOCK, unknownOutcome, `round ${round}`);
      t.diagnostic(
        `round ${round}: killed process ${victim} with ${inflight.length} buys in flight, restarted in ${restartMs} ms; ` +
          `answers ${JSON.stringify(tally(mine))}; rows ${v.rows} (${v.withoutAck} without a 202 so far), ${v.held} units held`,
      );
    }
    const acked = load.records.filter((r) => r.status === 202).length;
    t.diagnostic(`total: ${load.records.length} buys, ${acked} × 202, ${load.users.length} users, ${Date.now() - started} ms`);
  } finally {
    await cluster.shutdown();
  }
});

/** Wait for a batch of `consumer` in the state `committed` (true: in PostgreSQL, false: not yet). */
async function batchHeldBy(redis: Redis, cluster: FaultCluster, saleId: string, consumer: string, committed: boolean, maxIdleMs: number): Promise<PendingEntry[]> {
  return until(`a ${committed ? 'committed' : 'uncommitted'} batch held by ${consumer}`, async () => {
    const pending = await pendingEntries(redis, cluster.keys, saleId, consumer);
    if (pending.length === 0 || pending.some((e) => e.idleMs > maxIdleMs || !e.orderId)) return undefined;
    const inDb = await orderIdsInDb(cluster.databaseUrl, pending.map((e) => e.orderId!));
    const all = pending.every((e) => inDb.has(e.orderId!) === committed);
    return all ? pending : undefined;
  }, 60_000, 15);
}

test('kill -9 an order writer between its PostgreSQL commit and its XACK: peers claim the batch, re-applied idempotently', { timeout: 600_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) {
    t.skip(reason);
    return;
  }
  const started = Date.now();
  // Large enough never to sell out in three rounds: "the others kept selling" needs stock left.
  const STOCK = 1_000_000;
  const cluster = new FaultCluster({ processes: 2 });
  const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await cluster.start();
    // Process 2 commits each batch, then waits 2 s before acknowledging it.
    const paused = await cluster.spawnWith({ SECKILL_TEST_WRITER_PAUSE_MS: '2000' });
    const victim = cluster.procs.indexOf(paused);
    const consumer = cluster.consumerOf(victim);
    const saleId = await cluster.createSale({ stock: STOCK, perUserLimit: LIMIT });
    const down = new Set<number>();
    const load = new BuyLoad({ saleId, targets: () => cluster.procs.map((p, i) => (down.has(i) ? null : p.url)), concurrency: 40 }).start();

    // Kill it while it holds a committed batch, before the 1 s claim idle lets a peer take it.
    const held = await batchHeldBy(redis, cluster, saleId, consumer, true, 700);
    down.add(victim);
    const inflight = load.inflightOn(victim);
    await kill9(paused.child);
    const killedAt = Date.now();
    // It was paused for 2 s after the commit and at most 0.7 s had passed: it had not acknowledged.
    const stillPending = (await pendingEntries(redis, cluster.keys, saleId, consumer)).filter((e) => held.some((h) => h.id === e.id)).length;

    // The peers claim it (XAUTOCLAIM after 1 s idle) while the load goes on; then the process comes back, without the pause.
    await until('the dead writer’s entries claimed', async () => (await pendingEntries(redis, cluster.keys, saleId, consumer)).length === 0, 60_000, 50);
    const claimedMs = Date.now() - killedAt;
    await load.stop();
    await cluster.spawnWith({ SECKILL_TEST_WRITER_PAUSE_MS: '0' }, victim);

    const claims = cluster.procs.filter((p, i) => i !== victim && p.output.join('').includes('claimed entries of a silent consumer'));
    assert.ok(claims.length > 0, 'a live writer claimed the entries');
    const v = await verify(cluster, load, saleId, STOCK, inflight, 'after the writer crash');
    const rows = await dbOrders(cluster.databaseUrl, saleId);
    const byId = new Map(rows.map((r) => [r.order_id, r]));
    for (const e of held) assert.equal(byId.get(e.orderId!)?.status, 'reserved', `order ${e.orderId} of the re-applied batch`);
    assert.equal((await pendingEntries(redis, cluster.keys, saleId)).length, 0, 'nothing left pending');
    t.diagnostic(
      `killed writer held ${held.length} committed, unacknowledged entries (${held.map((e) => e.idleMs).join(',')} ms idle, ${stillPending} still pending to it after the kill); ` +
        `claimed by a peer ${claimedMs} ms after the kill; ${inflight.length} buys in flight on it; answers ${JSON.stringify(tally(load.records))}; ` +
        `rows ${v.rows} (${v.withoutAck} without a 202), ${Date.now() - started} ms`,
    );
  } finally {
    redis.disconnect();
    await cluster.shutdown();
  }
});

test('kill -9 an order writer before its commit, with entries never delivered: another writer writes them all', { timeout: 600_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) {
    t.skip(reason);
    return;
  }
  const started = Date.now();
  const STOCK = 5000;
  // One process; its writer waits between reading a batch and committing it, until it is killed:
  // long, so that a loaded machine's slow steps before the kill cannot outlast the pause.
  const PAUSE_MS = 120_000;
  const cluster = new FaultCluster({ processes: 1, env: { SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS: String(PAUSE_MS) } });
  const redis = new Redis(cluster.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await cluster.start();
    const consumer = cluster.consumerOf(0);
    const saleId = await cluster.createSale({ stock: STOCK, perUserLimit: LIMIT });
    const load = new BuyLoad({ saleId, targets: () => [cluster.procs[0].url], concurrency: 40 }).start();

    // A batch delivered and not committed; let more buys pile up undelivered behind it, then stop
    // buying (every buy answered) and kill the process inside the pause.
    await batchHeldBy(redis, cluster, saleId, consumer, false, 500);
    await sleep(700);
    await load.stop();
    const held = await pendingEntries(redis, cluster.keys, saleId, consumer);
    const lag = await undelivered(redis, cluster.keys, saleId);
    assert.ok(held.length > 0 && held.every((e) => e.idleMs < PAUSE_MS - 10_000), `still inside the pause: ${JSON.stringify(held.slice(0, 3))}`);
    await kill9(cluster.procs[0].child);
    const inDb = await orderIdsInDb(cluster.databaseUrl, held.map((e) => e.orderId!));
    assert.equal(inDb.size, 0, 'the killed batch was never committed');
    const acked = load.records.filter((r) => r.status === 202);
    const before = (await dbOrders(cluster.databaseUrl, saleId)).length;
    assert.ok(before < acked.length, `${acked.length} × 202 but only ${before} rows before another writer runs`);

    // Another process (no pause): it reads the undelivered entries and claims the dead writer's.
    const killedAt = Date.now();
    await cluster.spawnWith({ SECKILL_TEST_WRITER_PAUSE_BEFORE_COMMIT_MS: '0' }, 0);
    const v = await verify(cluster, load, saleId, STOCK, [], 'after the writer crash');
    const writtenMs = Date.now() - killedAt;
    assert.equal(v.rows, acked.length, 'one row per 202, no more');
    assert.ok(cluster.procs[0].output.join('').includes('claimed entries of a silent consumer'), 'the new writer claimed the dead writer’s entries');
    assert.equal((await pendingEntries(redis, cluster.keys, saleId)).length, 0, 'nothing left pending');
    t.diagnostic(
      `killed writer held ${held.length} uncommitted entries, ${lag} more undelivered; ${acked.length} × 202, ${before} rows before, ` +
        `${v.rows} rows ${writtenMs} ms after the kill (new process started and drained); answers ${JSON.stringify(tally(load.records))}; ${Date.now() - started} ms`,
    );
  } finally {
    redis.disconnect();
    await cluster.shutdown();
  }
});
