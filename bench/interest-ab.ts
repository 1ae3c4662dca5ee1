// The refusal path with and without intended-purchase recording (issue 13), in the same run:
// embedded seckill servers, SECKILL_INTEREST=on and =off, each with a sold-out sale, measured in
// pairs one right after the other (A B, then B A, …: both meet the same minutes of machine load),
// several rounds, the median of the per-round ratios reported; a second server without recording against the first is the A/A
// control (how far apart two identical servers measure on this machine). Two workloads:
//  - one token: `seckill bench`'s refusal measure (one buyer hammering a sold-out sale);
//  - new buyers: every request from a buyer not seen before in that round (each round signs its
//    own users), the recorder's worst case: each refusal is queued, verified and written.
// Prints req/s and server CPU µs per answer (user + system, from /proc) per round and the medians.
// With three servers and autocannon on the same machine the absolute figures are low; the ratios count.
//
//   node --import tsx bench/interest-ab.ts [--rounds 6] [--duration 3] [--connections 50] [--off-first] [--workload 'one token']
import net from 'node:net';
import type autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { signUserToken } from '../src/gateway/auth.js';
import { cannon, type HttpFigures } from '../src/bench/baselines.js';
import { cpuDuring } from '../src/bench/cpu.js';
import { Api, startChild, tempDataDir, type Child } from '../src/bench/target.js';
import { fmt, writeResults, type Row } from './common.js';

const ADMIN = 'bench-admin-key-0123456789abcdef';
const SECRET = 'bench-user-secret-0123456789abcdef0123456789';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, duration: { type: 'string', default: '3' }, connections: { type: 'string', default: '50' }, 'off-first': { type: 'boolean', default: false }, workload: { type: 'string' } } });
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const connections = Number(values.connections);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Target {
  name: string;
  server: Child;
  api: Api;
  buyUrl: string;
  token: string;
  /** A buyer with a valid order path who never bought: his buys reach the engine when the hint has expired. */
  refresher: { url: string; token: string };
}

async function start(name: string, interest: 'on' | 'off'): Promise<Target> {
  const port = await freePort();
  const server = await startChild(['bin/seckill.mjs', 'start'], {
    PORT: String(port), HOST: '127.0.0.1', SECKILL_ADMIN_KEY: ADMIN, SECKILL_USER_SECRET: SECRET, SECKILL_DATA_DIR: tempDataDir(),
    SECKILL_RATE_PER_IP: '0', SECKILL_RATE_PER_USER: '0', SECKILL_DEMO_SALE: 'false', LOG_LEVEL: 'warn', SECKILL_INTEREST: interest,
  }, '/readyz', port);
  const api = new Api(server.url, 16);
  const sale = await api.call('POST', '/api/admin/sales', ADMIN, { name: `interest ${name}`, priceCents: 1, stock: 1, startsAt: new Date(Date.now() - 1000).toISOString() });
  if (sale.status !== 201) throw new Error(`create sale: ${sale.status} ${JSON.stringify(sale.body)}`);
  const token = signUserToken(SECRET, `winner-${name}`);
  const p = await api.call('POST', `/api/sales/${sale.body.id}/path`, token);
  const bought = await api.patient('POST', `/api/sales/${sale.body.id}/buy/${p.body.path}`, token, { quantity: 1 });
  if (bought.status !== 202) throw new Error(`last unit: ${bought.status}`);
  const refresherToken = signUserToken(SECRET, `refresher-${name}`);
  const rp = await api.call('POST', `/api/sales/${sale.body.id}/path`, refresherToken);
  if (rp.status !== 200) throw new Error(`refresher path: ${rp.status}`);
  return { name, server, api, buyUrl: `/api/sales/${sale.body.id}/buy/${p.body.path}`, token, refresher: { url: `/api/sales/${sale.body.id}/buy/${rp.body.path}`, token: refresherToken } };
}

type Workload = 'one token' | 'new buyers';

