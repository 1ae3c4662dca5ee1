// Embedded mode (memory engine + SQLite) under faults of issue 9:
// - defect 4: a group commit that fails (SQLite write lock held by another connection past
//   busy_timeout) puts its stock back AND clears the sold-out flag and the at-limit memos set while
//   it held that stock; the sale sells its units again and a user holding nothing is not told
//   limit_reached. The hints also expire by themselves (LocalRefusals TTL).
// - defect 9: a second seckill on the same data dir refuses to start (in-process and as a process),
//   naming the data dir; the first keeps selling; kill -9 of the holder frees the dir at once.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { LocalRefusals } from '../../src/gateway/local-refusals.js';
import { startServer } from '../../src/server.js';
import { childEnv, inProcessConfig, kill9, killTracked, launchSeckill, spawnSeckill, until, type Env } from '../support/launcher.js';
import { freePort } from '../support/ports.js';
import { buy, checkInvariants, readOrders, startTestServer, tempDir, userToken } from '../support/server.js';

after(killTracked);

test('hints expire: sold-out flag and at-limit memo are believed only for their TTL; clear() forgets all', async () => {
  const r = new LocalRefusals(60, 60);
  r.markSoldOut('s');
  r.markAtLimit('s', 'u');
  assert.equal(r.isSoldOut('s'), true);
  assert.equal(r.holdsLimit('s', 'u'), true);
  await sleep(120);
  assert.equal(r.isSoldOut('s'), false, 'sold-out flag expired');
  assert.equal(r.holdsLimit('s', 'u'), false, 'at-limit memo expired');
  r.markSoldOut('s');
  r.markAtLimit('s', 'u');
  r.clear();
  assert.equal(r.isSoldOut('s'), false);
  assert.equal(r.holdsLimit('s', 'u'), false);
  r.markSoldOut('s');
  r.markAtLimit('s', 'u');
  r.released('s', 'u');
  assert.equal(r.isSoldOut('s'), false);
  assert.equal(r.holdsLimit('s', 'u'), false);
});

test('defect 4: a failed group commit clears the sold-out flag and at-limit memos it caused; the stock sells again', { timeout: 60_000 }, async (t) => {
  // A long group-commit window: the buys below all land in the one batch that will fail.
  const srv = await startTestServer({ SECKILL_GROUP_COMMIT_MS: '1000' });
  let holder: Database.Database | null = null;
  try {
    const s = srv.server!.services;
    const sale = await srv.createSale({ stock: 3, perUserLimit: 1 });
    const saleId = String(sale.id);
    const pathOf = async (user: string) => {
      const p = await srv.call('POST', `/api/sales/${saleId}/path`, { token: userToken(user) });
      assert.equal(p.status, 200, p.text);
      return String(p.body.path);
    };
    const buyWith = (user: string, p: string) => srv.call('POST', `/api/sales/${saleId}/buy/${p}`, { token: userToken(user), body: {} });
    const paths = new Map<string, string>();
    for (const u of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) paths.set(u, await pathOf(u));

    // Another connection holds SQLite's write lock: the batch's INSERT waits busy_timeout, then fails.
    holder = new Database(path.join(srv.dataDir, 'seckill.db'));
    holder.exec('BEGIN IMMEDIATE');

    const first = ['a', 'b', 'c'].map((u) => buyWith(u, paths.get(u)!));
    await until('the batch holds the whole stock', () => s.engine.available(saleId) === 0, 5000, 1);
    // While that batch holds the stock: a holds the limit, d finds the sale sold out.
    const again = await buyWith('a', paths.get('a')!);
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.error.code, 'limit_reached');
    const d = await buyWith('d', paths.get('d')!);
    assert.equal(d.status, 409, d.text);
    assert.equal(d.body.error.code, 'sold_out');
    assert.equal(s.refusals.isSoldOut(saleId), true, 'the precondition: sold-out flag set');
    assert.equal(s.refusals.holdsLimit(saleId, 'a'), true, 'the precondition: a memoed at its limit');

    const failed = await Promise.all(first);
    for (const r of failed) {
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.error.code, 'busy');
    }
    holder.exec('ROLLBACK');
    holder.close();
    holder = null;
    assert.equal(readOrders(srv.dataDir, saleId).length, 0, 'no row for a busy answer');
    assert.equal(s.engine.available(saleId), 3, 'stock put back');

    // At once, not after a TTL: a holds nothing and buys; the three units sell again, then sold out.
    const t0 = Date.now();
    const aBuys = await buyWith('a', paths.get('a')!);
    assert.equal(aBuys.status, 202, `a holds nothing: ${aBuys.text}`);
    const e = await buyWith('e', paths.get('e')!);
    assert.equal(e.status, 202, e.text);
    const f = await buyWith('f', paths.get('f')!);
    assert.equal(f.status, 202, f.text);
    const g = await buyWith('g', paths.get('g')!);
    assert.equal(g.status, 409, g.text);
    assert.equal(g.body.error.code, 'sold_out');
    const rows = readOrders(srv.dataDir, saleId);
    assert.deepEqual(rows.map((r) => r.user_id).sort(), ['a', 'e', 'f']);
    checkInvariants(rows, 3, 1);
    assert.equal(s.engine.available(saleId), 0);
    t.diagnostic(`after the failed batch: 3 units sold again within ${Date.now() - t0} ms; a buyer at the lock saw 503 busy after busy_timeout`);
  } finally {
    holder?.close();
    await srv.close();
  }
});

