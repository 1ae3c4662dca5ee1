// PostgreSQL mode (memory engine + PostgreSQL) under faults of issue 9, each on its own database:
// - defect 1: a slow insert (orders locked ACCESS EXCLUSIVE by another session for longer than the
//   statement timeout) is cancelled by the server itself, so `503 busy` means nothing was written
//   and the stock put back is sold exactly once; rows held never exceed the stock, available never
//   exceeds it, every 202 has its row, no busy-answered buyer has one.
// - defect 1: a commit applied but its reply lost (a TCP fault proxy swallows PostgreSQL's replies,
//   then cuts the connection): the buyer still gets the 202 he is owed, the stock stays taken; a
//   cancel applied with its reply lost returns the stock exactly once.
// - defect 9: a second PostgreSQL-mode seckill on the same database refuses to start, naming it;
//   the first keeps selling; when its lock session is killed it refuses buys (busy) only until it
//   has taken the lock again.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createDatabase, skipUnlessServices } from '../support/cluster.js';
import { childEnv, killTracked, spawnSeckill, until } from '../support/launcher.js';
import { freePort } from '../support/ports.js';
import { ADMIN_KEY, call, startTestServer, tempDir, userToken, type Reply, type TestServer } from '../support/server.js';
import { FaultProxy } from '../support/fault-proxy.js';

after(killTracked);

interface Row {
  order_id: string;
  user_id: string;
  status: string;
  quantity: number;
}

async function rowsOf(db: pg.Pool, saleId: string): Promise<Row[]> {
  const r = await db.query<Row>('SELECT order_id, user_id, status, quantity FROM orders WHERE sale_id = $1', [saleId]);
  return r.rows;
}

const heldBy = (rows: Row[]) => rows.filter((r) => r.status === 'reserved' || r.status === 'paid').reduce((n, r) => n + r.quantity, 0);

/** seckill in PostgreSQL mode, in this process, on the given database URL. */
function startPgMode(databaseUrl: string, env: Record<string, string | undefined> = {}): Promise<TestServer> {
  return startTestServer({ DATABASE_URL: databaseUrl, REDIS_URL: undefined, ...env }, tempDir('seckill-pgmode-'));
}

async function pathFor(srv: TestServer, saleId: string, user: string): Promise<string> {
  const p = await srv.call('POST', `/api/sales/${saleId}/path`, { token: userToken(user) });
  assert.equal(p.status, 200, p.text);
  return String(p.body.path);
}

