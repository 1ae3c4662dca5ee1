import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { StockEngine } from '../engine/stock-engine.js';
import { Auth } from '../gateway/auth.js';
import type { Breaker } from '../gateway/breaker.js';
import { Switches, type SwitchValues } from '../gateway/switches.js';
import { LocalRefusals } from '../gateway/local-refusals.js';
import { RateLimit } from '../gateway/rate-limit.js';
import type { SaleSignals } from '../services/signals.js';
import { Metrics } from '../services/metrics.js';
import { ExpirySweeper } from '../services/expiry-sweeper.js';
import { InterestRecorder } from '../services/interest-recorder.js';
import { OrderService } from '../services/order-service.js';
import { OutboxRelay } from '../services/outbox-relay.js';
import { sinksFromConfig } from '../sinks/config.js';
import type { OutboxSinkStats } from '../stores/record-store.js';
import { WaitingRoomService } from '../services/waiting-room.js';
import { ChallengeService, MemorySpentChallenges } from '../services/challenge-service.js';
import { QueueStreamService } from '../services/queue-stream.js';
import { FairnessService } from '../services/fairness.js';
import type { RecordStore } from '../stores/record-store.js';
import type { SaleStatusTotals } from '../services/status-totals.js';
import { SaleService } from '../services/sale-service.js';
import { resolveSecrets, secretsEnv, type Secrets } from '../config/secrets.js';
import { Heard, type Backend, type BackendContext, type Mode, type WriterStatus } from './backend.js';
import { distributedBackend } from './distributed.js';
import { embeddedBackend } from './embedded.js';
import { postgresBackend } from './postgres.js';

export type { Mode, WriterStatus } from './backend.js';

