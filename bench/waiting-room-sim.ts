// The waiting room (src/services/waiting-room.ts) on a simulated clock: admission overshoot
// (admitted against the configured rate), the estimate's error (etaSeconds at each poll against the
// wait that followed), and the stock cap under buyers who buy late or never.
// Run: node --import tsx bench/waiting-room-sim.ts [admitPerSecond] [users]
import type { Sale } from '../src/domain/sale.js';
import { stockCap } from '../src/domain/waiting-room.js';
import { WaitingRoomService } from '../src/services/waiting-room.js';

const RATE = Number(process.argv[2] ?? 50);
const USERS = Number(process.argv[3] ?? 3000);
const TICK = 100;

/** A small deterministic PRNG (mulberry32), so that every run measures the same sale. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function run(o: { stock: number; stockFactor: number; buyShare: number }) {
  const random = rng(7);
  const sale = { id: 'sim', name: 'sim', description: '', priceCents: 1, stock: o.stock, startsAt: 10_000, endsAt: null, perUserLimit: 1, paymentWindowSeconds: 600, paused: false, restockOnRefund: false, secret: 'sim-secret', createdAt: 0, waitingRoom: { method: 'random', admitPerSecond: RATE, stockFactor: o.stockFactor } } satisfies Sale;
  let available = o.stock;
  const sales = { get: () => sale, find: async () => sale, available: () => available, all: () => [sale] };
  const room = new WaitingRoomService(sales, { abandonAfterMs: 20_000, passTtlMs: 60_000 });
  // Half arrive in the 10 s before the open, half over the 20 s after it; each polls every 2 s.
  const arrivals = Array.from({ length: USERS }, (_, i) => ({ user: `u${i}`, at: i < USERS / 2 ? random() * 10_000 : 10_000 + random() * 20_000 }));
  const joined = new Map<string, number>();
  const lastEta = new Map<string, { at: number; eta: number }[]>();
  const admittedAt = new Map<string, number>();
  const buyAt = new Map<string, number>();
  const perSecond = new Map<number, number>();
  let capViolations = 0;
  let maxOverCap = 0;
  for (let now = 0; now <= 400_000; now += TICK) {
    for (const a of arrivals) {
      if (!joined.has(a.user) && a.at <= now) {
        joined.set(a.user, now);
        await room.join(sale.id, a.user, now);
      }
    }
    const before = (await room.stats(sale.id, now))?.admitted ?? 0;
    await room.tick(now);
    const after = (await room.stats(sale.id, now))?.admitted ?? 0;
    // Right after admission: those out and not bought within floor(available × factor). (Later buys
    // lower the cap by the factor per unit and those out by one: with a factor above 1 they may then
    // exceed it until they buy or their passes run out; nobody more is let out meanwhile.)
    const st = await room.stats(sale.id, now);
    if (st && after > before) {
      const cap = Math.floor(available * o.stockFactor);
      if (st.outstanding > cap) capViolations++;
      maxOverCap = Math.max(maxOverCap, st.outstanding - cap);
    }
    if (after > before) perSecond.set(Math.floor(now / 1000), (perSecond.get(Math.floor(now / 1000)) ?? 0) + after - before);
    // Every user polls every 2 s (staggered by id).
    for (const [user] of joined) {
      if (admittedAt.has(user) || (now + Number(user.slice(1)) * 37) % 2000 >= TICK) continue;
      const r = await room.poll(sale.id, user, now).catch(() => null);
      if (!r) continue;
      if (r.state === 'admitted') {
        admittedAt.set(user, now);
        if (random() < o.buyShare) buyAt.set(user, now + 2_000 + random() * 20_000);
      } else if (r.state === 'waiting' && r.etaSeconds !== null && now >= sale.startsAt) {
        const list = lastEta.get(user) ?? [];
        list.push({ at: now, eta: r.etaSeconds });
        lastEta.set(user, list);
      }
    }
    for (const [user, at] of buyAt) {
      if (at > now || available <= 0) continue;
      const r = await room.poll(sale.id, user, now).catch(() => null);
      if (r?.pass && await room.claimPass(sale, user, r.pass, now)) {
        available--;
        await room.settlePass(sale.id, user, true);
      }
      buyAt.delete(user);
    }
    if (admittedAt.size >= USERS || (available <= 0 && now > 60_000)) break;
  }
  // ETA error: each estimate against the moment that user was actually let out.
  const errors: number[] = [];
  for (const [user, list] of lastEta) {
    const out = admittedAt.get(user);
    if (out === undefined) continue;
    for (const e of list) errors.push(e.eta - (out - e.at) / 1000);
  }
  const counts = [...perSecond.entries()].filter(([s]) => s >= 11).map(([, n]) => n);
  const busySeconds = counts.length ? counts : [0];
  return {
    admitted: admittedAt.size,
    peakPerSecond: Math.max(...busySeconds),
    meanPerSecond: busySeconds.reduce((a, b) => a + b, 0) / busySeconds.length,
    etaErrorMedian: quantile(errors.map(Math.abs), 0.5),
    etaErrorP90: quantile(errors.map(Math.abs), 0.9),
    etaBias: errors.reduce((a, b) => a + b, 0) / Math.max(1, errors.length),
    estimates: errors.length,
    capViolations,
    maxOverCap,
    sold: o.stock - available,
    stockCapAtEnd: stockCap(available, o.stockFactor, (await room.stats(sale.id))?.outstanding ?? 0),
  };
}

const plenty = await run({ stock: 1_000_000, stockFactor: 1, buyShare: 0 });
console.log(`rate ${RATE}/s, ${USERS} users, stock unlimited:`);
console.log(`  admitted per second: peak ${plenty.peakPerSecond}, mean ${plenty.meanPerSecond.toFixed(2)} (configured ${RATE}); overshoot ${(((plenty.peakPerSecond - RATE) / RATE) * 100).toFixed(1)} %`);
console.log(`  ETA error over ${plenty.estimates} estimates: median |err| ${plenty.etaErrorMedian.toFixed(2)} s, p90 ${plenty.etaErrorP90.toFixed(2)} s, bias ${plenty.etaBias.toFixed(2)} s (positive: overestimated)`);
const scarce = await run({ stock: 200, stockFactor: 1.2, buyShare: 0.7 });
console.log(`rate ${RATE}/s, ${USERS} users, stock 200, stockFactor 1.2, 70 % of those let out buy 2–22 s later:`);
console.log(`  let out ${scarce.admitted}, sold ${scarce.sold}; admissions leaving outstanding > floor(available × factor): ${scarce.capViolations}`);
const exact = await run({ stock: 200, stockFactor: 1, buyShare: 0.7 });
console.log(`  the same with stockFactor 1: let out ${exact.admitted}, sold ${exact.sold}; admissions over the cap: ${exact.capViolations}`);
