// What intended-purchase recording adds to one sold-out refusal, without HTTP or machine noise:
// InterestRecorder.soldOut as the raw fast path calls it (the Authorization header as the parser
// made it: a fresh string per request), recording on and off, for a repeated buyer (the common
// case during a rush: the same buyers retry) and for new buyers (queued; verified and written in
// the batch, which is measured apart, per refusal).
//
//   node --import tsx bench/interest-hot-path.ts
import { pino } from 'pino';
import { Auth, signUserToken } from '../src/gateway/auth.js';
import { InterestRecorder } from '../src/services/interest-recorder.js';

const SECRET = 'bench-user-secret-0123456789abcdef0123456789';
const auth = new Auth(SECRET, { admin: ['bench-admin-key-0123456789abcdef'], payments: [] });
const store = {
  recordInterest: async () => undefined,
  listInterest: async () => ({ rows: [], next: null }),
  interestSummary: async () => ({ users: 0, units: 0 }),
};
const recorder = (enabled: boolean) =>
  new InterestRecorder({ auth, store, sales: { all: () => [], available: () => 1 }, log: pino({ level: 'silent' }), enabled }, { queueCapacity: 1_000_000, tokensPerSale: 1_000_000, flushMs: 3_600_000 });

/** The header's bytes: each refusal reads a fresh flat string from them, as the HTTP parser makes one. */
const headerBytes = Buffer.from(`Bearer ${signUserToken(SECRET, 'bench-user')}`, 'latin1');
const N = 1_000_000;

function repeated(enabled: boolean): number {
  const r = recorder(enabled);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) r.soldOut('sale-1', headerBytes.toString('latin1'), 1);
  return Number(process.hrtime.bigint() - t0) / N;
}

async function fresh(n: number): Promise<{ refusalNs: number; batchNs: number }> {
  const r = recorder(true);
  const headers = Array.from({ length: n }, (_, i) => Buffer.from(`Bearer ${signUserToken(SECRET, `fan-${i}`)}`, 'latin1').toString('latin1'));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) r.soldOut('sale-1', headers[i], 1);
  const t1 = process.hrtime.bigint();
  await r.flush();
  const t2 = process.hrtime.bigint();
  await r.close();
  return { refusalNs: Number(t1 - t0) / n, batchNs: Number(t2 - t1) / n };
}

for (let round = 0; round < 3; round++) {
  const on = repeated(true);
  const off = repeated(false);
  process.stdout.write(`repeated buyer: on ${on.toFixed(0)} ns, off ${off.toFixed(0)} ns per refusal (+${(on - off).toFixed(0)} ns)\n`);
}
const f = await fresh(20_000);
process.stdout.write(`new buyers: ${f.refusalNs.toFixed(0)} ns per refusal on the path, ${(f.batchNs / 1000).toFixed(1)} µs per refusal in the batch (verify + write)\n`);
