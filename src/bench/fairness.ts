import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { powSolved } from '../domain/challenge.js';
import { signUserToken } from '../gateway/auth.js';
import { checkInvariants, type InvariantReport } from './invariants.js';
import { fmt } from './measured.js';
import type { Accepted } from './sale-sim.js';
import { Api, BENCH_ADMIN_KEY, BENCH_USER_SECRET, ROOT, startBenchServer, type Child } from './target.js';

/**
 * `seckill bench --profile fairness` (issue 14, docs/fairness.md): one simulated sale per setting —
 * no protection, a random waiting room, the room and a proof-of-work challenge — on a seckill the
 * bench starts. One user in ten is a bot (`bot-N`): it starts before everyone, asks 100× as often
 * as a person and solves a challenge at once; people (`user-N`) arrive around the open, most before
 * it, ask at a page's pace and take 0.5–2 s over a challenge. Measured: the bots' share of the units
 * against their share of the users, the busiest 100 ms of path requests, the waiting room's ETA
 * error and its admission rate against the configured one.
 */

export interface FairnessBenchOptions {
  users?: number;
  units?: number;
  /** The room's rate; by default units / 2 (the stock let out in about 2 s). Lower: a longer line, a longer-range ETA. */
  admitPerSecond?: number;
  /** Distributed mode (the room in Redis): the bench's server on these, with this many processes. */
  redis?: string;
  database?: string;
  workers?: number;
  allowVolatileRedis?: boolean;
  out: string;
}

/** Smoke size (CI: the whole profile well under a minute); --users/--units for bigger runs. */
export const FAIRNESS_DEFAULTS = { users: 600, units: 150 } as const;

/** One in ten users is a bot. */
const BOT_SHARE = 0.1;
/** A person's pace: the page polls the room every 2 s; without a room, a person presses again about as often. */
const HUMAN_EVERY_MS = 2000;
/** A bot asks 100× as often. */
const BOT_EVERY_MS = HUMAN_EVERY_MS / 100;
/** Bots start this long before the open; people arrive from a little later on. */
const LEAD_MS = 2500;
/** Share of the people who arrive before the open (the rest in the 2 s after it). */
const EARLY_PEOPLE = 0.85;
const LATE_SPREAD_MS = 2000;
/** A person's time over a challenge (a phone solving the work, a person reading): 0.5–2 s. */
const HUMAN_SOLVE_MS: [number, number] = [500, 2000];
/** Low difficulty for the bench's server: the bench solves every challenge itself, cheaply. */
const BENCH_POW_BITS = 8;
/** Nobody keeps trying longer than this after the open. */
const GIVE_UP_MS = 45_000;

const ADMIN = BENCH_ADMIN_KEY;
const SECRET = BENCH_USER_SECRET;

type SettingName = 'none' | 'room' | 'room+pow' | 'pow';
interface Setting {
  name: SettingName;
  room: boolean;
  challenge: 'pow' | null;
}
const SETTINGS: Setting[] = [
  { name: 'none', room: false, challenge: null },
  { name: 'room', room: true, challenge: null },
  { name: 'room+pow', room: true, challenge: 'pow' },
  // The challenge alone: the peak smearing with and without it, the room not capping the path rate.
  { name: 'pow', room: false, challenge: 'pow' },
];

/** What one setting measured (null: does not apply to it). */
export interface SettingResult {
  setting: SettingName;
  /** Why nothing was measured (e.g. the server has no proof-of-work challenge). */
  notAvailable: string | null;
  saleId: string | null;
  users: number;
  bots: number;
  units: number;
  unitsSold: number;
  botUnits: number;
  botShareOfUsers: number;
  botShareOfUnits: number | null;
  /** Path requests (answered or not) and the most in any 100-ms window. */
  pathRequests: number;
  peakPathPer100ms: number;
  /** |estimated − actual| wait, seconds, over the users let out: estimate at the first poll after the open. */
  eta: { users: number; medianAbsErrorS: number; p90AbsErrorS: number; meanErrorS: number; source: string } | null;
  /** Users let out per second: configured, the busiest 1-s window, overall (first to last admission). */
  admission: { configuredPerSecond: number; max1s: number; overall: number; admitted: number; source: string } | null;
  /** The room's own figures at the end (GET /api/admin/sales/:saleId/queue). */
  roomStats: Record<string, unknown> | null;
  /** The server's fairness report (GET /api/admin/sales/:saleId/fairness). */
  report: Record<string, unknown> | null;
  outcomes: Record<string, number>;
  invariants: InvariantReport | null;
  durationMs: number;
}

