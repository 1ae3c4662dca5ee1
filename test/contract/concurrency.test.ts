import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkOrderInvariants } from '../../src/bench/invariants.js';
import { buy, call, orderFacts, skipUnlessReady, startTestServer, userToken, type Reply, type TestServer } from '../support/server.js';

// Embedded, or with SECKILL_TEST_MODE=distributed 3 processes on Redis and PostgreSQL (test/support/server.ts).
const skip = await skipUnlessReady();

interface Outcome {
  userId: string;
  quantity: number;
  reply: Reply;
}

/**
 * Thousands of distinct users fire at once against a real listening server; counts from the
 * database must match the 202s exactly: no oversell, nobody past the limit, every 202 has its
 * row, and no row exists for a refused request.
 */
async function storm(t: TestServer, saleId: string, users: number, attemptsPerUser: number, pickQuantity: () => number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: users }, async (_, i) => {
      const userId = `storm-${saleId}-${i}`;
      const token = userToken(userId);
      const p = await call(t.url, 'POST', `/api/sales/${saleId}/path`, { token });
      assert.equal(p.status, 200, p.text);
      await Promise.all(
        Array.from({ length: attemptsPerUser }, async () => {
          const quantity = pickQuantity();
          const reply = await call(t.url, 'POST', `/api/sales/${saleId}/buy/${p.body.path}`, { token, body: { quantity } });
          outcomes.push({ userId, quantity, reply });
        }),
      );
    }),
  );
  return outcomes;
}

async function verify(t: TestServer, saleId: string, stock: number, limit: number, outcomes: Outcome[]) {
  const accepted = outcomes.filter((o) => o.reply.status === 202);
  const refused = outcomes.filter((o) => o.reply.status !== 202);
  for (const o of refused) {
    assert.equal(o.reply.status, 409, `unexpected refusal ${o.reply.status} ${o.reply.text}`);
    assert.ok(['sold_out', 'limit_reached'].includes(o.reply.body.error.code), o.reply.text);
  }
  const rows = await t.orders(saleId);
  // No oversell, nobody past the limit; every 202 has its row, with the same user and quantity,
  // and no row exists without a 202.
  const { failures, held, perUser } = checkOrderInvariants({
    stock,
    perUserLimit: limit,
    orders: orderFacts(rows),
    accepted: accepted.map((a) => ({ orderId: String(a.reply.body.orderId), userId: a.userId, quantity: a.quantity })),
  });
  assert.deepEqual(failures, []);
  assert.equal(held, stock, 'the whole stock is sold, not less');
  assert.equal(rows.length, accepted.length, 'one row per 202, none for refusals');
  let acceptedUnits = 0;
  for (const a of accepted) {
    assert.equal(a.reply.body.quantity, a.quantity);
    acceptedUnits += a.quantity;
  }
  assert.equal(acceptedUnits, stock);
  for (const q of perUser.values()) assert.ok(q <= limit);
  return { accepted: accepted.length, refused: refused.length, buyers: perUser.size };
}

describe('concurrency: 3,000 users against 100 units', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('limit 1, some asking for 2: exactly 100 units, one each', async () => {
    const stock = 100;
    const sale = await t.createSale({ stock, perUserLimit: 1 });
    const started = Date.now();
    const outcomes = await storm(t, sale.id, 3000, 3, () => (Math.random() < 0.2 ? 2 : 1));
    const seconds = (Date.now() - started) / 1000;
    const r = await verify(t, sale.id, stock, 1, outcomes);
    assert.equal(r.buyers, 100, '100 distinct buyers with one unit each');
    const overLimit = outcomes.filter((o) => o.quantity === 2);
    for (const o of overLimit) assert.notEqual(o.reply.status, 202, 'quantity 2 over limit 1 is never accepted');
    await t.settle(sale.id); // the totals come from the database of record
    const stats = await t.admin('GET', `/api/admin/sales/${sale.id}`);
    assert.equal(stats.body.stats.available, 0);
    assert.equal(stats.body.stats.reserved, stock);
    console.log(`limit 1: ${outcomes.length + 3000} requests (3000 paths) in ${seconds.toFixed(2)} s, ${r.accepted} reserved, ${r.refused} refused`);
    // Sold out is now answered by the gateway flag.
    const late = await buy(t.url, sale.id, userToken('latecomer'));
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'sold_out');
  });

  test('limit 3, random quantities 1-4: exactly 100 units, nobody over 3', async () => {
    const stock = 100;
    const sale = await t.createSale({ stock, perUserLimit: 3 });
    const outcomes = await storm(t, sale.id, 3000, 4, () => 1 + Math.floor(Math.random() * 4));
    const r = await verify(t, sale.id, stock, 3, outcomes);
    for (const o of outcomes.filter((x) => x.quantity > 3)) assert.notEqual(o.reply.status, 202);
    console.log(`limit 3: ${outcomes.length} buys, ${r.accepted} reserved by ${r.buyers} users, ${r.refused} refused`);
  });

  test('one user firing 200 buys at once gets exactly the limit', async () => {
    const sale = await t.createSale({ stock: 50, perUserLimit: 2 });
    const token = userToken('greedy');
    const p = await call(t.url, 'POST', `/api/sales/${sale.id}/path`, { token });
    const replies = await Promise.all(
      Array.from({ length: 200 }, () => call(t.url, 'POST', `/api/sales/${sale.id}/buy/${p.body.path}`, { token, body: { quantity: 1 } })),
    );
    assert.equal(replies.filter((r) => r.status === 202).length, 2);
    assert.equal((await t.orders(sale.id)).length, 2);
    await t.settle(sale.id);
    const stats = await t.admin('GET', `/api/admin/sales/${sale.id}`);
    assert.equal(stats.body.stats.available, 48);
  });
});
