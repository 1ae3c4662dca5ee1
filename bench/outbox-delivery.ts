// The outbox relay's delivery during a sale (issue 13): a seckill child process with one webhook
// sink (a receiver in this process, answering at once), a sale of `--stock` units bought by as many
// buyers, `--concurrency` at a time. Reports the relay's events/s at the receiver (first to last
// event) and the order-to-delivery delay (receipt time − the event's `at`, i.e. the reservation's
// time) p50/p99, and the buy rate beside it.
//
//   node --import tsx bench/outbox-delivery.ts [--mode embedded|distributed] [--stock 3000] [--concurrency 32]
// distributed: PostgreSQL and Redis of test/support/cluster.ts (a fresh database, its own key prefix).
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { createDatabase, REDIS_URL } from '../test/support/cluster.js';
import { ADMIN_KEY, childEnv, kill9, launchSeckill, until, type Env } from '../test/support/launcher.js';
import { buy, call, saleBody, tempDir, userToken } from '../test/support/server.js';
import { WebhookReceiver } from '../test/support/webhook-receiver.js';

const { values } = parseArgs({ options: { mode: { type: 'string', default: 'embedded' }, stock: { type: 'string', default: '3000' }, concurrency: { type: 'string', default: '32' } } });
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
let env: Env = { SECKILL_DATA_DIR: tempDir('seckill-outbox-bench-'), SECKILL_WEBHOOK_URLS: hook.url, SECKILL_WEBHOOK_SECRET: secret, LOG_LEVEL: 'error' };
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
  await until('every reservation delivered', () => received.length >= ok, 300_000, 100);
  const sorted = [...delays].sort((a, b) => a - b);
  const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
  const spanS = (received[received.length - 1] - received[0]) / 1000;
  process.stdout.write(
    `${values.mode}: ${ok} reservations in ${(buyMs / 1000).toFixed(1)} s (${Math.round(ok / (buyMs / 1000))} buys/s); ` +
      `${received.length} events delivered at ${Math.round(received.length / spanS)} events/s; ` +
      `order-to-delivery p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${sorted[sorted.length - 1]} ms\n`,
  );
} finally {
  await kill9(p.child);
  await hook.close();
  await drop?.();
}
