// LocalRefusals: the hints the gateway refuses from without asking the engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalRefusals } from '../../src/gateway/local-refusals.js';

test('sold out: marked, cleared, and released stock clears it', () => {
  const r = new LocalRefusals();
  assert.equal(r.isSoldOut('s'), false);
  r.markSoldOut('s');
  assert.equal(r.isSoldOut('s'), true);
  assert.equal(r.isSoldOut('other'), false);
  r.clearSoldOut('s');
  assert.equal(r.isSoldOut('s'), false);
  r.markSoldOut('s');
  r.released('s', 'ann');
  assert.equal(r.isSoldOut('s'), false);
});

test('at limit: per sale and user; released clears only that user of that sale', () => {
  const r = new LocalRefusals();
  r.markAtLimit('s', 'ann');
  r.markAtLimit('s', 'bob');
  r.markAtLimit('t', 'ann');
  assert.ok(r.holdsLimit('s', 'ann'));
  assert.equal(r.holdsLimit('s', 'cyd'), false);
  r.released('s', 'ann');
  assert.equal(r.holdsLimit('s', 'ann'), false);
  assert.ok(r.holdsLimit('s', 'bob'));
  assert.ok(r.holdsLimit('t', 'ann'));
});

test('every hint expires by itself: one set from a wrong result (a failed commit, a lost signal) does not stay', async () => {
  // Issue 9, defects 4 and 7: a hint nothing clears must still end. Short TTLs for the test.
  const Ctor = LocalRefusals as unknown as new (soldOutTtlMs?: number, atLimitTtlMs?: number) => LocalRefusals;
  const r = new Ctor(50, 50);
  r.markSoldOut('s');
  r.markAtLimit('s', 'ann');
  assert.ok(r.isSoldOut('s'));
  assert.ok(r.holdsLimit('s', 'ann'));
  const deadline = Date.now() + 10_000;
  while ((r.isSoldOut('s') || r.holdsLimit('s', 'ann')) && Date.now() < deadline) await sleep(20);
  assert.equal(r.isSoldOut('s'), false, 'sold-out flag expired');
  assert.equal(r.holdsLimit('s', 'ann'), false, 'at-limit memo expired');
});

test('setting a hint again keeps it alive', async () => {
  const Ctor = LocalRefusals as unknown as new (soldOutTtlMs?: number, atLimitTtlMs?: number) => LocalRefusals;
  const r = new Ctor(1000, 1000);
  const first = Date.now();
  r.markAtLimit('s', 'ann');
  await sleep(600);
  const refreshed = Date.now();
  r.markAtLimit('s', 'ann');
  await sleep(600);
  const held = r.holdsLimit('s', 'ann');
  // Asserted only when the clock says it must hold (a loaded machine may sleep far longer).
  if (Date.now() - refreshed < 1000 && Date.now() - first >= 1000) assert.ok(held, 'refreshed under 1 s ago, TTL 1 s');
});
