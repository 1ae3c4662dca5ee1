// Sinks down during a sale (issue 13): RabbitMQ unreachable (a fault proxy between seckill and
// 127.0.0.1:5672, its connections cut and new ones stalled) and a webhook answering 500. No buy is
// slowed or refused for it, the outbox backlog grows for both sinks; once both recover, every
// 202's order.reserved event reaches both (after de-duplication by id), each order's in seq
// order, and the backlog is back to 0. Embedded mode (an in-process server on its own data dir).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import type { RunningServer } from '../../src/server.js';
import { AMQP_URL, withoutRabbit } from '../support/brokers.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startInProcess } from '../support/launcher.js';
import { ADMIN_KEY, buy, call, randomUser, saleBody, tempDir, userToken } from '../support/server.js';
import { until } from '../support/wait.js';
import { WebhookReceiver, eventsByOrder } from '../support/webhook-receiver.js';

const RABBIT_PORT = 5672;
const SECRET = crypto.randomBytes(32).toString('hex');
const EXCHANGE = `seckill-sinkdown-${crypto.randomBytes(4).toString('hex')}`;
const STOCK = 30;
const BUYERS = 40;
/** A buy slower than this is "slowed" (generous: the machine is shared and loaded). */
const BUY_BOUND_MS = 5000;

const skip = await withoutRabbit();

interface SinkStatus {
  sink: string;
  backlog: number;
  sent: number;
  dead: number;
}

interface Arrived {
  id: string;
  type: string;
  seq?: number;
  order?: { orderId: string };
}

/** The orders whose order.reserved event has not arrived, or whose events arrived out of seq order. */
function problems(got: Map<string, Arrived[]>, orders: readonly string[]): string[] {
  const out: string[] = [];
  for (const id of orders) {
    const list = got.get(id) ?? [];
    if (!list.some((e) => e.type === 'order.reserved')) out.push(`${id}: no order.reserved`);
    const seqs = list.map((e) => e.seq ?? 0);
    if (seqs.some((s, i) => i > 0 && s <= seqs[i - 1])) out.push(`${id}: seqs ${seqs.join(',')}`);
  }
  return out;
}

