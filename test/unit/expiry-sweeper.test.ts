// The expiry sweeper's loop, against a fake order service.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpirySweeper } from '../../src/services/expiry-sweeper.js';
import type { OrderService } from '../../src/services/order-service.js';
import { deferred, silent } from '../support/fakes.js';

/** Answers each batch call with the next of `batches` (expired count; `more` when the batch was full). */
function service(batches: number[], fail = false) {
  const calls: number[] = [];
  const svc = {
    async expireDueBatch(now: number, limit: number) {
      calls.push(now);
      if (fail) throw new Error('store down');
      const n = batches.shift() ?? 0;
      return { expired: n, more: n >= limit };
    },
    async expireDue(now: number, limit: number) {
      return (await svc.expireDueBatch(now, limit)).expired;
    },
  };
  return { svc: svc as unknown as OrderService, calls };
}

test('one sweep asks again while batches come back full, and sums them', async () => {
  const { svc, calls } = service([1000, 1000, 7]);
  const s = new ExpirySweeper(svc, 1000, silent);
  assert.equal(await s.sweep(), 2007);
  assert.equal(calls.length, 3);
});

test('a failing store: the sweep logs, returns 0, and the next sweep runs again', async () => {
  const failing = service([], true);
  const s = new ExpirySweeper(failing.svc, 1000, silent);
  assert.equal(await s.sweep(), 0);
  assert.equal(await s.sweep(), 0);
  assert.equal(failing.calls.length, 2);
});

test('sweeps never overlap: a sweep started while one runs does nothing', async () => {
  const gate = deferred();
  let calls = 0;
  const svc = {
    async expireDueBatch() {
      calls++;
      await gate.promise;
      return { expired: 1, more: false };
    },
    async expireDue() {
      return (await svc.expireDueBatch()).expired;
    },
  } as unknown as OrderService;
  const s = new ExpirySweeper(svc, 1000, silent);
  const first = s.sweep();
  assert.equal(await s.sweep(), 0);
  gate.resolve();
  assert.equal(await first, 1);
  assert.equal(calls, 1);
});

test('start sweeps on its interval; stop ends it', async () => {
  const { svc, calls } = service([]);
  const s = new ExpirySweeper(svc, 10, silent);
  s.start();
  const deadline = Date.now() + 10_000;
  while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  s.stop();
  assert.ok(calls.length >= 2);
  const n = calls.length;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(calls.length <= n + 1, 'at most the sweep already under way');
});
