// windowRefusal and saleStatus: the refusals that need only public facts and the clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { saleStatus, windowRefusal } from '../../src/domain/sale.js';
import { sale } from '../support/fakes.js';

test('windowRefusal: not started before startsAt, open from startsAt on', () => {
  const s = sale({ startsAt: 1_000 });
  assert.equal(windowRefusal(s, 999), 'not_started');
  assert.equal(windowRefusal(s, 1_000), null);
  assert.equal(windowRefusal(s, 10_000_000), null, 'no end: open for ever');
});

test('windowRefusal: ended from endsAt on (endsAt itself is over)', () => {
  const s = sale({ startsAt: 1_000, endsAt: 5_000 });
  assert.equal(windowRefusal(s, 4_999), null);
  assert.equal(windowRefusal(s, 5_000), 'ended');
});

test('windowRefusal: ended wins over paused, paused over not started', () => {
  assert.equal(windowRefusal(sale({ startsAt: 1_000, endsAt: 5_000, paused: true }), 6_000), 'ended');
  assert.equal(windowRefusal(sale({ startsAt: 1_000, paused: true }), 500), 'paused');
  assert.equal(windowRefusal(sale({ startsAt: 1_000, paused: true }), 2_000), 'paused');
});

test('saleStatus agrees with windowRefusal and adds sold out from the stock', () => {
  const s = sale({ startsAt: 1_000, endsAt: 5_000 });
  assert.equal(saleStatus(s, 500, 3), 'upcoming');
  assert.equal(saleStatus(s, 2_000, 3), 'live');
  assert.equal(saleStatus(s, 2_000, 0), 'sold_out');
  assert.equal(saleStatus(s, 5_000, 0), 'ended');
  assert.equal(saleStatus({ ...s, paused: true }, 2_000, 3), 'paused');
});
