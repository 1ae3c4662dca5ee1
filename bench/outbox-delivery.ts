// The outbox relay's delivery during a sale (issue 13): a seckill child process with three sinks —
// a webhook (a receiver in this process, answering at once), RabbitMQ (a queue bound to the
// exchange, consumed here) and NATS JetStream (read back after the sale: the stream's own receipt
// time of each message) — a sale of `--stock` units bought by as many buyers, `--concurrency` at a
// time. Reports per sink the relay's events/s (first to last event) and the order-to-delivery delay
// (receipt time − the event's `at`, i.e. the reservation's time) p50/p99, and the buy rate beside it.
//
//   node --import tsx bench/outbox-delivery.ts [--mode embedded|distributed] [--stock 3000] [--concurrency 32] [--sinks webhook,amqp,nats]
// distributed: PostgreSQL and Redis of test/support/cluster.ts (a fresh database, its own key prefix).
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { connect as natsConnect } from 'nats';
import { createDatabase, REDIS_URL } from '../test/support/cluster.js';
import { ADMIN_KEY, childEnv, kill9, launchSeckill, until, type Env } from '../test/support/launcher.js';
import { buy, call, saleBody, tempDir, userToken } from '../test/support/server.js';
import { WebhookReceiver } from '../test/support/webhook-receiver.js';

const { values } = parseArgs({ options: { mode: { type: 'string', default: 'embedded' }, stock: { type: 'string', default: '3000' }, concurrency: { type: 'string', default: '32' }, sinks: { type: 'string', default: 'webhook,amqp,nats' } } });
const sinks = new Set(values.sinks.split(','));
const stock = Number(values.stock);
const concurrency = Number(values.concurrency);
const secret = crypto.randomBytes(32).toString('hex');

const hook = await WebhookReceiver.start(secret);
const received: number[] = [];
const delays: number[] = [];
hook.refuse = (e) => {
  const now = Date.now();
  received.push(now);
  delays.push(now - Date.parse(e.at));
  return null;
};
let env: Env = { SECKILL_DATA_DIR: tempDir('seckill-outbox-bench-'), LOG_LEVEL: 'error' };
if (sinks.has('webhook')) env = { ...env, SECKILL_WEBHOOK_URLS: hook.url, SECKILL_WEBHOOK_SECRET: secret };
/** Receipt times and delays per broker sink. */
const got: Record<string, { received: number[]; delays: number[] }> = { amqp: { received: [], delays: [] }, nats: { received: [], delays: [] } };
const tag = crypto.randomBytes(4).toString('hex');
const exchange = `seckill-bench-${tag}`;
const stream = `SECKILL_BENCH_${tag}`;
const prefix = `seckill-bench-${tag}`;
let model: amqp.ChannelModel | null = null;
if (sinks.has('amqp')) {
  model = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
  const ch = await model.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, exchange, '#');
  await ch.consume(queue, (m) => {
    if (!m) return;
    const now = Date.now();
    got.amqp.received.push(now);
    got.amqp.delays.push(now - Date.parse(JSON.parse(m.content.toString()).at));
  }, { noAck: true });
  env = { ...env, SECKILL_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672', SECKILL_AMQP_EXCHANGE: exchange };
}
if (sinks.has('nats')) env = { ...env, SECKILL_NATS_URL: 'nats://127.0.0.1:4222', SECKILL_NATS_STREAM: stream, SECKILL_NATS_SUBJECT_PREFIX: prefix };
let drop: (() => Promise<void>) | null = null;
if (values.mode === 'distributed') {
  const db = await createDatabase();
  drop = () => db.drop();
  env = { ...env, DATABASE_URL: db.url, REDIS_URL, SECKILL_REDIS_PREFIX: `obench-${crypto.randomBytes(4).toString('hex')}`, SECKILL_ALLOW_VOLATILE_REDIS: '1' };
}
const p = await launchSeckill({ env: childEnv(env) });
try {
  const s = await call(p.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody({ stock, perUserLimit: 1 }) });
  const saleId = s.body.id as string;
  await new Promise((r) => setTimeout(r, 500));
  const tokens = Array.from({ length: stock }, (_, i) => userToken(`ob-${i}`));
  let next = 0;
  let ok = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < tokens.length) {
      const r = await buy(p.url, saleId, tokens[next++]);
      if (r.status === 202) ok++;
    }
  }));
  const buyMs = Date.now() - t0;
  if (sinks.has('webhook')) await until('every reservation at the webhook', () => received.length >= ok, 300_000, 100);
  if (sinks.has('amqp')) await until('every reservation in RabbitMQ', () => got.amqp.received.length >= ok, 300_000, 100);
  if (sinks.has('nats')) {
    // JetStream keeps each message's receipt time: read them back once all are there.
    const nc = await natsConnect({ servers: 'nats://127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    await until('every reservation in NATS', async () => ((await jsm.streams.info(stream).catch(() => null))?.state.messages ?? 0) >= ok, 300_000, 200);
    const consumer = await nc.jetstream().consumers.get(stream);
    const total = (await jsm.streams.info(stream)).state.messages;
    for await (const m of await consumer.fetch({ max_messages: total, expires: 5000 })) {
      const at = Math.round(Number(m.info.timestampNanos) / 1_000_000);
      got.nats.received.push(at);
      got.nats.delays.push(at - Date.parse(JSON.parse(m.string()).at));
      if (got.nats.received.length >= total) break;
    }
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
  process.stdout.write(`${values.mode}: ${ok} reservations in ${(buyMs / 1000).toFixed(1)} s (${Math.round(ok / (buyMs / 1000))} buys/s)\n`);
  const report = (name: string, rec: number[], del: number[]) => {
    const sorted = [...del].sort((a, b) => a - b);
    const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
    const times = [...rec].sort((a, b) => a - b);
    const spanS = Math.max(0.001, (times[times.length - 1] - times[0]) / 1000);
    process.stdout.write(
      `  ${name}: ${rec.length} events at ${Math.round(rec.length / spanS)} events/s; ` +
        `order-to-delivery p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${sorted[sorted.length - 1]} ms\n`,
    );
  };
  if (sinks.has('webhook')) report('webhook', received, delays);
  if (sinks.has('amqp')) report('amqp', got.amqp.received, got.amqp.delays);
  if (sinks.has('nats')) report('nats', got.nats.received, got.nats.delays);
} finally {
  await kill9(p.child);
  await hook.close();
  if (model) {
    const ch = await model.createChannel().catch(() => null);
    await ch?.deleteExchange(exchange).catch(() => undefined);
    await model.close().catch(() => undefined);
  }
  await drop?.();
}
