import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import pg from 'pg';
import { cpuDuring } from './cpu.js';
import { startChild } from './target.js';

export interface HttpFigures {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  /** Connection errors and timeouts: requests without an answer. */
  errors: number;
  /** Answers per HTTP status. */
  statuses: Record<string, number>;
  /** Server CPU µs (user + system, the server's process tree) over the measure; null: not measured. */
  cpuUs: number | null;
}

export async function cannon(url: string, connections: number, duration: number, opts: Partial<autocannon.Options> = {}): Promise<HttpFigures> {
  const r = await autocannon({ url, connections, duration, ...opts });
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statuses[code] = s.count ?? 0;
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, non2xx: r.non2xx, errors: r.errors, statuses, cpuUs: null };
}

/** (a) The ceiling of any Node HTTP route here: bare node:http answering a fixed small JSON. */
export async function bareHttp(connections: number, duration: number): Promise<HttpFigures> {
  // Compiled (dist/): the compiled server beside this module; from the sources: through tsx.
  const compiled = import.meta.url.endsWith('.js');
  const args = compiled ? [fileURLToPath(new URL('./bare-server.js', import.meta.url))] : ['--import', 'tsx', 'src/bench/bare-server.ts'];
  const bare = await startChild(args, {}, null);
  try {
    const m = await cpuDuring(bare.child.pid, () => cannon(bare.url, connections, duration, { method: 'POST', body: '{"quantity":1}', headers: { 'content-type': 'application/json' } }));
    return { ...m.value, cpuUs: m.cpuUs };
  } finally {
    await bare.stop();
  }
}

/** (b) Raw Redis: EVALSHA of a trivial script through ioredis, many calls in flight. */
export async function redisEvalsha(url: string, seconds: number, inFlight = 256): Promise<{ callsPerSec: number }> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.defineCommand('benchTrivial', { numberOfKeys: 1, lua: "return redis.call('INCR', KEYS[1])" });
  const key = `seckill-bench:trivial:${process.pid}`;
  const run = (redis as unknown as { benchTrivial(k: string): Promise<number> }).benchTrivial.bind(redis);
  let calls = 0;
  const end = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < end) {
      await run(key);
      calls++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  await redis.del(key);
  redis.disconnect();
  return { callsPerSec: calls / secs };
}

/**
 * (b) Raw PostgreSQL: batched multi-row INSERT (unnest) of order-shaped rows, one connection.
 * `durable`: into an ordinary (WAL-logged) table with the orders table's indexes, as the order
 * writers' commits are; otherwise into a TEMP table (no WAL, no fsync, one index): the issue's
 * yardstick, a ceiling no durable write reaches.
 */
export async function pgBatchedInsert(url: string, rows = 50_000, batch = 1000, durable = false): Promise<{ rowsPerSec: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const table = `seckill_bench_${durable ? 'durable' : 'temp'}_${process.pid}`;
  const columns = '(order_id TEXT PRIMARY KEY, sale_id TEXT, user_id TEXT, quantity INT, price_cents BIGINT, status TEXT, created_at BIGINT, expires_at BIGINT)';
  if (durable) {
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(`CREATE TABLE ${table} ${columns}`);
    for (const cols of ['sale_id, status', 'status, expires_at', 'user_id']) await client.query(`CREATE INDEX ON ${table} (${cols})`);
  } else {
    await client.query(`CREATE TEMP TABLE ${table} ${columns}`);
  }
  const now = Date.now();
  const t0 = performance.now();
  for (let b = 0; b < rows / batch; b++) {
    const ids: string[] = [];
    const users: string[] = [];
    for (let i = 0; i < batch; i++) {
      ids.push(`${b}-${i}-${now}`);
      users.push(`u${b}-${i}`);
    }
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO ${table} SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[]) ON CONFLICT DO NOTHING`,
      [ids, ids.map(() => 's'), users, ids.map(() => 1), ids.map(() => 100), ids.map(() => 'reserved'), ids.map(() => now), ids.map(() => now + 6e5)],
    );
    await client.query('COMMIT');
  }
  const secs = (performance.now() - t0) / 1000;
  if (durable) await client.query(`DROP TABLE ${table}`);
  await client.end();
  return { rowsPerSec: rows / secs };
}
