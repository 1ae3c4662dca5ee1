// The waiting room's pure rules (src/domain/waiting-room.ts, src/domain/pass.ts): the shuffle is
// uniform and anyone can recompute it from the revealed seed; admission arithmetic; the pass format.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { readPass, signPass, passNonce } from '../../src/domain/pass.js';
import {
  admission, etaSeconds, RateMeter, roomSeed, roomSettings, seedHash, shuffleKey, shuffleRank, shuffled, stockCap,
} from '../../src/domain/waiting-room.js';

/** Pearson's chi-square statistic of observed counts against one expected count. */
function chiSquare(observed: number[], expected: number): number {
  return observed.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
}

test('shuffle: every user is equally likely at every place (chi-square over 6,000 simulated rooms)', () => {
  const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
  const rooms = 6_000;
  // counts[user][place]
  const counts = users.map(() => new Array<number>(users.length).fill(0));
  for (let i = 0; i < rooms; i++) {
    const order = shuffled(roomSeed(`sale-${i}`, 'a secret'), users);
    order.forEach((u, place) => counts[users.indexOf(u)][place]++);
  }
  // 36 cells, (6-1)² = 25 degrees of freedom: 52.62 is the 0.1 % critical value. The seeds are
  // fixed, so this is deterministic (no flaky run); a biased rule (say, by user id) fails it by far.
  const stat = chiSquare(counts.flat(), rooms / users.length);
  assert.ok(stat < 52.62, `chi-square ${stat.toFixed(1)} over 25 df`);
});

test('shuffle: every order of 4 users is equally likely (chi-square over the 24 permutations)', () => {
  const users = ['ann', 'bob', 'cy', 'dee'];
  const rooms = 4_800;
  const seen = new Map<string, number>();
  for (let i = 0; i < rooms; i++) {
    const seed = crypto.createHash('sha256').update(`room ${i}`).digest('hex');
    const k = shuffled(seed, users).join(',');
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  assert.equal(seen.size, 24);
  // 23 degrees of freedom: 49.73 is the 0.1 % critical value.
  const stat = chiSquare([...seen.values()], rooms / 24);
  assert.ok(stat < 49.73, `chi-square ${stat.toFixed(1)} over 23 df`);
});

test('shuffle: reproducible from the revealed seed by the documented rule (first 13 hex digits of HMAC-SHA256(seed, userId), ascending)', () => {
  const seed = roomSeed('sale-x', 'the sale secret');
  assert.match(seed, /^[0-9a-f]{64}$/);
  // The published hash commits to the seed.
  assert.equal(seedHash(seed), crypto.createHash('sha256').update(seed).digest('hex'));
  const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
  // Anyone's recomputation, written independently of the module.
  const rank = (u: string) => BigInt('0x' + crypto.createHmac('sha256', seed).update(u).digest('hex').slice(0, 13));
  const theirs = [...users].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : a < b ? -1 : 1));
  assert.deepEqual(shuffled(seed, users), theirs);
  // The arrival order does not matter, only the seed and the ids.
  assert.deepEqual(shuffled(seed, [...users].reverse()), theirs);
  assert.equal(shuffleKey(seed, 'user-1'), crypto.createHmac('sha256', seed).update('user-1').digest('hex'));
  // The rank is exact as a double (a Redis score): below 2^52, the same integer as the BigInt.
  for (const u of users) {
    assert.ok(shuffleRank(seed, u) < 2 ** 52);
    assert.equal(BigInt(shuffleRank(seed, u)), rank(u));
  }
  // Another sale, another seed, another order.
  assert.notDeepEqual(shuffled(roomSeed('sale-y', 'the sale secret'), users), theirs);
});

test('stock cap: remaining units × factor, less the users out who have not bought', () => {
  assert.equal(stockCap(10, 1, 0), 10);
  assert.equal(stockCap(10, 1, 4), 6);
  assert.equal(stockCap(10, 1.5, 4), 11);
  assert.equal(stockCap(10, 1, 12), 0, 'never negative');
  assert.equal(stockCap(0, 3, 0), 0, 'sold out: nobody');
  assert.equal(stockCap(3, 1.2, 0), 3, 'whole users only');
});

test('admission: the rate, the quarter-second carry, the stock and the line each bound it', () => {
  assert.deepEqual(admission({ credit: 0, admitPerSecond: 10, elapsedMs: 100, cap: 100, waiting: 100 }), { admit: 1, credit: 0 });
  assert.equal(admission({ credit: 2.5, admitPerSecond: 10, elapsedMs: 100, cap: 100, waiting: 100 }).admit, 3, 'a quarter second is carried, plus the tick');
  assert.equal(admission({ credit: 0, admitPerSecond: 40, elapsedMs: 60_000, cap: 0, waiting: 100 }).credit, 10, 'a long pause saves up a quarter second, not a minute');
  assert.equal(admission({ credit: 0, admitPerSecond: 2, elapsedMs: 60_000, cap: 0, waiting: 100 }).credit, 1, 'at least one user is carried');
  assert.equal(admission({ credit: 0, admitPerSecond: 10, elapsedMs: 1000, cap: 3, waiting: 100 }).admit, 3);
  assert.equal(admission({ credit: 0, admitPerSecond: 10, elapsedMs: 1000, cap: 100, waiting: 2 }).admit, 2);
  const slow = admission({ credit: 0, admitPerSecond: 0.5, elapsedMs: 1000, cap: 100, waiting: 5 });
  assert.equal(slow.admit, 0);
  assert.equal(admission({ ...slow, admitPerSecond: 0.5, elapsedMs: 1000, cap: 100, waiting: 5 }).admit, 1);
});

