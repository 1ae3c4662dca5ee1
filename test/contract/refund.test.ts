// The payment lifecycle over HTTP: refund of a paid order (units kept sold, or back to stock, per
// the sale's restockOnRefund), refusals of the other states, and what a late payment gets.
// Embedded, or with SECKILL_TEST_MODE=distributed 3 processes on Redis and PostgreSQL.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/wait.js';
import { buy, call, randomUser, saleBody, skipUnlessReady, startTestServer, userToken, ADMIN_KEY, type Reply, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.deepEqual(Object.keys(r.body), ['error'], r.text);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message'], r.text);
  assert.equal(r.body.error.code, code, r.text);
}

describe('refunds and late payments', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ SECKILL_SWEEP_MS: '50' });
  });
  after(async () => {
    await t.close();
  });

  const newSale = async (o: { stock: number; restockOnRefund?: boolean; paymentWindowSeconds?: number }) => {
    const body = { ...saleBody({ stock: o.stock, perUserLimit: 1, paymentWindowSeconds: o.paymentWindowSeconds ?? 600 }), ...(o.restockOnRefund === undefined ? {} : { restockOnRefund: o.restockOnRefund }) };
    const r = await t.admin('POST', '/api/admin/sales', body);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.restockOnRefund, o.restockOnRefund ?? false, 'the admin sale JSON shows the setting (default false)');
    await t.settle(r.body.id);
    return r.body as { id: string };
  };
  const reserve = async (saleId: string, token: string): Promise<string> => {
    const r = await buy(t.url, saleId, token);
    assert.equal(r.status, 202, r.text);
    return r.body.orderId as string;
  };
  const pay = (orderId: string, ref: string) => call(t.url, 'POST', `/api/orders/${orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: ref } });
  const refund = (orderId: string, body?: unknown, token = ADMIN_KEY) => call(t.url, 'POST', `/api/orders/${orderId}/refund`, { token, body });
  const stats = async (saleId: string) => {
    await t.settle(saleId);
    const r = await t.admin('GET', `/api/admin/sales/${saleId}`);
    assert.equal(r.status, 200, r.text);
    return r.body.stats as Record<string, number>;
  };

  test('restockOnRefund false: the refunded unit stays sold and counts against the buyer\'s limit', async () => {
    const sale = await newSale({ stock: 2 });
    const ann = userToken(randomUser('ann'));
    const orderId = await reserve(sale.id, ann);
    assert.equal((await pay(orderId, 'psp-1')).status, 200);

    const r = await refund(orderId, { reason: 'customer asked' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'refunded');
    assert.equal(r.body.paymentRef, 'psp-1');
    assert.equal(r.body.refundReason, 'customer asked');
    assert.match(String(r.body.refundedAt), /^\d{4}-\d\d-\d\dT/);
    // Idempotent: the same order back, unchanged.
    const again = await refund(orderId);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, r.body);
    const read = await call(t.url, 'GET', `/api/orders/${orderId}`, { token: ann });
    assert.equal(read.body.status, 'refunded');

    // Ann still holds her unit: the limit refuses her; the other unit sells to someone else.
    assertError(await buy(t.url, sale.id, ann), 409, 'limit_reached');
    await reserve(sale.id, userToken(randomUser('bob')));
    assertError(await buy(t.url, sale.id, userToken(randomUser('cyd'))), 409, 'sold_out');
    const s = await stats(sale.id);
    assert.deepEqual([s.refunded, s.paid, s.reserved, s.available], [1, 0, 1, 0]);
    // /metrics counts the refunded unit (distributed: totals refreshed in the background while scraped).
    const line = `seckill_order_units{sale="${sale.id}",status="refunded"} 1`;
    await until('refunded units in /metrics', async () => (await call(t.url, 'GET', '/metrics', { token: ADMIN_KEY })).text.includes(line), 30_000, 200);

    // The operators' listing filters on it, and the CSV carries the refund.
    const list = await t.admin('GET', `/api/admin/sales/${sale.id}/orders?status=refunded`);
    assert.deepEqual(list.body.orders.map((o: { orderId: string }) => o.orderId), [orderId]);
    const csv = await call(t.url, 'GET', `/api/admin/sales/${sale.id}/orders?status=refunded`, { token: ADMIN_KEY, headers: { accept: 'text/csv' } });
    const [head, row] = csv.text.trim().split(/\r?\n/);
    assert.ok(head.endsWith(',refundedAt,refundReason'), head);
    assert.ok(row.endsWith(',customer asked'), row);
  });

  test('restockOnRefund true: the unit returns to stock and the buyer may buy again, once', async () => {
    const sale = await newSale({ stock: 1, restockOnRefund: true });
    const ann = userToken(randomUser('ann'));
    const orderId = await reserve(sale.id, ann);
    assert.equal((await pay(orderId, 'psp-2')).status, 200);
    assertError(await buy(t.url, sale.id, userToken(randomUser('bob'))), 409, 'sold_out');

    // Two refunds at once: one decision, the stock comes back once.
    const [a, b] = await Promise.all([refund(orderId), refund(orderId, { reason: 'dup' })]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.equal(a.body.refundedAt, b.body.refundedAt, 'both answer the one refund');
    assert.equal((await stats(sale.id)).available, 1);

    // Ann's holding is gone: she buys the unit again; then it is sold out.
    await reserve(sale.id, ann);
    assertError(await buy(t.url, sale.id, userToken(randomUser('cyd'))), 409, 'sold_out');
    const s = await stats(sale.id);
    assert.deepEqual([s.refunded, s.reserved, s.available], [1, 1, 0]);
  });

  test('only a paid order is refunded; only the shop refunds; a refunded order is neither paid nor cancelled', async () => {
    const sale = await newSale({ stock: 5 });
    const owner = userToken(randomUser('own'));
    const reserved = await reserve(sale.id, owner);
    assertError(await refund(reserved), 409, 'invalid_state');
    assertError(await refund(reserved, {}, owner), 403, 'forbidden');
    assert.equal((await call(t.url, 'POST', `/api/orders/${reserved}/cancel`, { token: owner })).status, 200);
    assertError(await refund(reserved), 409, 'invalid_state');

    const other = userToken(randomUser('oth'));
    const paid = await reserve(sale.id, other);
    assert.equal((await pay(paid, 'psp-3')).status, 200);
    // Distributed: once the paid order is in PostgreSQL, Redis drops it (pruned); the refund still decides once.
    await t.settle(sale.id);
    await sleep(500);
    assertError(await refund(paid, { reason: 'bad\u0000text' }), 400, 'bad_request');
    assertError(await refund(paid, { reason: 'x', extra: 1 }), 400, 'bad_request');
    const [r1, r2] = await Promise.all([refund(paid, null), refund(paid)]);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r1.body.refundedAt, r2.body.refundedAt, 'one refund');
    assert.equal((await call(t.url, 'GET', `/api/orders/${paid}`, { token: other })).body.status, 'refunded');
    const st = await stats(sale.id);
    assert.deepEqual([st.refunded, st.paid, st.cancelled, st.available], [1, 0, 1, 4], 'the kept refund still holds its unit');
    assertError(await pay(paid, 'psp-3'), 409, 'invalid_state');
    assertError(await call(t.url, 'POST', `/api/orders/${paid}/cancel`, { token: other }), 409, 'invalid_state');
    assertError(await refund('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'), 404, 'not_found');
  });

  test('a late payment answers 409 payment_late; the order stays expired and its unit is back on sale', async () => {
    const sale = await newSale({ stock: 1, paymentWindowSeconds: 1 });
    const ann = userToken(randomUser('ann'));
    const orderId = await reserve(sale.id, ann);
    const expiresAt = Date.parse((await call(t.url, 'GET', `/api/orders/${orderId}`, { token: ann })).body.expiresAt);
    await sleep(Math.max(0, expiresAt - Date.now()) + 100);

    // Whether the sweeper got there first or the payment expires it on the way, the answer is the same.
    assertError(await pay(orderId, 'psp-late'), 409, 'payment_late');
    const o = await call(t.url, 'GET', `/api/orders/${orderId}`, { token: ann });
    assert.equal(o.body.status, 'expired');
    assert.equal(o.body.paymentRef, null);
    assertError(await pay(orderId, 'psp-late'), 409, 'payment_late');
    assertError(await refund(orderId), 409, 'invalid_state');
    assertError(await call(t.url, 'POST', `/api/orders/${orderId}/cancel`, { token: ann }), 409, 'expired');
    // The unit went back: someone else buys it.
    await reserve(sale.id, userToken(randomUser('bob')));
    const s = await stats(sale.id);
    assert.deepEqual([s.expired, s.reserved, s.available], [1, 1, 0]);
  });
});
