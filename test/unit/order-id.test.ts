// Order ids (src/domain/order-id.ts): UUID v7 layout, ordered within the process, unique.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newOrderId } from '../../src/domain/order-id.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond field of a v7 id. */
const msOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

test('an order id is a UUID: version 7, variant 10, the time in its first 48 bits', () => {
  const before = Date.now();
  const id = newOrderId();
  const after = Date.now();
  assert.match(id, UUID_V7);
  const ms = msOf(id);
  // An id made in the same millisecond as an earlier one may carry that earlier millisecond.
  assert.ok(ms <= after && ms >= before - 1000, `${ms} not near ${before}..${after}`);
});

test('100,000 ids: each sorts after the one before, and none repeats', () => {
  const ids: string[] = [];
  for (let i = 0; i < 100_000; i++) ids.push(newOrderId());
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} then ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) if (!UUID_V7.test(id)) assert.fail(`not a v7 uuid: ${id}`);
});

// Last: it moves this process's ids into the future.
test('the clock going back does not break the order; the random bits vary', () => {
  const later = Date.now() + 20_000_000;
  const a = newOrderId(later);
  assert.equal(msOf(a), later);
  const b = newOrderId(later - 60_000);
  const c = newOrderId(later);
  assert.ok(a < b && b < c);
  assert.equal(msOf(b), later);
  // The last 8 hex digits are fresh random per id: 1000 ids cannot all share them.
  const tails = new Set<string>();
  for (let i = 0; i < 1000; i++) tails.add(newOrderId().slice(-8));
  assert.ok(tails.size > 990);
});
