import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { MemoryStockEngine } from './engine/memory-engine.js';
import type { StockEngine } from './engine/stock-engine.js';
import { Auth } from './gateway/auth.js';
import { LocalRefusals } from './gateway/local-refusals.js';
import { RateLimit } from './gateway/rate-limit.js';
import { Metrics } from './http/metrics.js';
import { ExpirySweeper } from './orders/expiry-sweeper.js';
import { OrderService } from './orders/order-service.js';
import { OrderWriter } from './orders/order-writer.js';
import type { OrderRepository } from './orders/repository.js';
import { SqliteOrderRepository } from './orders/sqlite-repository.js';
import { SaleService } from './sales/sale-service.js';
import { resolveSecrets, type Secrets } from './secrets.js';

/** Everything one seckill process is made of, wired once. */
export interface Services {
  config: Config;
  secrets: Secrets;
  log: Logger;
  repo: OrderRepository;
  writer: OrderWriter;
  engine: StockEngine;
  refusals: LocalRefusals;
  sales: SaleService;
  orders: OrderService;
  sweeper: ExpirySweeper;
  auth: Auth;
  ipLimit: RateLimit;
  userLimit: RateLimit;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function createServices(config: Config, log: Logger = pino({ level: config.logLevel })): Promise<Services> {
  if (config.redisUrl || config.databaseUrl) {
    throw new Error('Distributed mode (REDIS_URL / DATABASE_URL) is not available in this version; unset them to run embedded.');
  }
  const secrets = resolveSecrets(config.dataDir, { adminKey: config.adminKey, userSecret: config.userSecret });
  const repo = new SqliteOrderRepository(config.dataDir, config.sqliteSync);
  const writer = new OrderWriter(repo, { groupCommitMs: config.groupCommitMs, maxBatch: config.writerBatch }, log);
  const engine = new MemoryStockEngine(writer);
  const refusals = new LocalRefusals();
  const sales = new SaleService(repo, engine, refusals);
  await sales.loadAll();
  const orders = new OrderService(repo, engine, { onRelease: (s, u) => refusals.released(s, u) }, log);
  const sweeper = new ExpirySweeper(orders, config.sweepMs, log);
  const metrics = new Metrics({
    available: () => sales.all().map((s) => [s.id, engine.available(s.id)]),
    totals: async () => Promise.all(sales.all().map(async (s) => [s.id, { ...(await repo.totals(s.id)) }] as [string, Record<string, number>])),
    writerBacklog: () => writer.backlog,
  });
  return {
    config,
    secrets,
    log,
    repo,
    writer,
    engine,
    refusals,
    sales,
    orders,
    sweeper,
    auth: new Auth(secrets.userSecret, secrets.adminKey),
    ipLimit: new RateLimit(config.ratePerIp),
    userLimit: new RateLimit(config.ratePerUser),
    metrics,
    async close() {
      sweeper.stop();
      await writer.close();
      await repo.close();
    },
  };
}