/** The bench's own server (embedded, or distributed); the challenge easy, so that the bench's CPU stays low. */
function startServer(o: FairnessBenchOptions): Promise<Child> {
  return startBenchServer({ ...o, env: { SECKILL_POW_BITS: String(BENCH_POW_BITS) } });
}

const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
const pace = (bot: boolean) => (bot ? rand(0.75, 1.25) * BOT_EVERY_MS : rand(0.75, 1.25) * HUMAN_EVERY_MS);

/** The nonce whose SHA-256 over `<challenge>:<nonce>` starts with `bits` zero bits. */
export function solvePow(challenge: string, bits: number): string {
  for (let n = 0; ; n++) if (powSolved(challenge, String(n), bits)) return String(n);
}

/** The most timestamps in any window of `ms` (sorted in place). */
export function peakWindow(times: number[], ms: number): number {
  times.sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= ms) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** The p-th percentile (0–100) of a list, nearest rank. */
function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Admissions per second: the busiest window of at most 1 s, and overall from the open to the last
 * admission. From admission times (exact) or from the room's admitted total sampled every 100 ms.
 */
export function admissionRates(samples: readonly { t: number; admitted: number }[], opensAt: number): { max1s: number; overall: number; admitted: number } {
  let max1s = 0;
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    if (j < i) j = i;
    while (j + 1 < samples.length && samples[j + 1].t - samples[i].t <= 1000) j++;
    max1s = Math.max(max1s, samples[j].admitted - samples[i].admitted);
  }
  const total = samples.length ? samples[samples.length - 1].admitted : 0;
  const firstFull = samples.find((s) => s.admitted === total);
  const spanS = firstFull ? Math.max(0.1, (firstFull.t - opensAt) / 1000) : 0;
  return { max1s, overall: spanS > 0 ? total / spanS : 0, admitted: total };
}

/** The same from exact admission times: the most in any window shorter than 1 s, and overall. */
export function exactRates(times: number[], opensAt: number): { max1s: number; overall: number; admitted: number } {
  const max1s = peakWindow(times, 1000);
  const last = times.length ? times[times.length - 1] : opensAt;
  return { max1s, overall: times.length ? times.length / Math.max(0.1, (last - opensAt) / 1000) : 0, admitted: times.length };
}

interface Sim {
  readonly saleId: string;
  readonly opensAt: number;
  readonly setting: Setting;
  readonly outcomes: Record<string, number>;
  readonly pathTimes: number[];
  readonly accepted: Accepted[];
  /** userId → the first estimate after the open (at t, seconds). */
  readonly firstEta: Map<string, { t: number; eta: number }>;
  /** userId → when the bench first saw the user let out. */
  readonly seenAdmitted: Map<string, number>;
  soldOut: boolean;
}

type Reply = { status: number; body: any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- replies are read as loose JSON

/**
 * One request. A request that got no answer (a reset connection on a loaded machine) is sent again,
 * a few times, except a buy: its answer may have been lost after the order was made.
 */
async function send(api: Api, method: 'GET' | 'POST', url: string, token: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendOnce(api, method, url, token, headers, body);
    } catch (err) {
      if (attempt >= 5 || url.includes('/buy/')) throw err;
      await sleep(100 * attempt);
    }
  }
}

