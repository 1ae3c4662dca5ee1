// Crash test: the real server as a child process, buyers under load, `kill -9` at a random
// moment, restart on the same data dir, and check docs/design.md's invariants 1–5 from the
// database of record after every restart. The sale and the data dir live across all rounds,
// so every restart also has to rebuild stock and per-user holdings from the database.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { checkOrderInvariants } from '../../src/bench/invariants.js';
import { childEnv, kill9, killTracked, launchSeckill, type Proc } from '../support/launcher.js';
import {
  ADMIN_KEY,
  agent,
  buy,
  call,
  orderFacts,
  readOrders,
  saleBody,
  tempDir,
  userToken,
  type OrderRow,
  type Reply,
} from '../support/server.js';

const STOCK = 2000;
const LIMIT = 2;
/** Rounds killed at a random moment of the buying storm; one more round sells out, then is killed. */
const KILL_ROUNDS = 5;
/** Concurrent buyer loops (more than the agent's 128 connections: the rest queue client side). */
const CONCURRENCY = 300;
/** New users per killed round; the other buyers are users seen before, retrying. */
const FRESH_PER_ROUND = 150;
/** Refusals a buy may get in this test; anything else fails it. */
const REFUSALS = new Set(['sold_out', 'limit_reached', 'busy']);

// ---------------------------------------------------------------------------------------------
// The server as a child process

/**
 * Started as an operator would, on the sale's data dir, ready when /healthz answers. The storm
 * shares two cores: no shedding on event-loop delay (the launcher's default).
 */
function startServer(dataDir: string): Promise<Proc> {
  return launchSeckill({ env: childEnv({ SECKILL_DATA_DIR: dataDir }), path: '/healthz', everyMs: 20 });
}

// ---------------------------------------------------------------------------------------------
// What the clients saw

interface Attempt {
  userId: string;
  quantity: number;
}

interface Ack extends Attempt {
  orderId: string;
  round: number;
}

type Status = 'reserved' | 'paid' | 'cancelled' | 'expired';

class Ledger {
  /** Every orderId a 202 was given for, in any round. */
  readonly acked = new Map<string, Ack>();
  /** Rows found without a 202 (crash between commit and reply), already accounted for. */
  readonly unacked = new Set<string>();
  /** Status each known order must have; default `reserved`. */
  readonly status = new Map<string, Status>();
  /** Every user who ever bought, in order of first appearance. */
  readonly users: string[] = [];
  private readonly tokens = new Map<string, string>();

  token(userId: string): string {
    let t = this.tokens.get(userId);
    if (!t) this.tokens.set(userId, (t = userToken(userId, 3600)));
    return t;
  }

  expected(orderId: string): Status {
    return this.status.get(orderId) ?? 'reserved';
  }
}

interface LoadResult {
  acked: Ack[];
  refusals: Record<string, number>;
  /** Buys that got no answer (socket error after the kill): outcome unknown to the client. */
  unknown: number;
  buysSent: number;
  killed: boolean;
  /** Since the load started. */
  killAtMs: number;
  /** When the first buy was answered, since the load started; the kill clock starts there. */
  firstBuyMs: number;
  /** Buys sent and not yet answered when the kill came. */
  inflightAtKill: Attempt[];
  unexpected: string[];
}

interface LoadOptions {
  saleId: string;
  round: number;
  pickUser(): string;
  pickQuantity(): number;
  /** SIGKILL the server this long after the round's first reservations were answered (see armKill); the loops end with it. */
  killAfterMs?: number;
  /** Without a kill: stop sending once any buy was refused `sold_out`. */
  stopOnSoldOut?: boolean;
}

function bodyOf(r: Reply): { orderId?: string; status?: string; quantity?: number; error?: { code?: string } } {
  return (r.body ?? {}) as { orderId?: string; status?: string; quantity?: number; error?: { code?: string } };
}

/** Reservations answered in a round before its kill clock starts. */
const MIN_ACKS_BEFORE_KILL = 4;

