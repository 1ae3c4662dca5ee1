import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisKeys } from '../stores/redis/keys.js';
import { signUserToken } from '../gateway/auth.js';
import { cpuDuring } from './cpu.js';
import { answeredOf, cpuCell, fmt, MEASURED_SHARE, unmeasured } from './measured.js';
import { bareHttp, cannon, pgBatchedInsert, redisEvalsha, type HttpFigures } from './baselines.js';
import { checkInvariants, settle } from './invariants.js';
import { PROFILES, type Profile } from './profiles.js';
import { simulateSale } from './sale-sim.js';
import { Api, BENCH_ADMIN_KEY, BENCH_USER_SECRET, ROOT, startBenchServer } from './target.js';

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
  /** Server CPU µs per request answered, as shown (a number, "not measured (…)" or empty). */
  cpu: string;
  target: string;
  note: string;
  /** False when the row's answers were not the ones it measures: no figure, no ratio. */
  measured: boolean;
  cpuUsPerRequest: number | null;
}

const COLUMNS: { key: keyof Line; title: string }[] = [
  { key: 'measure', title: 'measure' },
  { key: 'seckill', title: 'seckill' },
  { key: 'baseline', title: 'baseline' },
  { key: 'ratio', title: 'ratio' },
  { key: 'cpu', title: 'CPU µs/req' },
  { key: 'target', title: 'target' },
  { key: 'note', title: 'note' },
];

const ADMIN = BENCH_ADMIN_KEY;
const SECRET = BENCH_USER_SECRET;