test('admission over a simulated minute at 100-ms ticks: never more than rate × t', () => {
  for (const rate of [0.7, 3, 25, 400]) {
    let credit = 0;
    let total = 0;
    for (let tick = 1; tick <= 600; tick++) {
      const a = admission({ credit, admitPerSecond: rate, elapsedMs: 100, cap: 1e9, waiting: 1e9 });
      credit = a.credit;
      total += a.admit;
      assert.ok(total <= rate * tick * 0.1 + 1e-9, `rate ${rate}: ${total} out after ${tick} ticks`);
    }
    assert.ok(total >= rate * 60 - 1, `rate ${rate}: ${total} out in 60 s`);
  }
});

test('rate meter and the estimated wait', () => {
  const m = new RateMeter(10);
  const open = 1_000_000;
  assert.equal(m.rate(open + 500, open), 0);
  // One user every 200 ms (5/s), as the ticks let them out.
  for (let t = 0; t <= 400; t += 200) m.add(1, open + t);
  assert.equal(m.rate(open + 500, open), 0, 'in the first second nothing is measured yet (the estimate takes the configured rate)');
  for (let t = 600; t < 1_500; t += 200) m.add(1, open + t);
  const early = m.rate(open + 1_500, open);
  assert.ok(Math.abs(early - 5) < 0.5, `a second and a half after the open, over the time since it: ${early}`);
  for (let t = 1_600; t < 19_500; t += 200) m.add(1, open + t);
  const later = m.rate(open + 19_500, open);
  assert.ok(Math.abs(later - 5) < 0.3, `over the trailing window: ${later}`);
  assert.equal(etaSeconds(50, 5, 100), 10, 'the measured rate wins');
  assert.equal(etaSeconds(50, 0, 10), 5, 'nothing measured yet: the configured rate');
  assert.equal(etaSeconds(0, 0, 10), 0);
  assert.equal(etaSeconds(7, 2, 10), 4, 'to the nearest second');
  assert.equal(etaSeconds(5, 2, 10), 3);
  assert.equal(etaSeconds(1, 50, 10), 1, 'at least a second while anyone is ahead');
});

test('settings: checked, stockFactor defaults to 1', () => {
  assert.deepEqual(roomSettings({ method: 'fifo', admitPerSecond: 5 }), { method: 'fifo', admitPerSecond: 5, stockFactor: 1 });
  assert.equal(typeof roomSettings({ method: 'random', admitPerSecond: 0 }), 'string');
  assert.equal(typeof roomSettings({ method: 'random', admitPerSecond: 5, stockFactor: 0.5 }), 'string');
  assert.equal(typeof roomSettings({ method: 'lottery' as 'fifo', admitPerSecond: 5 }), 'string');
});

test('pass: genuine, bound to sale, user and expiry; forgeries and swaps refused', () => {
  const secret = 'sale secret';
  const claims = { saleId: 's1', userId: 'ann', expiresAt: 10_000, nonce: passNonce() };
  const pass = signPass(secret, claims);
  assert.deepEqual(readPass(secret, pass, 's1', 'ann', 9_999), { ok: true, claims });
  assert.deepEqual(readPass(secret, pass, 's1', 'ann', 10_000), { ok: false, why: 'expired' });
  assert.deepEqual(readPass(secret, pass, 's1', 'bob', 5_000), { ok: false, why: 'other_user' });
  assert.deepEqual(readPass(secret, pass, 's2', 'ann', 5_000), { ok: false, why: 'other_sale' });
  assert.deepEqual(readPass('another secret', pass, 's1', 'ann', 5_000), { ok: false, why: 'forged' });
  // Claims rewritten (bob's name in ann's pass) without the key: the MAC no longer matches.
  const [p, , m] = pass.split('.');
  const swapped = Buffer.from(JSON.stringify({ s: 's1', u: 'bob', e: 10_000, n: claims.nonce })).toString('base64url');
  assert.deepEqual(readPass(secret, `${p}.${swapped}.${m}`, 's1', 'bob', 5_000), { ok: false, why: 'forged' });
  for (const junk of [null, '', 'p1', 'p1.x', 'p2.a.b', 'x'.repeat(2000)]) assert.equal(readPass(secret, junk, 's1', 'ann', 0).ok, false, String(junk));
});
