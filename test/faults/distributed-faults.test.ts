// Plan B under faults (docs/design.md): backing stores stopped for a few seconds under load.
// - switches set through one process apply on the others (Redis) and show in their /metrics;
// - PostgreSQL stopped, mode "postgres" (in-memory engine, PostgreSQL orders through the group-commit
//   writer): buys 503 busy at once, the stock put back, /readyz 503, no 500, no hang; a 202 within
//   the restart (how soon is reported); every 202 has its row; the engine's stock matches the rows;
// - PostgreSQL stopped, distributed mode: Redis still decides and the stream holds the orders, so
//   buys may get 202 while the writer's backlog grows; a process with a low
//   SECKILL_MAX_WRITER_BACKLOG sheds with 503 busy once the backlog passes it; reads that need
//   PostgreSQL answer 503 busy; after the restart the writers catch up by themselves, every 202 has
//   its row, reconcile clean;
// - Redis stopped: buys 503 busy (fast, with Retry-After), /readyz 503 and the breaker open in
//   /metrics during; buying resumes by itself once it is back (how soon is reported), no seckill restart.
// Each PostgreSQL / Redis here is test-owned (its own port and temporary directory).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { skipUnlessServices } from '../support/cluster.js';
import { ADMIN_KEY, startTestServer, userToken } from '../support/server.js';
import {
  BuyLoad,
  FaultCluster,
  RedisServer,
  acksWithoutRow,
  alive,
  assertReconciled,
  checkRowsWithoutAck,
  dbOrders,
  invariants,
  killTracked,
  PATIENCE_MS,
  tally,
  timedCall,
  until,
  type BuyRecord,
} from '../support/distributed.js';
import { metric, metricSum } from '../support/metrics.js';
import { PgServer, pgBinDir } from '../support/pg-server.js';

after(killTracked);

const LIMIT = 2;
/**
 * A call must be answered within this, also during an outage: only a hang fails. How fast the
 * answers were is reported, not asserted (CI is a loaded 2-core machine; the benchmark measures).
 */
const CALL_MS = PATIENCE_MS;
const OUTAGE_MS = 3000;

/** Skip (or, in CI, fail) without Redis, PostgreSQL or the PostgreSQL server binaries. */
async function skipReason(): Promise<string | false> {
  const reason = await skipUnlessServices();
  if (reason) return reason;
  if (!pgBinDir()) {
    const r = 'no PostgreSQL server binaries under /usr/lib/postgresql (initdb, pg_ctl)';
    if (process.env.CI) throw new Error(r);
    return r;
  }
  return false;
}

/** Every answer is 202, 409 sold_out/limit_reached or 503 busy with Retry-After; none missing. */
function checkAllowed(records: BuyRecord[]): void {
  assert.deepEqual(records.filter((r) => r.status === null).map((r) => r.error).slice(0, 5), [], 'buys without an answer');
  assert.deepEqual(records.filter((r) => r.error !== null).map((r) => r.error).slice(0, 5), [], 'malformed answers');
  for (const r of records) {
    if (r.status === 202) continue;
    const ok = (r.status === 409 && (r.code === 'sold_out' || r.code === 'limit_reached')) || (r.status === 503 && r.code === 'busy');
    assert.ok(ok, `answer ${r.status} ${r.code} to a buy`);
    if (r.status === 503) assert.ok(r.retryAfter && Number(r.retryAfter) >= 1, `503 without Retry-After (${r.retryAfter})`);
  }
}

const acked = (records: BuyRecord[]) => records.filter((r) => r.status === 202).length;

// ---------------------------------------------------------------------------------------------