/** `CONCURRENCY` loops, each doing path + buy as a browser would, until stopped. */
async function runLoad(server: Proc, ledger: Ledger, o: LoadOptions): Promise<LoadResult> {
  const res: LoadResult = { acked: [], refusals: {}, unknown: 0, buysSent: 0, killed: false, killAtMs: 0, firstBuyMs: 0, inflightAtKill: [], unexpected: [] };
  const inflight = new Set<Attempt>();
  let stop = false;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  // The kill clock starts once a few buys were reserved (or the sale refuses as sold out): a cold
  // process spends its first ~200 ms answering the path requests of all loops, and on a loaded
  // machine the first 50 ms after one answer may hold no reservation at all; the rounds after the
  // kill need some reserved orders to cancel and pay.
  const armKill = () => {
    if (o.killAfterMs === undefined || timer || stop) return;
    if (res.acked.length < MIN_ACKS_BEFORE_KILL && !res.refusals.sold_out) return;
    res.firstBuyMs = Math.round(performance.now() - t0);
    timer = setTimeout(() => {
      stop = true;
      res.killed = true;
      res.killAtMs = Math.round(performance.now() - t0);
      res.inflightAtKill = [...inflight];
      server.child.kill('SIGKILL');
    }, o.killAfterMs);
  };

  const loop = async (): Promise<void> => {
    while (!stop) {
      const userId = o.pickUser();
      const token = ledger.token(userId);
      let p: Reply;
      try {
        p = await call(server.url, 'POST', `/api/sales/${o.saleId}/path`, { token });
      } catch {
        return; // the server is gone
      }
      if (p.status !== 200) {
        res.unexpected.push(`path: ${p.status} ${p.text}`);
        return;
      }
      if (stop) return;
      const a: Attempt = { userId, quantity: o.pickQuantity() };
      inflight.add(a);
      res.buysSent++;
      let r: Reply;
      try {
        r = await call(server.url, 'POST', `/api/sales/${o.saleId}/buy/${(p.body as { path: string }).path}`, {
          token,
          body: { quantity: a.quantity },
        });
      } catch {
        // Sent (or queued) when the server died: neither a 202 nor a refusal.
        inflight.delete(a);
        res.unknown++;
        return;
      }
      inflight.delete(a);
      const b = bodyOf(r);
      if (r.status === 202) {
        if (typeof b.orderId !== 'string' || b.quantity !== a.quantity || b.status !== 'reserved') {
          res.unexpected.push(`202 with body ${r.text}`);
          continue;
        }
        const ack: Ack = { ...a, orderId: b.orderId, round: o.round };
        res.acked.push(ack);
        ledger.acked.set(ack.orderId, ack);
      } else {
        const code = b.error?.code ?? `http_${r.status}`;
        res.refusals[code] = (res.refusals[code] ?? 0) + 1;
        if (!REFUSALS.has(code)) res.unexpected.push(`buy: ${r.status} ${r.text}`);
        if (code === 'sold_out' && o.stopOnSoldOut) stop = true;
      }
      armKill();
    }
  };

  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  } finally {
    clearTimeout(timer);
  }
  if (o.killAfterMs !== undefined) assert.ok(res.killed, `round ${o.round}: the load ended before the kill: ${res.unexpected.slice(0, 3).join('; ')}`);
  return res;
}

// ---------------------------------------------------------------------------------------------
// What the database and the restarted server say

interface Stats {
  stock: number;
  reserved: number;
  paid: number;
  expired: number;
  cancelled: number;
  available: number;
}

async function adminStats(base: string, saleId: string): Promise<Stats> {
  const r = await call(base, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY });
  assert.equal(r.status, 200, r.text);
  return (r.body as { stats: Stats }).stats;
}

/** Invariants 1 and 2 from the rows, and the admin stats agree with the rows (invariant 1). */
async function checkDbAndStats(base: string, dataDir: string, saleId: string, where: string): Promise<{ rows: OrderRow[]; held: number; perUser: Map<string, number>; stats: Stats }> {
  const rows = readOrders(dataDir, saleId);
  const stats = await adminStats(base, saleId);
  const { failures, held, perUser } = checkOrderInvariants({ stock: STOCK, perUserLimit: LIMIT, orders: orderFacts(rows), counts: stats });
  assert.deepEqual(failures, [], `${where}: invariants 1–2, stats against the rows`);
  return { rows, held, perUser, stats };
}

/**
 * After a restart: every 202 has its row with the same user and quantity (invariant 3); every
 * row without a 202 matches a buy that was in flight at the kill, and its buyer finds it
 * (invariant 4); every order is in the state the test left it in (invariant 5).
 */
