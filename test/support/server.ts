import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { checkOrderInvariants, type OrderFact } from '../../src/bench/invariants.js';
import { signUserToken } from '../../src/gateway/auth.js';
import { secretsFile } from '../../src/config/secrets.js';
import type { RunningServer } from '../../src/server.js';
import { call, type CallOptions, type Reply } from './client.js';
import { ADMIN_KEY, USER_SECRET, startInProcess } from './launcher.js';
// Type only (erased): cluster.ts imports this module, so the class itself is imported lazily.
import type { TestCluster } from './cluster.js';

export { agent, call, type CallOptions, type Reply } from './client.js';
export { ADMIN_KEY, USER_SECRET } from './launcher.js';

export function tempDir(prefix = 'seckill-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function userToken(userId: string, ttlSeconds = 3600, secret = USER_SECRET): string {
  return signUserToken(secret, userId, ttlSeconds);
}

export interface SaleOptions {
  stock?: number;
  perUserLimit?: number;
  priceCents?: number;
  /** ms from now; negative = already live */
  startsIn?: number;
  /** ms after the start; null = no end */
  lasts?: number | null;
  paymentWindowSeconds?: number;
}

/**
 * Which seckill the suites run against: `embedded` (one in-process server, SQLite) or, with
 * SECKILL_TEST_MODE=distributed, 3 worker processes behind node:cluster on real Redis and
 * PostgreSQL (test/cluster.ts).
 */
export type TestMode = 'embedded' | 'distributed';
export const mode: TestMode = process.env.SECKILL_TEST_MODE === 'distributed' ? 'distributed' : 'embedded';

/** Workers behind the one port of a distributed test server. */
export const DISTRIBUTED_WORKERS = 3;
/** How often a distributed process adds its per-sale request counts to Redis (SECKILL_STATS_FLUSH_MS). */
const STATS_FLUSH_MS = 50;

export interface TestServer {
  mode: TestMode;
  url: string;
  dataDir: string;
  /** The in-process server, with its internals: embedded mode only. */
  server?: RunningServer;
  /** The processes, database and Redis keys: distributed mode only. */
  cluster?: TestCluster;
  createSale(o?: SaleOptions): Promise<{ id: string; [k: string]: unknown }>;
  call(method: string, url: string, o?: CallOptions): Promise<Reply>;
  admin(method: string, url: string, body?: unknown): Promise<Reply>;
  /** The sale's rows in the database of record (distributed: once the order writers drained). */
  orders(saleId: string): Promise<OrderRow[]>;
  /**
   * Distributed: waits until what was decided for this sale is in the database of record (the
   * admin stats' status totals, order listings and me/orders read from it), then a little longer,
   * so that every process has added its request counts to the shared ones and has heard, by
   * signal, of sales created, paused, resumed or sold out (the next request may reach another
   * process). Embedded: nothing to wait for (a 202 follows the commit; one process).
   */
  settle(saleId: string): Promise<void>;
  /** Stops the server, waits `downMs`, and starts it again on the same state. Do not close this one afterwards. */
  restart(downMs?: number): Promise<TestServer>;
  /** Distributed: first reconciles every sale (Redis against PostgreSQL) and fails on any difference. */
  close(): Promise<void>;
}

/**
 * For a suite's `skip` option: false in embedded mode; in distributed mode the reason Redis or
 * PostgreSQL cannot be used (printed; throws when CI is set), or false when both answer.
 */
export async function skipUnlessReady(): Promise<string | false> {
  if (mode !== 'distributed') return false;
  const { skipUnlessServices } = await import('./cluster.js');
  return skipUnlessServices();
}

/** Sale-creation body for the admin API. */
export function saleBody(o: SaleOptions = {}) {
  const startsAt = Date.now() + (o.startsIn ?? -1000);
  const lasts = o.lasts === undefined ? 3600_000 : o.lasts;
  return {
    name: 'Test sale',
    priceCents: o.priceCents ?? 1999,
    stock: o.stock ?? 10,
    startsAt: new Date(startsAt).toISOString(),
    ...(lasts === null ? {} : { endsAt: new Date(startsAt + lasts).toISOString() }),
    perUserLimit: o.perUserLimit ?? 1,
    paymentWindowSeconds: o.paymentWindowSeconds ?? 600,
  };
}

/**
 * An in-process seckill on a random port with its own data dir (or, with SECKILL_TEST_MODE=distributed,
 * a cluster). A variable given as `undefined` is unset (see launcher.ts testEnv):
 * `{ SECKILL_USER_SECRET: undefined }` gives demo mode, with the secret from the data dir.
 */
export async function startTestServer(env: Record<string, string | undefined> = {}, dataDir?: string): Promise<TestServer> {
  if (mode === 'distributed') return startTestCluster(env, dataDir);
  return startEmbedded(env, dataDir ?? tempDir());
}

async function startEmbedded(env: Record<string, string | undefined>, dataDir: string): Promise<TestServer> {
  const server = await startInProcess({ SECKILL_DATA_DIR: dataDir, ...env });
  const url = server.url;
  return {
    mode: 'embedded',
    url,
    dataDir,
    server,
    ...clientOf(url),
    orders: async (saleId) => readOrders(dataDir, saleId),
    settle: async () => undefined,
    async restart(downMs = 0) {
      await server.close();
      await sleep(downMs);
      return startEmbedded(env, dataDir);
    },
    close: () => server.close(),
  };
}

