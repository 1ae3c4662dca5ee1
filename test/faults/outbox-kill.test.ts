// kill -9 of the outbox relay's process mid-publish (issue 13), with a webhook receiver in the
// test as the sink (slow, so that the relay is always in the middle of a batch): embedded (the
// process restarted on its data dir) and distributed (another process takes the lease over).
// Every order in the database of record then reaches the receiver, each order's events in order.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { createDatabase, REDIS_URL, skipUnlessServices } from '../support/cluster.js';
import { ADMIN_KEY, childEnv, kill9, killTracked, launchSeckill, until, type Env } from '../support/launcher.js';
import { buy, call, randomUser, readOrders, saleBody, tempDir, userToken } from '../support/server.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

after(killTracked);

const SECRET = crypto.randomBytes(32).toString('hex');

async function createSale(url: string, stock: number): Promise<string> {
  const r = await call(url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody({ stock, perUserLimit: 1 }) });
  assert.equal(r.status, 201, r.text);
  return r.body.id as string;
}

/** `n` buys, 8 at a time; every third 202 is paid. Returns the orders answered 202 (a dead server answers none). */
async function buyMany(url: string, saleId: string, n: number): Promise<string[]> {
  const ok: string[] = [];
  for (let i = 0; i < n; i += 8) {
    const answers = await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => buy(url, saleId, userToken(randomUser('k'))).catch(() => null)));
    for (const a of answers) if (a?.status === 202) ok.push(a.body.orderId as string);
    const last = ok[ok.length - 1];
    if (last && ok.length % 3 === 0) await call(url, 'POST', `/api/orders/${last}/pay`, { token: ADMIN_KEY, body: { paymentRef: `p-${last}` } }).catch(() => null);
    if (answers.every((a) => a === null)) break;
  }
  return ok;
}

/** Every order reached the receiver with the events of its status, in order. */
function checkDelivered(hook: WebhookReceiver, orders: Array<{ orderId: string; status: string }>): string[] {
  const got = hook.byOrder();
  const missing: string[] = [];
  for (const o of orders) {
    const types = (got.get(o.orderId) ?? []).map((e) => e.type);
    const want = o.status === 'paid' ? ['order.reserved', 'order.paid'] : ['order.reserved'];
    if (types.join() !== want.join()) missing.push(`${o.orderId}: ${types.join('+') || 'nothing'} (want ${want.join('+')})`);
  }
  return missing;
}

test('embedded: kill -9 mid-publish, restart on the data dir: every order is delivered', { timeout: 240_000 }, async () => {
  const hook = await WebhookReceiver.start(SECRET);
  hook.delayMs = 10;
  const dataDir = tempDir('seckill-outbox-kill-');
  const env: Env = { SECKILL_DATA_DIR: dataDir, SECKILL_WEBHOOK_URLS: hook.url, SECKILL_WEBHOOK_SECRET: SECRET };
  try {
    const first = await launchSeckill({ env: childEnv(env) });
    const saleId = await createSale(first.url, 400);
    const buying = buyMany(first.url, saleId, 120);
    await until('events reaching the receiver', () => hook.events.length >= 30, 60_000);
    await kill9(first.child);
    const before = await buying;
    const second = await launchSeckill({ env: childEnv(env) });
    const afterRestart = await buyMany(second.url, saleId, 24);
    const t0 = Date.now();
    const rows = () => readOrders(dataDir, saleId).map((r) => ({ orderId: r.order_id, status: r.status }));
    await until('every order delivered', () => checkDelivered(hook, rows()).length === 0, 120_000, 200);
    const ids = new Set(rows().map((r) => r.orderId));
    for (const id of [...before, ...afterRestart]) assert.ok(ids.has(id), `202 ${id} has its row`);
    assert.equal(hook.badSignatures, 0);
    const dup = hook.events.length - new Set(hook.events.map((e) => e.id)).size;
    process.stdout.write(`# embedded: ${ids.size} orders (${before.length} answered before the kill), ${hook.events.length} deliveries, ${dup} duplicates; all delivered ${Date.now() - t0} ms after the last buy\n`);
    await kill9(second.child);
  } finally {
    await hook.close();
  }
});

test('distributed: kill -9 the process holding the relay lease mid-publish: another takes over, every order is delivered', { timeout: 300_000 }, async (t) => {
  const reason = await skipUnlessServices();
  if (reason) return t.skip(reason);
  const hook = await WebhookReceiver.start(SECRET);
  hook.delayMs = 10;
  const db = await createDatabase();
  const env: Env = {
    DATABASE_URL: db.url,
    REDIS_URL,
    SECKILL_REDIS_PREFIX: `okill-${crypto.randomBytes(4).toString('hex')}`,
    SECKILL_ALLOW_VOLATILE_REDIS: '1',
    SECKILL_CLAIM_IDLE_MS: '1000',
    SECKILL_WEBHOOK_URLS: hook.url,
    SECKILL_WEBHOOK_SECRET: SECRET,
  };
  try {
    // A starts alone and delivers a first sale's events: it holds the lease when B starts.
    const a = await launchSeckill({ env: childEnv(env) });
    const saleId = await createSale(a.url, 400);
    const early = await buyMany(a.url, saleId, 16);
    await until('A relaying', () => hook.byOrder().size >= early.length, 60_000);
    const b = await launchSeckill({ env: childEnv(env) });
    const onA = buyMany(a.url, saleId, 100);
    const onB = buyMany(b.url, saleId, 40);
    await until('more events reaching the receiver', () => hook.events.length >= early.length + 30, 60_000);
    const killedAt = Date.now();
    await kill9(a.child);
    const seenAtKill = hook.events.length;
    await Promise.all([onA, onB]);
    const tookOver = await until('B relaying', () => (hook.events.length > seenAtKill + 5 ? Date.now() - killedAt : false), 60_000, 50);
    const q = new pg.Client({ connectionString: db.url });
    await q.connect();
    try {
      const rows = async () => (await q.query<{ order_id: string; status: string }>('SELECT order_id, status FROM orders WHERE sale_id = $1', [saleId])).rows.map((r) => ({ orderId: r.order_id, status: r.status }));
      // B's writer claims A's stream entries after the claim idle time; then everything is delivered.
      await until('every order delivered', async () => checkDelivered(hook, await rows()).length === 0 && (await rows()).length >= early.length, 120_000, 250);
      const n = (await rows()).length;
      const dup = hook.events.length - new Set(hook.events.map((e) => e.id)).size;
      process.stdout.write(`# distributed: ${n} orders, ${hook.events.length} deliveries, ${dup} duplicates; B relaying ${tookOver} ms after the kill\n`);
    } finally {
      await q.end();
    }
    assert.equal(hook.badSignatures, 0);
    await kill9(b.child);
  } finally {
    await hook.close();
    await db.drop().catch(() => undefined);
  }
});
