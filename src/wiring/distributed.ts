import type { StockEngine } from '../engine/stock-engine.js';
import { Breaker } from '../gateway/breaker.js';
import { RateLimit } from '../gateway/rate-limit.js';
import { guardStore } from '../gateway/store-guard.js';
import { RedisCounts } from '../stores/redis/request-counts.js';
import { RedisRoomStore } from '../stores/redis/room-store.js';
import { RedisSpentChallenges } from '../stores/redis/challenge-spent.js';
import { redisLimiterStore } from '../stores/redis/rate-limit-store.js';
import { RedisSignals } from '../stores/redis/signals.js';
import { RedisSwitchStore } from '../stores/redis/switch-store.js';
import { RefreshedStatusTotals } from '../services/status-totals.js';
import { PgRecordStore } from '../stores/postgres/pg-record-store.js';
import type { RecordStore } from '../stores/record-store.js';
import type { RoomStore } from '../stores/room-store.js';
import { checkEviction, checkPersistence, connectRedis, redisConnection } from '../stores/redis/connection.js';
import { HintRefresher } from '../stores/redis/hint-refresh.js';
import { RedisKeys } from '../stores/redis/keys.js';
import { RedisStockEngine } from '../stores/redis/redis-engine.js';
import { StreamOrderWriter } from '../stores/redis/stream-writer.js';
import { Opened, RECORD_STORE_LOCAL, STOCK_ENGINE_LOCAL, type Backend, type BackendContext, type Served } from './backend.js';

/** How often the status totals for /metrics are read again (while scraped). */
const TOTALS_REFRESH_MS = 5000;
/** How often the hints kept from signals are checked against Redis. */
const HINT_REFRESH_MS = 1000;

/**
 * Distributed mode: any number of processes share the stock in Redis (one Lua script per
 * decision) and the orders in PostgreSQL (copied there from Redis streams by the order writers).
 */
export async function distributedBackend(ctx: BackendContext, urls: { databaseUrl: string; redisUrl: string }): Promise<Backend> {
  const { config, log, refusals, switches, heard } = ctx;
  const { redisUrl } = urls;
  const opened = new Opened();
  try {
    const pg = opened.add(new PgRecordStore(urls.databaseUrl, config.pgPool, { log }), (s) => s.close());
    await pg.init();
    // PostgreSQL down or slow: 503 busy at once while its breaker is open, never a hang.
    const dbBreaker = new Breaker('database');
    const store = guardStore<RecordStore>(pg, dbBreaker, 'database', RECORD_STORE_LOCAL);

    const keys = new RedisKeys(config.redisPrefix);
    const redis = opened.add(redisConnection(redisUrl), (c) => c.disconnect());
    const blocking = opened.add(redisConnection(redisUrl, { commandTimeout: 5000 }), (c) => c.disconnect());
    // Named, so that an operator (or a test) can find this process's subscriber in CLIENT LIST.
    const sub = opened.add(
      redisConnection(redisUrl, { commandTimeout: undefined, connectionName: `${config.redisPrefix}:signals:${process.pid}` }),
      (c) => c.disconnect(),
    );
    await Promise.all([connectRedis(redis), connectRedis(blocking), connectRedis(sub)]);
    const persistence = await checkPersistence(redis, config.allowVolatileRedis);
    log.info({ persistence }, 'redis persistence');
    if ((await checkEviction(redis)) === 'unknown') {
      log.warn('Redis maxmemory-policy unknown (CONFIG unavailable): make sure it is noeviction, or accepted orders can be evicted');
    }

    const redisEngine = opened.add(
      new RedisStockEngine(redis, keys, pg, log, {
        // The stock Redis reports is the shared sold-out hint.
        onAvailability: (saleId, available) => {
          if (available <= 0) refusals.markSoldOut(saleId);
          else refusals.clearSoldOut(saleId);
        },
      }),
      (e) => e.close(),
    );
    // Redis down: buys get 503 busy at once while its breaker is open; it probes and closes by itself.
    const redisBreaker = new Breaker('stock service');
    const engine = guardStore<StockEngine>(redisEngine, redisBreaker, 'stock service', STOCK_ENGINE_LOCAL);
    const switchStore = new RedisSwitchStore(redis, keys);
    const signals = opened.add(new RedisSignals(redis, sub, keys.signals(), refusals, heard, log), (s) => s.close());
    await signals.start();

    /** The second step, once the sales are loaded. */
    const serve = async ({ sales }: Served) => {
      redisEngine.startRefresh();
      // Switches set before this process started, and those set on other processes from now on.
      switches.set(await switchStore.read());
      heard.on('switches', (v) => switches.set(v));
      // A lost signal must not leave a hint wrong: refresh every second, resync on resubscribe.
      const hints = opened.add(new HintRefresher(redis, keys, switchStore, switches, sales, refusals, log), (h) => h.stop());
      heard.on('resubscribed', () => {
        // The periodic refresh (and the next reconnect) still corrects the hints.
        hints.resync().catch((err: unknown) => log.warn({ err }, 'signals resync failed'));
      });
      hints.start(HINT_REFRESH_MS);
      const saleIds = () => sales.all().map((s) => s.id);
      const writer = opened.add(
        new StreamOrderWriter(
          blocking,
          keys,
          pg,
          saleIds,
          {
            batch: config.writerBatch,
            claimIdleMs: config.claimIdleMs,
            testPauseBeforeCommitMs: config.testWriterPauseBeforeCommitMs,
            testPauseAfterCommitMs: config.testWriterPauseMs,
          },
          log,
        ),
        (w) => w.close(),
      );
      writer.start();
      // Every process's writers add orders: totals for scrapes are refreshed in the background.
      const totals = opened.add(new RefreshedStatusTotals(store, saleIds, TOTALS_REFRESH_MS, log), (t) => t.close());
      totals.start();
      // The admin stats' request counts are summed over every process, through Redis.
      return { writer, totals, sharedCounts: new RedisCounts(redis, (saleId) => keys.requests(saleId)) };
    };

    return {
      store,
      engine,
      signals,
      userLimit: new RateLimit(config.ratePerUser, redisLimiterStore(redis, keys)),
      spentChallenges: new RedisSpentChallenges(redis, keys),
      // Redis down: joins, polls and pass checks get 503 busy at once, as buys do.
      roomStore: (o) => guardStore<RoomStore>(new RedisRoomStore(redis, keys, o), redisBreaker, 'waiting room', {}),
      breakers: [dbBreaker, redisBreaker],
      pings: { database: () => pg.ping(), redis: () => redis.ping() },
      // One relay per sink across the processes: an advisory lock per sink.
      outbox: { records: pg, lease: (sink) => pg.relayLease(sink) },
      async shareSwitches(values) {
        await switchStore.write(values);
        signals.switchesChanged(values);
      },
      serve,
      close: () => opened.close(),
    };
  } catch (err) {
    return opened.abandon(err);
  }
}