test('switches set through one process apply on the others and show in their /metrics', { timeout: 600_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return void t.skip(reason);
  const cluster = new FaultCluster({ processes: 2 });
  try {
    await cluster.start();
    const [a, b] = cluster.procs.map((p) => p.url);
    const saleId = await cluster.createSale({ stock: 10, perUserLimit: 1 });
    const buyOn = async (url: string, user: string) => {
      const token = userToken(user);
      const p = await timedCall(url, 'POST', `/api/sales/${saleId}/path`, { token }, CALL_MS);
      if (p.status !== 200) return p;
      return timedCall(url, 'POST', `/api/sales/${saleId}/buy/${p.body.path}`, { token, body: {} }, CALL_MS);
    };
    const set = await timedCall(a, 'POST', '/api/admin/switches', { token: ADMIN_KEY, body: { refuseBuys: true } }, CALL_MS);
    assert.equal(set.status, 200, set.text);
    await until('refuseBuys on the other process', async () => (await timedCall(b, 'GET', '/api/admin/switches', { token: ADMIN_KEY }, CALL_MS)).body.refuseBuys === true, 60_000);
    const m = (await timedCall(b, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text;
    assert.equal(metric(m, 'seckill_switch', 'name="refuseBuys"'), 1);
    const refused = await buyOn(b, 'alice');
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.body.error?.code, 'busy');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    // Off through the other one.
    await timedCall(b, 'POST', '/api/admin/switches', { token: ADMIN_KEY, body: { refuseBuys: false } }, CALL_MS);
    await until('refuseBuys off on the first process', async () => (await timedCall(a, 'GET', '/api/admin/switches', { token: ADMIN_KEY }, CALL_MS)).body.refuseBuys === false, 60_000);
    assert.equal(metric((await timedCall(a, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text, 'seckill_switch', 'name="refuseBuys"'), 0);
    const ok = await buyOn(a, 'alice');
    assert.equal(ok.status, 202, ok.text);
    assert.equal((await cluster.orders(saleId)).length, 1, 'one row: the buy after the switch was off');
    await assertReconciled(cluster, saleId);
  } finally {
    await cluster.shutdown();
  }
});

// ---------------------------------------------------------------------------------------------

test('PostgreSQL stopped under load, mode "postgres": 503 busy at once, stock put back, /readyz 503; buying resumes by itself after the restart; every 202 has its row', { timeout: 600_000 }, async (t) => {
  const reason = await skipReason();
  if (reason) return void t.skip(reason);
  const started = Date.now();
  const STOCK = 100_000;
  const pgs = new PgServer();
  let srv: Awaited<ReturnType<typeof startTestServer>> | null = null;
  let load: BuyLoad | null = null;
  try {
    await pgs.start();
    const dbUrl = await pgs.createDatabase('seckill_pgmode');
    // In-process, embedded harness with DATABASE_URL: mode "postgres".
    srv = await startTestServer({ DATABASE_URL: dbUrl, REDIS_URL: undefined });
    const s = srv.server!.services;
    assert.equal(s.mode, 'postgres');
    const saleId = String((await srv.createSale({ stock: STOCK, perUserLimit: LIMIT })).id);
    const url = srv.url;
    load = new BuyLoad({ saleId, targets: () => [url], concurrency: 40, timeoutMs: CALL_MS }).start();
    await until('some orders', () => acked(load!.records) >= 200, 120_000);

    const stop = Date.now();
    await pgs.stop('fast');
    const down = Date.now();
    await until('/readyz 503', async () => (await timedCall(url, 'GET', '/readyz', {}, CALL_MS)).status === 503, 60_000);
    // Once the database is seen down, failed buys put their stock back: nothing moves.
    await until('the breaker open', () => s.breakers.some((b) => b.state === 'open'), 60_000);
    // Reservations waiting for their commit hold their stock until it fails: compare only moments
    // when none is waiting.
    const settledAvailable = () => until('no reservation waiting for its commit', () => (s.writer.backlog === 0 ? s.engine.available(saleId) + 0.5 : undefined), 60_000, 5).then((v) => v - 0.5);
    await sleep(200);
    const availableDuring = await settledAvailable();
    const m = (await timedCall(url, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text;
    // Open (1) or probing (0.5): a probe may be in flight at the instant of the scrape.
    assert.ok((metric(m, 'seckill_breaker_open', 'store="database"') ?? 0) > 0, 'breaker not closed in /metrics');
    const me = await timedCall(url, 'GET', '/api/me/orders', { token: userToken('someone') }, CALL_MS);
    assert.equal(me.status, 503, me.text);
    assert.equal(me.body.error?.code, 'busy');
    await sleep(OUTAGE_MS - (Date.now() - down));
    assert.equal(await settledAvailable(), availableDuring, 'stock taken during the outage');
    const restart = Date.now();
    await pgs.start();
    const up = Date.now();
    const first = await until('a 202 after the restart', () => load!.records.find((r) => r.status === 202 && r.t0 >= up), 60_000, 10);
    const recoveryMs = first.t1 - up;
    await until('/readyz 200', async () => (await timedCall(url, 'GET', '/readyz', {}, CALL_MS)).status === 200, 60_000);
    await sleep(300);
    await load.stop();

    const records = load.records;
    checkAllowed(records);
    const during = records.filter((r) => r.t0 >= down && r.t1 <= restart);
    assert.ok(during.length > 0, 'buys during the outage');
    // Nothing can be decided: 503 busy, or a refusal the process knows without I/O (its memo of users at their limit).
    assert.deepEqual(during.filter((r) => r.status !== 503 && !(r.status === 409 && r.code === 'limit_reached')).map((r) => `${r.status} ${r.code}`), [], 'only 503 busy while PostgreSQL is down');
    assert.ok(during.some((r) => r.status === 503), '503 busy during the outage');
    const slowest = Math.max(...during.map((r) => r.t1 - r.t0));

    // Every 202 has its row; a row without a 202 only for a buy whose commit was in flight at the stop.
    const rows = await dbOrders(dbUrl, saleId);
    assert.deepEqual(acksWithoutRow(records, rows).map((r) => r.orderId), [], '202s without a row');
    const unknown = records.filter((r) => r.status === 503 && r.t0 <= down);
    const withoutAck = await checkRowsWithoutAck(records, rows, unknown, url, (u) => load!.token(u));
    const held = invariants(rows, STOCK, LIMIT);
    assert.equal(s.engine.available(saleId), STOCK - held, 'engine stock = stock − rows held');
    const stats = await timedCall(url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY }, CALL_MS);
    assert.equal((stats.body.stats as { available: number }).available, STOCK - held);
    t.diagnostic(
      `postgres mode: stop took ${down - stop} ms, down ${restart - down} ms, start ${up - restart} ms, first 202 ${recoveryMs} ms after; ` +
        `during ${JSON.stringify(tally(during))}, slowest ${slowest} ms; all ${JSON.stringify(tally(records))}; ${rows.length} rows (${withoutAck} without a 202); ${Date.now() - started} ms`,
    );
  } finally {
    await load?.stop();
    await srv?.close().catch(() => undefined);
    await pgs.destroy();
  }
});

// ---------------------------------------------------------------------------------------------

/** FaultCluster whose processes use a test-owned PostgreSQL (the base class's database stays unused). */
class PgFaultCluster extends FaultCluster {
  constructor(private readonly pgUrl: string, opts: ConstructorParameters<typeof FaultCluster>[0]) {
    super(opts);
  }

  override get databaseUrl(): string {
    return this.pgUrl;
  }

  override processEnv(port: number): Record<string, string> {
    return { ...super.processEnv(port), DATABASE_URL: this.pgUrl };
  }

  override async orders(saleId: string): Promise<Array<{ order_id: string; sale_id: string; user_id: string; quantity: number; status: string }>> {
    await this.settle(saleId);
    return dbOrders(this.pgUrl, saleId);
  }
}

async function pendingWrites(url: string, saleId: string): Promise<number | null> {
  const r = await timedCall(url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY }, CALL_MS);
  return r.status === 200 ? Number((r.body.stats as { pendingWrites: number }).pendingWrites) : null;
}

test('PostgreSQL stopped under load, distributed: Redis keeps deciding, the backlog grows and is shed past its bound, reads 503 busy; the writers catch up by themselves', { timeout: 600_000 }, async (t: TestContext) => {
  const reason = await skipReason();
  if (reason) return void t.skip(reason);
  const started = Date.now();
  const STOCK = 100_000;
  const BACKLOG = 50;
  const pgs = new PgServer();
  let cluster: PgFaultCluster | null = null;
  let load: BuyLoad | null = null;
  try {
    await pgs.start();
    const dbUrl = await pgs.createDatabase(`seckill_dist_${crypto.randomBytes(3).toString('hex')}`);
    cluster = new PgFaultCluster(dbUrl, { processes: 1 });
    await cluster.start();
    // A second process that sheds once its writer's backlog passes BACKLOG.
    await cluster.spawnWith({ SECKILL_MAX_WRITER_BACKLOG: String(BACKLOG) });
    const c = cluster;
    const [plain, bounded] = c.procs.map((p) => p.url);
    const saleId = await c.createSale({ stock: STOCK, perUserLimit: LIMIT });
    load = new BuyLoad({ saleId, targets: () => c.procs.map((p) => p.url), concurrency: 40, timeoutMs: CALL_MS }).start();
    await until('some orders', () => acked(load!.records) >= 200, 120_000);

    await pgs.stop('fast');
    const down = Date.now();
    // Reads that need PostgreSQL: 503 busy, never 500.
    const readsDuring: string[] = [];
    await sleep(500);
    for (const url of [plain, bounded]) {
      const me = await timedCall(url, 'GET', '/api/me/orders', { token: userToken('reader') }, CALL_MS);
      const stats = await timedCall(url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY }, CALL_MS);
      for (const r of [me, stats]) {
        readsDuring.push(`${r.status} ${r.body.error?.code ?? ''}`);
        assert.equal(r.status, 503, r.text);
        assert.equal(r.body.error?.code, 'busy', r.text);
      }
    }
    // The backlog passes the bound: the bounded process sheds buys.
    let lastBacklog = -1;
    const sheddingSeen = await until('the bounded process shedding', async () => {
      const r = await timedCall(bounded, 'GET', '/readyz', {}, CALL_MS);
      const backlog = (r.body.pressure as { writerBacklog: number }).writerBacklog;
      lastBacklog = backlog;
      // Shed at the path already (sheddable like the buy): the load counts those as path failures.
      const shed = metricSum((await timedCall(bounded, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text, 'seckill_shed_total');
      return backlog > BACKLOG && shed > 0 ? { backlog, shed, ready: r.status } : undefined;
    }, 60_000, 50).catch((err: Error) => {
      throw new Error(`${err.message} (writer backlog ${lastBacklog}; paths refused ${JSON.stringify(load!.pathFailures)})`);
    });
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
    const restart = Date.now();
    await pgs.start();
    const up = Date.now();
    // The writers catch up by themselves.
    const caughtUp = await until('pendingWrites back to 0', async () => {
      const n = await pendingWrites(plain, saleId).catch(() => null);
      return n === 0 ? Date.now() : undefined;
    }, 120_000, 50);
    const first = await until('a 202 on the bounded process after the restart', () => load!.records.find((r) => r.status === 202 && r.target === 1 && r.t0 >= up), 60_000, 10);
    await load.stop();

    const records = load.records;
    checkAllowed(records);
    const during = records.filter((r) => r.t0 >= down && r.t1 <= restart);
    const duringPlain = during.filter((r) => r.target === 0);
    const duringBounded = during.filter((r) => r.target === 1);
    assert.ok(duringPlain.some((r) => r.status === 202), 'the unbounded process kept selling (Redis decides)');
    assert.ok((load.pathFailures['503 busy'] ?? 0) > 0, 'the bounded process shed paths with 503 busy');
    assert.deepEqual(Object.keys(load.pathFailures).filter((k) => k !== '503 busy'), [], `path answers ${JSON.stringify(load.pathFailures)}`);
    for (const p of c.procs) assert.ok(alive(p.child), `seckill died: ${p.output.join('').slice(-2000)}`);
    assert.doesNotMatch(c.procs.map((p) => p.output.join('')).join(''), /"statusCode":500|Internal Server Error/);

    const rows = await c.orders(saleId);
    assert.deepEqual(acksWithoutRow(records, rows).map((r) => r.orderId), [], '202s without a row');
    const unknown = records.filter((r) => r.status === 503 || r.status === null);
    const withoutAck = await checkRowsWithoutAck(records, rows, unknown, plain, (u) => load!.token(u));
    invariants(rows, STOCK, LIMIT);
    await assertReconciled(c, saleId);
    t.diagnostic(
      `distributed: PostgreSQL down ${restart - down} ms; reads during ${readsDuring.join(', ')}; bounded process shedding with backlog ${sheddingSeen.backlog} (shed_total ${sheddingSeen.shed}, readyz ${sheddingSeen.ready}); paths refused ${JSON.stringify(load.pathFailures)}; ` +
        `during: unbounded ${JSON.stringify(tally(duringPlain))}, bounded ${JSON.stringify(tally(duringBounded))}; caught up ${caughtUp - up} ms after the restart, ` +
        `bounded process's first 202 ${first.t1 - up} ms after; ${rows.length} rows (${withoutAck} without a 202); ${Date.now() - started} ms`,
    );
  } catch (err) {
    for (const p of cluster?.procs ?? []) t.diagnostic(`${p.url} (exit ${p.child.exitCode}): ${p.output.join('').slice(-3000)}`);
    throw err;
  } finally {
    await load?.stop();
    await cluster?.shutdown().catch(() => undefined);
    await pgs.destroy();
  }
});

// ---------------------------------------------------------------------------------------------

test('Redis stopped under load: 503 busy, /readyz 503 and the breaker open in /metrics; buying resumes by itself once it is back', { timeout: 600_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return void t.skip(reason);
  const started = Date.now();
  const STOCK = 100_000;
  const redis = new RedisServer();
  let cluster: FaultCluster | null = null;
  let load: BuyLoad | null = null;
  try {
    await redis.start();
    cluster = new FaultCluster({ processes: 1, redisUrl: redis.url, env: { SECKILL_ALLOW_VOLATILE_REDIS: '0' } });
    await cluster.start();
    const c = cluster;
    const url = c.procs[0].url;
    const pid = c.procs[0].child.pid;
    const saleId = await c.createSale({ stock: STOCK, perUserLimit: LIMIT });
    load = new BuyLoad({ saleId, targets: () => [url], concurrency: 40, timeoutMs: CALL_MS }).start();
    await until('some orders', () => acked(load!.records) >= 200, 120_000);

    await redis.stop();
    const down = Date.now();
    const notReady = await until('/readyz 503', async () => {
      const r = await timedCall(url, 'GET', '/readyz', {}, CALL_MS);
      return r.status === 503 ? r.body.checks : undefined;
    }, 60_000, 50);
    const breakerOpen = await until('breaker open in /metrics', async () => metric((await timedCall(url, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text, 'seckill_breaker_open', 'store="stock service"') === 1, 60_000, 50);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
    const restart = Date.now();
    await redis.start();
    const up = Date.now();
    const first = await until('a 202 after the restart', () => load!.records.find((r) => r.status === 202 && r.t0 >= up), 60_000, 10);
    await until('/readyz 200', async () => (await timedCall(url, 'GET', '/readyz', {}, CALL_MS)).status === 200, 60_000, 50);
    assert.equal(metric((await timedCall(url, 'GET', '/metrics', { token: ADMIN_KEY }, CALL_MS)).text, 'seckill_breaker_open', 'store="stock service"'), 0);
    await load.stop();

    const records = load.records;
    checkAllowed(records);
    const during = records.filter((r) => r.t0 >= down && r.t1 <= restart);
    assert.ok(during.length > 0);
    assert.deepEqual(during.filter((r) => r.status !== 503 && !(r.status === 409 && r.code === 'limit_reached')).map((r) => `${r.status} ${r.code}`), [], 'only 503 busy while Redis is down');
    assert.ok(during.some((r) => r.status === 503), '503 busy during the outage');
    const slowest = Math.max(...during.map((r) => r.t1 - r.t0));
    assert.equal(c.procs[0].child.pid, pid, 'seckill not restarted');
    const rows = await c.orders(saleId);
    assert.deepEqual(acksWithoutRow(records, rows).map((r) => r.orderId), [], '202s without a row');
    const unknown = records.filter((r) => r.status === 503 && r.t0 <= down);
    await checkRowsWithoutAck(records, rows, unknown, url, (u) => load!.token(u));
    invariants(rows, STOCK, LIMIT);
    await assertReconciled(c, saleId);
    t.diagnostic(
      `redis: down ${restart - down} ms; /readyz during ${JSON.stringify(notReady)}; breaker open ${breakerOpen}; first 202 ${first.t1 - up} ms after the return; ` +
        `during ${JSON.stringify(tally(during))}, slowest ${slowest} ms; ${rows.length} rows; ${Date.now() - started} ms`,
    );
  } finally {
    await load?.stop();
    await cluster?.shutdown().catch(() => undefined);
    await redis.destroy();
  }
});
