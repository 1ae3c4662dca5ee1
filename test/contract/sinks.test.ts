// The outbox relay's event sinks against the real RabbitMQ (127.0.0.1:5672) and NATS JetStream
// (127.0.0.1:4222) of the machine, and a webhook receiver in the test: each sink's batch arrives
// exactly as sent (ids, properties or headers, order); NATS drops a re-published id; AMQP through
// the fault proxy rejects within its timeouts and reconnects; webhooks retry a 500, verify with
// the documented snippet (verifyWebhook), and give up on a receiver that never answers.
// Every exchange, stream and subject prefix is this run's own, deleted at the end.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import amqp from 'amqplib';
import { connect as natsConnect, nanos, type NatsConnection } from 'nats';
import { orderEvent, saleInterestEvent, type OutboxEvent } from '../../src/domain/events.js';
import type { Order } from '../../src/domain/order.js';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/errors.js';
import { AmqpSink } from '../../src/sinks/amqp-sink.js';
import { NatsSink } from '../../src/sinks/nats-sink.js';
import { sinksFromConfig } from '../../src/sinks/config.js';
import { SinkError } from '../../src/sinks/sink-error.js';
import { WebhookSink } from '../../src/sinks/webhook-sink.js';
import { signWebhook, verifyWebhook } from '../../src/sinks/webhook-signature.js';
import { AMQP_URL, NATS_URL, withoutNats, withoutRabbit } from '../support/brokers.js';
import { silent } from '../support/fakes.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/wait.js';

const run = randomUUID().slice(0, 8);

const amqpSkip = await withoutRabbit();
const natsSkip = await withoutNats();

/** `orders` orders, each reserved then paid, interleaved as a relay batch would carry them; and a sale summary. */
function batch(orders: number): OutboxEvent[] {
  const now = Date.now();
  const saleId = `sale-${randomUUID()}`;
  const list: Order[] = Array.from({ length: orders }, (_, i) => ({
    orderId: randomUUID(), saleId, userId: `user-${i}`, quantity: 1, priceCents: 4900, status: 'reserved',
    createdAt: now + i, expiresAt: now + 600_000, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
  }));
  const events = list.map((o) => orderEvent(o));
  for (const o of list) events.push(orderEvent({ ...o, status: 'paid', paidAt: now + 1000, paymentRef: `pay-${o.orderId}` }));
  events.push(saleInterestEvent(saleId, 7, 9, now + 2000));
  return events;
}

/** Per key, the seqs in arrival order must not go down. */
function assertPerKeyOrder(got: readonly OutboxEvent[]): void {
  const last = new Map<string, number>();
  for (const e of got) {
    assert.ok((last.get(e.key) ?? 0) < e.seq, `event ${e.id} (${e.type}) arrived after a later one of ${e.key}`);
    last.set(e.key, e.seq);
  }
}

