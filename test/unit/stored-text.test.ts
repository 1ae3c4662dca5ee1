import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { SeckillError } from '../../src/domain/errors.js';
import { isStorableLine, isStorableText } from '../../src/domain/stored-text.js';
import type { StockEngine } from '../../src/engine/stock-engine.js';
import { OrderService } from '../../src/services/order-service.js';
import type { RecordStore } from '../../src/stores/record-store.js';

test('stored text: no U+0000, no control character, no lone surrogate; pairs and line breaks as allowed', () => {
  for (const ok of ['pay-123', 'Ünïcödé 支付', 'emoji \u{1F600}', '']) assert.ok(isStorableLine(ok), JSON.stringify(ok));
  for (const bad of ['a\u0000b', 'tab\there', 'del\u007f', 'c1\u0085', 'lone \ud800', 'lone \udc00 low', 'line\nbreak']) {
    assert.equal(isStorableLine(bad), false, JSON.stringify(bad));
  }
  assert.ok(isStorableText('two\nlines\twith tab\r\n'));
  assert.equal(isStorableText('nul\u0000'), false);
  assert.equal(isStorableText('lone \ud83d'), false);
});

test('the order service refuses a paymentRef no store can keep before it asks the engine (defect 5, service layer)', async () => {
  let asked = 0;
  const engine = { getOrder: async () => { asked++; return null; }, transition: async () => { asked++; return null; } } as unknown as StockEngine;
  const orders = new OrderService({} as RecordStore, engine, { onRelease: () => undefined }, pino({ level: 'silent' }));
  await assert.rejects(
    orders.pay('0190f3a0-0000-7000-8000-000000000000', { kind: 'admin' }, 'ref\u0000x'),
    (err: unknown) => err instanceof SeckillError && err.code === 'bad_request',
  );
  assert.equal(asked, 0, 'nothing was asked of the engine');
});