/** The HTTP side of a TestServer, the same in both modes. */
function clientOf(url: string): Pick<TestServer, 'call' | 'admin' | 'createSale'> {
  const admin = (method: string, u: string, body?: unknown) => call(url, method, u, { token: ADMIN_KEY, body });
  return {
    call: (method, u, o) => call(url, method, u, o),
    admin,
    async createSale(o = {}) {
      const r = await admin('POST', '/api/admin/sales', saleBody(o));
      if (r.status !== 201) throw new Error(`create sale: ${r.status} ${r.text}`);
      return r.body;
    },
  };
}

/**
 * Distributed: a TestCluster of 3 workers behind node:cluster, with its own database and Redis
 * key prefix, given the same overrides as the embedded server (`undefined` leaves a variable out).
 */
async function startTestCluster(env: Record<string, string | undefined>, dataDir?: string): Promise<TestServer> {
  const { TestCluster } = await import('./cluster.js');
  const cluster = new TestCluster({
    workers: DISTRIBUTED_WORKERS,
    dataDir,
    env: { SECKILL_STATS_FLUSH_MS: String(STATS_FLUSH_MS), ...env },
  });
  try {
    await cluster.start();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  return clusterServer(cluster);
}

function clusterServer(cluster: TestCluster): TestServer {
  const url = cluster.url; // one URL: the workers share the port
  let closing: Promise<void> | null = null;
  return {
    mode: 'distributed',
    url,
    dataDir: cluster.dataDir,
    cluster,
    ...clientOf(url),
    orders: (saleId) => cluster.orders(saleId),
    async settle(saleId) {
      await cluster.settle(saleId);
      // Each worker adds its request counts to Redis every STATS_FLUSH_MS.
      await sleep(2 * STATS_FLUSH_MS);
    },
    async restart(downMs = 0) {
      await cluster.stopProcesses();
      await sleep(downMs);
      await cluster.startProcesses();
      return clusterServer(cluster);
    },
    close() {
      closing ??= (async () => {
        try {
          await reconcileAll(cluster);
        } finally {
          await cluster.stop();
        }
      })();
      return closing;
    },
  };
}

/**
 * `seckill reconcile --all` (as an operator runs it, one process for every sale of the cluster):
 * for each sale Redis and PostgreSQL must agree exactly, and the command must exit 0.
 */
async function reconcileAll(cluster: TestCluster): Promise<void> {
  const ids = await cluster.saleIds();
  const { code, reports } = await cluster.reconcileAll();
  assert.deepEqual(reports.map((r) => r.saleId).sort(), [...ids].sort(), 'every sale reconciled');
  const differences = reports.filter((r) => r.differences.length > 0).map((r) => `sale ${r.saleId}: ${JSON.stringify(r.differences)}`);
  assert.deepEqual(differences, [], `reconcile found differences after the tests:\n${differences.join('\n')}`);
  assert.equal(code, 0, 'reconcile exit code');
}

/** Path then buy, as a client does. */
export async function buy(base: string, saleId: string, token: string, quantity?: number): Promise<Reply> {
  const p = await call(base, 'POST', `/api/sales/${saleId}/path`, { token });
  if (p.status !== 200) return p;
  return call(base, 'POST', `/api/sales/${saleId}/buy/${p.body.path}`, {
    token,
    body: quantity === undefined ? {} : { quantity },
  });
}

export interface OrderRow {
  order_id: string;
  sale_id: string;
  user_id: string;
  quantity: number;
  status: string;
}

/** Rows as the shared invariant checker (src/bench/invariants.ts) reads them. */
export function orderFacts(rows: readonly OrderRow[]): OrderFact[] {
  return rows.map((r) => ({ orderId: r.order_id, userId: r.user_id, quantity: r.quantity, status: r.status }));
}

/** Read the database of record directly, as an auditor would. */
export function readOrders(dataDir: string, saleId?: string): OrderRow[] {
  const db = new Database(path.join(dataDir, 'seckill.db'), { readonly: true, fileMustExist: true });
  try {
    return (saleId
      ? db.prepare('SELECT * FROM orders WHERE sale_id = ?').all(saleId)
      : db.prepare('SELECT * FROM orders').all()) as OrderRow[];
  } finally {
    db.close();
  }
}

/**
 * Invariants of docs/design.md from the rows alone (the checker shared with the benchmark): units
 * held never exceed the stock, nobody holds more than the limit, each order once. Throws on the
 * first check that fails; returns the units held, in all and per user.
 */
export function checkInvariants(rows: OrderRow[], stock: number, perUserLimit: number): { held: number; perUser: Map<string, number> } {
  const { failures, held, perUser } = checkOrderInvariants({ stock, perUserLimit, orders: orderFacts(rows) });
  if (failures.length > 0) throw new Error(failures.join('\n'));
  return { held, perUser };
}

export function randomUser(prefix = 'u'): string {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

/** The user secret a demo-mode server generated in its data dir (what the shop's login would sign with). */
export function generatedUserSecret(dataDir: string): string {
  return (JSON.parse(fs.readFileSync(secretsFile(dataDir), 'utf8')) as { userSecret: string }).userSecret;
}
