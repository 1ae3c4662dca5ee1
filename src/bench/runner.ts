import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisKeys } from '../stores/redis/keys.js';
import { signUserToken } from '../gateway/auth.js';
import { bareHttp, cannon, pgBatchedInsert, redisEvalsha, type HttpFigures } from './baselines.js';
import { checkInvariants, settle } from './invariants.js';
import { PROFILES, type Profile } from './profiles.js';
import { simulateSale } from './sale-sim.js';
import { Api, ROOT, startChild, tempDataDir, type Child } from './target.js';

export interface BenchOptions {
  profile: Profile['name'];
  redis?: string;
  database?: string;
  workers: number;
  target?: string;
  adminKey?: string;
  userSecret?: string;
  connections?: number;
  duration?: number;
  units?: number;
  users?: number;
  allowVolatileRedis?: boolean;
  out: string;
}

type Cell = string | number;
interface Line {
  measure: string;
  seckill: Cell;
  baseline: Cell;
  ratio: Cell;
  target: string;
  note: string;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const ADMIN = 'bench-admin-key-0123456789abcdef';
const SECRET = 'bench-user-secret-0123456789abcdef0123456789';

/** Start seckill as the benchmark's own child process, embedded or distributed. */
async function startSeckill(o: BenchOptions): Promise<Child> {
  const port = await freePort();
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    SECKILL_ADMIN_KEY: ADMIN,
    SECKILL_USER_SECRET: SECRET,
    SECKILL_DATA_DIR: tempDataDir(),
    SECKILL_RATE_PER_IP: '0',
    SECKILL_RATE_PER_USER: '0',
    SECKILL_DEMO_SALE: 'false',
    LOG_LEVEL: 'warn',
  };
  if (o.redis) env.REDIS_URL = o.redis;
  if (o.database) env.DATABASE_URL = o.database;
  if (o.redis) env.SECKILL_REDIS_PREFIX = `bench${process.pid}`;
  if (o.allowVolatileRedis) env.SECKILL_ALLOW_VOLATILE_REDIS = '1';
  const args = ['bin/seckill.mjs', 'start', ...(o.workers > 1 ? ['--workers', String(o.workers)] : [])];
  const child = await startChild(args, env, '/readyz', port);
  if (o.workers > 1) await new Promise((r) => setTimeout(r, 1000)); // every worker listening
  return child;
}