test('defect 1: orders locked longer than the statement timeout; busy means nothing written, stock sold exactly once', { timeout: 120_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return void t.skip(reason);
  const db = await createDatabase();
  const direct = new pg.Pool({ connectionString: db.url, max: 3 });
  direct.on('error', () => undefined);
  let srv: TestServer | null = null;
  const locker = new pg.Client({ connectionString: db.url });
  try {
    srv = await startPgMode(db.url);
    const s = srv.server!.services;
    assert.equal(s.mode, 'postgres');
    const STOCK = 3;
    const sale = await srv.createSale({ stock: STOCK, perUserLimit: 1, paymentWindowSeconds: 3 });
    const saleId = String(sale.id);

    // Sample what the engine offers: it must never offer more than the stock.
    let maxAvailable = 0;
    let maxHeld = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxAvailable = Math.max(maxAvailable, s.engine.available(saleId));
        await sleep(5);
      }
    })();
    const dbSampler = (async () => {
      while (sampling) {
        const rows = await rowsOf(direct, saleId).catch(() => null);
        if (rows) maxHeld = Math.max(maxHeld, heldBy(rows));
        await sleep(50);
      }
    })();

    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
    const lockedAt = Date.now();
    const HOLD_MS = 8000;

    // A new buyer every 150 ms for 11 s, each buying once.
    const answers: Array<{ user: string; reply: Reply | null; error?: string }> = [];
    const buys: Promise<void>[] = [];
    let n = 0;
    let released = false;
    while (Date.now() - lockedAt < 11_000) {
      if (!released && Date.now() - lockedAt >= HOLD_MS) {
        await locker.query('COMMIT');
        released = true;
      }
      const user = `buyer-${n++}`;
      buys.push((async () => {
        const rec: { user: string; reply: Reply | null; error?: string } = { user, reply: null };
        answers.push(rec);
        try {
          const p = await pathFor(srv!, saleId, user);
          rec.reply = await srv!.call('POST', `/api/sales/${saleId}/buy/${p}`, { token: userToken(user), body: {} });
        } catch (err) {
          rec.error = (err as Error).message;
        }
      })());
      await sleep(150);
    }
    if (!released) await locker.query('COMMIT');
    await Promise.all(buys);

    const tally: Record<string, number> = {};
    for (const a of answers) {
      const k = a.reply ? `${a.reply.status}${a.reply.body?.error?.code ? ` ${a.reply.body.error.code}` : ''}` : `error ${a.error}`;
      tally[k] = (tally[k] ?? 0) + 1;
    }
    const acked = answers.filter((a) => a.reply?.status === 202);
    const busy = answers.filter((a) => a.reply?.status === 503);
    assert.ok(busy.length > 0, `the lock made some buys fail: ${JSON.stringify(tally)}`);
    assert.deepEqual(answers.filter((a) => !a.reply).map((a) => a.error), [], 'every buy answered');
    for (const a of answers) {
      const st = a.reply!.status;
      assert.ok(st === 202 || st === 503 || (st === 409 && ['sold_out', 'limit_reached'].includes(a.reply!.body.error.code)), `answer ${st} ${a.reply!.text}`);
    }

    const rows = await rowsOf(direct, saleId);
    const rowIds = new Set(rows.map((r) => r.order_id));
    assert.deepEqual(acked.filter((a) => !rowIds.has(String(a.reply!.body.orderId))).map((a) => a.user), [], 'every 202 has its row');
    const busyUsers = new Set(busy.map((a) => a.user));
    assert.deepEqual(rows.filter((r) => busyUsers.has(r.user_id)).map((r) => r.user_id), [], 'no row for a buyer answered busy');
    assert.equal(rows.length, acked.length, 'no row without a 202');
    assert.ok(heldBy(rows) <= STOCK, `${heldBy(rows)} units held of ${STOCK}`);

    // Let every reservation expire: all the stock comes back, exactly once.
    await until('reservations expired', async () => (await rowsOf(direct, saleId)).every((r) => r.status === 'expired'), 20_000, 100);
    await until('stock back', () => s.engine.available(saleId) === STOCK, 5000);
    await sleep(300);
    sampling = false;
    await Promise.all([sampler, dbSampler]);
    assert.ok(maxAvailable <= STOCK, `available reached ${maxAvailable} of stock ${STOCK}`);
    assert.ok(maxHeld <= STOCK, `rows held reached ${maxHeld} of stock ${STOCK}`);
    assert.equal(s.engine.available(saleId), STOCK);
    const stats = await srv.admin('GET', `/api/admin/sales/${saleId}`);
    assert.equal(stats.body.stats.available, STOCK, JSON.stringify(stats.body.stats));
    t.diagnostic(`lock held ${HOLD_MS} ms: answers ${JSON.stringify(tally)}; ${rows.length} rows, max held ${maxHeld}, max available ${maxAvailable}`);
  } finally {
    await locker.end().catch(() => undefined);
    await srv?.close().catch(() => undefined);
    await direct.end().catch(() => undefined);
    await db.drop();
  }
});

