// Which embedded database for the order writer: better-sqlite3 or PGlite?
// Same rows, same batches, same multi-row INSERT … ON CONFLICT DO NOTHING (portable SQL);
// figures are ratios to better-sqlite3 with WAL + synchronous=NORMAL measured in the same run.
//   npm run bench:db [-- --rows 100000 --batch 1000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { PGlite } from '@electric-sql/pglite';
import { fmt, writeResults, type Row } from './common.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 100_000);
const BATCH = arg('batch', 1000);

const DDL = `CREATE TABLE orders (order_id TEXT PRIMARY KEY, sale_id TEXT NOT NULL, user_id TEXT NOT NULL,
  quantity INTEGER NOT NULL, price_cents BIGINT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL, paid_at BIGINT, payment_ref TEXT)`;
const COLS = 10;

function batches(): unknown[][][] {
  const out: unknown[][][] = [];
  const now = Date.now();
  for (let b = 0; b < ROWS / BATCH; b++) {
    const rows: unknown[][] = [];
    for (let i = 0; i < BATCH; i++) rows.push([randomUUID(), 'sale-1', `user-${b}-${i}`, 1, 999, 'reserved', now, now + 600_000, null, null]);
    out.push(rows);
  }
  return out;
}

function insertSql(n: number, dollar: boolean): string {
  const tuples: string[] = [];
  for (let r = 0; r < n; r++) {
    const ps = Array.from({ length: COLS }, (_, c) => (dollar ? `$${r * COLS + c + 1}` : '?'));
    tuples.push(`(${ps.join(',')})`);
  }
  return `INSERT INTO orders VALUES ${tuples.join(',')} ON CONFLICT (order_id) DO NOTHING`;
}

const rssMb = () => Math.round(process.memoryUsage().rss / 1e6);

interface Measure { name: string; startMs: number; rowsPerSec: number; rssMb: number; }

function sqlite(sync: 'NORMAL' | 'FULL', data: unknown[][][], perRow: boolean): Measure {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sqlite-'));
  const t0 = performance.now();
  const db = new Database(path.join(dir, 'db.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync}`);
  db.exec(DDL);
  const startMs = performance.now() - t0;
  const stmt = db.prepare(insertSql(perRow ? 1 : BATCH, false));
  const t1 = performance.now();
  // perRow: one prepared single-row INSERT run per order inside the batch's transaction (what the repository does).
  if (perRow) for (const b of data) db.transaction(() => { for (const r of b) stmt.run(r); })();
  else for (const b of data) db.transaction(() => stmt.run(b.flat()))();
  const secs = (performance.now() - t1) / 1000;
  const count = (db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n;
  if (count !== ROWS) throw new Error(`sqlite wrote ${count} rows`);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { name: `better-sqlite3 WAL synchronous=${sync}, ${perRow ? 'prepared row' : 'multi-row'} INSERT`, startMs, rowsPerSec: ROWS / secs, rssMb: rssMb() };
}

async function pglite(data: unknown[][][]): Promise<Measure> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pglite-'));
  const t0 = performance.now();
  const db = await PGlite.create(dir);
  await db.exec(DDL);
  const startMs = performance.now() - t0;
  const sql = insertSql(BATCH, true);
  const t1 = performance.now();
  for (const b of data) await db.transaction(async (tx) => { await tx.query(sql, b.flat()); });
  const secs = (performance.now() - t1) / 1000;
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
  if (rows[0].n !== ROWS) throw new Error(`pglite wrote ${rows[0].n} rows`);
  const rss = rssMb();
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { name: 'PGlite (file dir)', startMs, rowsPerSec: ROWS / secs, rssMb: rss };
}

const data = batches();
const results: Measure[] = [];
results.push(sqlite('NORMAL', data, false));
results.push(sqlite('FULL', data, false));
results.push(sqlite('FULL', data, true));
results.push(await pglite(data));
const base = results[0].rowsPerSec;
const rows: Row[] = results.map((m) => ({
  database: m.name,
  'open + schema (ms)': fmt(m.startMs, 1),
  'rows/s': fmt(m.rowsPerSec),
  'ratio to baseline': fmt(m.rowsPerSec / base, 2),
  'process RSS after (MB)': m.rssMb,
}));
writeResults('embedded-db', `Embedded database: ${fmt(ROWS)} order rows in batches of ${BATCH} (baseline: first row)`, { rows: ROWS, batch: BATCH }, rows);
