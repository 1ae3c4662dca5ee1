// Issue 9, defect 11: /metrics was public, outside the per-address limit, and every scrape summed
// every order ever (O(orders) on the event loop in embedded mode). Now: the metrics token or the
// admin key (else 401), the per-address limit, and status totals kept per sale (in memory where
// one process owns the data; refreshed in the background in distributed mode), read by the
// scrape, the admin stats and the dashboard alike.
//
// Runs embedded and, with SECKILL_TEST_MODE=distributed, against 3 processes on Redis and PostgreSQL.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  ADMIN_KEY,
  buy,
  call,
  mode,
  randomUser,
  skipUnlessReady,
  startTestServer,
  userToken,
  type Reply,
  type TestServer,
} from '../support/server.js';

const skip = await skipUnlessReady();
const embeddedOnly = (why: string) => skip || (mode === 'distributed' && why);
const METRICS_TOKEN = 'metrics-token-of-the-test-0123456789';

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, code, r.text);
}

/** seckill_order_units of a sale from a scrape: status → units. */
function units(text: string, saleId: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^seckill_order_units\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.sale === saleId) out[labels.status] = Number(m[2]);
  }
  return out;
}

/** Poll until `check` holds (distributed: the scrape's totals are refreshed every few seconds). */
async function eventually<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await get();
  while (!check(v)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await sleep(200);
    v = await get();
  }
  return v;
}

let srv: TestServer;
before(async () => {
  if (skip) return;
  srv = await startTestServer({ SECKILL_METRICS_TOKEN: METRICS_TOKEN, SECKILL_SWEEP_MS: '100' });
});
after(async () => {
  await srv?.close();
});

describe('defect 11: /metrics needs a credential', { skip }, () => {
  test('no token, a user token, a wrong or almost-right token: 401 and no metric; the metrics token and the admin key: 200', async () => {
    const refused: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ['a user token', userToken(randomUser())],
      ['a wrong token', 'not-the-metrics-token-0123456789'],
      ['the metrics token but its last character', METRICS_TOKEN.slice(0, -1) + 'X'],
      ['the admin key but its last character', ADMIN_KEY.slice(0, -1) + 'X'],
    ];
    for (const [what, token] of refused) {
      const r = await call(srv.url, 'GET', '/metrics', token ? { token } : {});
      assertError(r, 401, 'unauthorized');
      assert.doesNotMatch(r.text, /seckill_|process_cpu/, what);
    }
    for (const token of [METRICS_TOKEN, ADMIN_KEY]) {
      const r = await call(srv.url, 'GET', '/metrics', { token });
      assert.equal(r.status, 200, r.text.slice(0, 200));
      assert.match(r.text, /seckill_http_requests_total/);
    }
    // The metrics token is no admin key.
    assertError(await call(srv.url, 'GET', '/api/admin/sales', { token: METRICS_TOKEN }), 401, 'unauthorized');
  });

  test('without SECKILL_METRICS_TOKEN: the admin key only', { skip: embeddedOnly('one more cluster for a one-line check') }, async () => {
    const t = await startTestServer();
    try {
      assertError(await t.call('GET', '/metrics'), 401, 'unauthorized');
      assertError(await t.call('GET', '/metrics', { token: METRICS_TOKEN }), 401, 'unauthorized');
      assert.equal((await t.call('GET', '/metrics', { token: ADMIN_KEY })).status, 200);
    } finally {
      await t.close();
    }
  });

  test('/metrics is under the per-address limit', { skip: embeddedOnly('the per-address limit is counted per process') }, async () => {
    const t = await startTestServer({ SECKILL_RATE_PER_IP: '2' });
    try {
      const all = await Promise.all(Array.from({ length: 10 }, () => t.call('GET', '/metrics')));
      assert.ok(all.filter((r) => r.status === 429).length >= 5, all.map((r) => r.status).join(','));
    } finally {
      await t.close();
    }
  });
});