describe('outbox sinks down during a sale', { skip }, () => {
  let hook: WebhookReceiver;
  let proxy: FaultProxy;
  let server: RunningServer;
  let model: amqp.ChannelModel | undefined;
  let ch: amqp.Channel | undefined;
  const fromRabbit: Arrived[] = [];

  before(async () => {
    hook = await WebhookReceiver.start(SECRET);
    proxy = await new FaultProxy('127.0.0.1', RABBIT_PORT).start();
    // The shop's consumer, bound before anything is published (straight to RabbitMQ, not via the proxy).
    model = await amqp.connect(AMQP_URL);
    ch = await model.createChannel();
    await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, EXCHANGE, '#');
    await ch.consume(queue, (m) => {
      if (m) fromRabbit.push(JSON.parse(m.content.toString()) as Arrived);
    }, { noAck: true });
    server = await startInProcess({
      SECKILL_DATA_DIR: tempDir('seckill-sink-down-'),
      SECKILL_AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      SECKILL_AMQP_EXCHANGE: EXCHANGE,
      SECKILL_WEBHOOK_URLS: hook.url,
      SECKILL_WEBHOOK_SECRET: SECRET,
    });
  });

  after(async () => {
    await server?.close();
    await proxy?.close();
    await hook?.close();
    await ch?.deleteExchange(EXCHANGE).catch(() => undefined);
    await model?.close().catch(() => undefined);
  });

  test('buys are not slowed or refused, the backlog grows, and after recovery every event arrives', { timeout: 150_000 }, async () => {
    const webhookSink = `webhook:${new URL(hook.url).host}`;
    const status = async (): Promise<Map<string, SinkStatus>> => {
      const r = await call(server.url, 'GET', '/api/admin/events', { token: ADMIN_KEY });
      assert.equal(r.status, 200, r.text);
      return new Map((r.body.sinks as SinkStatus[]).map((s) => [s.sink, s]));
    };
    assert.deepEqual([...(await status()).keys()].sort(), ['amqp', webhookSink].sort());

    // Both sinks down: RabbitMQ's connections cut and new ones held (the handshake never
    // completes), the webhook answering 500 to everything.
    proxy.cut();
    proxy.stall();
    const acceptedBefore = proxy.accepted;
    let refused = 0;
    hook.refuse = () => {
      refused++;
      return 500;
    };

    const r = await call(server.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody({ stock: STOCK, perUserLimit: 1 }) });
    assert.equal(r.status, 201, r.text);
    const saleId = r.body.id as string;

    // 40 buyers for 30 units, 8 at a time.
    const accepted: string[] = [];
    const answers: string[] = [];
    let slowest = 0;
    const users = Array.from({ length: BUYERS }, () => randomUser('sd'));
    for (let i = 0; i < users.length; i += 8) {
      await Promise.all(users.slice(i, i + 8).map(async (u) => {
        const t0 = Date.now();
        const b = await buy(server.url, saleId, userToken(u));
        const took = Date.now() - t0;
        slowest = Math.max(slowest, took);
        answers.push(`${b.status} ${b.body?.error?.code ?? ''}`.trim());
        assert.ok(took < BUY_BOUND_MS, `a buy took ${took} ms with the sinks down`);
        if (b.status === 202) accepted.push(b.body.orderId as string);
        else assert.ok(b.status === 409 && ['sold_out', 'limit_reached'].includes(b.body?.error?.code), `refused for the sinks? ${b.status} ${b.text}`);
      }));
    }
    assert.equal(accepted.length, STOCK, `every unit sold: ${answers.join(', ')}`);

    // The backlog grows for both sinks (the admin figures may lag by up to 2 s).
    const down = await until('a backlog for both sinks', async () => {
      const s = await status();
      return s.get('amqp')!.backlog > 0 && s.get(webhookSink)!.backlog > 0 ? s : undefined;
    }, 30_000, 250);
    const reservedAt = (events: readonly Arrived[]) => events.filter((e) => e.type === 'order.reserved').length;
    assert.equal(reservedAt(fromRabbit), 0, 'nothing reached RabbitMQ through the cut link');
    assert.equal(reservedAt(hook.events), 0, 'the refusing webhook recorded nothing');
    // The relay did try both while they were down (not merely idle).
    await until('the relay trying both sinks', () => proxy.accepted > acceptedBefore && refused > 0, 30_000, 100);

    // Recovery: the link heals (stalled handshakes dropped, new connections flow), the webhook answers 2xx.
    const healedAt = Date.now();
    proxy.cut();
    proxy.restore();
    hook.refuse = () => null;

    await until('every 202\'s events at both sinks and no backlog', async () => {
      if (problems(eventsByOrder(fromRabbit), accepted).length > 0 || problems(hook.byOrder(), accepted).length > 0) return false;
      const s = await status();
      return s.get('amqp')!.backlog === 0 && s.get(webhookSink)!.backlog === 0;
    }, 60_000, 250).catch((err: unknown) => {
      const left = { amqp: problems(eventsByOrder(fromRabbit), accepted).slice(0, 3), webhook: problems(hook.byOrder(), accepted).slice(0, 3) };
      throw new Error(`${String(err)}; still missing: ${JSON.stringify(left)}`);
    });
    const recovered = Date.now() - healedAt;

    for (const [name, got] of [['amqp', eventsByOrder(fromRabbit)], ['webhook', hook.byOrder()]] as const) {
      assert.deepEqual(problems(got, accepted), [], `${name}: every order's events, in seq order`);
      const reserved = [...got.values()].flat().filter((e) => e.type === 'order.reserved');
      assert.equal(reserved.length, accepted.length, `${name}: one order.reserved per 202, none for a refusal`);
    }
    assert.equal(hook.badSignatures, 0);
    const final = await status();
    assert.equal(final.get('amqp')!.dead, 0);
    assert.equal(final.get(webhookSink)!.dead, 0);
    const dup = (events: readonly Arrived[]) => events.length - new Set(events.map((e) => e.id)).size;
    process.stdout.write(`# ${accepted.length} of ${BUYERS} buys accepted with both sinks down, slowest ${slowest} ms; backlog amqp ${down.get('amqp')!.backlog}, webhook ${down.get(webhookSink)!.backlog}; all delivered ${recovered} ms after recovery (duplicates: amqp ${dup(fromRabbit)}, webhook ${dup(hook.events)})\n`);
  });
});
