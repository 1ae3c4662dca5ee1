// The fairness report's arithmetic (src/domain/fairness.ts): FIFO inversions in O(n log n) agree
// with counting every pair; arrival, bot shares, and a sale without a room.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fairnessReport, fifoInversions, NO_ROOM_ARRIVAL, type FairnessUser } from '../../src/domain/fairness.js';

function slowInversions(xs: { joinedAt: number; admittedAt: number }[]): number {
  let n = 0;
  for (const a of xs) for (const b of xs) if (a.joinedAt < b.joinedAt && a.admittedAt > b.admittedAt) n++;
  return n;
}

test('FIFO inversions: the merge count equals the pairwise count, ties are never inversions', () => {
  let seed = 7;
  const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % k);
  for (let round = 0; round < 200; round++) {
    const n = rnd(60);
    // Small ranges: many equal join and admission times.
    const xs = Array.from({ length: n }, () => ({ joinedAt: rnd(20), admittedAt: rnd(20) }));
    assert.equal(fifoInversions(xs), slowInversions(xs), JSON.stringify(xs));
  }
  assert.equal(fifoInversions([]), 0);
  assert.equal(fifoInversions([{ joinedAt: 1, admittedAt: 5 }, { joinedAt: 2, admittedAt: 5 }]), 0, 'let out in the same tick');
  assert.equal(fifoInversions([{ joinedAt: 3, admittedAt: 1 }, { joinedAt: 2, admittedAt: 2 }, { joinedAt: 1, admittedAt: 3 }]), 3);
  const big = Array.from({ length: 100_000 }, (_, i) => ({ joinedAt: i, admittedAt: 100_000 - i }));
  assert.equal(fifoInversions(big), (100_000 * 99_999) / 2, 'reversed: every pair');
});

const u = (userId: string, firstJoinedAt: number | null, admittedAt: number | null, units: number, joinedAt = firstJoinedAt): FairnessUser =>
  ({ userId, firstJoinedAt, joinedAt, admittedAt, units });

test('report: arrival before/after the open, unknown arrival, bot shares, fifo inversions', () => {
  const users = [
    u('bot-1', 500, 1100, 1), u('bot-2', 600, 1300, 0),
    u('user-1', 700, 1200, 1), u('user-2', 1500, 1600, 1, 1550), u('user-3', 1700, null, 0),
    u('user-4', null, null, 1),
  ];
  const r = fairnessReport({ opensAt: 1000, method: 'fifo', users, botPrefix: 'bot-' });
  assert.equal(r.users, 6);
  assert.equal(r.units, 4);
  assert.deepEqual(r.arrival, { beforeOpen: { users: 3, units: 2 }, afterOpen: { users: 2, units: 1 }, unknown: { users: 1, units: 1 } });
  assert.equal(r.arrivalUnknown, null);
  // Admitted by join: bot-1 (500→1100), bot-2 (600→1300), user-1 (700→1200), user-2 (1550→1600): one inversion.
  assert.deepEqual(r.fifoInversions, { inversions: 1, pairs: 6, admitted: 4 });
  assert.deepEqual(r.bots, { prefix: 'bot-', users: 2, units: 1, shareOfUsers: 2 / 6, shareOfUnits: 1 / 4 });

  const random = fairnessReport({ opensAt: 1000, method: 'random', users, botPrefix: '' });
  assert.equal(random.fifoInversions, null, 'random rooms: no FIFO order to invert');
  assert.deepEqual(random.bots, { prefix: '', users: 0, units: 0, shareOfUsers: 0, shareOfUnits: 0 });

  const none = fairnessReport({ opensAt: 1000, method: null, users: [u('bot-9', null, null, 2)], botPrefix: 'bot-' });
  assert.equal(none.arrival, null);
  assert.equal(none.arrivalUnknown, NO_ROOM_ARRIVAL);
  assert.equal(none.bots.shareOfUnits, 1);
  const empty = fairnessReport({ opensAt: 0, method: null, users: [], botPrefix: 'bot-' });
  assert.equal(empty.bots.shareOfUnits, null);
  assert.equal(empty.bots.shareOfUsers, null);
});