async function checkAfterRestart(server: Proc, ledger: Ledger, dataDir: string, saleId: string, round: number, load: LoadResult): Promise<{ rows: number; newUnacked: number; held: number; available: number }> {
  const where = `round ${round} after restart`;
  const { rows, held, stats } = await checkDbAndStats(server.url, dataDir, saleId, where);
  const accepted = [...ledger.acked.values()].map((a) => ({ orderId: a.orderId, userId: a.userId, quantity: a.quantity }));
  const { failures, unacked } = checkOrderInvariants({
    stock: STOCK,
    perUserLimit: LIMIT,
    orders: orderFacts(rows),
    accepted,
    unanswered: load.inflightAtKill,
    accountedFor: ledger.unacked,
  });
  assert.deepEqual(failures, [], `${where}: every 202 has its row; every row without one matches a buy in flight at the kill`);
  for (const row of unacked) {
    const me = await call(server.url, 'GET', '/api/me/orders', { token: ledger.token(row.userId) });
    assert.equal(me.status, 200, me.text);
    const mine = (me.body as { orders: { orderId: string }[] }).orders;
    assert.ok(mine.some((x) => x.orderId === row.orderId), `${where}: ${row.userId} does not find unacknowledged order ${row.orderId}`);
    ledger.unacked.add(row.orderId);
  }

  for (const row of rows) {
    assert.equal(row.status, ledger.expected(row.order_id), `${where}: status of ${row.order_id}`);
  }
  return { rows: rows.length, newUnacked: unacked.length, held, available: stats.available };
}

/** Users holding units must still be limited by the restarted engine (holdings rebuilt from the DB). */
async function probeLimits(server: Proc, ledger: Ledger, saleId: string, perUser: Map<string, number>, where: string): Promise<void> {
  const full = [...perUser].filter(([, q]) => q >= LIMIT).slice(0, 3);
  const half = [...perUser].filter(([, q]) => q === LIMIT - 1).slice(0, 3);
  for (const [userId] of full) {
    const r = await buy(server.url, saleId, ledger.token(userId), 1);
    assert.equal(r.status, 409, `${where}: ${userId} holds ${LIMIT} and bought again: ${r.status} ${r.text}`);
    assert.equal(bodyOf(r).error?.code, 'limit_reached', `${where}: ${r.text}`);
  }
  for (const [userId] of half) {
    // Not memoised as "at limit": only the engine's rebuilt holdings can refuse this one.
    const r = await buy(server.url, saleId, ledger.token(userId), LIMIT);
    assert.equal(r.status, 409, `${where}: ${userId} holds ${LIMIT - 1} and got ${LIMIT} more: ${r.status} ${r.text}`);
    assert.equal(bodyOf(r).error?.code, 'limit_reached', `${where}: ${r.text}`);
  }
}

/** Cancel two reservations and pay one: stock returns exactly once, and only from `reserved`. */
async function cancelAndPay(server: Proc, ledger: Ledger, dataDir: string, saleId: string, round: number): Promise<number> {
  const where = `round ${round} cancel/pay`;
  const admin = { token: ADMIN_KEY };
  const reserved = [...ledger.acked.values()].filter((a) => ledger.expected(a.orderId) === 'reserved');
  assert.ok(reserved.length >= 3, `${where}: not enough reserved orders to play with`);
  // Spread over rounds: the oldest reservations have survived the most restarts.
  const [c1, c2, p1] = [reserved[0], reserved[Math.floor(reserved.length / 2)], reserved[reserved.length - 1]];

  const before = (await adminStats(server.url, saleId)).available;
  for (const c of [c1, c2]) {
    const r = await call(server.url, 'POST', `/api/orders/${c.orderId}/cancel`, admin);
    assert.equal(r.status, 200, `${where}: cancel ${r.text}`);
    assert.equal(bodyOf(r).status, 'cancelled');
    ledger.status.set(c.orderId, 'cancelled');
  }
  const afterCancel = (await adminStats(server.url, saleId)).available;
  assert.equal(afterCancel, before + c1.quantity + c2.quantity, `${where}: stock returned by two cancels`);
  for (const c of [c1, c2]) {
    const r = await call(server.url, 'POST', `/api/orders/${c.orderId}/cancel`, admin);
    assert.equal(r.status, 200, `${where}: second cancel ${r.text}`);
    assert.equal(bodyOf(r).status, 'cancelled');
  }
  assert.equal((await adminStats(server.url, saleId)).available, afterCancel, `${where}: a second cancel returned stock again`);

  const ref = `crash-round-${round}`;
  const paid = await call(server.url, 'POST', `/api/orders/${p1.orderId}/pay`, { ...admin, body: { paymentRef: ref } });
  assert.equal(paid.status, 200, `${where}: pay ${paid.text}`);
  assert.equal(bodyOf(paid).status, 'paid');
  ledger.status.set(p1.orderId, 'paid');
  const again = await call(server.url, 'POST', `/api/orders/${p1.orderId}/pay`, { ...admin, body: { paymentRef: ref } });
  assert.equal(again.status, 200, `${where}: idempotent pay ${again.text}`);
  const cancelPaid = await call(server.url, 'POST', `/api/orders/${p1.orderId}/cancel`, admin);
  assert.equal(cancelPaid.status, 409, `${where}: cancelling a paid order: ${cancelPaid.text}`);
  assert.equal((await adminStats(server.url, saleId)).available, afterCancel, `${where}: paying or refusing to cancel moved stock`);

  const rows = readOrders(dataDir, saleId);
  const byId = new Map(rows.map((r) => [r.order_id, r]));
  assert.equal(byId.get(c1.orderId)?.status, 'cancelled');
  assert.equal(byId.get(c2.orderId)?.status, 'cancelled');
  assert.equal(byId.get(p1.orderId)?.status, 'paid');
  await checkDbAndStats(server.url, dataDir, saleId, where);
  return c1.quantity + c2.quantity;
}