async function sendOnce(api: Api, method: 'GET' | 'POST', url: string, token: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
  const res = await request(api.base + url, {
    method,
    dispatcher: api.agent,
    headers: { authorization: `Bearer ${token}`, ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.body.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.statusCode, body: parsed };
}

const codeOf = (r: Reply) => (r.body?.error?.code as string | undefined) ?? String(r.status);

/** One user's whole visit: arrive, (queue, challenge,) path, buy; done when bought, sold out or given up. */
async function visit(api: Api, sim: Sim, userId: string, bot: boolean, arriveAt: number): Promise<void> {
  const count = (k: string) => (sim.outcomes[k] = (sim.outcomes[k] ?? 0) + 1);
  const token = signUserToken(SECRET, userId, 3600);
  const s = sim.setting;
  const sid = sim.saleId;
  await sleep(Math.max(0, arriveAt - Date.now()));
  const giveUpAt = sim.opensAt + GIVE_UP_MS;

  /** The path, then the buy; true when the visit is over. */
  const pathAndBuy = async (pass: string | null): Promise<boolean> => {
    const headers: Record<string, string> = pass ? { 'x-seckill-pass': pass } : {};
    if (s.challenge === 'pow') {
      const c = await send(api, 'POST', `/api/sales/${sid}/challenge`, token, {}, {});
      if (c.status !== 200 || c.body?.kind !== 'pow') {
        count(`challenge ${c.status === 200 ? `kind ${c.body?.kind}` : codeOf(c)}`);
        return codeOf(c) === 'sold_out' || codeOf(c) === 'ended'; // nothing more to try
      }
      // A person's phone takes its time; a bot answers at machine speed.
      if (!bot) await sleep(rand(...HUMAN_SOLVE_MS));
      headers['x-seckill-challenge'] = `${c.body.challenge}:${solvePow(c.body.challenge, c.body.bits)}`;
    }
    sim.pathTimes.push(Date.now());
    const p = await send(api, 'POST', `/api/sales/${sid}/path`, token, headers);
    if (p.status !== 200) {
      const code = codeOf(p);
      count(`path ${code}`);
      if (code === 'sold_out' || code === 'ended') sim.soldOut = code === 'sold_out' || sim.soldOut;
      return code === 'sold_out' || code === 'ended' || code === 'limit_reached';
    }
    const b = await send(api, 'POST', `/api/sales/${sid}/buy/${encodeURIComponent(p.body.path)}`, token, pass ? { 'x-seckill-pass': pass } : {}, { quantity: 1 });
    if (b.status === 202) {
      count('reserved');
      sim.accepted.push({ orderId: b.body.orderId, userId, quantity: 1 });
      return true;
    }
    const code = codeOf(b);
    count(`buy ${code}`);
    if (code === 'sold_out') sim.soldOut = true;
    return code === 'sold_out' || code === 'limit_reached' || code === 'ended';
  };

  if (!s.room) {
    // No room: press until the sale answers (before the open: not_started, again and again).
    while (Date.now() < giveUpAt && !sim.soldOut) {
      if (await pathAndBuy(null)) return;
      await sleep(pace(bot));
    }
    if (!sim.soldOut) count('gave up');
    return;
  }

  let joined: Reply | null = await send(api, 'POST', `/api/sales/${sid}/queue`, token, {}, {});
  for (;;) {
    if (Date.now() > giveUpAt) {
      count('gave up');
      return;
    }
    const r = joined ?? (await send(api, 'GET', `/api/sales/${sid}/queue`, token));
    joined = null;
    const now = Date.now();
    if (r.status === 404) {
      // Dropped (not polled in time, or a pass that ran out): join again, at the back.
      count('rejoined');
      joined = await send(api, 'POST', `/api/sales/${sid}/queue`, token, {}, {});
      continue;
    }
    if (r.status !== 200) {
      count(`queue ${codeOf(r)}`);
      if (codeOf(r) === 'ended') return;
      await sleep(pace(bot));
      continue;
    }
    const a = r.body as { state: string; etaSeconds: number | null; pass?: string };
    if (a.state === 'sold_out') {
      count('room sold_out');
      return;
    }
    if (a.state === 'waiting' && now >= sim.opensAt && a.etaSeconds !== null && !sim.firstEta.has(userId)) {
      sim.firstEta.set(userId, { t: now, eta: a.etaSeconds });
    }
    if (a.state === 'admitted') {
      if (!sim.seenAdmitted.has(userId)) sim.seenAdmitted.set(userId, now);
      if (a.pass === undefined) return; // spent on an order already
      if (await pathAndBuy(a.pass)) return;
    }
    await sleep(pace(bot));
  }
}

/** The room's admitted total every 100 ms, until stopped. */
function sampleRoom(api: Api, saleId: string): { stop(): Promise<{ t: number; admitted: number }[]>; last(): Record<string, unknown> | null } {
  const samples: { t: number; admitted: number }[] = [];
  let last: Record<string, unknown> | null = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await send(api, 'GET', `/api/admin/sales/${saleId}/queue`, ADMIN);
        if (r.status === 200 && r.body?.room) {
          last = r.body.room as Record<string, unknown>;
          samples.push({ t: Date.now(), admitted: Number(last.admitted ?? 0) });
        }
      } catch {
        // a missed sample
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
    last: () => last,
  };
}

/** The fairness CSV's admission times (when the room keeps them): userId → admittedAt (ms). */
async function serverAdmissions(api: Api, saleId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const res = await request(`${api.base}/api/admin/sales/${saleId}/fairness`, { dispatcher: api.agent, headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/csv' } });
  const text = await res.body.text();
  if (res.statusCode !== 200) return out;
  const [head, ...rows] = text.trim().split('\n');
  const cols = head.split(',');
  const ui = cols.indexOf('userId');
  const ai = cols.indexOf('admittedAt');
  for (const row of rows) {
    const cells = row.split(',');
    const t = Date.parse(cells[ai] ?? '');
    if (Number.isFinite(t)) out.set(cells[ui], t);
  }
  return out;
}

async function runSetting(api: Api, s: Setting, users: number, units: number, admitPerSecond: number, log: (s: string) => void): Promise<SettingResult> {
  const bots = Math.round(users * BOT_SHARE);
  const base: SettingResult = {
    setting: s.name, notAvailable: null, saleId: null, users, bots, units, unitsSold: 0, botUnits: 0, botShareOfUsers: bots / users, botShareOfUnits: null,
    pathRequests: 0, peakPathPer100ms: 0, eta: null, admission: null, roomStats: null, report: null, outcomes: {}, invariants: null, durationMs: 0,
  };
  const t0 = performance.now();
  // Room for the bots' lead and every early person to arrive, and for the sale to be created.
  const opensAt = Date.now() + LEAD_MS + 500;
  const created = await api.patient('POST', '/api/admin/sales', ADMIN, {
    name: `bench fairness ${s.name}`,
    priceCents: 100,
    stock: units,
    perUserLimit: 1,
    startsAt: new Date(opensAt).toISOString(),
    endsAt: new Date(opensAt + 3600_000).toISOString(),
    ...(s.room ? { waitingRoom: { method: 'random', admitPerSecond } } : {}),
    ...(s.challenge ? { challenge: s.challenge } : {}),
  });
  if (created.status !== 201) {
    if (s.challenge) return { ...base, notAvailable: `not available: this server refuses challenge "${s.challenge}" (${created.status} ${created.body?.error?.message ?? ''})`.trim() };
    throw new Error(`create sale: ${created.status} ${JSON.stringify(created.body)}`);
  }
  const saleId = created.body.id as string;
  if (s.challenge) {
    // A server without the challenge route: say so, measure nothing.
    const probe = await send(api, 'POST', `/api/sales/${saleId}/challenge`, signUserToken(SECRET, 'probe', 60), {}, {});
    if (probe.status === 404) {
      await endSale(api, saleId);
      return { ...base, saleId, notAvailable: 'not available: this server has no POST /api/sales/:saleId/challenge' };
    }
  }
  const sim: Sim = { saleId, opensAt, setting: s, outcomes: {}, pathTimes: [], accepted: [], firstEta: new Map(), seenAdmitted: new Map(), soldOut: false };
  log(`fairness ${s.name}: ${fmt(users)} users (${fmt(bots)} bots), ${fmt(units)} units${s.room ? `, room ${admitPerSecond}/s` : ''}${s.challenge ? `, ${s.challenge} (${BENCH_POW_BITS} bits)` : ''} …`);
  const sampler = s.room ? sampleRoom(api, saleId) : null;
  const start = opensAt - LEAD_MS;
  await Promise.all(Array.from({ length: users }, (_, i) => {
    const bot = i < bots;
    const userId = bot ? `bot-${i}` : `user-${i - bots}`;
    const arriveAt = bot ? start : Math.random() < EARLY_PEOPLE ? rand(start + 500, opensAt) : rand(opensAt, opensAt + LATE_SPREAD_MS);
    return visit(api, sim, userId, bot, arriveAt).catch((err: unknown) => {
      sim.outcomes[`error ${(err as Error).name}`] = (sim.outcomes[`error ${(err as Error).name}`] ?? 0) + 1;
    });
  }));
  const samples = sampler ? await sampler.stop() : [];

  const invariants = await checkInvariants(api, ADMIN, saleId, units, 1, sim.accepted);
  const report = (await api.patient('GET', `/api/admin/sales/${saleId}/fairness?botPrefix=bot-`, ADMIN)).body as Record<string, unknown> | null;
  const unitsSold = sim.accepted.length;
  const botUnits = sim.accepted.filter((a) => a.userId.startsWith('bot-')).length;
  const result: SettingResult = {
    ...base,
    saleId,
    unitsSold,
    botUnits,
    botShareOfUnits: unitsSold > 0 ? botUnits / unitsSold : null,
    pathRequests: sim.pathTimes.length,
    peakPathPer100ms: peakWindow(sim.pathTimes, 100),
    roomStats: sampler?.last() ?? null,
    report,
    outcomes: sim.outcomes,
    invariants,
  };
  if (s.room) {
    // Admission times: the server's (exact, when the room keeps them), or the bench's first sight.
    const server = await serverAdmissions(api, saleId);
    const admittedAt = server.size > 0 ? server : sim.seenAdmitted;
    const etaSource = server.size > 0 ? 'admission time from the room\'s records' : 'admission time as first seen by the user\'s poll (people poll every 2 s)';
    const errors: number[] = [];
    for (const [userId, first] of sim.firstEta) {
      const at = admittedAt.get(userId);
      if (at !== undefined && at >= first.t) errors.push(first.eta - (at - first.t) / 1000);
    }
    const abs = errors.map(Math.abs);
    result.eta = errors.length === 0 ? null : {
      users: errors.length,
      medianAbsErrorS: percentile(abs, 50),
      p90AbsErrorS: percentile(abs, 90),
      meanErrorS: errors.reduce((a, x) => a + x, 0) / errors.length,
      source: etaSource,
    };
    const times = [...admittedAt.values()];
    const rates = server.size > 0 ? exactRates(times, opensAt) : admissionRates(samples, opensAt);
    result.admission = { configuredPerSecond: admitPerSecond, ...rates, source: server.size > 0 ? 'the room\'s admission times' : 'the room\'s admitted total, sampled every 100 ms' };
  }
  await endSale(api, saleId);
  result.durationMs = performance.now() - t0;
  return result;
}

async function endSale(api: Api, saleId: string): Promise<void> {
  await api.patient('POST', `/api/admin/sales/${saleId}/end`, ADMIN, {});
  await api.patient('POST', `/api/admin/sales/${saleId}/archive`, ADMIN, {});
}

const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);

/** The markdown tables (also printed). */
export function fairnessMarkdown(results: readonly SettingResult[]): string {
  const rows = results.map((r) => {
    if (r.notAvailable) return `| ${r.setting} | ${r.notAvailable} | | | | | |`;
    return `| ${r.setting} | ${pct(r.botShareOfUnits)} (${fmt(r.botUnits)} of ${fmt(r.unitsSold)}) | ${pct(r.botShareOfUsers)} (${fmt(r.bots)} of ${fmt(r.users)}) | ${fmt(r.peakPathPer100ms)} (${fmt(r.pathRequests)} in all) | ` +
      `${r.eta ? `${fmt(r.eta.medianAbsErrorS, 1)} / ${fmt(r.eta.p90AbsErrorS, 1)} s (${fmt(r.eta.users)} users)` : '—'} | ` +
      `${r.admission ? `${fmt(r.admission.max1s)} / ${fmt(r.admission.overall, 1)} per s, configured ${fmt(r.admission.configuredPerSecond)}` : '—'} | ${r.invariants?.ok ? 'hold' : 'FAIL'} |`;
  });
  const by = (name: SettingName) => results.find((r) => r.setting === name);
  /** The busiest 100 ms of path requests without and with the challenge, other things equal. */
  const smear = (without: SettingName, withPow: SettingName, what: string) => {
    const a = by(without);
    const b = by(withPow);
    if (!a || !b || a.notAvailable || b.notAvailable) return `${what}: not measured (${b?.notAvailable ?? a?.notAvailable ?? 'setting missing'})`;
    const ratio = b.peakPathPer100ms > 0 ? ` (${fmt(a.peakPathPer100ms / b.peakPathPer100ms, 2)}× lower)` : '';
    return `${what}: ${fmt(a.peakPathPer100ms)} → ${fmt(b.peakPathPer100ms)} path requests in the busiest 100 ms${ratio}`;
  };
  return [
    '| setting | bots\' share of units | bots\' share of users | path requests, busiest 100 ms | ETA error, median / p90 | admitted/s: busiest 1 s / overall | invariants |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `peak smearing, ${smear('none', 'pow', 'no room, without → with the pow challenge')}; ${smear('room', 'room+pow', 'in the room, without → with the pow challenge')} (a room already caps path requests at its admission rate).`,
    'ETA error: |estimated wait at the user\'s first poll after the open − actual wait until let out|, over the users let out. Overall admission rate: users let out ÷ time from the open to the last one.',
  ].join('\n');
}

export async function runFairnessBench(o: FairnessBenchOptions): Promise<number> {
  const users = o.users ?? FAIRNESS_DEFAULTS.users;
  const units = o.units ?? FAIRNESS_DEFAULTS.units;
  if (users < 10) throw new Error('--users: at least 10 (one in ten is a bot)');
  // The room lets the stock out in about 2 s.
  const admitPerSecond = o.admitPerSecond ?? Math.max(1, Math.round(units / 2));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const mode = o.redis ? `distributed ×${o.workers ?? 1}` : 'embedded';
  log(`seckill bench: profile fairness, ${mode}, ${fmt(users)} users, ${fmt(units)} units, pow ${BENCH_POW_BITS} bits`);
  const server = await startServer(o);
  const api = new Api(server.url, 256);
  const results: SettingResult[] = [];
  try {
    for (const s of SETTINGS) results.push(await runSetting(api, s, users, units, admitPerSecond, log));
  } finally {
    await api.close();
    await server.stop();
  }
  const md = fairnessMarkdown(results);
  const date = new Date().toISOString();
  const head = `seckill bench --profile fairness (${mode}), ${date}, Node ${process.version}, ${os.cpus().length} cores, load generator on the same machine; ` +
    `${fmt(users)} users (10 % bots: start ${LEAD_MS / 1000} s early, ask every ${BOT_EVERY_MS} ms; people ask every ${HUMAN_EVERY_MS / 1000} s, ${EARLY_PEOPLE * 100} % arrive before the open), ${fmt(units)} units, room random ${admitPerSecond}/s`;
  fs.mkdirSync(o.out, { recursive: true });
  const file = path.join(o.out, o.redis ? 'distributed-fairness' : 'embedded-fairness');
  fs.writeFileSync(`${file}.json`, JSON.stringify({ date, profile: 'fairness', users, units, admitPerSecond, powBits: BENCH_POW_BITS, results }, null, 2) + '\n');
  fs.writeFileSync(`${file}.md`, `${head}\n\n${md}\n`);
  process.stdout.write(`\n${head}\n\n${md}\n\nresults: ${path.relative(ROOT, file)}.{json,md}\n`);
  const failed = results.filter((r) => r.invariants && !r.invariants.ok);
  if (failed.length > 0) {
    log(`INVARIANTS FAILED:\n  ${failed.flatMap((r) => r.invariants?.failures ?? []).join('\n  ')}`);
    return 1;
  }
  log('invariants hold');
  return 0;
}