describe('defect 11: status totals', { skip }, () => {
  test('stay right after reserves, pays, cancels and expiries: scrape, admin stats and the database agree', async () => {
    const sale = await srv.createSale({ stock: 20, perUserLimit: 2 });
    const short = await srv.createSale({ stock: 5, paymentWindowSeconds: 1 });
    const owners: string[] = [];
    const orders: string[] = [];
    for (let i = 0; i < 6; i++) {
      const token = userToken(randomUser());
      const r = await buy(srv.url, sale.id, token, i === 0 ? 2 : 1);
      assert.equal(r.status, 202, r.text);
      owners.push(token);
      orders.push(r.body.orderId);
    }
    // 7 units reserved; pay 2 orders (3 units), cancel 1 (1 unit), leave 3 reserved.
    for (const id of orders.slice(0, 2)) assert.equal((await call(srv.url, 'POST', `/api/orders/${id}/pay`, { token: ADMIN_KEY, body: { paymentRef: `r-${id}` } })).status, 200);
    assert.equal((await call(srv.url, 'POST', `/api/orders/${orders[2]}/cancel`, { token: owners[2] })).status, 200);
    // A refused payment (already paid with another ref) and a refused cancel (paid) change nothing.
    assert.equal((await call(srv.url, 'POST', `/api/orders/${orders[0]}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'other' } })).status, 409);
    assert.equal((await call(srv.url, 'POST', `/api/orders/${orders[1]}/cancel`, { token: ADMIN_KEY })).status, 409);
    // Expiries: two reservations of the short sale run out (the sweeper, every 100 ms).
    for (let i = 0; i < 2; i++) assert.equal((await buy(srv.url, short.id, userToken(randomUser()))).status, 202);

    const want = { reserved: 3, paid: 3, cancelled: 1, expired: 0, refunded: 0 };
    const wantShort = { reserved: 0, paid: 0, cancelled: 0, expired: 2, refunded: 0 };
    const stats = async (id: string) => {
      await srv.settle(id);
      const r = await call(srv.url, 'GET', `/api/admin/sales/${id}`, { token: ADMIN_KEY });
      assert.equal(r.status, 200, r.text);
      const { reserved, paid, cancelled, expired, refunded } = r.body.stats;
      return { reserved, paid, cancelled, expired, refunded };
    };
    assert.deepEqual(await stats(sale.id), want);
    await eventually('short sale expired', () => stats(short.id), (s) => s.expired === 2);
    assert.deepEqual(await stats(short.id), wantShort);
    const scrape = async () => (await call(srv.url, 'GET', '/metrics', { token: METRICS_TOKEN })).text;
    const text = await eventually('scrape totals', scrape, (t) => JSON.stringify(units(t, sale.id)) === JSON.stringify({ ...units(t, sale.id), ...want }) && units(t, short.id).expired === 2);
    assert.deepEqual(units(text, sale.id), want);
    assert.deepEqual(units(text, short.id), wantShort);
    // The dashboard's live figures too.
    const live = await call(srv.url, 'GET', `/api/admin/sales/${sale.id}/live`, { token: ADMIN_KEY });
    assert.equal(live.status, 200, live.text);
    assert.deepEqual([live.body.stats.reserved, live.body.stats.paid, live.body.stats.cancelled], [3, 3, 1]);
    // And the database of record, counted by hand.
    for (const [id, w] of [[sale.id, want], [short.id, wantShort]] as const) {
      const sums: Record<string, number> = { reserved: 0, paid: 0, cancelled: 0, expired: 0, refunded: 0 };
      for (const row of await srv.orders(id)) sums[row.status] += row.quantity;
      assert.deepEqual(sums, w);
    }
  });

  test('after a restart the totals are read back from the database once', { skip: embeddedOnly('restarting the cluster is covered by the restart suites') }, async () => {
    const sale = await srv.createSale({ stock: 5 });
    const a = await buy(srv.url, sale.id, userToken(randomUser()));
    await buy(srv.url, sale.id, userToken(randomUser()));
    assert.equal((await call(srv.url, 'POST', `/api/orders/${a.body.orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'p' } })).status, 200);
    srv = await srv.restart();
    const r = await call(srv.url, 'GET', `/api/admin/sales/${sale.id}`, { token: ADMIN_KEY });
    assert.deepEqual([r.body.stats.reserved, r.body.stats.paid, r.body.stats.available], [1, 1, 3]);
    assert.deepEqual(units((await call(srv.url, 'GET', '/metrics', { token: ADMIN_KEY })).text, sale.id), { reserved: 1, paid: 1, expired: 0, cancelled: 0, refunded: 0 });
  });
});

