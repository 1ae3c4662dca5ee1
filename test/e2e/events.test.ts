// A sale's events reach the shop, through the whole process: a seckill configured with all three
// sinks (RabbitMQ, NATS JetStream, a webhook receiver in the test that fails its first request)
// sells out, some orders are paid or cancelled, and each sink receives every 202's order.reserved
// and each payment's and cancellation's event exactly once after de-duplication by event id, each
// order's events in seq order, and every webhook signature valid (verifyWebhook, the documented
// snippet). Skipped, with the reason, when RabbitMQ or NATS is not reachable.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { verifyWebhook } from '../../src/sinks/webhook-signature.js';
import { AMQP_URL, NATS_URL, withoutNats, withoutRabbit } from '../support/brokers.js';
import { ADMIN_KEY, buy, call, randomUser, startTestServer, userToken, type TestServer } from '../support/server.js';
import { until } from '../support/wait.js';


const skip = (await withoutRabbit()) || (await withoutNats());

interface Received {
  id: string;
  type: string;
  seq?: number;
  order?: { orderId: string };
}

/** Received events, de-duplicated by id, as "orderId type" pairs; fails on an order's events out of seq order. */
function delivered(events: readonly Received[]): Set<string> {
  const last = new Map<string, number>();
  const seen = new Set<string>();
  const pairs = new Set<string>();
  for (const e of events) {
    if (!e.order) continue; // sale.interest
    const prev = last.get(e.order.orderId) ?? 0;
    assert.ok(e.seq! >= prev, `${e.type} of ${e.order.orderId} arrived after seq ${prev}`);
    last.set(e.order.orderId, e.seq!);
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    const pair = `${e.order.orderId} ${e.type}`;
    assert.ok(!pairs.has(pair), `two event ids for ${pair}`);
    pairs.add(pair);
  }
  return pairs;
}

describe('order events reach RabbitMQ, NATS JetStream and a webhook', { skip }, () => {
  const run = randomUUID().slice(0, 8);
  const exchange = `seckill-e2e-${run}`;
  const stream = `SECKILL_E2E_${run}`;
  const prefix = `seckille2e${run}`;
  const secret = randomUUID() + randomUUID();
  let t: TestServer;
  let model: amqp.ChannelModel;
  let nc: NatsConnection;
  let hooks: http.Server;
  const fromAmqp: Received[] = [];
  const fromHook: Received[] = [];
  let badSignatures = 0;
  let hookRequests = 0;

  before(async () => {
    model = await amqp.connect(AMQP_URL);
    const ch = await model.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, exchange, '#');
    await ch.consume(queue, (m) => {
      if (!m) return;
      assert.equal(m.properties.messageId, JSON.parse(m.content.toString()).id);
      fromAmqp.push(JSON.parse(m.content.toString()));
    }, { noAck: true });
    nc = await natsConnect({ servers: NATS_URL });

    hooks = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hookRequests++;
        if (hookRequests === 1) return void res.writeHead(500).end(); // retried
        const body = Buffer.concat(chunks).toString('utf8');
        if (!verifyWebhook(secret, body, req.headers['seckill-timestamp'] as string, req.headers['seckill-signature'] as string)) {
          badSignatures++;
          return void res.writeHead(401).end();
        }
        fromHook.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', () => r()));
    const { port } = hooks.address() as net.AddressInfo;

    t = await startTestServer({
      SECKILL_AMQP_URL: AMQP_URL, SECKILL_AMQP_EXCHANGE: exchange,
      SECKILL_NATS_URL: NATS_URL, SECKILL_NATS_STREAM: stream, SECKILL_NATS_SUBJECT_PREFIX: prefix,
      SECKILL_WEBHOOK_URLS: `http://127.0.0.1:${port}/hooks/seckill`, SECKILL_WEBHOOK_SECRET: secret,
    });
  });

  after(async () => {
    await t?.close();
    const ch = await model?.createChannel().catch(() => null);
    await ch?.deleteExchange(exchange).catch(() => undefined);
    await model?.close().catch(() => undefined);
    if (nc) {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
    hooks?.closeAllConnections();
    await new Promise<void>((r) => (hooks ? hooks.close(() => r()) : r()));
  });

  test('every 202 once per sink, payments and cancellations too, in order, signed', async () => {
    const sale = await t.createSale({ stock: 5, perUserLimit: 1, startsIn: -1000, lasts: 3600_000 });
    await t.settle(sale.id);
    const answers = await Promise.all(Array.from({ length: 8 }, () => buy(t.url, sale.id, userToken(randomUser('ev')))));
    const orders = answers.filter((r) => r.status === 202).map((r) => r.body.orderId as string);
    assert.equal(orders.length, 5, answers.map((r) => r.status).join(','));
    const [paid1, paid2, cancelled] = orders;
    for (const [id, ref] of [[paid1, 'psp-e2e-1'], [paid2, 'psp-e2e-2']]) {
      const r = await call(t.url, 'POST', `/api/orders/${id}/pay`, { token: ADMIN_KEY, body: { paymentRef: ref } });
      assert.equal(r.status, 200, r.text);
    }
    const c = await call(t.url, 'POST', `/api/orders/${cancelled}/cancel`, { token: ADMIN_KEY });
    assert.equal(c.status, 200, c.text);

    const expected = new Set([
      ...orders.map((id) => `${id} order.reserved`),
      `${paid1} order.paid`, `${paid2} order.paid`, `${cancelled} order.cancelled`,
    ]);
    const complete = (got: readonly Received[]) => {
      const pairs = delivered(got);
      return [...expected].every((p) => pairs.has(p)) && pairs;
    };

    const amqpPairs = await until('the events in RabbitMQ', () => complete(fromAmqp), 60_000, 100);
    const hookPairs = await until('the events at the webhook', () => complete(fromHook), 60_000, 100);
    const jsm = await nc.jetstreamManager();
    await until('the events in the JetStream stream', async () => {
      const info = await jsm.streams.info(stream).catch(() => null);
      return info !== null && info.state.messages >= expected.size;
    }, 60_000, 200);
    const fromNats: Received[] = [];
    const consumer = await nc.jetstream().consumers.get(stream);
    const total = (await jsm.streams.info(stream)).state.messages;
    for await (const m of await consumer.fetch({ max_messages: total, expires: 5000 })) {
      const e = m.json<Received>();
      assert.equal(m.headers?.get('Nats-Msg-Id'), e.id);
      assert.equal(m.subject, `${prefix}.${e.type}`);
      fromNats.push(e);
      if (fromNats.length === total) break;
    }
    const natsPairs = complete(fromNats);
    assert.ok(natsPairs, 'every event in NATS');

    // Nothing beyond what happened (the sold-out buyers got no order, hence no event).
    const orderPairs = (p: Set<string>) => [...p].sort();
    assert.deepEqual(orderPairs(amqpPairs), [...expected].sort());
    assert.deepEqual(orderPairs(hookPairs), [...expected].sort());
    assert.deepEqual(orderPairs(natsPairs), [...expected].sort());
    assert.equal(badSignatures, 0);
    assert.ok(hookRequests > fromHook.length, 'the first request failed and was retried');
  });
});
