// The sale lifecycle of docs/http-api.md: correct a sale before it opens (and only name,
// description and end time after), end it early, archive it, and the audit trail of every change.
// Runs embedded and, with SECKILL_TEST_MODE=distributed, against 3 processes on Redis and
// PostgreSQL: there a correction must reach the Redis stock record and every process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/wait.js';
import { buy, mode, randomUser, skipUnlessReady, startTestServer, userToken, type Reply, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();

const iso = (ms: number) => new Date(ms).toISOString();

function expectError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.body?.error?.code, code, r.text);
}

describe(`sale lifecycle (${mode})`, { skip }, () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv?.close();
  });

  /**
   * Every process answers `check` for the sale's public view: in distributed mode the requests go
   * to the 3 workers in turn, so several answers in a row must agree (the others hear by signal).
   */
  async function everywhere(saleId: string, what: string, check: (sale: Record<string, unknown>) => boolean): Promise<void> {
    const rounds = mode === 'distributed' ? 8 : 1;
    await until(what, async () => {
      for (let i = 0; i < rounds; i++) {
        const r = await srv.call('GET', `/api/sales/${saleId}`);
        if (r.status !== 200 || !check(r.body)) return false;
      }
      return true;
    }, 10_000, 50);
  }

  const audit = async (saleId: string) => {
    const r = await srv.admin('GET', `/api/admin/sales/${saleId}/audit`);
    assert.equal(r.status, 200, r.text);
    return r.body.entries as Array<{ id: string; saleId: string; at: string; actor: string; action: string; changes: Record<string, [unknown, unknown]> }>;
  };

  test('before it opens every field can be corrected, and the engine sells by the corrected figures', async () => {
    const sale = await srv.createSale({ startsIn: 3600_000, stock: 10, perUserLimit: 1, priceCents: 1000, paymentWindowSeconds: 600 });
    const startsAt = Date.now() - 1000;
    const r = await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, {
      name: 'Corrected', description: 'Now with\nnotes', priceCents: 2500, stock: 3, perUserLimit: 2, paymentWindowSeconds: 30,
      startsAt: iso(startsAt), endsAt: iso(startsAt + 3600_000),
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.name, 'Corrected');
    assert.equal(r.body.stock, 3);
    assert.equal(r.body.perUserLimit, 2);
    assert.equal(r.body.priceCents, 2500);
    assert.equal(r.body.paymentWindowSeconds, 30);
    assert.equal(r.body.status, 'live');
    await everywhere(sale.id, 'every process sees the corrected sale live', (s) => s.status === 'live' && s.priceCents === 2500 && s.perUserLimit === 2);

    // Stock 3, limit 2, price 25.00, a 30 s payment window: as corrected.
    const a = await buy(srv.url, sale.id, userToken(randomUser('a')), 2);
    assert.equal(a.status, 202, a.text);
    const b = userToken(randomUser('b'));
    expectError(await buy(srv.url, sale.id, b, 2), 409, 'sold_out');
    const b1 = await buy(srv.url, sale.id, b, 1);
    assert.equal(b1.status, 202, b1.text);
    expectError(await buy(srv.url, sale.id, userToken(randomUser('c')), 1), 409, 'sold_out');
    const order = await srv.admin('GET', `/api/orders/${a.body.orderId}`);
    assert.equal(order.status, 200, order.text);
    assert.equal(order.body.priceCents, 2500);
    assert.equal(order.body.quantity, 2);
    const window = Date.parse(order.body.expiresAt) - Date.parse(order.body.createdAt);
    assert.ok(window === 30_000, `payment window ${window} ms`);
    await srv.settle(sale.id);
    const stats = await srv.admin('GET', `/api/admin/sales/${sale.id}`);
    assert.equal(stats.body.stats.stock, 3);
    assert.equal(stats.body.stats.available, 0);

    // The audit trail: the creation, then the one correction with each field's [old, new].
    const entries = await audit(sale.id);
    assert.deepEqual(entries.map((e) => e.action), ['create', 'correct']);
    const c = entries[1];
    assert.equal(c.saleId, sale.id);
    assert.equal(typeof c.actor, 'string');
    assert.match(c.actor, /^admin:[0-9a-f]{8}$/, 'the admin key\'s id (scope and 8 hex digits of its SHA-256), never the key');
    assert.ok(Math.abs(Date.parse(c.at) - Date.now()) < 60_000);
    assert.deepEqual(c.changes.stock, [10, 3]);
    assert.deepEqual(c.changes.priceCents, [1000, 2500]);
    assert.deepEqual(c.changes.perUserLimit, [1, 2]);
    assert.deepEqual(c.changes.paymentWindowSeconds, [600, 30]);
    assert.deepEqual(c.changes.startsAt, [Date.parse(sale.startsAt as string), startsAt]);
    assert.deepEqual(c.changes.name, ['Test sale', 'Corrected']);
    assert.equal(entries[0].changes.stock[1], 10);
  });

  test('once it has opened only name, description and end time change; an unchanged value is no change', async () => {
    const sale = await srv.createSale({ stock: 5 });
    await everywhere(sale.id, 'the sale is live everywhere', (s) => s.status === 'live');
    const before = await audit(sale.id);

    for (const body of [{ stock: 6 }, { priceCents: 1 }, { perUserLimit: 3 }, { paymentWindowSeconds: 60 }, { startsAt: iso(Date.now() + 60_000) }, { name: 'X', stock: 7 }]) {
      expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, body), 409, 'sale_open');
    }
    // Same values as now: no change at all, nothing recorded.
    const same = await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { stock: 5, name: 'Test sale', priceCents: 1999 });
    assert.equal(same.status, 200, same.text);
    assert.equal((await audit(sale.id)).length, before.length);
    // An unchanged stock beside a new name is only the new name.
    const endsAt = Date.now() + 7200_000;
    const r = await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { name: 'Renamed', stock: 5, description: 'd', endsAt: iso(endsAt) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.name, 'Renamed');
    assert.equal(r.body.endsAt, iso(endsAt));
    const last = (await audit(sale.id)).at(-1);
    assert.equal(last?.action, 'correct');
    assert.deepEqual(Object.keys(last?.changes ?? {}).sort(), ['description', 'endsAt', 'name']);
    // The end time may move, but not into the past; removing it is allowed.
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { endsAt: iso(Date.now() - 1000) }), 400, 'bad_request');
    const open = await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { endsAt: null });
    assert.equal(open.status, 200, open.text);
    assert.equal(open.body.endsAt, null);
    await everywhere(sale.id, 'every process sees the new name', (s) => s.name === 'Renamed' && s.endsAt === null);

    // Schema rules of creation apply; an empty correction, an unknown field or sale are refused.
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, {}), 400, 'bad_request');
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { secret: 'x' }), 400, 'bad_request');
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { name: 'a\u0000b' }), 400, 'bad_request');
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { stock: 0 }), 400, 'bad_request');
    expectError(await srv.admin('PATCH', '/api/admin/sales/nosuchsale', { name: 'x' }), 404, 'not_found');
    expectError(await srv.call('PATCH', `/api/admin/sales/${sale.id}`, { token: userToken('someone'), body: { name: 'x' } }), 403, 'forbidden');
    expectError(await srv.call('PATCH', `/api/admin/sales/${sale.id}`, { body: { name: 'x' } }), 401, 'unauthorized');
  });

  test('a correction before opening that moves the start later or the end before the start is checked', async () => {
    const sale = await srv.createSale({ startsIn: 3600_000, lasts: 3600_000 });
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { endsAt: iso(Date.now() + 60_000) }), 400, 'bad_request');
    const later = Date.now() + 4 * 3600_000;
    expectError(await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { startsAt: iso(later) }), 400, 'bad_request');
    const r = await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { startsAt: iso(later), endsAt: iso(later + 60_000) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'upcoming');
    await everywhere(sale.id, 'every process sees the new start', (s) => s.startsAt === iso(later));
    expectError(await buy(srv.url, sale.id, userToken(randomUser())), 425, 'not_started');
  });

  test('end early: buys are refused `ended` at once on every process; orders stay payable; idempotent', async () => {
    const sale = await srv.createSale({ stock: 5, lasts: null });
    await everywhere(sale.id, 'the sale is live everywhere', (s) => s.status === 'live');
    const bought = await buy(srv.url, sale.id, userToken(randomUser()));
    assert.equal(bought.status, 202, bought.text);

    const r = await srv.admin('POST', `/api/admin/sales/${sale.id}/end`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'ended');
    assert.ok(Math.abs(Date.parse(r.body.endsAt) - Date.now()) < 10_000);
    // Straight away, whichever process answers (distributed: Redis's record refuses too).
    for (let i = 0; i < 9; i++) expectError(await buy(srv.url, sale.id, userToken(randomUser())), 410, 'ended');
    const paid = await srv.admin('POST', `/api/orders/${bought.body.orderId}/pay`, { paymentRef: 'after-the-end' });
    assert.equal(paid.status, 200, paid.text);
    assert.equal(paid.body.status, 'paid');

    const again = await srv.admin('POST', `/api/admin/sales/${sale.id}/end`, {});
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.endsAt, r.body.endsAt);
    const entries = await audit(sale.id);
    assert.deepEqual(entries.map((e) => e.action), ['create', 'end']);
    assert.deepEqual(entries[1].changes.endsAt?.[0], null);
    // Ended: off the public list already; its end time may be moved later again (reopens).
    const list = await srv.call('GET', '/api/sales');
    assert.ok(!list.body.sales.some((s: { id: string }) => s.id === sale.id));
  });

  test('archive: only an ended sale or one that never opened; gone from the list, its page still answers', async () => {
    const open = await srv.createSale({ lasts: null });
    expectError(await srv.admin('POST', `/api/admin/sales/${open.id}/archive`), 409, 'sale_open');
    await srv.admin('POST', `/api/admin/sales/${open.id}/end`);
    const archived = await srv.admin('POST', `/api/admin/sales/${open.id}/archive`);
    assert.equal(archived.status, 200, archived.text);
    assert.equal(typeof archived.body.archivedAt, 'string');
    assert.equal(archived.body.status, 'ended');

    // Never opened: archiving ends it too.
    const upcoming = await srv.createSale({ startsIn: 3600_000 });
    let list = await srv.call('GET', '/api/sales');
    assert.ok(list.body.sales.some((s: { id: string }) => s.id === upcoming.id));
    const a2 = await srv.admin('POST', `/api/admin/sales/${upcoming.id}/archive`);
    assert.equal(a2.status, 200, a2.text);
    assert.equal(a2.body.status, 'ended');
    await everywhere(upcoming.id, 'every process sees the archived sale ended', (s) => s.status === 'ended');
    expectError(await buy(srv.url, upcoming.id, userToken(randomUser())), 410, 'ended');

    for (let i = 0; i < (mode === 'distributed' ? 6 : 1); i++) {
      list = await srv.call('GET', '/api/sales');
      assert.ok(!list.body.sales.some((s: { id: string }) => s.id === upcoming.id || s.id === open.id), 'archived sales are off the public list');
    }
    const page = await srv.call('GET', `/sales/${upcoming.id}`);
    assert.equal(page.status, 200);
    // Still listed for operators, and no longer correctable; archiving again changes nothing.
    const all = await srv.admin('GET', '/api/admin/sales');
    assert.ok(all.body.sales.some((s: { id: string; archivedAt: string | null }) => s.id === upcoming.id && s.archivedAt));
    expectError(await srv.admin('PATCH', `/api/admin/sales/${upcoming.id}`, { name: 'again' }), 409, 'invalid_state');
    const again = await srv.admin('POST', `/api/admin/sales/${upcoming.id}/archive`);
    assert.equal(again.status, 200);
    assert.equal(again.body.archivedAt, a2.body.archivedAt);
    const entries = await audit(upcoming.id);
    assert.deepEqual(entries.map((e) => e.action), ['create', 'archive']);
    assert.deepEqual(Object.keys(entries[1].changes).sort(), ['archivedAt', 'endsAt']);
  });

  test('pause, resume and the switches are recorded; an unchanged pause is not', async () => {
    const sale = await srv.createSale();
    assert.equal((await srv.admin('POST', `/api/admin/sales/${sale.id}/pause`)).status, 200);
    assert.equal((await srv.admin('POST', `/api/admin/sales/${sale.id}/pause`)).status, 200);
    assert.equal((await srv.admin('POST', `/api/admin/sales/${sale.id}/resume`)).status, 200);
    const entries = await audit(sale.id);
    assert.deepEqual(entries.map((e) => [e.action, e.changes.paused]), [['create', undefined], ['pause', [false, true]], ['resume', [true, false]]]);

    const on = await srv.admin('POST', '/api/admin/switches', { degraded: true });
    assert.equal(on.status, 200, on.text);
    await srv.admin('POST', '/api/admin/switches', { degraded: false });
    const sw = await srv.admin('GET', '/api/admin/switches/audit');
    assert.equal(sw.status, 200, sw.text);
    assert.deepEqual(sw.body.entries.slice(0, 2).map((e: { action: string; saleId: null; changes: unknown }) => [e.action, e.saleId, e.changes]), [
      ['switches', null, { degraded: [true, false] }],
      ['switches', null, { degraded: [false, true] }],
    ]);
    expectError(await srv.admin('GET', '/api/admin/sales/nosuchsale/audit'), 404, 'not_found');
  });

  test('distributed: Redis refuses to correct the stock record of a sale with an order, and changes nothing', { skip: mode !== 'distributed' && 'the Redis script: distributed mode only' }, async () => {
    const { redisConnection } = await import('../../src/stores/redis/connection.js');
    const { RedisKeys } = await import('../../src/stores/redis/keys.js');
    const { LuaCode } = await import('../../src/stores/redis/codes.js');
    const { REDIS_URL } = await import('../support/cluster.js');
    const cluster = srv.cluster;
    assert.ok(cluster);
    const sale = await srv.createSale({ stock: 5 });
    await everywhere(sale.id, 'the sale is live everywhere', (x) => x.status === 'live');
    assert.equal((await buy(srv.url, sale.id, userToken(randomUser()))).status, 202);
    const redis = redisConnection(REDIS_URL);
    try {
      await redis.connect();
      const k = new RedisKeys(cluster.prefix);
      const before = await redis.hgetall(k.sale(sale.id));
      // As if a correction raced the first buy: the stock record must not take it.
      const code = Number(await redis.seckillUpdateSale(k.sale(sale.id), k.holdings(sale.id), k.orders(sale.id), 0, 1, 99, 5, Date.now() + 3600_000, 1, 60));
      assert.equal(code, LuaCode['update-sale'].hasOrders);
      assert.deepEqual(await redis.hgetall(k.sale(sale.id)), before);
    } finally {
      redis.disconnect();
    }
  });

  test('corrections, ends and archives outlive a restart', async () => {
    const sale = await srv.createSale({ startsIn: 3600_000, stock: 4 });
    assert.equal((await srv.admin('PATCH', `/api/admin/sales/${sale.id}`, { stock: 7, name: 'Kept' })).status, 200);
    const gone = await srv.createSale({ startsIn: 3600_000 });
    assert.equal((await srv.admin('POST', `/api/admin/sales/${gone.id}/archive`)).status, 200);
    srv = await srv.restart();
    const r = await srv.admin('GET', `/api/admin/sales/${sale.id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.sale.name, 'Kept');
    assert.equal(r.body.stats.stock, 7);
    assert.equal(r.body.stats.available, 7);
    const g = await srv.call('GET', `/api/sales/${gone.id}`);
    assert.equal(g.body.status, 'ended');
    const list = await srv.call('GET', '/api/sales');
    assert.ok(!list.body.sales.some((s: { id: string }) => s.id === gone.id));
    assert.deepEqual((await audit(sale.id)).map((e) => e.action), ['create', 'correct']);
  });
});