describe('defect 11: a scrape costs O(sales), not O(orders)', { skip: embeddedOnly('counts the database calls of the in-process server') }, () => {
  test('100,000 orders in the database: scrapes, admin stats and the dashboard run no totals query; figures right', async () => {
    const N = 100_000;
    const sale = await srv.createSale({ stock: N });
    // Orders written straight into the database while seckill is stopped (as years of sales would be).
    await srv.server!.close();
    const db = new Database(path.join(srv.dataDir, 'seckill.db'));
    const statusOf = (i: number) => (i % 10 < 5 ? 'expired' : i % 10 < 8 ? 'cancelled' : i % 10 < 9 ? 'paid' : 'reserved');
    const insert = db.prepare(`INSERT INTO orders (order_id, sale_id, user_id, quantity, price_cents, status, created_at, expires_at, paid_at, payment_ref)
      VALUES (?, ?, ?, 1, 1999, ?, ?, ?, NULL, NULL)`);
    const now = Date.now();
    db.transaction(() => {
      for (let i = 0; i < N; i++) insert.run(crypto.randomUUID(), sale.id, `bulk-${i}`, statusOf(i), now, now + 3600_000);
    })();
    db.close();
    srv = await srv.restart();
    const want = { reserved: N / 10, paid: N / 10, cancelled: (3 * N) / 10, expired: N / 2, refunded: 0 };

    // From here on, every totals query of the database is counted.
    const repo = srv.server!.services.repo;
    const original = repo.totals.bind(repo);
    let queries = 0;
    repo.totals = async (saleId: string) => {
      queries++;
      return original(saleId);
    };
    try {
      for (let i = 0; i < 20; i++) {
        const r = await call(srv.url, 'GET', '/metrics', { token: METRICS_TOKEN });
        assert.equal(r.status, 200);
        assert.deepEqual(units(r.text, sale.id), want);
      }
      const stats = await call(srv.url, 'GET', `/api/admin/sales/${sale.id}`, { token: ADMIN_KEY });
      assert.deepEqual([stats.body.stats.reserved, stats.body.stats.paid, stats.body.stats.available], [N / 10, N / 10, N - N / 5]);
      const live = await call(srv.url, 'GET', `/api/admin/sales/${sale.id}/live`, { token: ADMIN_KEY });
      assert.equal(live.body.stats.expired, N / 2);
      // A buy and a payment still move them.
      const b = await buy(srv.url, sale.id, userToken(randomUser()));
      assert.equal(b.status, 202, b.text);
      await call(srv.url, 'POST', `/api/orders/${b.body.orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'x' } });
      const after = units((await call(srv.url, 'GET', '/metrics', { token: ADMIN_KEY })).text, sale.id);
      assert.deepEqual(after, { ...want, paid: want.paid + 1 });
      assert.equal(queries, 0, 'totals queried from the database');
    } finally {
      repo.totals = original;
    }
  });
});

describe('status totals, unit: outcomes the database could not confirm in time', () => {
  test('a reservation or transition whose outcome settles later is counted once it is known, and only if it applied', async () => {
    const { OwnedStatusTotals } = await import('../../src/services/status-totals.js');
    const { OutcomeUnknown } = await import('../../src/domain/outcome.js');
    const zero = { reserved: 0, paid: 0, expired: 0, cancelled: 0, refunded: 0 };
    const repo = { totals: async () => ({ ...zero }) } as unknown as ConstructorParameters<typeof OwnedStatusTotals>[0];
    const settle: Array<(applied: boolean) => void> = [];
    const unknown = () => new OutcomeUnknown('unknown', new Promise<boolean>((resolve) => settle.push(resolve)));
    const order = { orderId: 'o1', saleId: 's1', userId: 'u', quantity: 2, priceCents: 1, status: 'reserved', createdAt: 0, expiresAt: 1, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null } as const;
    const fake = {
      async load() {},
      async reserve() {
        throw unknown();
      },
      async transition() {
        throw unknown();
      },
    } as unknown as import('../../src/engine/stock-engine.js').StockEngine;
    const totals = new OwnedStatusTotals(repo);
    const engine = totals.counting(fake);
    await engine.load({ id: 's1' } as never);
    await assert.rejects(engine.reserve({ id: 's1' } as never, 'u', 2, 0), OutcomeUnknown);
    await assert.rejects(engine.reserve({ id: 's1' } as never, 'v', 1, 0), OutcomeUnknown);
    assert.deepEqual(await totals.read('s1'), zero, 'nothing counted while unknown');
    settle[0](true); // the first insert committed
    settle[1](false); // the second did not
    await sleep(10);
    assert.deepEqual(await totals.read('s1'), { ...zero, reserved: 2 });
    await assert.rejects(engine.transition({ ...order }, { to: 'cancelled' }, 0), OutcomeUnknown);
    settle[2](true);
    await sleep(10);
    assert.deepEqual(await totals.read('s1'), { ...zero, cancelled: 2 });
  });
});
