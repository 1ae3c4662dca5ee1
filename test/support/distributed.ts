// Helpers of the distributed fault tests (test/distributed-crash.test.ts,
// test/distributed-redis-restart.test.ts): a TestCluster whose processes can each get their own
// environment and are always killed, a buyer load that records every answer with its timing, a
// test-owned redis-server, and the checks of docs/design.md's invariants against PostgreSQL.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { acceptedWithoutRow, rowsWithoutAccepted } from '../../src/bench/invariants.js';
import { RedisKeys } from '../../src/stores/redis/keys.js';
import { timedCall, type Answer } from './client.js';
import { TestCluster } from './cluster.js';
import { ADMIN_KEY, PATIENCE_MS, START_MS, alive, kill9, track, type Proc } from './launcher.js';
import { freePort } from './ports.js';
import { checkInvariants, orderFacts, saleBody, tempDir, userToken, type OrderRow, type SaleOptions } from './server.js';

// Moved to launcher.ts and client.ts; still exported here for the suites that import them from here.
export { PATIENCE_MS, START_MS, alive, kill9, killTracked, track, until } from './launcher.js';
export { timedCall, type Answer, type ApiBody } from './client.js';

// ---------------------------------------------------------------------------------------------
// The cluster

/**
 * TestCluster with the fault tests' extras: processes started with extra environment (fault
 * injection on one process only), the order writers' consumer names, Redis keys.
 */
export class FaultCluster extends TestCluster {
  /** Start one more single process (or replace procs[i]) with extra environment. */
  async spawnWith(env: Record<string, string>, replace?: number): Promise<Proc> {
    const port = replace === undefined ? await freePort() : this.procs[replace].port;
    const p = await this.spawn(port, 1, env);
    if (replace === undefined) this.procs.push(p);
    else this.procs[replace] = p;
    return p;
  }

  /** The order writer's consumer name in procs[i] (see StreamOrderWriter.consumer). */
  consumerOf(i: number): string {
    return `${os.hostname()}-${this.procs[i].child.pid}`;
  }

  get keys(): RedisKeys {
    return new RedisKeys(this.prefix);
  }

  async createSale(o: SaleOptions, via = 0): Promise<string> {
    const r = await timedCall(this.procs[via].url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody(o) }, PATIENCE_MS);
    if (r.status !== 201 || typeof r.body.id !== 'string') throw new Error(`create sale: ${r.status} ${r.text}`);
    const saleId = r.body.id;
    // Every process must know the sale before the load starts (a signal, or a lookup on first use).
    for (const p of this.procs) {
      const s = await timedCall(p.url, 'GET', `/api/sales/${saleId}`, {}, PATIENCE_MS);
      if (s.status !== 200) throw new Error(`sale ${saleId} unknown to ${p.url}: ${s.status} ${s.text}`);
    }
    return saleId;
  }

  /** Stop everything, even when stop() itself fails half way. */
  async shutdown(): Promise<void> {
    try {
      await this.stop();
    } finally {
      for (const p of this.procs) await kill9(p.child);
    }
  }
}


// ---------------------------------------------------------------------------------------------
// The load: buyers doing path + buy, as the page does, round robin over the processes

export interface BuyRecord {
  seq: number;
  userId: string;
  quantity: number;
  /** Index of the process (in the target list) the buy went to. */
  target: number;
  /** Epoch ms: sent, answered (or failed). */
  t0: number;
  t1: number;
  /** null: no answer (connection reset, refused or timed out). */
  status: number | null;
  code: string | null;
  orderId: string | null;
  retryAfter: string | null;
  error: string | null;
}

export interface LoadOptions {
  saleId: string;
  /** The base URL of each target, or null while it is down (skipped). Read before every request. */
  targets: () => Array<string | null>;
  concurrency: number;
  /** Share of buys by a new user; the rest are users seen before, buying again. */
  newUserShare?: number;
  /** Largest quantity asked (uniform 1…maxQuantity). */
  maxQuantity?: number;
  /** An answer slower than this is recorded as none (a hang); default PATIENCE_MS. */
  timeoutMs?: number;
  /** Called with every answered buy; return true to stop the load. */
  stopWhen?: (r: BuyRecord) => boolean;
}

export class BuyLoad {
  readonly records: BuyRecord[] = [];
  readonly inflight = new Set<BuyRecord>();
  readonly users: string[] = [];
  /** Path requests that did not give a path, by status or error. */
  readonly pathFailures: Record<string, number> = {};
  private readonly tokens = new Map<string, string>();
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  private next = 0;
  private seq = 0;

