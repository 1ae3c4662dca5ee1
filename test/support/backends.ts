// A running seckill backend without HTTP, for the conformance suite: `createServices` in this
// process, one or two instances, its PostgreSQL / Redis connections through fault proxies, and
// direct access to the database of record for the checks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { SeckillError } from '../../src/domain/errors.js';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';
import type { ReserveResult } from '../../src/engine/stock-engine.js';
import type { NewSale } from '../../src/services/sale-service.js';
import { createServices, type Services } from '../../src/wiring/services.js';
import { createDatabase, PG_ADMIN_URL, REDIS_URL } from './cluster.js';
import { FaultProxy } from './fault-proxy.js';

export type Combo = 'memory+sqlite' | 'memory+postgres' | 'redis+postgres' | 'redis+postgres x2';
export const COMBOS: Combo[] = ['memory+sqlite', 'memory+postgres', 'redis+postgres', 'redis+postgres x2'];

export const usesPostgres = (c: Combo) => c !== 'memory+sqlite';
export const usesRedis = (c: Combo) => c.startsWith('redis');

/** A row of the database of record, as an auditor reads it. */
export interface RecordRow {
  order_id: string;
  user_id: string;
  quantity: number;
  status: string;
  payment_ref: string | null;
  expires_at: number;
}

/** What a funnel call answered: the engine's result, or the SeckillError code it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; error: SeckillError };

/**
 * The answer "the outcome is unknown" (a SeckillError carrying `applied`, settled once the
 * database of record says whether the change happened): never `busy`, which promises nothing changed.
 */
export function inDoubt(o: Outcome<unknown>): Promise<boolean> | null {
  if (o.ok) return null;
  const applied = (o.error as { applied?: unknown }).applied;
  return applied instanceof Promise ? (applied as Promise<boolean>) : null;
}

/** Run a service call; a SeckillError becomes an outcome, anything else is a bug and is thrown. */
export async function outcome<T>(f: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    if (err instanceof SeckillError) return { ok: false, code: err.code, error: err };
    throw err;
  }
}

const ADMIN = { kind: 'admin' } as const;

export interface BackendOptions {
  /** Extra environment for loadConfig (e.g. TEST-ONLY knobs). */
  env?: Record<string, string>;
}

/**
 * One backend under test. `instances` are the seckill processes (in-process here); PostgreSQL and
 * Redis are reached through `pgProxy` / `redisProxy`; `record*` reads go around the proxies.
 */
export class Backend {
  instances: Services[] = [];
  readonly pgProxy: FaultProxy | null;
  readonly redisProxy: FaultProxy | null;
  /** Direct (unproxied) clients: the auditor's view and the fault injector's hands. */
  readonly pgDirect: pg.Pool | null;
  readonly redisDirect: Redis | null;
  private readonly env: Record<string, string>;

  private constructor(
    readonly combo: Combo,
    readonly dataDir: string,
    readonly databaseUrl: string | null,
    private readonly dropDb: (() => Promise<void>) | null,
    readonly redisPrefix: string | null,
    pgProxy: FaultProxy | null,
    redisProxy: FaultProxy | null,
    extraEnv: Record<string, string>,
  ) {
    this.pgProxy = pgProxy;
    this.redisProxy = redisProxy;
    this.pgDirect = databaseUrl ? new pg.Pool({ connectionString: databaseUrl, max: 3 }) : null;
    this.pgDirect?.on('error', () => undefined);
    this.redisDirect = redisPrefix ? new Redis(REDIS_URL, { maxRetriesPerRequest: 2 }) : null;
    this.env = {
      SECKILL_DATA_DIR: dataDir,
      SECKILL_ADMIN_KEY: 'conformance-admin-key-0123456789',
      SECKILL_USER_SECRET: 'conformance-user-secret-0123456789abcdef0123',
      SECKILL_DEMO_SALE: '0',
      LOG_LEVEL: process.env.CONFORMANCE_LOG_LEVEL ?? 'silent',
      SECKILL_GROUP_COMMIT_MS: '2',
      SECKILL_CLAIM_IDLE_MS: '1000',
      ...(databaseUrl ? { DATABASE_URL: pgProxy!.url(databaseUrl) } : {}),
      ...(redisPrefix ? { REDIS_URL: redisProxy!.url(REDIS_URL), SECKILL_REDIS_PREFIX: redisPrefix, SECKILL_ALLOW_VOLATILE_REDIS: '1' } : {}),
      ...extraEnv,
    };
  }