export async function runBench(o: BenchOptions): Promise<number> {
  const p: Profile = {
    ...PROFILES[o.profile],
    ...(o.connections ? { connections: o.connections } : {}),
    ...(o.duration ? { duration: o.duration } : {}),
    ...(o.units ? { units: o.units } : {}),
    ...(o.users ? { users: o.users } : {}),
  };
  const mode = o.target ? 'target' : o.redis ? `distributed ×${o.workers}` : 'embedded';
  const lines: Line[] = [];
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const adminKey = o.target ? o.adminKey ?? process.env.SECKILL_ADMIN_KEY ?? '' : ADMIN;
  const userSecret = o.target ? o.userSecret ?? process.env.SECKILL_USER_SECRET ?? '' : SECRET;
  if (o.target && (!adminKey || !userSecret)) throw new Error('--target needs the admin key and user secret (--admin-key/--user-secret or SECKILL_ADMIN_KEY/SECKILL_USER_SECRET).');

  log(`seckill bench: profile ${p.name}, ${mode}, ${p.connections} connections, ${p.duration} s per measure`);
  log('baseline: bare node:http …');
  const bare = await bareHttp(p.connections, p.duration);
  lines.push({ measure: 'bare node:http, fixed JSON (baseline)', seckill: '', baseline: `${fmt(bare.rps)} req/s`, ratio: '', target: '', note: `p50 ${bare.p50} ms, p99 ${bare.p99} ms` });
  let pgRows = 0;
  if (o.redis) {
    log('baseline: raw Redis EVALSHA …');
    const r = await redisEvalsha(o.redis, Math.max(1, p.duration));
    lines.push({ measure: 'raw Redis EVALSHA, trivial script (baseline)', seckill: '', baseline: `${fmt(r.callsPerSec)} calls/s`, ratio: '', target: '', note: 'ioredis, 256 in flight' });
  }
  if (o.database) {
    log('baseline: raw batched INSERT into PostgreSQL …');
    pgRows = (await pgBatchedInsert(o.database)).rowsPerSec;
    lines.push({ measure: 'raw batched INSERT into PostgreSQL (baseline)', seckill: '', baseline: `${fmt(pgRows)} rows/s`, ratio: '', target: '', note: 'unnest, 1,000 rows per transaction' });
  }

  const server = o.target ? null : await startSeckill(o);
  const base = o.target ?? (server ? server.url : '');
  const api = new Api(base, Math.max(p.connections, 16));
  const ratioLine = (measure: string, f: HttpFigures, target: number, note: string, p99Target?: number) => {
    const ratio = f.rps / bare.rps;
    const meets = ratio >= target && (p99Target === undefined || f.p99 < p99Target);
    lines.push({
      measure,
      seckill: `${fmt(f.rps)} req/s`,
      baseline: `${fmt(bare.rps)} req/s`,
      ratio: fmt(ratio, 2),
      target: `≥ ${target}×${p99Target ? `, p99 < ${p99Target} ms` : ''} ${meets ? '✓' : '✗'}`,
      note: `p50 ${f.p50} ms, p99 ${f.p99} ms; ${note}`,
    });
  };
  let failures: string[] = [];
  try {
    // Refusal fast path: a sold-out sale answers from the gateway's flag.
    log('refusal fast path …');
    const sold = await api.call('POST', '/api/admin/sales', adminKey, { name: 'bench sold out', priceCents: 1, stock: 1, startsAt: new Date(Date.now() - 1000).toISOString() });
    const tok = signUserToken(userSecret, `bench-refused-${process.pid}`);
    const soldPath = (await api.call('POST', `/api/sales/${sold.body.id}/path`, tok)).body.path;
    await api.call('POST', `/api/sales/${sold.body.id}/buy/${soldPath}`, tok, { quantity: 1 });
    await new Promise((r) => setTimeout(r, 600)); // every process has heard it sold out
    const refusal = await cannon(`${base}/api/sales/${sold.body.id}/buy/${soldPath}`, p.connections, p.duration, {
      method: 'POST', body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    });
    ratioLine('refusal fast path (sold out → 409)', refusal, 0.8, `${fmt(refusal.non2xx)} refusals`);

    // Buy path to a 202: buyers with a large limit, so that every request is a real reservation.
    log('buy path to a 202 …');
    const big = await api.call('POST', '/api/admin/sales', adminKey, { name: 'bench buy path', priceCents: 1, stock: 10_000_000, perUserLimit: 1000, startsAt: new Date(Date.now() - 1000).toISOString() });
    const buyers = await Promise.all(Array.from({ length: 2000 }, async (_, i) => {
      const token = signUserToken(userSecret, `bench-buyer-${process.pid}-${i}`);
      return { token, path: (await api.call('POST', `/api/sales/${big.body.id}/path`, token)).body.path as string };
    }));
    let nextBuyer = 0;
    const t0 = performance.now();
    const buy = await cannon(base, p.connections, p.duration, {
      requests: [{
        method: 'POST',
        setupRequest: (req) => {
          const b = buyers[nextBuyer++ % buyers.length];
          return { ...req, path: `/api/sales/${big.body.id}/buy/${b.path}`, body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${b.token}` } };
        },
      }],
    });
    const buyingMs = performance.now() - t0;
    const drainMs = await settle(api, adminKey, big.body.id);
    const bigStats = (await api.call('GET', `/api/admin/sales/${big.body.id}`, adminKey)).body.stats;
    const target202 = o.redis ? 0.5 : 0.6;
    ratioLine('buy path → 202 reserved', buy, target202, `${fmt(bigStats.reserved)} reserved, ${fmt(buy.non2xx)} non-2xx, ${buy.errors} errors`, 25);
    const written = bigStats.reserved / ((buyingMs + drainMs) / 1000);
    lines.push({
      measure: 'orders written while buying (bounded by the buy rate)',
      seckill: `${fmt(written)} orders/s`,
      baseline: '',
      ratio: '',
      target: '',
      note: `writer drained ${fmt(drainMs)} ms after the load stopped${o.database ? '' : ' (embedded: written before each 202)'}`,
    });
    if (o.redis && o.database && !o.target) {
      // The writers' own capacity: a backlog put straight into a sale's stream, timed until drained.
      log('order writer capacity …');
      const cap = await writerCapacity(api, adminKey, o.redis, `bench${process.pid}`, 50_000);
      lines.push({
        measure: 'order writers drain a 50,000-order stream backlog into PostgreSQL',
        seckill: `${fmt(cap)} orders/s`,
        baseline: `${fmt(pgRows)} rows/s`,
        ratio: fmt(cap / pgRows, 2),
        target: `≥ 20,000/s and ≥ 0.5× ${cap >= 20_000 && cap >= 0.5 * pgRows ? '✓' : '✗'}`,
        note: `${o.workers} process(es), batches of up to 1,000 in one transaction each`,
      });
    }

    // The sale itself.
    log(`flash sale: ${fmt(p.units)} units, ${fmt(p.users)} users …`);
    const run = await simulateSale(api, adminKey, userSecret, p);
    const inv = await checkInvariants(api, adminKey, run.saleId, run.stock, run.perUserLimit, run.accepted);
    failures = inv.failures;
    const units = run.accepted.reduce((a, x) => a + x.quantity, 0);
    const lat = run.latency.summary();
    const soldOut = run.soldOutMs;
    lines.push({
      measure: `flash sale: ${fmt(p.units)} units, ${fmt(p.users)} users${p.soakSeconds ? `, ${p.soakSeconds} s soak` : ''}`,
      seckill: soldOut !== null ? `sold out in ${fmt(soldOut)} ms` : `${fmt(units)} units reserved`,
      baseline: '',
      ratio: '',
      target: p.name === 'sale' ? `sold out < 1 s ${soldOut !== null && soldOut < 1000 ? '✓' : '✗'}` : '',
      note: `${fmt(run.requests)} requests in ${fmt(run.durationMs / 1000, 2)} s (${fmt(run.requests / (run.durationMs / 1000))} req/s); ` +
        `${fmt(units / ((soldOut ?? run.durationMs) / 1000))} reservations/s; latency p50 ${lat.p50} / p90 ${lat.p90} / p99 ${lat.p99} / max ${lat.max} ms; ` +
        `${run.paid} paid; writer drained in ${fmt(inv.drainMs)} ms; invariants ${inv.ok ? 'hold' : 'FAIL'}`,
    });
    const summary = { outcomes: run.outcomes, invariants: inv, latency: lat };
    write(o.out, `${o.redis ? 'distributed' : o.target ? 'target' : 'embedded'}-${p.name}`, p, mode, lines, summary);
  } finally {
    await api.close();
    await server?.stop();
  }
  if (failures.length > 0) {
    log(`INVARIANTS FAILED:\n  ${failures.join('\n  ')}`);
    return 1;
  }
  log('invariants hold');
  return 0;
}

/**
 * Order-writer throughput on its own: append `n` order records to a fresh sale's stream in
 * Redis (as the reserve script would) and time how long the running writers need to put them
 * all into PostgreSQL.
 */
async function writerCapacity(api: Api, adminKey: string, redisUrl: string, prefix: string, n: number): Promise<number> {
  const sale = await api.call('POST', '/api/admin/sales', adminKey, { name: 'bench writer', priceCents: 1, stock: 10_000_000, startsAt: new Date(Date.now() - 1000).toISOString() });
  const saleId: string = sale.body.id;
  const keys = new RedisKeys(prefix);
  const redis = new Redis(redisUrl);
  const now = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 5000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(n, i + 5000); j++) {
      const o = { orderId: randomUUID(), saleId, userId: `cap-${j}`, quantity: 1, priceCents: 1, status: 'reserved', createdAt: now, expiresAt: now + 600_000 };
      p.xadd(keys.stream(saleId), '*', 'k', 'new', 'o', JSON.stringify(o));
    }
    await p.exec();
  }
  await settle(api, adminKey, saleId);
  redis.disconnect();
  return n / ((performance.now() - t0) / 1000);
}

function write(dir: string, name: string, p: Profile, mode: string, lines: Line[], summary: unknown): void {
  fs.mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString();
  const head = `seckill bench --profile ${p.name} (${mode}), ${date}, Node ${process.version}, ${os.cpus().length} cores, load generator on the same machine`;
  const cols: (keyof Line)[] = ['measure', 'seckill', 'baseline', 'ratio', 'target', 'note'];
  const md = [
    `| ${cols.join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...lines.map((l) => `| ${cols.map((c) => String(l[c])).join(' | ')} |`),
  ].join('\n');
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ date, profile: p, mode, lines, summary }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, `${name}.md`), `${head}\n\n${md}\n`);
  process.stdout.write(`\n${head}\n\n${md}\n\nresults: ${path.relative(ROOT, path.join(dir, name))}.{json,md}\n`);
}
