import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';
import { MemoryStockEngine } from '../engine/memory-engine.js';
import { checkEviction, checkPersistence, connectRedis, redisConnection } from '../stores/redis/connection.js';
import { RedisStockEngine } from '../stores/redis/redis-engine.js';
import { RedisKeys } from '../stores/redis/keys.js';
import type { StockEngine } from '../engine/stock-engine.js';
import { SeckillError } from '../domain/errors.js';
import { Auth } from '../gateway/auth.js';
import { Breaker } from '../gateway/breaker.js';
import { guardStore } from '../gateway/store-guard.js';
import { Switches, type SwitchValues } from '../gateway/switches.js';
import { LocalRefusals } from '../gateway/local-refusals.js';
import { HintRefresher } from '../stores/redis/hint-refresh.js';
import { RateLimit } from '../gateway/rate-limit.js';
import { LocalSignals, RedisSignals, type SaleSignals } from '../services/signals.js';
import { Metrics, RedisCounts } from '../services/metrics.js';
import { ExpirySweeper } from '../services/expiry-sweeper.js';
import { OrderService } from '../services/order-service.js';
import { OrderWriter } from '../engine/group-commit.js';
import { PgRecordStore } from '../stores/postgres/pg-record-store.js';
import type { RecordStore } from '../stores/record-store.js';
import { SqliteRecordStore } from '../stores/sqlite/sqlite-record-store.js';
import { DatabaseLock } from '../stores/postgres/database-lock.js';
import { DataDirLock } from '../stores/sqlite/data-dir-lock.js';
import { StreamOrderWriter } from '../stores/redis/stream-writer.js';
import { OwnedStatusTotals, RefreshedStatusTotals, type SaleStatusTotals } from '../services/status-totals.js';
import { SaleService } from '../services/sale-service.js';
import { resolveSecrets, type Secrets } from '../config/secrets.js';

export type Mode = 'embedded' | 'postgres' | 'distributed';

/** Distributed mode: how often the status totals for /metrics are read again (while scraped). */
const TOTALS_REFRESH_MS = 5000;

/** What /readyz and /metrics need of whichever order writer runs. */
export interface WriterStatus {
  backlog: number;
  ordersWritten: number;
  lastError: Error | null;
  /** Distributed: order records PostgreSQL refused, set aside for an operator. */
  quarantined?: number;
}

