// Distributed-mode test harness: real Redis and PostgreSQL, seckill as child processes.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { call } from './client.js';
import { ADMIN_KEY, ROOT, childEnv, launchSeckill, terminate, type Env, type Proc } from './launcher.js';
import { freePort } from './ports.js';
import { tempDir, type OrderRow } from './server.js';

export type { Proc } from './launcher.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Why distributed tests cannot run here, or null when Redis and PostgreSQL answer. */
export async function servicesUnavailable(): Promise<string | null> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: Error | null = null; // the socket's error says more than "Connection is closed."
  redis.on('error', (err: Error) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    return `Redis at ${REDIS_URL} unreachable: ${(cause ?? (err as Error)).message}`;
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    return `PostgreSQL at ${PG_ADMIN_URL} unreachable: ${(err as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
  return null;
}

/**
 * For a distributed test's `skip` option: in CI the services must be there (the test then fails
 * loudly if they are not); elsewhere the test is skipped with the reason printed.
 */
export async function skipUnlessServices(): Promise<string | false> {
  const reason = await servicesUnavailable();
  if (!reason) return false;
  if (process.env.CI) throw new Error(`distributed tests need Redis and PostgreSQL in CI: ${reason}`);
  process.stdout.write(`# skipping distributed tests: ${reason}\n`);
  return reason;
}

/** A fresh PostgreSQL database for one test server. */
export async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `seckill_test_${crypto.randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await a.end();
    },
  };
}

export interface ClusterOptions {
  /** Worker processes behind one port (node:cluster). */
  workers?: number;
  /** Or: this many separate processes, each on its own port. */
  processes?: number;
  /** Overrides of processEnv; a variable given as `undefined` is left out of the processes' environment. */
  env?: Record<string, string | undefined>;
  redisUrl?: string;
  /** Data dir of the processes (secrets.json); a fresh temporary one by default. */
  dataDir?: string;
}

/** seckill in distributed mode: its own database and Redis key prefix, so tests never share state. */
export class TestCluster {
  readonly procs: Proc[] = [];
  readonly prefix = `t${crypto.randomBytes(4).toString('hex')}`;
  readonly dataDir: string;
  private next = 0;
  private db!: { url: string; drop(): Promise<void> };
  private pool!: pg.Pool;
  /** Workers of each process, to start it again the same way. */
  private readonly workersOf = new Map<Proc, number>();

  constructor(private readonly opts: ClusterOptions = {}) {
    this.dataDir = opts.dataDir ?? tempDir('seckill-dist-');
  }

  get databaseUrl(): string {
    return this.db.url;
  }

  get redisUrl(): string {
    return this.opts.redisUrl ?? REDIS_URL;
  }

  /** The base URL of the next process, round robin (one URL with node:cluster). */
  get url(): string {
    const p = this.procs[this.next++ % this.procs.length];
    return p.url;
  }

  processEnv(port: number): Record<string, string> {
    return childEnv({
      PORT: String(port),
      REDIS_URL: this.redisUrl,
      DATABASE_URL: this.db.url,
      SECKILL_REDIS_PREFIX: this.prefix,
      SECKILL_ALLOW_VOLATILE_REDIS: '1',
      SECKILL_DATA_DIR: this.dataDir,
      SECKILL_CLAIM_IDLE_MS: '1000',
      ...(this.opts.env ?? {}),
    });
  }

  async start(): Promise<this> {
    this.db = await createDatabase();
    this.pool = new pg.Pool({ connectionString: this.db.url, max: 2 });
    // pool.end() resolves before its clients' sockets are closed: the DROP … WITH (FORCE) of stop()
    // may then terminate one, and that error must not become an uncaught exception of the test.
    this.pool.on('error', () => undefined);
    if (this.opts.processes) {
      for (let i = 0; i < this.opts.processes; i++) this.procs.push(await this.spawn(await freePort(), 1));
    } else {
      this.procs.push(await this.spawn(await freePort(), this.opts.workers ?? 3));
    }
    return this;
  }

  /**
   * Start (or restart) one process on a port; resolves when it answers /readyz. `extra`: variables
   * for this process only (fault injection), not kept for its restarts.
   */
  async spawn(port: number, workers: number, extra: Env = {}): Promise<Proc> {
    const proc = await launchSeckill({ env: { ...this.processEnv(port), ...extra }, port, workers });
    this.workersOf.set(proc, workers);
    return proc;
  }

  /** kill -9 the i-th process and start it again on the same port. */
  async crashAndRestart(i: number): Promise<void> {
    const p = this.procs[i];
    p.child.kill('SIGKILL');
    await new Promise((r) => p.child.once('exit', r));
    this.procs[i] = await this.spawn(p.port, 1);
  }

  /** Waits until every decided order of the sale is in PostgreSQL. */
  async settle(saleId: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await call(this.procs[0].url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY });
      if (r.status === 200 && r.body.stats.pendingWrites === 0) return;
      if (Date.now() > deadline) throw new Error(`writes of sale ${saleId} did not settle: ${r.text}`);
      await sleep(50);
    }
  }

  /** The sale's order rows in PostgreSQL, after the writers drained. */
  async orders(saleId: string): Promise<OrderRow[]> {
    await this.settle(saleId);
    const r = await this.pool.query<OrderRow>('SELECT order_id, sale_id, user_id, quantity, status FROM orders WHERE sale_id = $1', [saleId]);
    return r.rows;
  }

  /** Every sale in the cluster's database. */
  async saleIds(): Promise<string[]> {
    const r = await this.pool.query<{ id: string }>('SELECT id FROM sales ORDER BY created_at');
    return r.rows.map((x) => x.id);
  }

  /** SIGTERM every process and wait for it to exit; the database and Redis keep their state. */
  async stopProcesses(): Promise<void> {
    for (const p of this.procs) await terminate(p.child);
  }

  /** Start every process again, on the same ports and with the same workers, after stopProcesses. */
  async startProcesses(): Promise<void> {
    for (let i = 0; i < this.procs.length; i++) {
      const p = this.procs[i];
      this.procs[i] = await this.spawn(p.port, this.workersOf.get(p) ?? 1);
    }
  }

  /** `seckill reconcile` as an operator runs it; returns its report and exit code. */
  async reconcile(saleId: string, repair = false): Promise<{ code: number; report: { differences: string[]; [k: string]: unknown } }> {
    // `--`: a sale id may begin with '-' (base64url), which the CLI would take for an option.
    const { code, out } = await this.cli(['reconcile', ...(repair ? ['--repair'] : []), '--', saleId]);
    return { code, report: JSON.parse(out) };
  }

  /** `seckill reconcile --all`: every sale of the cluster in one process; its reports and exit code. */
  async reconcileAll(): Promise<{ code: number; reports: Array<{ saleId: string; differences: string[]; [k: string]: unknown }> }> {
    const { code, out } = await this.cli(['reconcile', '--all']);
    return { code, reports: JSON.parse(out) };
  }

  /** A seckill command against the cluster's stores; its stdout (never empty) and exit code. */
  private async cli(args: string[]): Promise<{ code: number; out: string }> {
    const child = spawn(process.execPath, ['bin/seckill.mjs', ...args], { cwd: ROOT, env: this.processEnv(0), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
    if (!out.trim()) throw new Error(`${args.join(' ')} printed nothing (exit ${code}): ${err}`);
    return { code, out };
  }

  async stop(): Promise<void> {
    await this.stopProcesses();
    await this.pool?.end().catch(() => undefined);
    await this.db?.drop();
    const redis = new Redis(this.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } catch {
      // a test-owned Redis may be gone already
    } finally {
      redis.disconnect();
    }
  }
}