/** Embedded mode on `dataDir`, whatever the environment of the test run says. */
const embedded = (dataDir: string): Env => ({ SECKILL_DATA_DIR: dataDir, REDIS_URL: undefined, DATABASE_URL: undefined });
/** A process start that must merely come: 30 s, probing /readyz every 100 ms. */
const READY = { timeoutMs: 30_000, requestMs: 1000, everyMs: 100 };

test('defect 9: a second seckill on the same data dir refuses to start; the first keeps selling; kill -9 frees the dir', { timeout: 90_000 }, async (t) => {
  const dataDir = tempDir('seckill-twice-');
  const srv = await startTestServer({}, dataDir);
  try {
    const sale = await srv.createSale({ stock: 3, perUserLimit: 1 });
    const saleId = String(sale.id);
    assert.equal((await buy(srv.url, saleId, userToken('u1'))).status, 202);

    // In-process (SQLite's locks hold between connections of one process too).
    const config = inProcessConfig(embedded(dataDir));
    await assert.rejects(startServer(config), (err: Error) => {
      assert.match(err.message, /Another seckill process is already running on the data dir/);
      assert.ok(err.message.includes(dataDir), err.message);
      return true;
    });

    // As an operator would start it.
    const second = spawnSeckill({ env: childEnv(embedded(dataDir)), port: await freePort() });
    const code = await second.exited;
    const out = second.output.join('');
    assert.notEqual(code, 0, out);
    assert.match(out, /Another seckill process is already running on the data dir/);
    assert.ok(out.includes(dataDir), out);

    // The first one still sells exactly its stock.
    assert.equal((await buy(srv.url, saleId, userToken('u2'))).status, 202);
    assert.equal((await buy(srv.url, saleId, userToken('u3'))).status, 202);
    const sold = await buy(srv.url, saleId, userToken('u4'));
    assert.equal(sold.status, 409, sold.text);
    const rows = readOrders(dataDir, saleId);
    assert.equal(rows.length, 3);
    checkInvariants(rows, 3, 1);
    t.diagnostic(`second start exited ${code}: ${out.trim().split('\n').pop()}`);
  } finally {
    await srv.close();
  }

  // The lock dies with its process: kill -9, then a new process starts on the dir at once.
  const holderProc = await launchSeckill({ env: childEnv(embedded(dataDir)), ...READY });
  await kill9(holderProc.child);
  try {
    const next = await launchSeckill({ env: childEnv(embedded(dataDir)), ...READY });
    await kill9(next.child);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
