// The refusal path with and without intended-purchase recording (issue 13), in the same run:
// two embedded seckill servers, SECKILL_INTEREST=on and =off, each with a sold-out sale, measured
// interleaved (on, off, on, off, …) so that both meet the same machine load. Two workloads:
//  - one token: `seckill bench`'s refusal measure (one buyer hammering a sold-out sale);
//  - new buyers: every request from a buyer not seen before in that round (each round signs its
//    own users), the recorder's worst case: each refusal is queued, verified and written.
// Prints req/s and server CPU µs per answer (user + system, from /proc) per round and the medians.
//
//   node --import tsx bench/interest-ab.ts [--rounds 3] [--duration 5] [--connections 50]
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

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
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
  name: 'on' | 'off';
  server: Child;
  api: Api;
  buyUrl: string;
  token: string;
}

async function start(name: 'on' | 'off'): Promise<Target> {
  const port = await freePort();
  const server = await startChild(['bin/seckill.mjs', 'start'], {
    PORT: String(port), HOST: '127.0.0.1', SECKILL_ADMIN_KEY: ADMIN, SECKILL_USER_SECRET: SECRET, SECKILL_DATA_DIR: tempDataDir(),
    SECKILL_RATE_PER_IP: '0', SECKILL_RATE_PER_USER: '0', SECKILL_DEMO_SALE: 'false', LOG_LEVEL: 'warn', SECKILL_INTEREST: name,
  }, '/readyz', port);
  const api = new Api(server.url, 16);
  const sale = await api.call('POST', '/api/admin/sales', ADMIN, { name: `interest ${name}`, priceCents: 1, stock: 1, startsAt: new Date(Date.now() - 1000).toISOString() });
  if (sale.status !== 201) throw new Error(`create sale: ${sale.status} ${JSON.stringify(sale.body)}`);
  const token = signUserToken(SECRET, `winner-${name}`);
  const p = await api.call('POST', `/api/sales/${sale.body.id}/path`, token);
  const bought = await api.call('POST', `/api/sales/${sale.body.id}/buy/${p.body.path}`, token, { quantity: 1 });
  if (bought.status !== 202) throw new Error(`last unit: ${bought.status}`);
  return { name, server, api, buyUrl: `/api/sales/${sale.body.id}/buy/${p.body.path}`, token };
}

type Workload = 'one token' | 'new buyers';

async function measure(t: Target, w: Workload, round: number): Promise<HttpFigures> {
  const base = { method: 'POST' as const, body: '{"quantity":1}' };
  let opts: Partial<autocannon.Options>;
  if (w === 'one token') {
    opts = { ...base, headers: { 'content-type': 'application/json', authorization: `Bearer ${t.token}` } };
  } else {
    // More users than the round can ask with: every request a buyer this server has not seen.
    const tokens = Array.from({ length: 60_000 }, (_, i) => `Bearer ${signUserToken(SECRET, `fan-${t.name}-${round}-${i}`)}`);
    let next = 0;
    opts = {
      requests: [{
        ...base,
        setupRequest: (req) => ({ ...req, path: t.buyUrl, headers: { 'content-type': 'application/json', authorization: tokens[next++ % tokens.length] } }),
      }],
    };
  }
  const m = await cpuDuring(t.server.child.pid, () => cannon(`${t.server.url}${t.buyUrl}`, connections, duration, opts));
  // The recorder writes after the answers: wait for its queue to drain into the CPU figure of this round.
  await new Promise((r) => setTimeout(r, 300));
  return { ...m.value, cpuUs: m.cpuUs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const on = await start('on');
const off = await start('off');
const rows: Row[] = [];
/** Requests of the new-buyers workload answered by the recording server (each from a new user). */
let newBuyersOn = 0;
const summary: Row[] = [];
try {
  for (const w of ['one token', 'new buyers'] as Workload[]) {
    const figures: Record<'on' | 'off', { rps: number; cpu: number }[]> = { on: [], off: [] };
    await measure(on, w, -1); // warm-up of both (JIT, connections), not counted
    await measure(off, w, -1);
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so neither always follows the other.
      for (const t of r % 2 === 0 ? [on, off] : [off, on]) {
        const f = await measure(t, w, r);
        const answered = Object.values(f.statuses).reduce((a, n) => a + n, 0);
        const cpu = f.cpuUs === null ? Number.NaN : f.cpuUs / answered;
        figures[t.name].push({ rps: f.rps, cpu });
        if (w === 'new buyers' && t.name === 'on') newBuyersOn += answered;
        rows.push({ workload: w, round: r + 1, recording: t.name, 'req/s': fmt(f.rps), 'CPU µs/req': fmt(cpu, 1), '409s': fmt(f.statuses['409'] ?? 0), other: fmt(answered - (f.statuses['409'] ?? 0) + f.errors), p99: `${f.p99} ms` });
        process.stderr.write(`${w} round ${r + 1} ${t.name}: ${fmt(f.rps)} req/s, ${fmt(cpu, 1)} µs/req\n`);
      }
    }
    const rpsOn = median(figures.on.map((x) => x.rps));
    const rpsOff = median(figures.off.map((x) => x.rps));
    const cpuOn = median(figures.on.map((x) => x.cpu));
    const cpuOff = median(figures.off.map((x) => x.cpu));
    summary.push({
      workload: w,
      'req/s on': fmt(rpsOn), 'req/s off': fmt(rpsOff), 'req/s on/off': fmt(rpsOn / rpsOff, 3),
      'CPU µs/req on': fmt(cpuOn, 1), 'CPU µs/req off': fmt(cpuOff, 1), 'CPU on/off': fmt(cpuOn / cpuOff, 3),
    });
  }
  const recorded = await on.api.call('GET', `${on.buyUrl.replace(/\/buy\/.*$/, '').replace('/api/sales/', '/api/admin/sales/')}/interest/summary`, ADMIN);
  writeResults('interest-ab', 'Refusal path (sold out → 409) with and without intended-purchase recording, interleaved (medians)', {
    rounds, duration, connections, recordedUsers: recorded.body, newBuyerRequestsToOn: newBuyersOn, perRound: rows,
  }, summary);
} finally {
  await on.server.stop();
  await off.server.stop();
  await on.api.close();
  await off.api.close();
}
