// The dashboard's per-second figures (src/http/live-stats.ts), on a made-up clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIVE_WINDOW_SECONDS, LiveStats } from '../../src/services/live-stats.js';

const T0 = 1_800_000_000_000; // a whole second, in ms

function withWriter() {
  const writer = { written: 0, backlog: 0 };
  const live = new LiveStats({ ordersWritten: () => writer.written, backlog: () => writer.backlog });
  return { live, writer };
}

test('outcomes and latency percentiles per second; only complete seconds are reported', () => {
  const { live } = withWriter();
  for (let i = 1; i <= 100; i++) live.recordBuy('s1', i <= 10 ? 'ok' : 'sold_out', i, T0 + i);
  live.recordBuy('s1', 'busy', 5, T0 + 500); // same second
  live.recordBuy('s1', 'ok', 7, T0 + 2100); // the next-but-one second
  live.recordBuy('s2', 'ok', 1, T0 + 10); // another sale

  const s = live.series('s1', T0 + 2500);
  assert.equal(s.t.at(-1), T0 / 1000 + 1, 'the current second is not complete yet');
  const at = s.t.indexOf(T0 / 1000);
  assert.equal(s.requests.ok[at], 10);
  assert.equal(s.requests.sold_out[at], 90);
  assert.equal(s.requests.busy[at], 1);
  assert.ok(Math.abs(s.p50Ms[at]! - 50) <= 2, `p50 ${s.p50Ms[at]}`);
  assert.ok(Math.abs(s.p99Ms[at]! - 99) <= 2, `p99 ${s.p99Ms[at]}`);
  assert.equal(s.requests.ok[at + 1], 0, 'a second without requests');
  assert.equal(s.p50Ms[at + 1], null);

  const later = live.series('s1', T0 + 3500, T0 / 1000 + 1);
  assert.deepEqual(later.t, [T0 / 1000 + 2], 'only what comes after `since`');
  assert.equal(later.requests.ok[0], 1);
  assert.equal(later.p50Ms[0], 7);
});

test('the window holds the last five minutes, and old slots are not mistaken for new ones', () => {
  const { live } = withWriter();
  live.recordBuy('s', 'ok', 1, T0);
  const s = live.series('s', T0 + LIVE_WINDOW_SECONDS * 1000 + 5000);
  assert.equal(s.t.length, LIVE_WINDOW_SECONDS - 1);
  assert.ok(!s.t.includes(T0 / 1000));
  assert.equal(s.requests.ok.reduce((a, b) => a + b, 0), 0);
  // The same slot, one lap later: counted afresh.
  live.recordBuy('s', 'ok', 1, T0 + LIVE_WINDOW_SECONDS * 1000);
  live.recordBuy('s', 'ok', 1, T0 + LIVE_WINDOW_SECONDS * 1000 + 1);
  const t = live.series('s', T0 + LIVE_WINDOW_SECONDS * 1000 + 1000);
  assert.equal(t.requests.ok.at(-1), 2);
});

test('orders written per second, spread over seconds without a sample; backlog at its highest', () => {
  const { live, writer } = withWriter();
  live.series('s', T0); // first sample: 0 written
  writer.backlog = 40;
  writer.written = 100;
  live.recordBuy('s', 'ok', 1, T0 + 1000);
  writer.backlog = 10;
  live.recordBuy('s', 'ok', 1, T0 + 1200);
  writer.written = 400;
  writer.backlog = 0;
  const s = live.series('s', T0 + 4000); // 300 written over seconds 1–3
  const at = (sec: number) => s.t.indexOf(T0 / 1000 + sec);
  assert.equal(s.ordersWritten[at(0)], 100);
  assert.deepEqual([at(1), at(2), at(3)].map((i) => s.ordersWritten[i]), [100, 100, 100]);
  assert.equal(s.backlog[at(1)], 40);
  assert.equal(s.backlog[at(2)], null);
});

test('sold-out time: the last 202 before the sale ran out; cleared when stock returns', () => {
  const { live } = withWriter();
  assert.equal(live.soldOutAt('s', 0), null);
  live.recordBuy('s', 'ok', 1, T0 + 100);
  live.recordBuy('s', 'ok', 1, T0 + 250);
  live.recordBuy('s', 'sold_out', 1, T0 + 400);
  assert.equal(live.soldOutAt('s', 0), T0 + 250);
  assert.equal(live.soldOutAt('s', 1), null, 'a reservation expired: stock is back');
  live.recordBuy('s', 'ok', 1, T0 + 900);
  assert.equal(live.soldOutAt('s', 0), T0 + 900, 'seen sold out with no refusal yet');
});
