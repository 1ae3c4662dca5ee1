// The in-process waiting room (src/services/waiting-room.ts) on a hand-driven clock: one place per
// user, the shuffle at the open, admission by rate and by stock, abandonment, sold out, passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sale } from '../../src/domain/sale.js';
import { roomSeed, seedHash, shuffled } from '../../src/domain/waiting-room.js';
import { WaitingRoomService } from '../../src/services/waiting-room.js';
import { sale as fakeSale } from '../support/fakes.js';

const OPEN = 1_000_000;

function setup(room: Partial<NonNullable<Sale['waitingRoom']>> = {}, available = 100) {
  const s = fakeSale({ id: 'room-sale', startsAt: OPEN, endsAt: null, waitingRoom: { method: 'fifo', admitPerSecond: 10, stockFactor: 1, ...room } });
  const state = { available };
  const sales = {
    get: (id: string) => (id === s.id ? s : undefined),
    find: async (id: string) => (id === s.id ? s : undefined),
    available: () => state.available,
    all: () => [s],
  };
  const wr = new WaitingRoomService(sales, { abandonAfterMs: 5_000, passTtlMs: 10_000 });
  /** Tick every 100 ms from `from` to `to` (inclusive), polling `keep` users at each second. */
  const run = async (from: number, to: number, keep: string[] = []) => {
    for (let t = from; t <= to; t += 100) {
      await wr.tick(t);
      if (t % 1000 === 0) for (const u of keep) await wr.poll(s.id, u, t).catch(() => undefined);
    }
  };
  return { s, state, wr, run };
}

const users = (n: number, prefix = 'u') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test('one place per user: joining again keeps the place', async () => {
  const { s, wr } = setup();
  for (const u of ['ann', 'bob', 'cy']) await wr.join(s.id, u, OPEN - 5_000);
  await wr.tick(OPEN - 4_900);
  const again = await wr.join(s.id, 'bob', OPEN - 4_800);
  assert.deepEqual({ state: again.state, position: again.position, ahead: again.ahead }, { state: 'waiting', position: 2, ahead: 1 });
  assert.equal((await wr.stats(s.id))?.waiting, 3);
});

test('random: no place shown before the open; at the open the pre-queue is ordered by the revealed seed', async () => {
  const { s, wr } = setup({ method: 'random', admitPerSecond: 0.001 });
  const early = users(30);
  for (const u of early) assert.deepEqual(await wr.join(s.id, u, OPEN - 3_000), { state: 'waiting', position: null, ahead: null, etaSeconds: null });
  const before = await wr.seed(s.id, OPEN - 1);
  assert.deepEqual(Object.keys(before), ['seedHash']);
  await wr.tick(OPEN);
  await wr.join(s.id, 'late-1', OPEN + 10);
  await wr.join(s.id, 'late-2', OPEN + 20);
  await wr.tick(OPEN + 100);
  const after = await wr.seed(s.id, OPEN + 100);
  assert.equal(after.seedHash, before.seedHash);
  assert.equal(seedHash(after.seed ?? ''), before.seedHash, 'the seed is the one committed to');
  const expected = [...shuffled(after.seed ?? '', early), 'late-1', 'late-2'];
  const got: string[] = [];
  for (const u of [...early, 'late-1', 'late-2']) got[((await wr.poll(s.id, u, OPEN + 200)).position ?? 0) - 1] = u;
  assert.deepEqual(got, expected, 'pre-queue by HMAC(seed, id), later arrivals behind in arrival order');
  assert.equal(after.seed, roomSeed(s.id, s.secret));
});

test('admission follows the rate: 10/s over 3 s lets out 30, never more', async () => {
  const { s, wr, run } = setup({ admitPerSecond: 10 });
  const all = users(100);
  for (const u of all) await wr.join(s.id, u, OPEN - 100);
  await run(OPEN, OPEN + 3_000, all);
  const stats = await wr.stats(s.id, OPEN + 3_000);
  assert.ok(stats);
  assert.ok(stats.admitted <= 30 && stats.admitted >= 29, `${stats.admitted} let out`);
  const last = await wr.poll(s.id, 'u99', OPEN + 3_000);
  assert.equal(last.state, 'waiting');
  assert.equal(last.ahead, 99 - stats.admitted);
  assert.ok(last.etaSeconds !== null && last.etaSeconds >= 6 && last.etaSeconds <= 8, `eta ${last.etaSeconds}`);
});