/** Everything one seckill process is made of, wired once. */
export interface Services {
  mode: Mode;
  config: Config;
  secrets: Secrets;
  log: Logger;
  repo: RecordStore;
  writer: WriterStatus;
  engine: StockEngine;
  refusals: LocalRefusals;
  signals: SaleSignals;
  sales: SaleService;
  orders: OrderService;
  sweeper: ExpirySweeper;
  auth: Auth;
  ipLimit: RateLimit;
  userLimit: RateLimit;
  metrics: Metrics;
  /** Units per order status and sale (admin stats, dashboard, /metrics): read here, never summed per scrape. */
  totals: SaleStatusTotals;
  /** Operators' switches: refuse every buy, degraded (no SSE). */
  switches: Switches;
  /** Set switches here and on every other process. */
  setSwitches(values: Partial<SwitchValues>): Promise<SwitchValues>;
  /** One circuit breaker per backing store that can be down. */
  breakers: Breaker[];
  /** Checks of the backing stores, for /readyz. */
  ping(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export function modeOf(config: Config): Mode {
  if (config.redisUrl && !config.databaseUrl) {
    throw new Error('REDIS_URL needs DATABASE_URL: distributed mode keeps its orders in PostgreSQL.');
  }
  if (config.redisUrl) return 'distributed';
  return config.databaseUrl ? 'postgres' : 'embedded';
}

export async function createServices(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Services> {
  const mode = modeOf(config);
  const secrets = resolveSecrets(config.dataDir, { adminKey: config.adminKey, userSecret: config.userSecret, demo: config.demo });
  const refusals = new LocalRefusals();
  const closers: Array<() => Promise<unknown>> = [];
  const pings: Record<string, () => Promise<unknown>> = {};

  let repo: RecordStore;
  let writer: WriterStatus;
  let engine: StockEngine;
  let signals: SaleSignals = new LocalSignals(refusals);
  let userLimit = new RateLimit(config.ratePerUser);
  let redis: Redis | null = null;
  let keys: RedisKeys | null = null;
  let redisSignals: RedisSignals | null = null;
  const switches = new Switches();
  const breakers: Breaker[] = [];
  let pgRepo: PgRecordStore | null = null;
  let ownedTotals: OwnedStatusTotals | null = null;
  let releaseInstanceLock: () => Promise<void> = async () => undefined;

  if (mode === 'embedded') {
    // One process per data dir: a second one refuses to start (it would sell the stock again).
    const dirLock = DataDirLock.acquire(config.dataDir);
    releaseInstanceLock = async () => dirLock.release();
    repo = new SqliteRecordStore(config.dataDir, config.sqliteSync);
  } else {
    pgRepo = new PgRecordStore(config.databaseUrl!, config.pgPool, { log });
    await pgRepo.init();
    if (mode === 'postgres') {
      // One process per database in this mode (distributed processes share theirs by design).
      const opened = pgRepo;
      const lock = await DatabaseLock.acquire(config.databaseUrl!, log).catch(async (err: unknown) => {
        await opened.close().catch(() => undefined); // refused to start: leave nothing open
        throw err;
      });
      releaseInstanceLock = () => lock.release();
      pings.instanceLock = () => lock.check();
      // Without the lock no order is written: buys answer busy (the stock goes back at once).
      pgRepo.writeGate = () => lock.refusal();
    }
    // PostgreSQL down or slow: 503 busy at once while its breaker is open, never a hang.
    const dbBreaker = new Breaker('database');
    breakers.push(dbBreaker);
    repo = guardStore<RecordStore>(pgRepo, dbBreaker, ['loadSales', 'getSale', 'insertSale', 'setPaused', 'insertOrders', 'getOrder', 'ordersOfUser', 'listOrders', 'holdings', 'totals', 'transition', 'dueForExpiry'], 'database');
  }
  pings.database = () => repo.ping();

  let streamWriter: StreamOrderWriter | null = null;
  if (mode === 'distributed') {
    const pg = pgRepo!;
    keys = new RedisKeys(config.redisPrefix);
    redis = redisConnection(config.redisUrl!);
    const blocking = redisConnection(config.redisUrl!, { commandTimeout: 5000 });
    // Named, so that an operator (or a test) can find this process's subscriber in CLIENT LIST.
    const sub = redisConnection(config.redisUrl!, { commandTimeout: undefined, connectionName: `${config.redisPrefix}:signals:${process.pid}` });
    await Promise.all([connectRedis(redis), connectRedis(blocking), connectRedis(sub)]);
    const persistence = await checkPersistence(redis, config.allowVolatileRedis);
    log.info({ persistence }, 'redis persistence');
    if ((await checkEviction(redis)) === 'unknown') {
      log.warn('Redis maxmemory-policy unknown (CONFIG unavailable): make sure it is noeviction, or accepted orders can be evicted');
    }
    const redisEngine = new RedisStockEngine(redis, keys, pg, log);
    redisEngine.onAvailability = (saleId, available) => {
      if (available <= 0) refusals.markSoldOut(saleId);
      else refusals.clearSoldOut(saleId);
    };
    // Redis down: buys get 503 busy at once while its breaker is open; it probes and closes by itself.
    const redisBreaker = new Breaker('stock service');
    breakers.push(redisBreaker);
    engine = guardStore<StockEngine>(redisEngine, redisBreaker, ['reserve', 'transition', 'getOrder', 'setPaused', 'availableNow', 'pendingWrites'], 'stock service');
    userLimit = new RateLimit(config.ratePerUser, { redis, keyPrefix: keys.rateLimitPrefix() });
    streamWriter = new StreamOrderWriter(blocking, keys, pg, () => sales.all().map((s) => s.id), {
      batch: config.writerBatch,
      claimIdleMs: config.claimIdleMs,
      testPauseBeforeCommitMs: config.testWriterPauseBeforeCommitMs,
      testPauseAfterCommitMs: config.testWriterPauseMs,
    }, log);
    writer = streamWriter;
    redisSignals = new RedisSignals(redis, sub, keys.signals(), refusals, (id) => sales.reload(id), log);
    await redisSignals.start();
    signals = redisSignals;
    pings.redis = () => redis!.ping();
    closers.push(() => streamWriter!.close(), () => redisSignals!.close(), () => metrics.close(), async () => {
      for (const c of [redis!, blocking, sub]) c.disconnect();
    });
  } else {
    const groupWriter = new OrderWriter(repo, { groupCommitMs: config.groupCommitMs, maxBatch: config.writerBatch }, log);
    writer = groupWriter;
    // Stock put back after a failed commit clears the hints set while that batch held it.
    const memoryEngine = new MemoryStockEngine(groupWriter, repo, { onRelease: (saleId, userId) => signals.released(saleId, userId) });
    // One process owns the data here: the status totals are counted from the engine's decisions.
    ownedTotals = new OwnedStatusTotals(repo);
    engine = ownedTotals.counting(memoryEngine);
    closers.push(() => groupWriter.close());
  }

  const sales = new SaleService(repo, engine, refusals);
  sales.signals = signals;
  await sales.loadAll();
  if (engine instanceof RedisStockEngine) engine.startRefresh();
  if (redis && keys) {
    // Switches set before this process started, and those set on other processes from now on.
    const stored = await redis.hgetall(keys.switches());
    switches.set({ refuseBuys: stored.refuseBuys === '1', degraded: stored.degraded === '1' });
    redisSignals!.onSwitches = (v) => switches.set(v);
    // A lost signal must not leave a hint wrong: refresh every second, resync on resubscribe.
    const hints = new HintRefresher(redis, keys, switches, sales, refusals, log);
    redisSignals!.onResubscribed = () => hints.resync();
    hints.start(1000);
    closers.unshift(async () => hints.stop());
  }
  streamWriter?.start();

  const orders = new OrderService(repo, engine, { onRelease: (s, u) => signals.released(s, u), onChange: (o) => signals.orderChanged(o) }, log);
  // Order event streams served here hear of changes made in the other processes.
  if (redisSignals) redisSignals.onOrderChanged = (o) => orders.events.emit(o.orderId, o);
  const sweeper = new ExpirySweeper(orders, config.sweepMs, log);
  // Distributed: every process's writers add orders; totals for scrapes are refreshed in the background.
  const statusTotals: SaleStatusTotals = ownedTotals ?? new RefreshedStatusTotals(repo, () => sales.all().map((s) => s.id), TOTALS_REFRESH_MS, log);
  if (statusTotals instanceof RefreshedStatusTotals) statusTotals.start();
  const metrics = new Metrics({
    available: () => sales.all().map((s) => [s.id, engine.available(s.id)]),
    // O(sales): no database work on the scrape path (issue 9, defect 11).
    totals: async () => statusTotals.snapshot(sales.all().map((s) => s.id)) as unknown as Array<[string, Record<string, number>]>,
    writerBacklog: () => writer.backlog,
    ordersWritten: () => writer.ordersWritten,
    writerQuarantined: () => writer.quarantined ?? 0,
    switches: () => ({ ...switches.values() }),
    breakers: () => breakers.map((b) => [b.name, b.state]),
  });
  // Distributed: the admin stats' request counts are summed over every process, through Redis.
  if (redis && keys) {
    const k = keys;
    metrics.share(new RedisCounts(redis, (saleId) => k.requests(saleId)), config.statsFlushMs);
  }
  log.info({ mode }, 'seckill mode');

  return {
    mode,
    config,
    secrets,
    log,
    repo,
    writer,
    engine,
    refusals,
    signals,
    sales,
    orders,
    sweeper,
    auth: new Auth(secrets.userSecret, secrets.adminKey, {
      audience: config.tokenAudience,
      metricsToken: config.metricsToken,
      allowTokensWithoutExp: config.allowTokensWithoutExp,
    }),
    ipLimit: new RateLimit(config.ratePerIp),
    userLimit,
    metrics,
    totals: statusTotals,
    switches,
    breakers,
    async setSwitches(values) {
      const v = switches.set(values);
      if (redis && keys) {
        try {
          await redis.hset(keys.switches(), { refuseBuys: v.refuseBuys ? '1' : '0', degraded: v.degraded ? '1' : '0' });
        } catch (err) {
          throw new SeckillError('busy', 'The switches could not be shared with the other processes; try again.', 1, err);
        }
        signals.switchesChanged(v);
      }
      log.warn({ switches: v }, 'operator switches changed');
      return v;
    },
    async ping() {
      const checks: Record<string, string> = {};
      for (const [name, check] of Object.entries(pings)) {
        checks[name] = await check().then(() => 'ok', () => 'down');
      }
      checks.orderWriter = writer.lastError ? 'failing' : 'ok';
      return checks;
    },
    async close() {
      sweeper.stop();
      statusTotals.close();
      await engine.close();
      for (const c of closers) await c();
      await repo.close();
      await releaseInstanceLock();
    },
  };
}
