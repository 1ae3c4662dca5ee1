// The embedded-mode benchmark: every seckill figure beside a baseline measured in the same run.
//   npm run bench [-- --duration 5 --connections 100 --units 10000 --users 30000]
// Writes bench/results/embedded.{json,md}.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Agent, request } from 'undici';
import { signUserToken } from '../src/gateway/auth.js';
import { fmt, writeResults, type Row } from './common.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const DURATION = arg('duration', 5);
const CONNECTIONS = arg('connections', 100);
const UNITS = arg('units', 10_000);
const USERS = arg('users', 30_000);

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ADMIN = 'bench-admin-key-0123456789abcdef';
const SECRET = 'bench-user-secret-0123456789abcdef0123456789';
const agent = new Agent({ connections: CONNECTIONS, keepAliveTimeout: 30_000 });

function startChild(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out) ?? /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`child exited ${code}: ${out}`)));
  });
}

async function api(base: string, method: string, url: string, token: string, body?: unknown) {
  const res = await request(base + url, {
    method: method as 'POST',
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : null };
}

interface Cannon { rps: number; p50: number; p99: number; non2xx: number; total: number; errors: number; }

async function cannon(url: string, opts: Partial<autocannon.Options>): Promise<Cannon> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: DURATION, ...opts });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, total: r.requests.total, errors: r.errors };
}

async function createSale(base: string, stock: number, perUserLimit: number, startsIn = -1000) {
  const startsAt = Date.now() + startsIn;
  const r = await api(base, 'POST', '/api/admin/sales', ADMIN, {
    name: 'bench', priceCents: 100, stock, perUserLimit,
    startsAt: new Date(startsAt).toISOString(), endsAt: new Date(startsAt + 3600_000).toISOString(),
  });
  if (r.status !== 201) throw new Error(`create sale ${r.status}`);
  return r.body as { id: string; startsAt: string };
}

const rows: Row[] = [];
const row = (what: string, c: Cannon, baseline: Cannon, note = '') =>
  rows.push({ measure: what, 'req/s': fmt(c.rps), 'baseline req/s': fmt(baseline.rps), ratio: fmt(c.rps / baseline.rps, 2), 'p50 ms': c.p50, 'p99 ms': c.p99, note });