test('admission never exceeds what the stock allows: units × factor less those out and not bought', async () => {
  const { s, state, wr, run } = setup({ admitPerSecond: 1000, stockFactor: 1.5 }, 4);
  const all = users(20);
  for (const u of all) await wr.join(s.id, u, OPEN - 100);
  await run(OPEN, OPEN + 2_000, all);
  assert.equal((await wr.stats(s.id, OPEN + 2_000))?.admitted, 6, '4 units × 1.5');
  // u0 buys one unit: its pass is spent, 3 units left: cap 4 (floor 4.5) − 5 still out.
  const p0 = (await wr.poll(s.id, 'u0', OPEN + 2_000)).pass ?? null;
  assert.ok(await wr.claimPass(s, 'u0', p0, OPEN + 2_000));
  state.available = 3;
  await wr.settlePass(s.id, 'u0', true);
  await run(OPEN + 2_100, OPEN + 4_000, all);
  assert.equal((await wr.stats(s.id, OPEN + 4_000))?.admitted, 6);
  // The passes of the other five run out unused (10 s): they stop counting, others come out.
  await run(OPEN + 4_100, OPEN + 13_000, all.slice(6));
  assert.equal((await wr.stats(s.id, OPEN + 13_000))?.outstanding, 4, 'floor(3 × 1.5) − 0');
});

test('abandonment: a place not polled is dropped; coming back joins at the back', async () => {
  const { s, wr, run } = setup({ admitPerSecond: 0.001 });
  for (const u of ['ann', 'bob', 'cy']) await wr.join(s.id, u, OPEN - 1_000);
  await run(OPEN, OPEN + 7_000, ['bob', 'cy']);
  await assert.rejects(wr.poll(s.id, 'ann', OPEN + 7_000), /Not in this sale/);
  assert.equal((await wr.poll(s.id, 'bob', OPEN + 7_000)).position, 1, 'ann no longer ahead of bob');
  assert.equal((await wr.join(s.id, 'ann', OPEN + 7_000)).position, 3);
  assert.equal((await wr.stats(s.id))?.abandoned, 1);
});

test('sold out: everyone waiting is told at their next poll, admission stops; stock back, it resumes', async () => {
  const { s, state, wr, run } = setup({ admitPerSecond: 1 }, 5);
  const all = users(10);
  for (const u of all) await wr.join(s.id, u, OPEN - 100);
  await run(OPEN, OPEN + 1_000, all);
  const out = (await wr.stats(s.id, OPEN + 1_000))?.admitted ?? 0;
  state.available = 0;
  for (const u of all.slice(out)) assert.equal((await wr.poll(s.id, u, OPEN + 1_001)).state, 'sold_out', u);
  await run(OPEN + 1_100, OPEN + 4_000, all);
  assert.equal((await wr.stats(s.id, OPEN + 4_000))?.admitted, out, 'nobody let out while sold out');
  state.available = 2;
  await run(OPEN + 4_100, OPEN + 7_000, all);
  assert.ok(((await wr.stats(s.id, OPEN + 7_000))?.admitted ?? 0) > out, 'admission resumed');
  assert.equal((await wr.poll(s.id, 'u9', OPEN + 7_000)).state, 'waiting');
});

test('passes: good once for a buy, bound to the user, refused after expiry or when forged', async () => {
  const { s, wr, run } = setup({ admitPerSecond: 100 });
  await wr.join(s.id, 'ann', OPEN - 100);
  await wr.join(s.id, 'bob', OPEN - 100);
  await run(OPEN, OPEN + 500, ['ann', 'bob']);
  const ann = await wr.poll(s.id, 'ann', OPEN + 500);
  assert.equal(ann.state, 'admitted');
  const pass = ann.pass ?? null;
  assert.ok(pass);
  assert.equal(await wr.checkPass(s, 'bob', pass, OPEN + 500), false, "ann's pass is not bob's");
  assert.equal(await wr.checkPass(s, 'ann', pass.slice(0, -2) + 'xx', OPEN + 500), false, 'forged');
  assert.equal(await wr.checkPass(s, 'ann', null, OPEN + 500), false);
  assert.equal(await wr.checkPass(s, 'ann', pass, OPEN + 500), true);
  // A refused buy gives the pass back; a reserved one spends it.
  assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 600), true);
  assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 600), false, 'one buy at a time with a pass');
  await wr.settlePass(s.id, 'ann', false);
  assert.equal(await wr.claimPass(s, 'ann', pass, OPEN + 700), true);
  await wr.settlePass(s.id, 'ann', true);
  assert.equal(await wr.checkPass(s, 'ann', pass, OPEN + 800), false, 'spent');
  assert.equal((await wr.poll(s.id, 'ann', OPEN + 800)).pass, undefined);
  // One pass, one buy: for another, ann joins again, at the back.
  assert.equal((await wr.join(s.id, 'ann', OPEN + 800)).state, 'waiting');
  const bob = (await wr.poll(s.id, 'bob', OPEN + 800)).pass ?? null;
  assert.equal(await wr.checkPass(s, 'bob', bob, OPEN + 500 + 10_000), false, 'expired');
});