function fmt(o: Record<string, number>): string {
  return Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
}

// ---------------------------------------------------------------------------------------------

let dataDir = '';
let passed = false;

after(async () => {
  killTracked();
  await agent.destroy();
  if (passed && dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  else if (dataDir) console.log(`crash test data dir kept for inspection: ${dataDir}`);
});

test(`kill -9 under load, ${KILL_ROUNDS + 1} times: every 202 survives, invariants 1–5 hold`, { timeout: 900_000 }, async (t) => {
  const started = performance.now();
  dataDir = tempDir('seckill-crash-');
  const ledger = new Ledger();
  let server = await startServer(dataDir);

  const created = await call(server.url, 'POST', '/api/admin/sales', {
    token: ADMIN_KEY,
    body: saleBody({ stock: STOCK, perUserLimit: LIMIT, startsIn: -1000, lasts: 3600_000, paymentWindowSeconds: 3600 }),
  });
  assert.equal(created.status, 201, created.text);
  const saleId = (created.body as { id: string }).id;

  let nextUser = 0;
  const newUser = (round: number): string => {
    const u = `r${round}-u${nextUser++}`;
    ledger.users.push(u);
    return u;
  };
  const oldUser = (): string => ledger.users[Math.floor(Math.random() * ledger.users.length)];
  const oneOrTwo = () => (Math.random() < 0.5 ? 1 : 2);

  const restartAndCheck = async (round: number, load: LoadResult, label: string) => {
    const t0 = performance.now();
    server = await startServer(dataDir);
    const restartMs = Math.round(performance.now() - t0);
    const checked = await checkAfterRestart(server, ledger, dataDir, saleId, round, load);
    const units = load.acked.reduce((n, a) => n + a.quantity, 0);
    t.diagnostic(
      `round ${round}${label}: kill -9 at ${load.killAtMs} ms (first buy answered at ${load.firstBuyMs} ms); buys ${load.buysSent}; 202s ${load.acked.length} (${units} units); ` +
        `refusals: ${fmt(load.refusals)}; unknown ${load.unknown} (in flight at kill ${load.inflightAtKill.length}); ` +
        `rows ${checked.rows} (${checked.newUnacked} new without 202); held ${checked.held}/${STOCK}; available ${checked.available}; restart ${restartMs} ms`,
    );
    return checked;
  };

  // Rounds 1..KILL_ROUNDS: a storm of new and returning buyers, killed at a random moment.
  for (let round = 1; round <= KILL_ROUNDS; round++) {
    let freshLeft = FRESH_PER_ROUND;
    const load = await runLoad(server, ledger, {
      saleId,
      round,
      pickUser: () => {
        if (freshLeft > 0 && (ledger.users.length === 0 || Math.random() < 0.5)) {
          freshLeft--;
          return newUser(round);
        }
        return oldUser();
      },
      pickQuantity: oneOrTwo,
      killAfterMs: 50 + Math.floor(Math.random() * 350),
    });
    await server.exited;
    assert.deepEqual(load.unexpected, [], `round ${round}: unexpected answers`);

    const { available } = await restartAndCheck(round, load, '');
    const { perUser } = await checkDbAndStats(server.url, dataDir, saleId, `round ${round} probes`);
    if (available > 0) await probeLimits(server, ledger, saleId, perUser, `round ${round}`);
    await cancelAndPay(server, ledger, dataDir, saleId, round);
    await checkDbAndStats(server.url, dataDir, saleId, `round ${round} end`);
  }

  // Last round: sell out completely, then kill during a storm of refused buys.
  const last = KILL_ROUNDS + 1;
  const sellOut = await runLoad(server, ledger, {
    saleId,
    round: last,
    pickUser: () => (Math.random() < 0.8 ? newUser(last) : oldUser()),
    pickQuantity: oneOrTwo,
    stopOnSoldOut: true,
  });
  assert.deepEqual(sellOut.unexpected, [], `round ${last}: unexpected answers while selling out`);
  // A `sold_out` to a 2-unit buy can leave one unit: sell what is left one at a time.
  for (let i = 0; (await adminStats(server.url, saleId)).available > 0; i++) {
    assert.ok(i < 10, `round ${last}: still not sold out`);
    const userId = newUser(last);
    const r = await buy(server.url, saleId, ledger.token(userId), 1);
    if (r.status === 202) {
      const orderId = bodyOf(r).orderId;
      assert.ok(orderId);
      ledger.acked.set(orderId, { userId, quantity: 1, orderId, round: last });
    } else assert.equal(bodyOf(r).error?.code, 'sold_out', r.text);
  }
  const soldOutBefore = await checkDbAndStats(server.url, dataDir, saleId, `round ${last} sold out`);
  assert.equal(soldOutBefore.held, STOCK, `round ${last}: sold out, yet not all stock is held`);

  const storm = await runLoad(server, ledger, {
    saleId,
    round: last,
    pickUser: () => (Math.random() < 0.5 ? newUser(last) : oldUser()),
    pickQuantity: oneOrTwo,
    killAfterMs: 50 + Math.floor(Math.random() * 350),
  });
  await server.exited;
  assert.deepEqual(storm.unexpected, [], `round ${last}: unexpected answers`);
  assert.equal(storm.acked.length, 0, `round ${last}: a 202 after selling out`);
  // One summary line for both phases: the 202s of the sell-out, the kill of the storm.
  const refusals = { ...sellOut.refusals };
  for (const [k, v] of Object.entries(storm.refusals)) refusals[k] = (refusals[k] ?? 0) + v;
  const both: LoadResult = { ...storm, acked: sellOut.acked, refusals, buysSent: sellOut.buysSent + storm.buysSent };
  const final = await restartAndCheck(last, both, ' (sell-out)');
  assert.equal(final.held, STOCK, `round ${last}: exactly the stock is held after the restart`);
  assert.equal(final.available, 0);
  assert.equal(final.newUnacked, 0, `round ${last}: rows appeared from refused buys`);

  // The restarted server knows it is sold out…
  const pub = await call(server.url, 'GET', `/api/sales/${saleId}`);
  assert.equal((pub.body as { status: string }).status, 'sold_out', pub.text);
  const late = await buy(server.url, saleId, ledger.token(newUser(last)), 1);
  assert.equal(late.status, 409, late.text);
  assert.equal(bodyOf(late).error?.code, 'sold_out', late.text);
  const { perUser } = await checkDbAndStats(server.url, dataDir, saleId, `round ${last} probes`);
  const holder = [...perUser].find(([, q]) => q >= LIMIT);
  if (holder) {
    const r = await buy(server.url, saleId, ledger.token(holder[0]), 1);
    assert.equal(r.status, 409, r.text);
  }

  // …and returned stock can be sold again, once.
  const returned = await cancelAndPay(server, ledger, dataDir, saleId, last);
  let resold = 0;
  for (let i = 0; i < returned + 2; i++) {
    const userId = newUser(last);
    const r = await buy(server.url, saleId, ledger.token(userId), 1);
    if (r.status === 202) {
      const orderId = bodyOf(r).orderId;
      assert.ok(orderId);
      ledger.acked.set(orderId, { userId, quantity: 1, orderId, round: last });
      resold++;
    } else assert.equal(bodyOf(r).error?.code, 'sold_out', r.text);
  }
  assert.equal(resold, returned, `round ${last}: units sold again after cancelling ${returned}`);
  const end = await checkDbAndStats(server.url, dataDir, saleId, 'end');
  assert.equal(end.held, STOCK);
  assert.equal(end.stats.available, 0);

  await kill9(server.child);
  const ms = Math.round(performance.now() - started);
  t.diagnostic(`total: ${ledger.acked.size} orders acknowledged, ${ledger.unacked.size} rows without 202, ${ledger.users.length} users, ${ms} ms`);
  passed = true;
});
