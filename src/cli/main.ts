import cluster from 'node:cluster';
import { Command, InvalidArgumentError } from 'commander';
import { parseCents, parsePrice, priceCentsOf, protectSaleIds } from './args.js';
import { adminCall as callService, type AdminCallOptions } from './target.js';
import type { Config } from '../config/config.js';
import type { TokenOptions } from './token.js';
// The server, the engines and the stores are imported by the commands that use them, when they
// run: `--help`, `token` and `sale` load none of them.
import type { ReconcileReport } from '../ops/reconcile.js';

/** "30s", "5m", "2h", "1500ms" or plain seconds → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s, 5m, 2h');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** An admin API call to the running service (src/cli/target.ts: which service, which key; never a new data dir). */
async function adminCall(opts: AdminCallOptions, method: string, path: string, body?: unknown): Promise<void> {
  return callService(await loadConfig(), opts, method, path, body);
}

/** The configuration, imported when a command needs it: its schema library is most of the CLI's start-up (not `--help`'s). */
async function loadConfig() {
  const config = await import('../config/config.js');
  return config.loadConfig();
}

const program = new Command('seckill').description('Flash-sale service: sells exactly the stock under a storm of buyers');

program
  .command('start', { isDefault: true })
  .description('serve the API (configuration from the environment; see README)')
  .option('--workers <n>', 'processes sharing the port (node:cluster); distributed mode only', positiveInt, 1)
  .action(async (opts: { workers: number }) => {
    const config = await loadConfig();
    if (opts.workers > 1 && cluster.isPrimary) {
      const { modeOf } = await import('../wiring/services.js');
      if (modeOf(config) !== 'distributed') {
        throw new Error('--workers needs distributed mode (REDIS_URL and DATABASE_URL): the embedded engine lives in one process.');
      }
      await runPrimary(config, opts.workers);
      return;
    }
    const { startServer } = await import('../server.js');
    const server = await startServer(config);
    const stop = (signal: string) => {
      server.services.log.info({ signal }, 'shutting down; writing what is waiting');
      server.close().then(
        () => process.exit(0),
        (err: unknown) => {
          server.services.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

/** The cluster's primary: forks the workers, replaces one that dies, passes a stop signal on. */
async function runPrimary(config: Config, workers: number): Promise<void> {
  const [{ demoBanner, primaryGuidance }, { resolveSecrets, secretsEnv }] = await Promise.all([import('../server.js'), import('../config/secrets.js')]);
  // Secrets are settled here, once, so that the workers do not race to generate them.
  const secrets = resolveSecrets(config.dataDir, secretsEnv(config));
  // The first-start guidance, once for the cluster (the workers print none).
  const guidance = primaryGuidance(config, 'distributed', secrets);
  if (guidance !== null) process.stdout.write(guidance);
  // Each worker logs it too; the console says it once, at every start.
  if (secrets.demo) process.stdout.write(demoBanner(secrets.demoReason));
  // Before the forks: a worker's scrape is answered with every worker's metrics (src/services/cluster-metrics.ts).
  const { serveClusterMetrics } = await import('../services/cluster-metrics.js');
  serveClusterMetrics((line) => process.stderr.write(line + '\n'));
  let stopping = false;
  let exitCode = 0;
  // Until a worker has listened, a worker's death is a start-up error (bad configuration, a store
  // it cannot reach): every replacement would fail the same way, so the primary exits with it.
  // Later, a dead worker is replaced; one that dies again before listening waits longer each time.
  let serving = false;
  let failedStarts = 0;
  const listened = new Set<number>();
  cluster.on('listening', (worker) => {
    listened.add(worker.id);
    serving = true;
    failedStarts = 0;
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    const how = signal ?? `exit code ${code}`;
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    if (!serving) {
      process.stderr.write(`seckill: worker ${worker.process.pid} could not start (${how}; its error is above): stopping\n`);
      exitCode = 1;
      stop();
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    const delay = listened.has(worker.id) ? 0 : Math.min(30_000, 1000 * 2 ** failedStarts++);
    process.stderr.write(`seckill: worker ${worker.process.pid} exited (${how}); starting another${delay ? ` in ${delay / 1000} s` : ''}\n`);
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, delay).unref();
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

program
  .command('token <userId>')
  .description('print a signed user token (HS256, SECKILL_USER_SECRET or the data dir secret)')
  .option('--ttl <duration>', 'lifetime', parseDuration, 3600_000)
  .option('--data-dir <dir>', 'the running service\'s data dir (default: SECKILL_DATA_DIR, ./data, the checkout\'s data)')
  .option('--aud <audience>', 'the `aud` claim (default: SECKILL_TOKEN_AUDIENCE when set); see docs/tokens.md')
  .action(async (userId: string, opts: TokenOptions) => {
    const { mintToken } = await import('./token.js');
    process.stdout.write(mintToken(await loadConfig(), userId, opts) + '\n');
  });

const sale = program.command('sale').description('create and inspect sales on a running seckill (admin key from env or data dir)');

sale
  .command('create')
  .requiredOption('--name <name>', 'what is sold')
  .requiredOption('--stock <n>', 'units for sale', positiveInt)
  .option('--price <amount>', 'price in currency units, at most two decimals (49.99), as in the dashboard', parsePrice)
  .option('--price-cents <n>', 'or the price in the smallest currency unit (4999)', parseCents)
  .option('--starts-in <duration>', 'opens after this long', parseDuration, 30_000)
  .option('--duration <duration>', 'stays open this long', parseDuration, 3600_000)
  .option('--limit <n>', 'units per user', positiveInt, 1)
  .option('--payment-window <duration>', 'time to pay a reservation', parseDuration, 600_000)
  .option('--description <text>', 'shown on the sale page', '')
  .option('--restock-on-refund', 'a refund returns the units to stock (default: they stay sold)')
  .option('--url <url>', 'seckill base URL (default from HOST/PORT)')
  .option('--data-dir <dir>', 'the running service\'s data dir, for its admin key')
  .action(async (o: { name: string; stock: number; price?: number; priceCents?: number; dataDir?: string; startsIn: number; duration: number; limit: number; paymentWindow: number; description: string; restockOnRefund?: boolean; url?: string }) => {
    const startsAt = Date.now() + o.startsIn;
    await adminCall(o, 'POST', '/api/admin/sales', {
      name: o.name,
      description: o.description,
      priceCents: priceCentsOf(o),
      stock: o.stock,
      startsAt: new Date(startsAt).toISOString(),
      endsAt: new Date(startsAt + o.duration).toISOString(),
      perUserLimit: o.limit,
      paymentWindowSeconds: Math.max(1, Math.round(o.paymentWindow / 1000)),
      restockOnRefund: o.restockOnRefund === true,
    });
  });

sale
  .command('show <saleId>')
  .option('--url <url>', 'seckill base URL (default from HOST/PORT)')
  .option('--data-dir <dir>', 'the running service\'s data dir, for its admin key')
  .action(async (saleId: string, o: AdminCallOptions) => {
    await adminCall(o, 'GET', `/api/admin/sales/${encodeURIComponent(saleId)}`);
  });

const events = program.command('events').description('the outbox relay on a running seckill: backlog, dead letters, redrive (admin key from env or data dir)');

events
  .command('status')
  .description('per sink: backlog, sent, dead letters, oldest pending age; with --dead <sink>, that sink\'s dead letters')
  .option('--dead <sink>', 'list this sink\'s dead letters instead')
  .option('--url <url>', 'seckill base URL (default from HOST/PORT)')
  .option('--data-dir <dir>', 'the running service\'s data dir, for its admin key')
  .action(async (o: AdminCallOptions & { dead?: string }) => {
    await adminCall(o, 'GET', o.dead === undefined ? '/api/admin/events' : `/api/admin/events/dead?sink=${encodeURIComponent(o.dead)}`);
  });

events
  .command('redrive [ids...]')
  .description('publish dead letters again (all, or those event ids), of one sink or of every sink')
  .option('--sink <sink>', 'only this sink (amqp, nats, webhook:<n>)')
  .option('--url <url>', 'seckill base URL (default from HOST/PORT)')
  .option('--data-dir <dir>', 'the running service\'s data dir, for its admin key')
  .action(async (ids: string[], o: AdminCallOptions & { sink?: string }) => {
    await adminCall(o, 'POST', '/api/admin/events/redrive', { ...(o.sink === undefined ? {} : { sink: o.sink }), ...(ids.length > 0 ? { ids } : {}) });
  });

program
  .command('bench')
  .description('a flash-sale load test with its own baselines; checks the invariants at the end (exit 1 if one fails)')
  .option('--profile <name>', 'smoke (seconds, CI) | sale (10,000 units, 100,000 users) | soak (expiries and re-sales) | fairness (bots against the waiting room and challenges, docs/fairness.md)', 'smoke')
  .option('--redis <url>', 'distributed mode: Redis for the stock engine')
  .option('--database <url>', 'PostgreSQL for the orders')
  .option('--workers <n>', 'seckill processes (node:cluster), distributed mode', positiveInt, 1)
  .option('--target <url>', 'a running seckill instead of one the bench starts (needs SECKILL_ADMIN_KEY and SECKILL_USER_SECRET)')
  .option('--connections <n>', 'concurrent connections', positiveInt)
  .option('--duration <seconds>', 'seconds per fixed-request measure', positiveInt)
  .option('--units <n>', 'units in the simulated sale', positiveInt)
  .option('--users <n>', 'distinct users in the simulated sale', positiveInt)
  .option('--admit-per-second <n>', 'fairness: the waiting room\'s rate (default: units / 2)', positiveInt)
  .option('--allow-volatile-redis', 'let seckill run on a Redis without an append-only file (benchmarks only)')
  .option('--out <dir>', 'where results go', 'bench/results')
  .action(async (o: { profile: string; redis?: string; database?: string; workers: number; target?: string; connections?: number; duration?: number; units?: number; users?: number; admitPerSecond?: number; allowVolatileRedis?: boolean; out: string }) => {
    if (o.profile === 'fairness') {
      if (o.target) throw new InvalidArgumentError('--profile fairness starts its own seckill: no --target');
      if (o.redis && !o.database) throw new InvalidArgumentError('--redis needs --database');
      const { runFairnessBench } = await import('../bench/fairness.js');
      process.exitCode = await runFairnessBench({
        users: o.users, units: o.units, admitPerSecond: o.admitPerSecond, out: o.out,
        redis: o.redis, database: o.database, workers: o.workers, allowVolatileRedis: o.allowVolatileRedis,
      });
      return;
    }
    if (!['smoke', 'sale', 'soak'].includes(o.profile)) throw new InvalidArgumentError('profile is smoke, sale, soak or fairness');
    if (o.redis && !o.database) throw new InvalidArgumentError('--redis needs --database');
    const { runBench } = await import('../bench/runner.js');
    process.exitCode = await runBench({ ...o, profile: o.profile as 'smoke' | 'sale' | 'soak' });
  });

program
  .command('reconcile [saleId]')
  .description('distributed mode: compare Redis counters with PostgreSQL for a sale (or --all); exit 2 on a difference')
  .option('--all', 'every sale in the database, one process for all; prints an array of reports')
  .option('--repair', 'write what PostgreSQL lacks, then rebuild the Redis counters from it')
  .option('--drain <duration>', 'wait this long for the order writers to empty the stream', parseDuration, 10_000)
  .action(async (saleId: string | undefined, o: { all?: boolean; repair?: boolean; drain: number }) => {
    if (!saleId === !o.all) throw new InvalidArgumentError('give either a sale id or --all');
    const config = await loadConfig();
    const { redisUrl, databaseUrl } = config;
    if (!redisUrl || !databaseUrl) throw new Error('reconcile needs REDIS_URL and DATABASE_URL.');
    const [{ connectRedis, redisConnection }, { RedisKeys }, { PgRecordStore }, { reconcile }] = await Promise.all([
      import('../stores/redis/connection.js'),
      import('../stores/redis/keys.js'),
      import('../stores/postgres/pg-record-store.js'),
      import('../ops/reconcile.js'),
    ]);
    const redis = redisConnection(redisUrl, { commandTimeout: 10_000 });
    const repo = new PgRecordStore(databaseUrl, 2);
    try {
      await connectRedis(redis);
      const keys = new RedisKeys(config.redisPrefix);
      const ids = saleId ? [saleId] : (await repo.loadSales()).map((s) => s.id);
      const reports: ReconcileReport[] = [];
      for (const id of ids) reports.push(await reconcile(redis, keys, repo, id, { repair: !!o.repair, drainMs: o.drain }));
      process.stdout.write(JSON.stringify(o.all ? reports : reports[0], null, 2) + '\n');
      if (reports.some((r) => r.differences.length > 0 && !r.repaired)) process.exitCode = 2;
    } finally {
      redis.disconnect();
      await repo.close();
    }
  });

program.parseAsync(protectSaleIds(program, process.argv)).catch((err: unknown) => {
  process.stderr.write(`seckill: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