test('defect 1: commit applied but reply lost; the buyer gets his 202; a cancel with its reply lost returns the stock once', { timeout: 120_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return void t.skip(reason);
  const db = await createDatabase();
  const direct = new pg.Pool({ connectionString: db.url, max: 2 });
  direct.on('error', () => undefined);
  const proxy = await FaultProxy.forUrl(db.url).start();
  let srv: TestServer | null = null;
  try {
    srv = await startPgMode(proxy.url(db.url), { SECKILL_SWEEP_MS: '60000' });
    const s = srv.server!.services;
    const pool = (s.repo as unknown as { pool: pg.Pool }).pool;
    const sale = await srv.createSale({ stock: 1, perUserLimit: 1 });
    const saleId = String(sale.id);
    // Connections open before the fault: the writer must not need a new one while replies are dropped.
    const warm = () => Promise.all([1, 2, 3, 4].map(() => pool.query('SELECT pg_sleep(0.05)')));
    await warm();

    // --- a reservation committed, its reply lost
    const alicePath = await pathFor(srv, saleId, 'alice');
    proxy.dropReplies(true);
    const pending = srv.call('POST', `/api/sales/${saleId}/buy/${alicePath}`, { token: userToken('alice'), body: {} });
    const row = await until('alice\'s row committed', async () => (await rowsOf(direct, saleId)).find((r) => r.user_id === 'alice'), 10_000, 20);
    proxy.cut();
    proxy.restore();
    const t0 = Date.now();
    const answer = await pending;
    assert.equal(answer.status, 202, `the order exists, so the buyer is owed a 202: ${answer.text}`);
    assert.equal(answer.body.orderId, row.order_id);
    const settledMs = Date.now() - t0;
    assert.equal(s.engine.available(saleId), 0, 'the stock stays taken');
    const bob = await srv.call('POST', `/api/sales/${saleId}/buy/${await pathFor(srv, saleId, 'bob')}`, { token: userToken('bob'), body: {} });
    assert.equal(bob.status, 409, bob.text);
    assert.equal((await rowsOf(direct, saleId)).length, 1, 'one row for stock 1');

    // --- a cancel applied, its reply lost: the stock returns exactly once
    const order = await s.engine.getOrder(row.order_id);
    assert.ok(order);
    await warm();
    // The change and its outbox event are one transaction: its COMMIT applies, and from there on
    // every reply is lost.
    proxy.dropRepliesAfter('COMMIT');
    const cancelling = s.engine.transition(order, { to: 'cancelled' }, Date.now());
    await until('the cancel committed', async () => (await rowsOf(direct, saleId)).find((r) => r.order_id === row.order_id && r.status === 'cancelled'), 10_000, 20);
    proxy.cut();
    proxy.restore();
    const cancelled = await cancelling;
    assert.equal(cancelled?.status, 'cancelled', 'the engine learns its cancel applied');
    assert.equal(s.engine.available(saleId), 1, 'stock returned once');
    // The cut also ended the session holding the instance lock: buys wait until it is taken again.
    await until('instance lock taken again', async () => (await srv!.call('GET', '/readyz')).body.checks.instanceLock === 'ok', 10_000, 50);
    // Sold again, exactly once.
    const carol = await srv.call('POST', `/api/sales/${saleId}/buy/${await pathFor(srv, saleId, 'carol')}`, { token: userToken('carol'), body: {} });
    assert.equal(carol.status, 202, carol.text);
    const dave = await srv.call('POST', `/api/sales/${saleId}/buy/${await pathFor(srv, saleId, 'dave')}`, { token: userToken('dave'), body: {} });
    assert.equal(dave.status, 409, dave.text);
    const rows = await rowsOf(direct, saleId);
    assert.equal(heldBy(rows), 1);
    assert.equal(s.engine.available(saleId), 0);
    t.diagnostic(`lost commit reply: buyer answered 202 ${settledMs} ms after the connection was cut; lost cancel reply: stock returned once`);
  } finally {
    proxy.restore();
    await srv?.close().catch(() => undefined);
    await proxy.close();
    await direct.end().catch(() => undefined);
    await db.drop();
  }
});

test('defect 9: a second PostgreSQL-mode seckill on the same database refuses to start; a lost lock session refuses buys until retaken', { timeout: 120_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return void t.skip(reason);
  const db = await createDatabase();
  let srv: TestServer | null = null;
  try {
    srv = await startPgMode(db.url);
    const sale = await srv.createSale({ stock: 4, perUserLimit: 1 });
    const saleId = String(sale.id);
    const buyAs = async (user: string) =>
      srv!.call('POST', `/api/sales/${saleId}/buy/${await pathFor(srv!, saleId, user)}`, { token: userToken(user), body: {} });
    assert.equal((await buyAs('u1')).status, 202);

    // A second process, as an operator would start it.
    const second = spawnSeckill({
      env: childEnv({ DATABASE_URL: db.url, REDIS_URL: undefined, SECKILL_DATA_DIR: tempDir('seckill-pgmode-2-') }),
      port: await freePort(),
    });
    const ended = await Promise.race([second.exited, sleep(30_000).then(() => 'running' as const)]);
    if (ended === 'running') second.child.kill('SIGKILL');
    const out = second.output.join('');
    assert.notEqual(ended, 'running', `the second process started on the same database: ${out}`);
    const code = ended;
    assert.notEqual(code, 0, out);
    const dbName = new URL(db.url).pathname.slice(1);
    assert.match(out, /Another seckill process in PostgreSQL mode is already running/);
    assert.ok(out.includes(dbName), out);

    // The first keeps selling.
    assert.equal((await buyAs('u2')).status, 202);

    // Its lock session killed: buys are refused busy (nothing changed) until the lock is taken again.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_try_advisory_lock%' AND pid <> pg_backend_pid()`);
    await admin.end();
    assert.equal(killed.rowCount, 1, 'the lock session found');
    const t0 = Date.now();
    const back = await until('buys accepted again', async () => {
      const r = await buyAs(`after-${Date.now()}`);
      if (r.status === 503) assert.equal(r.body.error.code, 'busy');
      else assert.equal(r.status, 202, r.text);
      return r.status === 202 ? Date.now() : undefined;
    }, 15_000, 50);
    const ready = await srv.call('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    const rows = await call(srv.url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY });
    assert.equal(rows.body.stats.reserved, 3, rows.text);
    t.diagnostic(`second start exited ${code}; after the lock session was killed, buys were accepted again within ${back - t0} ms`);
  } finally {
    await srv?.close().catch(() => undefined);
    await db.drop();
  }
});