describe('AMQP sink (RabbitMQ)', { skip: amqpSkip }, () => {
  const exchange = `seckill-test-${run}`;
  let model: amqp.ChannelModel;
  let ch: amqp.Channel;
  const received: amqp.ConsumeMessage[] = [];

  after(async () => {
    if (!ch) return;
    await ch.deleteExchange(exchange).catch(() => undefined);
    await model.close().catch(() => undefined);
  });

  /** A consumer as a shop would write it: its own queue bound to the exchange for every type. */
  async function consumer(): Promise<void> {
    if (ch) return;
    model = await amqp.connect(AMQP_URL);
    ch = await model.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, exchange, '#');
    await ch.consume(queue, (m) => m && received.push(m), { noAck: true });
  }

  test('a batch arrives as sent: routing key = type, message_id = id, persistent JSON, in order', async () => {
    await consumer();
    const sink = new AmqpSink({ url: AMQP_URL, exchange, log: silent });
    try {
      const sent = batch(5);
      await sink.publish(sent);
      await until('the batch at the consumer', () => received.length >= sent.length, 15_000);
      assert.equal(received.length, sent.length);
      sent.forEach((e, i) => {
        const m = received[i];
        assert.equal(m.fields.routingKey, e.type);
        assert.equal(m.fields.exchange, exchange);
        assert.equal(m.properties.messageId, e.id);
        assert.equal(m.properties.contentType, 'application/json');
        assert.equal(m.properties.deliveryMode, 2);
        assert.equal(m.properties.type, e.type);
        assert.equal(m.content.toString(), e.body);
      });
    } finally {
      await sink.close();
    }
    received.length = 0;
  });

  test('through a cut link: publish rejects within its timeouts, then reconnects after the link heals', async () => {
    await consumer();
    const proxy = await new FaultProxy('127.0.0.1', 5672).start();
    const sink = new AmqpSink({
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, exchange, log: silent,
      connectTimeoutMs: 1500, publishTimeoutMs: 2000, retryDelayMs: { min: 100, max: 200 },
    });
    try {
      const first = batch(2);
      await sink.publish(first);

      // Confirms held back: the publish gives up after publishTimeoutMs, it does not hang.
      proxy.stall();
      let t = Date.now();
      await assert.rejects(sink.publish(batch(1)), SinkError);
      assert.ok(Date.now() - t < 8000, `rejected after ${Date.now() - t} ms`);

      // The broker unreachable (connections cut, a new one's handshake stalled): rejects, quickly.
      proxy.cut();
      await new Promise((r) => setTimeout(r, 250)); // past the fail-fast window after the drop
      t = Date.now();
      await assert.rejects(sink.publish(batch(1)), SinkError);
      assert.ok(Date.now() - t < 8000, `rejected after ${Date.now() - t} ms`);

      proxy.cut();
      proxy.restore();
      const later = batch(3);
      await until('a publish after the link healed', () => sink.publish(later).then(() => true, () => false), 20_000, 200);
      const ids = () => new Set(received.map((m) => m.properties.messageId as string));
      await until('every event of the healed publish', () => later.every((e) => ids().has(e.id)), 15_000);
      assert.ok(first.every((e) => ids().has(e.id)));
      assert.ok(proxy.accepted >= 2, 'the sink opened a new connection');
    } finally {
      await sink.close();
      await proxy.close();
    }
  });
});