  constructor(private readonly o: LoadOptions) {}

  token(userId: string): string {
    let t = this.tokens.get(userId);
    if (!t) this.tokens.set(userId, (t = userToken(userId, 3600)));
    return t;
  }

  /** Start (or start again after stop(): records, users and tokens are kept). */
  start(): this {
    this.stopped = false;
    this.loops = Array.from({ length: this.o.concurrency }, () => this.loop());
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Buys sent to `target` and not answered yet. */
  inflightOn(target: number): BuyRecord[] {
    return [...this.inflight].filter((r) => r.target === target);
  }

  private pickUser(): string {
    const share = this.o.newUserShare ?? 0.8;
    if (this.users.length > 0 && Math.random() >= share) return this.users[Math.floor(Math.random() * this.users.length)];
    const u = `b-${crypto.randomBytes(5).toString('hex')}`;
    this.users.push(u);
    return u;
  }

  private pickTarget(): { i: number; url: string } | null {
    const targets = this.o.targets();
    for (let k = 0; k < targets.length; k++) {
      const i = this.next++ % targets.length;
      const url = targets[i];
      if (url) return { i, url };
    }
    return null;
  }

  private async loop(): Promise<void> {
    const timeoutMs = this.o.timeoutMs ?? PATIENCE_MS;
    while (!this.stopped) {
      const target = this.pickTarget();
      if (!target) {
        await sleep(20);
        continue;
      }
      const userId = this.pickUser();
      const token = this.token(userId);
      let p: Answer;
      try {
        p = await timedCall(target.url, 'POST', `/api/sales/${this.o.saleId}/path`, { token }, timeoutMs);
      } catch (err) {
        const k = `error ${(err as Error).name}`;
        this.pathFailures[k] = (this.pathFailures[k] ?? 0) + 1;
        await sleep(10);
        continue;
      }
      if (p.status !== 200 || typeof p.body.path !== 'string') {
        const k = `${p.status} ${p.body.error?.code ?? ''}`;
        this.pathFailures[k] = (this.pathFailures[k] ?? 0) + 1;
        continue;
      }
      if (this.stopped) return;
      const quantity = 1 + Math.floor(Math.random() * (this.o.maxQuantity ?? 2));
      const r: BuyRecord = {
        seq: this.seq++, userId, quantity, target: target.i, t0: Date.now(), t1: 0,
        status: null, code: null, orderId: null, retryAfter: null, error: null,
      };
      this.inflight.add(r);
      try {
        const a = await timedCall(target.url, 'POST', `/api/sales/${this.o.saleId}/buy/${p.body.path}`, { token, body: { quantity } }, timeoutMs);
        r.status = a.status;
        r.code = a.body.error?.code ?? null;
        const ra = a.headers['retry-after'];
        r.retryAfter = ra === undefined ? null : String(ra);
        if (a.status === 202) {
          r.orderId = typeof a.body.orderId === 'string' ? a.body.orderId : null;
          if (r.orderId === null || a.body.quantity !== quantity || a.body.status !== 'reserved') r.error = `bad 202 body: ${a.text}`;
        }
      } catch (err) {
        r.error = `${(err as Error).name}: ${(err as Error).message}`;
      }
      r.t1 = Date.now();
      this.inflight.delete(r);
      this.records.push(r);
      if (r.status !== null && this.o.stopWhen?.(r)) this.stopped = true;
    }
  }
}

/** Counts of answers by "status code" (e.g. "202", "503 busy", "no answer"). */
export function tally(records: BuyRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const k = r.status === null ? 'no answer' : r.code ? `${r.status} ${r.code}` : String(r.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The database of record

export interface DbOrder extends OrderRow {
  created_at: number;
}

/** The sale's rows with their creation time (the engine's decision clock), read directly. */
export async function dbOrders(databaseUrl: string, saleId: string): Promise<DbOrder[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query<DbOrder>(
      'SELECT order_id, sale_id, user_id, quantity, status, created_at::float8 AS created_at FROM orders WHERE sale_id = $1',
      [saleId],
    );
    const dup = await client.query<{ n: number }>('SELECT COUNT(*)::int - COUNT(DISTINCT order_id)::int AS n FROM orders WHERE sale_id = $1', [saleId]);
    assert.equal(dup.rows[0].n, 0, 'duplicate order rows');
    return r.rows;
  } finally {
    await client.end();
  }
}

/**
 * Invariant 3: every 202 has its row, same user and quantity, still reserved (nothing pays,
 * cancels or expires in these tests). Returns the 202s without a row (the caller decides
 * whether any may be missing).
 */
export function acksWithoutRow(records: BuyRecord[], rows: OrderRow[]): BuyRecord[] {
  const acked = records.filter((r) => r.status === 202);
  const accepted = acked.map((r) => {
    assert.ok(r.orderId, `202 without orderId (${r.error})`);
    return { orderId: r.orderId, userId: r.userId, quantity: r.quantity, status: 'reserved' };
  });
  const { failures, missing } = acceptedWithoutRow(new Map(orderFacts(rows).map((o) => [o.orderId, o])), accepted);
  assert.deepEqual(failures, [], '202s against their rows');
  const lost = new Set(missing.map((m) => m.orderId));
  return acked.filter((r) => r.orderId !== null && lost.has(r.orderId));
}

/**
 * Invariant 4: rows without a 202 may only come from buys whose answer never said what happened
 * (`candidates`: buys in flight on a killed process, or a 503 given when Redis died after running
 * the script). Each such row must match one of them (user and quantity) and be found by its buyer
 * in GET /api/me/orders. Returns how many there were.
 */
export async function checkRowsWithoutAck(
  records: BuyRecord[],
  rows: OrderRow[],
  candidates: BuyRecord[],
  base: string,
  token: (userId: string) => string,
): Promise<number> {
  const acked = new Set(records.filter((r) => r.status === 202 && r.orderId !== null).map((r) => r.orderId as string));
  const { failures, unacked } = rowsWithoutAccepted(orderFacts(rows), acked, candidates);
  assert.deepEqual(failures, [], 'rows without a 202');
  for (const row of unacked) {
    const me = await timedCall(base, 'GET', '/api/me/orders', { token: token(row.userId) }, PATIENCE_MS);
    assert.equal(me.status, 200, me.text);
    assert.ok((me.body.orders ?? []).some((o) => o.orderId === row.orderId), `${row.userId} does not find order ${row.orderId} in /api/me/orders`);
  }
  return unacked.length;
}

/**
 * Every answer is one the contract allows in these tests: 202, 409 sold_out / limit_reached,
 * 503 busy with Retry-After. And every refusal is true: `limit_reached` only when the user held
 * enough that the quantity did not fit, `sold_out` only when the stock did not have it — counted
 * from the rows created before the answer came (orders decided before a refusal have a
 * `created_at` before it; counting later ones too would only make the check more lenient).
 * `phantom`: 202s whose row is gone (Redis lost them), counted as held from when they were sent.
 */
export function checkAnswers(records: BuyRecord[], rows: DbOrder[], stock: number, limit: number, phantom: BuyRecord[] = []): void {
  const bad = records.filter((r) => r.error !== null && r.status !== null);
  assert.deepEqual(bad.map((r) => r.error), [], 'malformed answers');
  for (const r of records) {
    if (r.status === null) continue;
    if (r.status === 202) continue;
    const ok = (r.status === 409 && (r.code === 'sold_out' || r.code === 'limit_reached')) || (r.status === 503 && r.code === 'busy');
    assert.ok(ok, `answer ${r.status} ${r.code} to a buy (${r.userId} × ${r.quantity})`);
    if (r.status === 503) assert.ok(r.retryAfter && Number(r.retryAfter) >= 1, `503 without Retry-After (${r.retryAfter})`);
  }
  const held = [...rows.map((x) => ({ user: x.user_id, q: x.quantity, at: x.created_at })), ...phantom.map((p) => ({ user: p.userId, q: p.quantity, at: p.t0 }))]
    .sort((a, b) => a.at - b.at);
  const refusals = records.filter((r) => r.status === 409).sort((a, b) => a.t1 - b.t1);
  let i = 0;
  let total = 0;
  const perUser = new Map<string, number>();
  for (const r of refusals) {
    while (i < held.length && held[i].at <= r.t1) {
      total += held[i].q;
      perUser.set(held[i].user, (perUser.get(held[i].user) ?? 0) + held[i].q);
      i++;
    }
    if (r.code === 'limit_reached') {
      const h = perUser.get(r.userId) ?? 0;
      assert.ok(h + r.quantity > limit, `limit_reached for ${r.userId} × ${r.quantity}, who held ${h} of ${limit}`);
    } else {
      assert.ok(total + r.quantity > stock, `sold_out for × ${r.quantity} with ${total} of ${stock} held`);
    }
  }
}

/** Invariants 1–2 from the rows (checkInvariants, test/support/server.ts), returns units held. */
export function invariants(rows: OrderRow[], stock: number, limit: number): number {
  return checkInvariants(rows, stock, limit).held;
}

/** `seckill reconcile` exits 0 with no difference. */
export async function assertReconciled(cluster: TestCluster, saleId: string): Promise<void> {
  const { code, report } = await cluster.reconcile(saleId);
  assert.deepEqual(report.differences, [], 'reconcile differences');
  assert.equal(code, 0, `reconcile exit code: ${JSON.stringify(report)}`);
}

// ---------------------------------------------------------------------------------------------
// The order writers' stream

export interface PendingEntry {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
  orderId: string | null;
}

/** Entries delivered to a consumer of the writers' group and not acknowledged (all, or one consumer's). */
export async function pendingEntries(redis: Redis, keys: RedisKeys, saleId: string, consumer?: string): Promise<PendingEntry[]> {
  const stream = keys.stream(saleId);
  const args: Array<string | number> = [stream, keys.writerGroup, '-', '+', 10_000, ...(consumer ? [consumer] : [])];
  const raw = (await redis.call('XPENDING', ...args)) as Array<[string, string, number, number]>;
  const out: PendingEntry[] = [];
  for (const [id, c, idle, deliveries] of raw) {
    const e = (await redis.xrange(stream, id, id)) as Array<[string, string[]]>;
    let orderId: string | null = null;
    const fields = e[0]?.[1] ?? [];
    for (let k = 0; k < fields.length; k += 2) {
      if (fields[k] === 'o') orderId = (JSON.parse(fields[k + 1]) as { orderId: string }).orderId;
    }
    out.push({ id, consumer: c, idleMs: Number(idle), deliveries: Number(deliveries), orderId });
  }
  return out;
}

/** Entries of the stream not delivered to any writer yet (the group's lag). */
export async function undelivered(redis: Redis, keys: RedisKeys, saleId: string): Promise<number> {
  const groups = (await redis.xinfo('GROUPS', keys.stream(saleId))) as Array<Array<string | number>>;
  for (const g of groups) {
    const f = new Map<string, string | number>();
    for (let k = 0; k < g.length; k += 2) f.set(String(g[k]), g[k + 1]);
    if (f.get('name') === keys.writerGroup) return Number(f.get('lag') ?? 0);
  }
  return 0;
}

export async function orderIdsInDb(databaseUrl: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query<{ order_id: string }>('SELECT order_id FROM orders WHERE order_id = ANY($1::text[])', [ids]);
    return new Set(r.rows.map((x) => x.order_id));
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// A test-owned redis-server: its own port and directory, AOF with fsync on every write

export class RedisServer {
  readonly dir = tempDir('seckill-redis-');
  port = 0;
  child: ChildProcess | null = null;
  private log = '';

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Start (or restart, same port and directory); resolves when it answers PING with its data loaded. */
  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const bin = fs.existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server';
    const child = spawn(bin, [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--logfile', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    this.child = child;
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + START_MS;
    const probe = new Redis(this.url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    probe.on('error', () => undefined); // refused until it listens: expected here
    try {
      for (;;) {
        if (!alive(child)) throw new Error(`redis-server exited: ${this.log}`);
        try {
          if (probe.status !== 'ready') {
            probe.disconnect();
            await probe.connect();
          }
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          // not listening yet, or still loading the AOF
        }
        if (Date.now() > deadline) throw new Error(`redis-server not ready: ${this.log}`);
        await sleep(25);
      }
    } finally {
      probe.disconnect();
    }
  }

  /** SIGTERM: redis-server fsyncs its AOF and exits (a clean stop, data kept). */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || !alive(c)) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), PATIENCE_MS);
    await exited;
    clearTimeout(t);
  }

  /** Lose every byte Redis had: empty its directory (while it is stopped). */
  wipe(): void {
    for (const f of fs.readdirSync(this.dir)) fs.rmSync(path.join(this.dir, f), { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    if (this.child) await kill9(this.child);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  output(): string {
    return this.log;
  }
}