export async function runBench(o: BenchOptions): Promise<number> {
  const p: Profile = {
    ...PROFILES[o.profile],
    ...(o.connections ? { connections: o.connections } : {}),
    ...(o.duration ? { duration: o.duration } : {}),
    ...(o.units ? { units: o.units } : {}),
    ...(o.users ? { users: o.users } : {}),
  };
  const remote = o.target !== undefined;
  const mode = o.target ? 'target' : o.redis ? `distributed ×${o.workers}` : 'embedded';
  const lines: Line[] = [];
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const adminKey = o.target ? o.adminKey ?? process.env.SECKILL_ADMIN_KEY ?? '' : ADMIN;
  const userSecret = o.target ? o.userSecret ?? process.env.SECKILL_USER_SECRET ?? '' : SECRET;
  if (o.target && (!adminKey || !userSecret)) throw new Error('--target needs the admin key and user secret (--admin-key/--user-secret or SECKILL_ADMIN_KEY/SECKILL_USER_SECRET).');
  /** Rows that measured nothing, with why: any of them makes the run exit non-zero. */
  const notMeasured: string[] = [];
  const unmeasuredLine = (measure: string, why: string) => {
    notMeasured.push(`${measure}: ${why}`);
    lines.push({ measure, seckill: '', baseline: '', ratio: '', cpu: '', target: '', note: why, measured: false, cpuUsPerRequest: null });
  };

  log(`seckill bench: profile ${p.name}, ${mode}, ${p.connections} connections, ${p.duration} s per measure`);
  if (remote) log('CPU: not measured (remote target): the bench reads CPU time only of processes it started');
  log('baseline: bare node:http …');
  const bare = await bareHttp(p.connections, p.duration);
  const bareWhy = unmeasured(bare, 200);
  const bareCpu = cpuCell(bare.cpuUs, answeredOf(bare), false);
  if (bareWhy) unmeasuredLine('bare node:http, fixed JSON (baseline)', bareWhy);
  else lines.push({ measure: 'bare node:http, fixed JSON (baseline)', seckill: '', baseline: `${fmt(bare.rps)} req/s`, ratio: '', ...bareCpu, target: '', note: `p50 ${bare.p50} ms, p99 ${bare.p99} ms`, measured: true });
  let pgRows = 0;
  let pgDurableRows = 0;
  if (o.redis) {
    log('baseline: raw Redis EVALSHA …');
    const r = await redisEvalsha(o.redis, Math.max(1, p.duration));
    lines.push({ measure: 'raw Redis EVALSHA, trivial script (baseline)', seckill: '', baseline: `${fmt(r.callsPerSec)} calls/s`, ratio: '', cpu: '', target: '', note: 'ioredis, 256 in flight', measured: true, cpuUsPerRequest: null });
  }
  if (o.database) {
    log('baseline: raw batched INSERT into PostgreSQL …');
    pgRows = (await pgBatchedInsert(o.database)).rowsPerSec;
    lines.push({ measure: 'raw batched INSERT into PostgreSQL (baseline)', seckill: '', baseline: `${fmt(pgRows)} rows/s`, ratio: '', cpu: '', target: '', note: 'unnest, 1,000 rows per transaction, TEMP table (no WAL)', measured: true, cpuUsPerRequest: null });
    pgDurableRows = (await pgBatchedInsert(o.database, 50_000, 1000, true)).rowsPerSec;
    lines.push({ measure: 'raw batched INSERT into a logged table with the orders indexes (baseline)', seckill: '', baseline: `${fmt(pgDurableRows)} rows/s`, ratio: '', cpu: '', target: '', note: 'as above, into an ordinary table with the 4 indexes of orders (WAL, fsync at commit), as the writers write', measured: true, cpuUsPerRequest: null });
  }

  const server = o.target ? null : await startBenchServer(o);
  const pid = server?.child.pid;
  const base = o.target ?? (server ? server.url : '');
  const api = new Api(base, Math.max(p.connections, 16));
  /** Sales this run created: ended and archived when it ends, so none stays on the public list. */
  const created: string[] = [];
  const createSale = async (body: Record<string, unknown>): Promise<string> => {
    const r = await api.patient('POST', '/api/admin/sales', adminKey, body);
    if (r.status !== 201) throw new Error(`create sale: ${r.status} ${JSON.stringify(r.body)}`);
    created.push(r.body.id);
    return r.body.id as string;
  };
  /** The error code of one more request like the measure's, to name a wrong answer. */
  const codeOf = async (f: HttpFigures, expected: number, probe: () => Promise<{ status: number; body: { error?: { code?: unknown } } | null }>) => {
    if (unmeasured(f, expected) === null) return undefined;
    try {
      const r = await probe();
      const code = r.body?.error?.code;
      return typeof code === 'string' ? { status: r.status, code } : undefined;
    } catch {
      return undefined; // not JSON, or no answer: the status alone says it
    }
  };
  /** A fixed-request measure's row: its figures only when its answers were the expected ones. */
  const httpLine = (measure: string, f: HttpFigures, expected: number, probed: { status: number; code: string } | undefined,
    target: { ratio: number; p99?: number; cpu: number | null }, note: string): boolean => {
    const why = unmeasured(f, expected, (s) => (probed?.status === s ? probed.code : undefined));
    if (why) {
      unmeasuredLine(measure, why);
      return false;
    }
    const c = cpuCell(f.cpuUs, answeredOf(f), remote);
    const ratio = bareWhy ? null : f.rps / bare.rps;
    const cpuMeets = target.cpu === null || c.cpuUsPerRequest === null || c.cpuUsPerRequest <= target.cpu;
    const meets = ratio !== null && ratio >= target.ratio && (target.p99 === undefined || f.p99 < target.p99) && cpuMeets;
    const wanted = `≥ ${target.ratio}×${target.p99 ? `, p99 < ${target.p99} ms` : ''}${target.cpu !== null ? `, ≤ ${fmt(target.cpu)} µs` : ''}`;
    lines.push({
      measure,
      seckill: `${fmt(f.rps)} req/s`,
      baseline: bareWhy ? '' : `${fmt(bare.rps)} req/s`,
      ratio: ratio === null ? '' : fmt(ratio, 2),
      ...c,
      target: ratio === null ? '' : `${wanted} ${meets ? '✓' : '✗'}`,
      note: `p50 ${f.p50} ms, p99 ${f.p99} ms; ${note}`,
      measured: true,
    });
    return true;
  };
  let failures: string[] = [];
  let checkedNothing = false;
  let summary: Record<string, unknown> | null = null;
  try {
    // Refusal fast path: a sold-out sale answers from the gateway's flag.
    const refusalMeasure = 'refusal fast path (sold out → 409)';
    log('refusal fast path …');
    const soldId = await createSale({ name: 'bench sold out', priceCents: 1, stock: 1, startsAt: new Date(Date.now() - 1000).toISOString() });
    const tok = signUserToken(userSecret, `bench-refused-${process.pid}`);
    const soldPath = await api.call('POST', `/api/sales/${soldId}/path`, tok);
    const lastUnit = soldPath.status === 200 ? await api.call('POST', `/api/sales/${soldId}/buy/${soldPath.body.path}`, tok, { quantity: 1 }) : soldPath;
    if (lastUnit.status !== 202) {
      unmeasuredLine(refusalMeasure, `not measured: the sale could not be sold out first (${lastUnit.status} ${lastUnit.body?.error?.code ?? ''})`.trim());
    } else {
      await new Promise((r) => setTimeout(r, 600)); // every process has heard it sold out
      const buyUrl = `/api/sales/${soldId}/buy/${soldPath.body.path}`;
      const m = await cpuDuring(pid, () => cannon(`${base}${buyUrl}`, p.connections, p.duration, {
        method: 'POST', body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
      }));
      const refusal = { ...m.value, cpuUs: m.cpuUs };
      const probed = await codeOf(refusal, 409, () => api.call('POST', buyUrl, tok, { quantity: 1 }));
      const bareCpuPer = bareCpu.cpuUsPerRequest;
      httpLine(refusalMeasure, refusal, 409, probed, { ratio: 0.95, cpu: bareCpuPer === null || remote ? null : 1.1 * bareCpuPer },
        `${fmt(refusal.statuses['409'] ?? 0)} refusals${bareCpuPer !== null && !remote ? '; CPU target: 1.1× the bare server\'s' : ''}`);
    }

    // Buy path to a 202: buyers with a large limit, so that every request is a real reservation.
    const buyMeasure = 'buy path → 202 reserved';
    log('buy path to a 202 …');
    const bigId = await createSale({ name: 'bench buy path', priceCents: 1, stock: 10_000_000, perUserLimit: 1000, startsAt: new Date(Date.now() - 1000).toISOString() });
    const asked = await Promise.all(Array.from({ length: 2000 }, async (_, i) => {
      const token = signUserToken(userSecret, `bench-buyer-${process.pid}-${i}`);
      const r = await api.call('POST', `/api/sales/${bigId}/path`, token);
      return { token, status: r.status, code: r.body?.error?.code as string | undefined, path: r.body?.path as string | undefined };
    }));
    const buyers = asked.flatMap((b) => (b.status === 200 && b.path ? [{ token: b.token, path: b.path }] : []));
    let buyMeasured = false;
    const bigStats = { reserved: 0 };
    let buyingMs = 0;
    let drainMs = 0;
    if (buyers.length < MEASURED_SHARE * asked.length) {
      const refused = asked.find((b) => b.status !== 200);
      unmeasuredLine(buyMeasure, `not measured: ${fmt(asked.length - buyers.length)} of ${fmt(asked.length)} buyers got no order path (${refused?.status} ${refused?.code ?? ''})`.replace(' )', ')'));
    } else {
      let nextBuyer = 0;
      const t0 = performance.now();
      const m = await cpuDuring(pid, () => cannon(base, p.connections, p.duration, {
        requests: [{
          method: 'POST',
          setupRequest: (req) => {
            const b = buyers[nextBuyer++ % buyers.length];
            return { ...req, path: `/api/sales/${bigId}/buy/${b.path}`, body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${b.token}` } };
          },
        }],
      }));
      buyingMs = performance.now() - t0;
      const buy = { ...m.value, cpuUs: m.cpuUs };
      drainMs = await settle(api, adminKey, bigId);
      Object.assign(bigStats, (await api.patient('GET', `/api/admin/sales/${bigId}`, adminKey)).body.stats);
      const probed = await codeOf(buy, 202, () => api.call('POST', `/api/sales/${bigId}/buy/${buyers[0].path}`, buyers[0].token, { quantity: 1 }));
      buyMeasured = httpLine(buyMeasure, buy, 202, probed, { ratio: o.redis ? 0.5 : 0.6, p99: 25, cpu: remote ? null : o.redis ? 150 : 100 },
        `${fmt(bigStats.reserved)} reserved, ${fmt(buy.non2xx)} non-2xx, ${buy.errors} errors`);
    }
    const writtenMeasure = 'orders written while buying (bounded by the buy rate)';
    if (buyMeasured) {
      lines.push({
        measure: writtenMeasure,
        seckill: `${fmt(bigStats.reserved / ((buyingMs + drainMs) / 1000))} orders/s`,
        baseline: '',
        ratio: '',
        cpu: '',
        target: '',
        note: `writer drained ${fmt(drainMs)} ms after the load stopped${o.database ? '' : ' (embedded: written before each 202)'}`,
        measured: true,
        cpuUsPerRequest: null,
      });
    } else {
      // Follows from the buy path: not a second reason to fail.
      lines.push({ measure: writtenMeasure, seckill: '', baseline: '', ratio: '', cpu: '', target: '', note: 'not measured: the buy path measured nothing', measured: false, cpuUsPerRequest: null });
    }
    if (o.redis && o.database && !o.target) {
      // The writers' own capacity: a backlog put straight into a sale's stream, timed until drained.
      log('order writer capacity …');
      const cap = await writerCapacity(api, adminKey, o.redis, `bench${process.pid}`, 50_000, createSale);
      lines.push({
        measure: 'order writers drain a 50,000-order stream backlog into PostgreSQL',
        seckill: `${fmt(cap)} orders/s`,
        baseline: `${fmt(pgRows)} rows/s`,
        ratio: fmt(cap / pgRows, 2),
        cpu: '',
        target: `≥ 20,000/s and ≥ 0.5× ${cap >= 20_000 && cap >= 0.5 * pgRows ? '✓' : '✗'}`,
        note: `${o.workers} process(es), batches of up to 1,000 in one transaction each; ${fmt(cap / pgDurableRows, 2)}× the logged-table INSERT`,
        measured: true,
        cpuUsPerRequest: null,
      });
    }

    // The sale itself.
    log(`flash sale: ${fmt(p.units)} units, ${fmt(p.users)} users …`);
    const sim = await cpuDuring(pid, () => simulateSale(api, adminKey, userSecret, p, (id) => created.push(id)));
    const run = sim.value;
    const inv = await checkInvariants(api, adminKey, run.saleId, run.stock, run.perUserLimit, run.accepted);
    failures = inv.failures;
    checkedNothing = inv.rows === 0 && run.accepted.length === 0;
    const units = run.accepted.reduce((a, x) => a + x.quantity, 0);
    const lat = run.latency.summary();
    const soldOut = run.soldOutMs;
    const saleMeasure = `flash sale: ${fmt(p.units)} units, ${fmt(p.users)} users${p.soakSeconds ? `, ${p.soakSeconds} s soak` : ''}`;
    const limited = run.outcomes.rate_limited ?? 0;
    // The issue's floor: the time the bare server of this run needs for the 2 requests (path, buy) of each winning buyer.
    const winners = new Set(run.accepted.map((a) => a.userId)).size;
    const floorMs = bareWhy || bare.rps <= 0 ? null : (2 * winners / bare.rps) * 1000;
    const floorText = floorMs === null ? '' : `floor ${fmt(floorMs)} ms (2 × ${fmt(winners)} winners at the bare ${fmt(bare.rps)} req/s)`;
    const invText = checkedNothing ? 'invariants: checked nothing (no order reserved)' : `invariants ${inv.ok ? 'hold' : 'FAIL'}`;
    const outcomes = Object.entries(run.outcomes).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    if (units === 0) unmeasuredLine(saleMeasure, `not measured: no unit was reserved (${outcomes}); ${invText}`);
    else if (limited > (1 - MEASURED_SHARE) * run.requests) unmeasuredLine(saleMeasure, `not measured: ${fmt(limited)} of ${fmt(run.requests)} answers were 429 rate_limited; ${invText}`);
    else {
      lines.push({
        measure: saleMeasure,
        seckill: soldOut !== null ? `sold out in ${fmt(soldOut)} ms` : `${fmt(units)} units reserved`,
        baseline: '',
        ratio: '',
        ...cpuCell(sim.cpuUs, run.requests, remote),
        target: p.name !== 'sale' ? '' : floorMs === null ? `sold out < 1 s ${soldOut !== null && soldOut < 1000 ? '✓' : '✗'}`
          : `sold out ≤ 1.5× floor: ${soldOut === null ? '—' : fmt(soldOut / floorMs, 2)}× ${soldOut !== null && soldOut <= 1.5 * floorMs ? '✓' : '✗'}`,
        note: `${floorText ? `${floorText}; ` : ''}${fmt(run.requests)} requests in ${fmt(run.durationMs / 1000, 2)} s (${fmt(run.requests / (run.durationMs / 1000))} req/s); ` +
          `${fmt(units / ((soldOut ?? run.durationMs) / 1000))} reservations/s; latency p50 ${lat.p50} / p90 ${lat.p90} / p99 ${lat.p99} / max ${lat.max} ms; ` +
          `${run.paid} paid; writer drained in ${fmt(inv.drainMs)} ms; ${invText}`,
        measured: true,
      });
    }
    summary = { outcomes: run.outcomes, invariants: { ...inv, checkedNothing }, latency: lat, soldOutMs: soldOut, floorMs, winners, notMeasured };
  } finally {
    const archived = await archiveSales(api, adminKey, created, log);
    if (summary) summary.archived = archived;
    await api.close();
    await server?.stop();
  }
  if (notMeasured.length > 0) {
    // A run with a measure that measured nothing (rate limits on, a broken setup) is no comparison:
    // its figures stay, but no ratio or verdict is printed that could be read as the run's result.
    for (const l of lines) {
      if (l.ratio === '') continue;
      l.ratio = '';
      l.target = '';
      l.note = `${l.note}; no ratio: another measure of this run measured nothing`;
    }
  }
  write(o.out, `${o.redis ? 'distributed' : o.target ? 'target' : 'embedded'}-${p.name}`, p, mode, lines, summary);
  if (failures.length > 0) {
    log(`INVARIANTS FAILED:\n  ${failures.join('\n  ')}`);
    return 1;
  }
  log(checkedNothing ? 'invariants: checked nothing (no order was reserved)' : 'invariants hold');
  if (notMeasured.length > 0) {
    log(`NOT MEASURED (no figure, no ratio for these):\n  ${notMeasured.join('\n  ')}`);
    return 2;
  }
  return checkedNothing ? 2 : 0;
}

/** End, then archive, every sale the run created (archive takes ended or never-opened sales only). */
async function archiveSales(api: Api, adminKey: string, ids: readonly string[], log: (s: string) => void): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) {
    try {
      await api.patient('POST', `/api/admin/sales/${id}/end`, adminKey, {});
      const r = await api.patient('POST', `/api/admin/sales/${id}/archive`, adminKey, {});
      if (r.status === 200) done.push(id);
      else log(`bench sale ${id} not archived: ${r.status} ${JSON.stringify(r.body)}`);
    } catch (err) {
      log(`bench sale ${id} not archived: ${(err as Error).message}`);
    }
  }
  log(`archived ${done.length} of ${ids.length} bench sales`);
  return done;
}

/**
 * Order-writer throughput on its own: append `n` order records to a fresh sale's stream in
 * Redis (as the reserve script would) and time how long the running writers need to put them
 * all into PostgreSQL.
 */
async function writerCapacity(api: Api, adminKey: string, redisUrl: string, prefix: string, n: number, createSale: (body: Record<string, unknown>) => Promise<string>): Promise<number> {
  const saleId = await createSale({ name: 'bench writer', priceCents: 1, stock: 10_000_000, startsAt: new Date(Date.now() - 1000).toISOString() });
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
  const md = [
    `| ${COLUMNS.map((c) => c.title).join(' | ')} |`,
    `| ${COLUMNS.map(() => '---').join(' | ')} |`,
    ...lines.map((l) => `| ${COLUMNS.map((c) => String(l[c.key])).join(' | ')} |`),
  ].join('\n');
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ date, profile: p, mode, lines, summary }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, `${name}.md`), `${head}\n\n${md}\n`);
  process.stdout.write(`\n${head}\n\n${md}\n\nresults: ${path.relative(ROOT, path.join(dir, name))}.{json,md}\n`);
}