/** Everything one seckill process is made of, wired once. */
export interface Services {
  mode: Mode;
  config: Config;
  secrets: Secrets;
  log: Logger;
  /** The database of record (tests and operators' tools read it; routes go through the services). */
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
  /** The outbox relay: publishes the order events to the configured sinks, prunes what was sent. */
  outbox: OutboxRelay;
  /** The sales' waiting rooms (issue 14): in this process, or in Redis (distributed). */
  room: WaitingRoomService;
  /** The challenges before the path (docs/challenges.md): issued, checked, spent once. */
  challenges: ChallengeService;
  /** The waiting rooms' event streams (GET …/queue/events): subscribers per sale, one timer. */
  queueStream: QueueStreamService;
  /** A sale's fairness report (issue 14): room records and units won per user. */
  fairness: FairnessService;
  /** Intended purchases: buyers refused because a sale is sold out (SECKILL_INTEREST). */
  interest: InterestRecorder;
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


/** The mode, with the URLs it needs. */
type Target = { mode: 'embedded' } | { mode: 'postgres'; databaseUrl: string } | { mode: 'distributed'; databaseUrl: string; redisUrl: string };

function targetOf(config: Config): Target {
  const { redisUrl, databaseUrl } = config;
  if (redisUrl && !databaseUrl) {
    throw new Error('REDIS_URL needs DATABASE_URL: distributed mode keeps its orders in PostgreSQL.');
  }
  if (redisUrl && databaseUrl) return { mode: 'distributed', databaseUrl, redisUrl };
  return databaseUrl ? { mode: 'postgres', databaseUrl } : { mode: 'embedded' };
}

export function modeOf(config: Config): Mode {
  return targetOf(config).mode;
}

function openBackend(target: Target, ctx: BackendContext): Promise<Backend> {
  switch (target.mode) {
    case 'embedded':
      return embeddedBackend(ctx);
    case 'postgres':
      return postgresBackend(ctx, target.databaseUrl);
    case 'distributed':
      return distributedBackend(ctx, target);
  }
}

export async function createServices(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Services> {
  const target = targetOf(config);
  const { mode } = target;
  const secrets = resolveSecrets(config.dataDir, secretsEnv(config));
  // Process-wide hints the backend keeps right, and what other processes signal (distributed).
  const refusals = new LocalRefusals();
  const switches = new Switches();
  const heard = new Heard();
  const backend = await openBackend(target, { config, log, refusals, switches, heard });
  try {
    const { store, engine, signals, breakers } = backend;
    const sales = new SaleService(store, engine, refusals, signals);
    heard.on('sale', (saleId) => {
      sales.reload(saleId).catch((err: unknown) => log.warn({ err, saleId }, 'sale reload failed'));
    });
    await sales.loadAll();
    const { writer, totals, sharedCounts } = await backend.serve({ sales });
    const orders = new OrderService(store, engine, { onRelease: (s, u) => signals.released(s, u), onChange: (o) => signals.orderChanged(o) }, log);
    // Order event streams served here hear of changes made in the other processes.
    heard.on('order', (o) => orders.events.emit(o.orderId, o));
    const sweeper = new ExpirySweeper(orders, config.sweepMs, log);
    // Distributed: the rooms are in Redis (one line per sale for every process); elsewhere in this process.
    const room = new WaitingRoomService(sales, { abandonAfterMs: config.queueAbandonMs, passTtlMs: config.passTtlMs, store: backend.roomStore });
    room.start();
    const queueStream = new QueueStreamService(room, sales, switches, { log });
    queueStream.start();
    const metrics = new Metrics({
      available: () => sales.all().map((s) => [s.id, engine.available(s.id)]),
      // O(sales): no database work on the scrape path (issue 9, defect 11).
      totals: async () => totals.snapshot(sales.all().map((s) => s.id)),
      writerBacklog: () => writer.backlog,
      ordersWritten: () => writer.ordersWritten,
      writerQuarantined: () => writer.quarantined ?? 0,
      switches: () => ({ ...switches.values() }),
      breakers: () => breakers.map((b) => [b.name, b.state]),
      outbox: (): Promise<OutboxSinkStats[]> => outbox.status(),
      // Read at scrape time, after the recorder below exists.
      interest: () => ({ ...interest.stats }),
    }, sharedCounts ? { counts: sharedCounts, flushMs: config.statsFlushMs } : undefined);
    const auth = new Auth(secrets.userSecret, secrets.keys, {
      audience: config.tokenAudience,
      metricsToken: config.metricsToken,
      allowTokensWithoutExp: config.allowTokensWithoutExp,
    });
    const challenges = new ChallengeService(
      { sales, switches, refusals, auth, spent: backend.spentChallenges ?? new MemorySpentChallenges(), log },
      { powBits: config.powBits, quizMinMs: config.quizMinMs },
    );
    const interest = new InterestRecorder({ auth, store, sales, log, enabled: config.interest, appendEvents: (events) => store.appendEvents(events) });
    interest.start();
    // Events are always written to the outbox; with no sink configured the relay only prunes, so
    // a sink configured later still gets what was kept.
    const outbox: OutboxRelay = new OutboxRelay(
      backend.outbox.records,
      sinksFromConfig(config.sinks, log),
      (sink) => backend.outbox.lease(sink),
      log,
      { retentionMs: config.outbox.retentionMs, maxAttempts: config.outbox.maxAttempts },
      metrics.relayObserver,
    );
    log.info({ mode, sinks: outbox.sinkNames() }, 'seckill mode');

    return {
      mode,
      config,
      secrets,
      log,
      repo: store,
      writer,
      engine,
      refusals,
      signals,
      sales,
      orders,
      sweeper,
      room,
      challenges,
      queueStream,
      fairness: new FairnessService({ sales, holdings: store, room }),
      auth,
      ipLimit: new RateLimit(config.ratePerIp),
      userLimit: backend.userLimit,
      metrics,
      outbox,
      interest,
      totals,
      switches,
      breakers,
      async setSwitches(values) {
        const v = switches.set(values);
        await backend.shareSwitches?.(v);
        log.warn({ switches: v }, 'operator switches changed');
        return v;
      },
      async ping() {
        const checks: Record<string, string> = {};
        for (const [name, check] of Object.entries(backend.pings)) {
          checks[name] = await check().then(() => 'ok', () => 'down');
        }
        checks.orderWriter = writer.lastError ? 'failing' : 'ok';
        return checks;
      },
      async close() {
        sweeper.stop();
        await outbox.close();
        queueStream.stop();
        room.stop();
        await interest.close();
        // Hands this process's last request counts over while the backend is still open.
        await metrics.close();
        await backend.close();
      },
    };
  } catch (err) {
    // A failed start leaves nothing open (Redis clients, pools, locks).
    await backend.close().catch(() => undefined);
    throw err;
  }
}