async function measure(t: Target, w: Workload, round: number): Promise<HttpFigures> {
  const base = { method: 'POST' as const, body: '{"quantity":1}' };
  let opts: Partial<autocannon.Options>;
  if (w === 'one token') {
    opts = { ...base, headers: { 'content-type': 'application/json', authorization: `Bearer ${t.token}` } };
  } else {
    // More users than the round can ask with: every request a buyer this server has not seen.
    const tokens = Array.from({ length: 40_000 }, (_, i) => `Bearer ${signUserToken(SECRET, `fan-${t.name}-${round}-${i}`)}`);
    let next = 0;
    opts = {
      requests: [{
        ...base,
        setupRequest: (req) => ({ ...req, path: t.buyUrl, headers: { 'content-type': 'application/json', authorization: tokens[next++ % tokens.length] } }),
      }],
    };
  }
  // The sold-out hint lives 3 s past the engine's last answer (src/gateway/local-refusals.ts), and
  // these buyers' paths are not theirs (bad_path once it expired): a buyer with a valid path asks
  // the engine twice a second, which keeps the hint set, as real buyers do during a sale.
  const refresh = setInterval(() => void t.api.call('POST', t.refresher.url, t.refresher.token, { quantity: 1 }).catch(() => undefined), 500);
  const m = await cpuDuring(t.server.child.pid, () => cannon(`${t.server.url}${t.buyUrl}`, connections, duration, opts)).finally(() => clearInterval(refresh));
  // The recorder writes after the answers: wait for its queue to drain into the CPU figure of this round.
  await new Promise((r) => setTimeout(r, 300));
  return { ...m.value, cpuUs: m.cpuUs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// --off-first: the servers without recording start first (does the order of start matter here?).
const [off, off2, on] = values['off-first']
  ? [await start('off', 'off'), await start('off-2', 'off'), await start('on', 'on')]
  : await (async () => {
    const first = await start('on', 'on');
    return [await start('off', 'off'), await start('off-2', 'off'), first];
  })();
const rows: Row[] = [];
/** Requests of the new-buyers workload answered by the recording server (each from a new user). */
let newBuyersOn = 0;
const summary: Row[] = [];
try {
  for (const w of (['one token', 'new buyers'] as Workload[]).filter((x) => values.workload === undefined || x === values.workload)) {
    for (const t of [on, off, off2]) await measure(t, w, -1); // warm-up (JIT, connections), not counted
    for (const [a, b] of [[on, off], [off2, off]] as const) {
      const ratios = { rps: [] as number[], cpu: [] as number[] };
      const fig = { rpsA: [] as number[], rpsB: [] as number[], cpuA: [] as number[], cpuB: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        // One after the other, in turns (which goes first alternates): both meet the same minutes of load.
        let fa: HttpFigures;
        let fb: HttpFigures;
        if (r % 2 === 0) {
          fa = await measure(a, w, r);
          fb = await measure(b, w, r);
        } else {
          fb = await measure(b, w, r);
          fa = await measure(a, w, r);
        }
        const per = (f: HttpFigures) => {
          const answered = Object.values(f.statuses).reduce((x, n) => x + n, 0);
          return { answered, cpu: f.cpuUs === null ? Number.NaN : f.cpuUs / answered };
        };
        const pa = per(fa);
        const pb = per(fb);
        if (w === 'new buyers' && a === on) newBuyersOn += pa.answered;
        ratios.rps.push(fa.rps / fb.rps);
        ratios.cpu.push(pa.cpu / pb.cpu);
        fig.rpsA.push(fa.rps);
        fig.rpsB.push(fb.rps);
        fig.cpuA.push(pa.cpu);
        fig.cpuB.push(pb.cpu);
        for (const [t, f, pp] of [[a, fa, pa], [b, fb, pb]] as const) {
          rows.push({ workload: w, pair: `${a.name} vs ${b.name}`, round: r + 1, server: t.name, 'req/s': fmt(f.rps), 'CPU µs/req': fmt(pp.cpu, 1), '409s': fmt(f.statuses['409'] ?? 0), other: Object.entries(f.statuses).filter(([k]) => k !== '409').map(([k, n]) => `${k}: ${n}`).concat(f.errors ? [`errors: ${f.errors}`] : []).join(' ') || '0', p99: `${f.p99} ms` });
        }
        process.stderr.write(`${w}, ${a.name} vs ${b.name}, round ${r + 1}: ${fmt(fa.rps)} / ${fmt(fb.rps)} req/s, ${fmt(pa.cpu, 1)} / ${fmt(pb.cpu, 1)} µs/req\n`);
      }
      summary.push({
        workload: w,
        pair: `${a.name} vs ${b.name}`,
        'req/s': `${fmt(median(fig.rpsA))} / ${fmt(median(fig.rpsB))}`,
        'req/s ratio (median of rounds)': fmt(median(ratios.rps), 3),
        'CPU µs/req': `${fmt(median(fig.cpuA), 1)} / ${fmt(median(fig.cpuB), 1)}`,
        'CPU ratio (median of rounds)': fmt(median(ratios.cpu), 3),
      });
    }
  }
  const recorded = await on.api.call('GET', `${on.buyUrl.replace(/\/buy\/.*$/, '').replace('/api/sales/', '/api/admin/sales/')}/interest/summary`, ADMIN);
  writeResults('interest-ab', 'Sold-out refusals with intended-purchase recording on and off (interleaved pairs; off-2 vs off is the A/A control)', {
    rounds, duration, connections, recordedUsers: recorded.body, newBuyerRequestsToOn: newBuyersOn, perRound: rows,
  }, summary);
} finally {
  for (const t of [on, off, off2]) {
    await t.server.stop();
    await t.api.close();
  }
}
