// The outbox relayed to a webhook receiver in the test process (issue 13): every 202's events
// arrive, signed, each order's in its order (after de-duplication by id); an event the receiver
// refuses for good becomes a dead letter that holds its order, shown by the admin API and
// redriven through it; /metrics counts what was sent.
// Payments with the admin key (the shop's side).
// Embedded, or with SECKILL_TEST_MODE=distributed 3 processes on Redis and PostgreSQL (one relay
// holds the sink's lease).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { until } from '../support/wait.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import { buy, call, randomUser, saleBody, skipUnlessReady, startTestServer, userToken, ADMIN_KEY, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();
const SECRET = crypto.randomBytes(32).toString('hex');
const EXPECTED: Record<string, string[]> = { reserved: ['order.reserved'], paid: ['order.reserved', 'order.paid'], cancelled: ['order.reserved', 'order.cancelled'] };

describe('outbox to a webhook', { skip }, () => {
  let t: TestServer;
  let hook: WebhookReceiver;
  let sink = '';

  before(async () => {
    hook = await WebhookReceiver.start(SECRET);
    t = await startTestServer({ SECKILL_WEBHOOK_URLS: hook.url, SECKILL_WEBHOOK_SECRET: SECRET });
    sink = `webhook:${new URL(hook.url).host}`;
  });
  after(async () => {
    await t?.close();
    await hook?.close();
  });

  test('every order event arrives signed and in order; a refused one is a dead letter until redriven', async () => {
    const bad = randomUser('refused');
    let refusing = true;
    // 400 is permanent for the webhook sink: the relay gives up on the event after a few attempts.
    hook.refuse = (e) => (refusing && e.order?.userId === bad ? 400 : null);
    const r = await t.admin('POST', '/api/admin/sales', saleBody({ stock: 12, perUserLimit: 1 }));
    assert.equal(r.status, 201, r.text);
    const saleId = r.body.id as string;
    await t.settle(saleId);
    const users = [bad, ...Array.from({ length: 11 }, () => randomUser('b'))];
    const status = new Map<string, string>();
    for (const [i, u] of users.entries()) {
      const token = userToken(u);
      const b = await buy(t.url, saleId, token);
      assert.equal(b.status, 202, b.text);
      const orderId = b.body.orderId as string;
      status.set(orderId, 'reserved');
      if (i % 3 === 0) {
        const p = await call(t.url, 'POST', `/api/orders/${orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: `pay-${i}` } });
        assert.equal(p.status, 200, p.text);
        status.set(orderId, 'paid');
      } else if (i % 3 === 1) {
        const c = await call(t.url, 'POST', `/api/orders/${orderId}/cancel`, { token });
        assert.equal(c.status, 200, c.text);
        status.set(orderId, 'cancelled');
      }
    }
    const badOrder = [...status.keys()][0];
    const arrived = () => hook.byOrder();
    await until('every good order\'s events', () => [...status].every(([id, s]) => id === badOrder || arrived().get(id)?.length === EXPECTED[s].length), 60_000, 100);
    for (const [id, s] of status) {
      if (id === badOrder) continue;
      const got = arrived().get(id)!;
      assert.deepEqual(got.map((e) => e.type), EXPECTED[s], `${id}: its events in order`);
      assert.deepEqual(got.map((e) => e.seq), EXPECTED[s].map((_, i) => i + 1));
    }
    assert.equal(hook.badSignatures, 0);

    const dead = await until('the dead letter', async () => {
      const d = await t.admin('GET', `/api/admin/events/dead?sink=${encodeURIComponent(sink)}`);
      assert.equal(d.status, 200, d.text);
      return d.body.dead.length === 1 ? d.body.dead[0] : undefined;
    }, 60_000, 200);
    assert.deepEqual([dead.key, dead.type, dead.seq], [badOrder, 'order.reserved', 1]);
    assert.equal(arrived().get(badOrder), undefined, 'the refused order\'s later event waits behind its dead one');
    const st = await t.admin('GET', '/api/admin/events');
    assert.equal(st.status, 200, st.text);
    const mine = st.body.sinks.find((x: { sink: string }) => x.sink === sink);
    assert.ok(mine, st.text);
    assert.ok(mine.dead === 1 && mine.backlog === 1 && mine.sent >= 1, st.text);

    // Bad input: 4xx.
    assert.equal((await t.admin('GET', '/api/admin/events/dead?sink=nope')).status, 404);
    assert.equal((await t.admin('GET', '/api/admin/events/dead')).status, 400);
    assert.equal((await t.admin('POST', '/api/admin/events/redrive', { ids: ['not-a-uuid'] })).status, 400);
    assert.equal((await t.admin('POST', '/api/admin/events/redrive', { sink: 'nope' })).status, 404);
    assert.equal((await call(t.url, 'GET', '/api/admin/events')).status, 401);

    refusing = false;
    const rd = await t.admin('POST', '/api/admin/events/redrive', { sink, ids: [dead.id] });
    assert.equal(rd.status, 200, rd.text);
    assert.deepEqual(rd.body.redriven, { [sink]: 1 });
    const s = status.get(badOrder)!;
    await until('the redriven order', () => arrived().get(badOrder)?.length === EXPECTED[s].length, 60_000, 100);
    assert.deepEqual(arrived().get(badOrder)!.map((e) => e.type), EXPECTED[s]);

    const m = await call(t.url, 'GET', '/metrics', { token: ADMIN_KEY });
    assert.match(m.text, /seckill_outbox_events_sent_total\{sink="webhook:[^"]+"\} \d+/);
    assert.match(m.text, /seckill_outbox_delivery_delay_seconds_bucket/);
  });
});