describe('NATS JetStream sink', { skip: natsSkip }, () => {
  const stream = `SECKILL_TEST_${run}`;
  const prefix = `seckilltest${run}`;
  let nc: NatsConnection | undefined;

  after(async () => {
    if (!nc) return;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  test('the stream is declared; a batch arrives as sent (subject, Nats-Msg-Id, body, order); a re-publish is de-duplicated', async () => {
    nc = await natsConnect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    // An older declaration with a short duplicate window: the sink brings it up to its own.
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], duplicate_window: nanos(60_000) });
    const sink = new NatsSink({ servers: NATS_URL, stream, subjectPrefix: prefix, log: silent });
    const again = new NatsSink({ servers: NATS_URL, stream, subjectPrefix: prefix, log: silent });
    try {
      const sent = batch(5);
      await sink.publish(sent);
      const info = await jsm.streams.info(stream);
      assert.deepEqual(info.config.subjects, [`${prefix}.>`]);
      assert.equal(info.config.duplicate_window, nanos(10 * 60_000));

      // Another process (a second sink) and a retry of the same batch: stored once.
      await again.publish(sent);
      await sink.publish(sent.slice(2));
      assert.equal((await jsm.streams.info(stream)).state.messages, sent.length);

      const consumer = await nc.jetstream().consumers.get(stream);
      const got: { subject: string; id: string | undefined; body: string }[] = [];
      const msgs = await consumer.fetch({ max_messages: sent.length, expires: 5000 });
      for await (const m of msgs) {
        got.push({ subject: m.subject, id: m.headers?.get('Nats-Msg-Id'), body: m.string() });
        if (got.length === sent.length) break;
      }
      assert.deepEqual(got, sent.map((e) => ({ subject: `${prefix}.${e.type}`, id: e.id, body: e.body })));
      assertPerKeyOrder(got.map((g) => sent.find((e) => e.id === g.id)!));
    } finally {
      await sink.close();
      await again.close();
    }
  });

  test('the stream deleted under a connected sink: a publish rejects, the next declares it again', async () => {
    const jsm = await nc!.jetstreamManager();
    const sink = new NatsSink({ servers: NATS_URL, stream, subjectPrefix: prefix, log: silent, publishTimeoutMs: 3000, retryDelayMs: { min: 50, max: 100 } });
    try {
      await sink.publish(batch(1));
      await jsm.streams.delete(stream);
      await assert.rejects(sink.publish(batch(1)), SinkError);
      const later = batch(2);
      await until('a publish that declares the stream again', () => sink.publish(later).then(() => true, () => false), 20_000, 200);
      assert.equal((await jsm.streams.info(stream)).state.messages, later.length);
    } finally {
      await sink.close();
    }
  });

  test('NATS unreachable: the publish rejects quickly', async () => {
    const sink = new NatsSink({ servers: 'nats://127.0.0.1:1', stream, subjectPrefix: prefix, log: silent, connectTimeoutMs: 1000 });
    try {
      const t = Date.now();
      await assert.rejects(sink.publish(batch(1)), SinkError);
      assert.ok(Date.now() - t < 5000);
    } finally {
      await sink.close();
    }
  });
});

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: records each POST and answers with `answer(n)` (n from 1), or never. */
async function receiver(answer: (n: number) => number | 'never'): Promise<{ url: string; got: Delivery[]; close(): Promise<void> }> {
  const got: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const a = answer(got.length);
      if (a !== 'never') res.writeHead(a, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/seckill`,
    got,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('webhook sink', () => {
  const secret = 'w'.repeat(16) + randomUUID();

  test('a 500 is retried; every event arrives in order, signed, verified with the documented snippet', async () => {
    const rx = await receiver((n) => (n === 1 ? 500 : 200));
    const sink = new WebhookSink({ url: rx.url, secret, name: 'webhook:test', log: silent, backoffMs: { base: 50, max: 200 } });
    try {
      const sent = batch(3);
      await sink.publish(sent);
      assert.equal(rx.got.length, sent.length + 1, 'one retry');
      // Different orders' events go out side by side: every event once after the 500 (the first
      // request), each order's in order.
      const delivered = rx.got.slice(1);
      const byId = new Map(sent.map((e) => [e.id, e]));
      assert.deepEqual(new Set(delivered.map((d) => d.headers['seckill-event-id'])), new Set(byId.keys()));
      assert.ok(byId.has(rx.got[0].headers['seckill-event-id'] as string));
      assertPerKeyOrder(delivered.map((d) => byId.get(d.headers['seckill-event-id'] as string)!));
      delivered.forEach((d) => {
        const e = byId.get(d.headers['seckill-event-id'] as string)!;
        assert.equal(d.body, e.body);
        assert.equal(d.headers['content-type'], 'application/json');
        assert.equal(d.headers['seckill-event-id'], e.id);
        assert.equal(d.headers['seckill-event-type'], e.type);
        const ts = d.headers['seckill-timestamp'] as string;
        const sig = d.headers['seckill-signature'] as string;
        assert.match(sig, /^v1=[0-9a-f]{64}$/);
        assert.ok(verifyWebhook(secret, d.body, ts, sig), `signature of ${e.id}`);
        assert.ok(!verifyWebhook(secret, d.body + ' ', ts, sig), 'a changed body fails');
        assert.ok(!verifyWebhook('x'.repeat(40), d.body, ts, sig), 'another secret fails');
        assert.ok(!verifyWebhook(secret, d.body, ts, sig, 300, Number(ts) + 301), 'a replay after the window fails');
      });
    } finally {
      await sink.close();
      await rx.close();
    }
  });

  test('a receiver that never answers: the publish rejects after its timeout and budget', async () => {
    const rx = await receiver(() => 'never');
    const sink = new WebhookSink({ url: rx.url, secret, name: 'webhook:test', log: silent, requestTimeoutMs: 800, retryBudgetMs: 1000, backoffMs: { base: 50, max: 100 } });
    try {
      const t = Date.now();
      const err = await sink.publish(batch(1)).then(() => null, (e: unknown) => e);
      const took = Date.now() - t;
      assert.ok(err instanceof SinkError && !err.permanent, String(err));
      assert.match(err.message, /no answer within 800 ms/);
      assert.ok(took >= 800 && took < 8000, `rejected after ${took} ms`);
      assert.ok(rx.got.length >= 1);
    } finally {
      await sink.close();
      await rx.close();
    }
  });

  test('a 4xx is permanent: no retry, the refused orders\' later events are not sent', async () => {
    const rx = await receiver(() => 400);
    const sink = new WebhookSink({ url: rx.url, secret, name: 'webhook:test', log: silent });
    try {
      const sent = batch(2);
      const err = await sink.publish(sent).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof SinkError && err.permanent, String(err));
      const ids = rx.got.map((d) => d.headers['seckill-event-id']);
      assert.equal(new Set(ids).size, ids.length, 'no retry');
      const firsts = new Set(sent.filter((e) => e.seq === 1).map((e) => e.id));
      assert.ok(ids.length >= 1 && ids.every((id) => firsts.has(id as string)), 'only first events of their orders were tried');
    } finally {
      await sink.close();
      await rx.close();
    }
  });

  test('docs/integrating.md quotes verifyWebhook verbatim', () => {
    const src = readFileSync(new URL('../../src/sinks/webhook-signature.ts', import.meta.url), 'utf8');
    const snippet = /\/\/ --- verification snippet[^\n]*\n([\s\S]*?)\/\/ --- end of verification snippet/.exec(src)?.[1];
    assert.ok(snippet, 'the markers in webhook-signature.ts');
    const doc = readFileSync(new URL('../../docs/integrating.md', import.meta.url), 'utf8');
    assert.ok(doc.includes(snippet.trim()), 'docs/integrating.md must quote the verifyWebhook of webhook-signature.ts unchanged');
    const { timestamp, signature } = signWebhook(secret, '{"a":1}', 1_800_000_000);
    assert.ok(verifyWebhook(secret, '{"a":1}', timestamp, signature, 300, 1_800_000_100));
  });
});

describe('sink configuration', () => {
  const base = { SECKILL_DATA_DIR: '/tmp/unused' };
  const problems = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadConfig({ ...base, ...env });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  test('none set: no sinks; defaults for the exchange, stream and subjects', () => {
    assert.deepEqual(loadConfig(base).sinks, {});
    const c = loadConfig({ ...base, SECKILL_AMQP_URL: AMQP_URL, SECKILL_NATS_URL: `${NATS_URL}, nats://10.0.0.2:4222` });
    assert.deepEqual(c.sinks.amqp, { url: AMQP_URL, exchange: 'seckill' });
    assert.deepEqual(c.sinks.nats, { servers: `${NATS_URL},nats://10.0.0.2:4222`, stream: 'SECKILL', subjectPrefix: 'seckill' });
  });

  test('webhook URLs need a secret of at least 32 characters; bad URLs are named', () => {
    assert.match(problems({ SECKILL_WEBHOOK_URLS: 'https://shop.example/hook' }).join('\n'), /SECKILL_WEBHOOK_SECRET=\(unset\) is not allowed: SECKILL_WEBHOOK_URLS is set/);
    assert.match(problems({ SECKILL_WEBHOOK_URLS: 'https://shop.example/hook', SECKILL_WEBHOOK_SECRET: 'short' }).join('\n'), /SECKILL_WEBHOOK_SECRET=\(5 characters, not shown\)/);
    assert.match(problems({ SECKILL_WEBHOOK_URLS: 'https://a.example/h,,ftp://b.example/', SECKILL_WEBHOOK_SECRET: secret32() }).join('\n'), /entry 2 of 3 is empty[\s\S]*entry 3 of 3 is not an http/);
    assert.match(problems({ SECKILL_AMQP_URL: 'http://rabbit:5672' }).join('\n'), /SECKILL_AMQP_URL="http:\/\/rabbit:5672" is not allowed/);
    assert.match(problems({ SECKILL_AMQP_URL: 'amqp://u:hunter2@rabbit', SECKILL_AMQP_EXCHANGE: 'amq.topic' }).join('\n'), /names starting with "amq\."/);
    assert.doesNotMatch(problems({ SECKILL_AMQP_URL: 'amqps://u:hunter2@' }).join('\n'), /hunter2/, 'the password is never shown');
    assert.match(problems({ SECKILL_NATS_STREAM: 'a.b' }).join('\n'), /SECKILL_NATS_STREAM="a.b" is not allowed/);
  });

  test('sinksFromConfig: amqp, nats, then one webhook sink per URL named by host', async () => {
    const c = loadConfig({
      ...base, SECKILL_AMQP_URL: AMQP_URL, SECKILL_NATS_URL: NATS_URL,
      SECKILL_WEBHOOK_URLS: 'https://a.example/h, https://b.example:8443/h,https://a.example/other', SECKILL_WEBHOOK_SECRET: secret32(),
    });
    const sinks = sinksFromConfig(c.sinks, silent);
    assert.deepEqual(sinks.map((s) => s.name), ['amqp', 'nats', 'webhook:a.example#1', 'webhook:b.example:8443', 'webhook:a.example#2']);
    await Promise.all(sinks.map((s) => s.close()));
  });
});

function secret32(): string {
  return 's'.repeat(32);
}