  static async start(combo: Combo, opts: BackendOptions = {}): Promise<Backend> {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-conf-'));
    let db: { url: string; drop(): Promise<void> } | null = null;
    let pgProxy: FaultProxy | null = null;
    let redisProxy: FaultProxy | null = null;
    if (usesPostgres(combo)) {
      db = await createDatabase();
      pgProxy = await FaultProxy.forUrl(PG_ADMIN_URL).start();
    }
    const prefix = usesRedis(combo) ? `conf-${crypto.randomBytes(5).toString('hex')}` : null;
    if (prefix) redisProxy = await FaultProxy.forUrl(REDIS_URL).start();
    const b = new Backend(combo, dataDir, db?.url ?? null, db ? () => db.drop() : null, prefix, pgProxy, redisProxy, opts.env ?? {});
    await b.open();
    return b;
  }

  get instanceCount(): number {
    return this.combo === 'redis+postgres x2' ? 2 : 1;
  }

  /** Instance i, wrapping around (commands pick an instance without knowing how many there are). */
  at(i: number): Services {
    return this.instances[i % this.instances.length];
  }

  /**
   * Start the instances. A start that fails (a store still recovering from a fault) is tried
   * again for up to 30 s, as a process manager would; then its error is thrown.
   */
  private async open(): Promise<void> {
    const config = loadConfig(this.env);
    const deadline = Date.now() + 30_000;
    while (this.instances.length < this.instanceCount) {
      const i = this.instances.length;
      try {
        this.instances.push(await createServices(config, pino({ level: config.logLevel, base: { instance: i } })));
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`instance ${i} could not start again: ${(err as Error).message}`, { cause: err });
        await sleep(500);
      }
    }
  }

  /** After a failed run: make sure every instance runs again, so the next run starts clean. */
  async ensureRunning(): Promise<void> {
    this.pgProxy?.restore();
    this.redisProxy?.restore();
    if (this.instances.length < this.instanceCount) await this.open();
  }

  /**
   * Start one more instance on the same data as a separate deployment would (embedded: the same
   * data dir; PostgreSQL mode: the same database). Closed again if it starts.
   */
  async startSecond(): Promise<void> {
    const config = loadConfig(this.env);
    const extra = await createServices(config, pino({ level: config.logLevel, base: { instance: 'second' } }));
    await extra.close();
  }

  /** Close every instance and start them again on the same data (a deploy, or a crash recovered). */
  async restart(): Promise<void> {
    await this.closeInstances();
    await this.open();
  }

  private async closeInstances(): Promise<void> {
    const all = this.instances;
    this.instances = [];
    for (const s of all) await s.close().catch(() => undefined);
  }

  async createSale(input: Partial<NewSale> & { stock: number }, now: number): Promise<Sale> {
    const sale = await this.at(0).sales.create(
      { name: 'conformance', priceCents: 100, startsAt: now - 60_000, endsAt: null, perUserLimit: 1, paymentWindowSeconds: 600, ...input },
      now,
    );
    for (const s of this.instances.slice(1)) {
      if (!(await s.sales.find(sale.id))) throw new Error(`instance did not learn of sale ${sale.id}`);
    }
    return sale;
  }

  sale(saleId: string, i = 0): Sale {
    const sale = this.at(i).sales.get(saleId);
    if (!sale) throw new Error(`sale ${saleId} unknown to instance ${i}`);
    return sale;
  }

  /**
   * A buy through the same funnel as POST /buy after its token and path checks: the local
   * sold-out and at-limit hints, the engine, then the hints set from its answer.
   */
  async reserve(saleId: string, userId: string, quantity: number, now: number, i = 0): Promise<Outcome<ReserveResult>> {
    const s = this.at(i);
    return outcome(async () => {
      const sale = this.sale(saleId, i);
      if (s.refusals.isSoldOut(saleId)) return { ok: false, refusal: 'sold_out', available: 0, held: -1 } as ReserveResult;
      if (s.refusals.holdsLimit(saleId, userId)) return { ok: false, refusal: 'limit_reached', available: -1, held: -1 } as ReserveResult;
      const result = await s.engine.reserve(sale, userId, quantity, now);
      if (result.available <= 0) s.signals.soldOut(saleId);
      if (result.held >= sale.perUserLimit) s.refusals.markAtLimit(saleId, userId);
      return result;
    });
  }

  pay(orderId: string, paymentRef: string, now: number, i = 0): Promise<Outcome<Order>> {
    return outcome(() => this.at(i).orders.pay(orderId, ADMIN, paymentRef, now));
  }

  refund(orderId: string, now: number, i = 0): Promise<Outcome<Order>> {
    return outcome(() => this.at(i).orders.refund(orderId, ADMIN, null, now));
  }

  cancel(orderId: string, now: number, i = 0): Promise<Outcome<Order>> {
    return outcome(() => this.at(i).orders.cancel(orderId, ADMIN, now));
  }

  expire(now: number, i = 0): Promise<Outcome<number>> {
    return outcome(() => this.at(i).orders.expireDue(now));
  }

  /** Units available as the engine says now (asks Redis in distributed mode). */
  availableNow(saleId: string, i = 0): Promise<Outcome<number>> {
    return outcome(() => this.at(i).engine.availableNow(saleId));
  }

  /** Wait until every decided order of the sale is in the database of record. */
  async drained(saleId: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'never asked';
    for (;;) {
      try {
        const pending = await this.at(0).engine.pendingWrites(saleId);
        const backlog = this.instances.reduce((a, s) => a + (usesRedis(this.combo) ? 0 : s.writer.backlog + ((s.writer as { inDoubt?: number }).inDoubt ?? 0)), 0);
        if (pending === 0 && backlog === 0) return;
        last = `pendingWrites ${pending}, writer backlog ${backlog}`;
      } catch (err) {
        last = String((err as Error).message);
      }
      if (Date.now() > deadline) throw new Error(`order writers did not drain in ${timeoutMs} ms (${last})`);
      await sleep(25);
    }
  }

  /** The sale's orders in the database of record, read directly (never through a proxy). */
  async records(saleId: string): Promise<RecordRow[]> {
    if (this.pgDirect) {
      const r = await this.pgDirect.query<RecordRow>('SELECT order_id, user_id, quantity, status, payment_ref, expires_at FROM orders WHERE sale_id = $1', [saleId]);
      return r.rows;
    }
    const db = new Database(path.join(this.dataDir, 'seckill.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT order_id, user_id, quantity, status, payment_ref, expires_at FROM orders WHERE sale_id = ?').all(saleId) as RecordRow[];
    } finally {
      db.close();
    }
  }

  // ---- faults -------------------------------------------------------------------------------

  /**
   * Hold a write lock on the orders table for `ms` (readers still read): PostgreSQL `LOCK TABLE
   * orders IN EXCLUSIVE MODE`, or SQLite `BEGIN IMMEDIATE` on a second connection. Resolves once
   * the lock is held; `released` resolves when it is let go.
   */
  async holdWriteLock(ms: number): Promise<{ released: Promise<void> }> {
    if (this.pgDirect) {
      const c = await this.pgDirect.connect();
      await c.query('BEGIN');
      await c.query('LOCK TABLE orders IN EXCLUSIVE MODE');
      const released = sleep(ms).then(async () => {
        await c.query('ROLLBACK').catch(() => undefined);
        c.release();
      });
      return { released };
    }
    const db = new Database(path.join(this.dataDir, 'seckill.db'));
    db.exec('BEGIN IMMEDIATE');
    // better-sqlite3 waits for a lock synchronously (busy_timeout), blocking this loop: the
    // release timer cannot fire before the service's own wait has given up.
    const released = sleep(ms).then(() => {
      db.exec('ROLLBACK');
      db.close();
    });
    return { released };
  }

  /**
   * Every key of this run's Redis prefix, deleted at once (a Redis that restarted empty, for this
   * run only). One script, so that no rebuild can slip in between a scan's rounds and be half
   * deleted: a real restart loses everything at the same instant.
   */
  async emptyRedis(): Promise<number> {
    const script = `
      local n, cursor = 0, '0'
      repeat
        local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
        cursor = r[1]
        for _, k in ipairs(r[2]) do n = n + redis.call('DEL', k) end
      until cursor == '0'
      return n`;
    return Number(await this.redisDirect!.eval(script, 0, `${this.redisPrefix}:*`));
  }

  /**
   * CLIENT KILL of this run's pub/sub connections only: those Redis sees coming from the proxy's
   * upstream ports with a subscription. Returns how many were killed.
   */
  async killSubscribers(): Promise<number> {
    const ports = this.redisProxy!.upstreamPorts();
    const list = (await this.redisDirect!.client('LIST')) as string;
    let n = 0;
    for (const line of list.split('\n')) {
      const f = Object.fromEntries(line.split(' ').map((kv) => kv.split('=', 2) as [string, string]));
      const port = Number(String(f.addr ?? '').split(':').pop());
      const subscribed = Number(f.sub ?? 0) + Number(f.psub ?? 0) > 0;
      if (ports.has(port) && subscribed) {
        n += Number(await this.redisDirect!.client('KILL', 'ID', f.id));
      }
    }
    return n;
  }

  async close(): Promise<void> {
    this.pgProxy?.restore();
    this.redisProxy?.restore();
    await this.closeInstances();
    await this.pgProxy?.close();
    await this.redisProxy?.close();
    if (this.redisDirect) {
      await this.emptyRedis().catch(() => undefined);
      this.redisDirect.disconnect();
    }
    await this.pgDirect?.end().catch(() => undefined);
    // CONFORMANCE_KEEP_DB=1: keep the database of a failed run for a post-mortem.
    if (process.env.CONFORMANCE_KEEP_DB === '1') process.stdout.write(`# kept database ${this.databaseUrl}\n`);
    else await this.dropDb?.().catch(() => undefined);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