const children: ChildProcess[] = [];
try {
  // (a) baseline: bare node:http
  const bare = await startChild(['--import', 'tsx', 'bench/bare-server.ts'], {});
  children.push(bare.child);
  const baseline = await cannon(`http://127.0.0.1:${bare.port}/`, { method: 'POST', body: '{"quantity":1}', headers: { 'content-type': 'application/json' } });
  rows.push({ measure: 'baseline: bare node:http, fixed JSON', 'req/s': fmt(baseline.rps), 'baseline req/s': fmt(baseline.rps), ratio: '1.00', 'p50 ms': baseline.p50, 'p99 ms': baseline.p99, note: '' });
  bare.child.kill();

  // seckill, embedded mode, as a separate process
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-bench-'));
  const sk = await startChild(['bin/seckill.mjs', 'start'], {
    PORT: '0', HOST: '127.0.0.1', SECKILL_DATA_DIR: dataDir, SECKILL_ADMIN_KEY: ADMIN, SECKILL_USER_SECRET: SECRET,
    SECKILL_RATE_PER_IP: '0', SECKILL_RATE_PER_USER: '0', SECKILL_DEMO_SALE: 'false', LOG_LEVEL: 'info',
  });
  children.push(sk.child);
  const base = `http://127.0.0.1:${sk.port}`;

  // (b) refusal fast path: a sold-out sale answers from the gateway flag
  const sold = await createSale(base, 1, 1);
  const tok = signUserToken(SECRET, 'bench-refused');
  const p = await api(base, 'POST', `/api/sales/${sold.id}/path`, tok);
  await api(base, 'POST', `/api/sales/${sold.id}/buy/${p.body.path}`, tok, { quantity: 1 });
  const refusal = await cannon(`${base}/api/sales/${sold.id}/buy/${p.body.path}`, {
    method: 'POST', body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
  });
  row('refusal fast path (sold out)', refusal, baseline, `${fmt(refusal.non2xx)} × 409`);

  // (c) buy path to a 202: 2,000 users with a large limit, so every request is a real reservation
  const bigStock = 10_000_000;
  const big = await createSale(base, bigStock, 1000);
  const buyers = await Promise.all(Array.from({ length: 2000 }, async (_, i) => {
    const token = signUserToken(SECRET, `bench-buyer-${i}`);
    const r = await api(base, 'POST', `/api/sales/${big.id}/path`, token);
    return { token, path: r.body.path as string };
  }));
  let next = 0;
  const buyPath = await cannon(base, {
    requests: [{
      method: 'POST',
      setupRequest: (req: autocannon.Request) => {
        const b = buyers[next++ % buyers.length];
        return { ...req, path: `/api/sales/${big.id}/buy/${b.path}`, body: '{"quantity":1}', headers: { 'content-type': 'application/json', authorization: `Bearer ${b.token}` } };
      },
    }],
  });
  const bigStats = await api(base, 'GET', `/api/admin/sales/${big.id}`, ADMIN);
  row('buy path to a 202 (group commit to SQLite)', buyPath, baseline, `${fmt(bigStats.body.stats.reserved)} reserved, ${fmt(buyPath.non2xx)} non-2xx`);

  // (d) a whole flash sale: UNITS units, USERS distinct users, everyone fires at the open
  const sale = await createSale(base, UNITS, 1, 3000);
  const users = Array.from({ length: USERS }, (_, i) => signUserToken(SECRET, `sale-user-${i}`));
  const openAt = Date.parse(sale.startsAt);
  await new Promise((r) => setTimeout(r, Math.max(0, openAt - Date.now())));
  const t0 = performance.now();
  let requests = 0;
  let reserved = 0;
  let soldOutAt = 0;
  const outcomes: Record<string, number> = {};
  // Each simulated user fetches its path, then buys; as many users in flight as connections allow.
  let nextUser = 0;
  const oneUser = async (token: string) => {
    requests++;
    const pr = await api(base, 'POST', `/api/sales/${sale.id}/path`, token);
    if (pr.status !== 200) { outcomes[`path ${pr.status}`] = (outcomes[`path ${pr.status}`] ?? 0) + 1; return; }
    requests++;
    const br = await api(base, 'POST', `/api/sales/${sale.id}/buy/${pr.body.path}`, token, { quantity: 1 });
    const key = br.status === 202 ? 'reserved' : br.body.error.code;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    if (br.status === 202 && ++reserved === UNITS) soldOutAt = performance.now() - t0;
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (nextUser < users.length) await oneUser(users[nextUser++]);
  }));
  const total = (performance.now() - t0) / 1000;
  const stats = (await api(base, 'GET', `/api/admin/sales/${sale.id}`, ADMIN)).body.stats;
  const ok = stats.reserved === UNITS && stats.available === 0 && reserved === UNITS;
  rows.push({
    measure: `flash sale: ${fmt(UNITS)} units, ${fmt(USERS)} users`,
    'req/s': fmt(requests / total), 'baseline req/s': fmt(baseline.rps), ratio: fmt(requests / total / baseline.rps, 2),
    'p50 ms': '', 'p99 ms': '',
    note: `${fmt(requests)} requests in ${fmt(total, 2)} s; sold out after ${fmt(soldOutAt)} ms; ${fmt(UNITS / (soldOutAt / 1000))} reservations/s; invariants ${ok ? 'hold' : 'FAIL'}`,
  });
  writeResults('embedded', `seckill embedded mode on ${os.cpus().length} cores (${DURATION} s per measure, ${CONNECTIONS} connections)`, { outcomes, stats }, rows);
  if (!ok) { console.error('invariant check failed', stats); process.exitCode = 1; }
} finally {
  for (const c of children) c.kill('SIGKILL');
  await agent.close();
}
