// Issue 9, defect 5 in distributed mode, at the service layer: a paymentRef containing U+0000
// passed past the HTTP schemas was answered `paid` (Redis said paid) while PostgreSQL cannot
// store it: the writer quarantined the record and the row stayed `reserved` for ever. Fixed by
// 10385de (the stored-text rule checked by the order service): refused, nothing changed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { skipUnlessServices } from '../support/cluster.js';
import { Backend } from '../support/backends.js';

let b: Backend | null = null;
let skip: string | false = false;

before(async () => {
  skip = await skipUnlessServices();
  if (!skip) b = await Backend.start('redis+postgres');
});
after(async () => {
  await b?.close();
});

test('distributed: a paymentRef with U+0000 is refused, or the paid order reaches PostgreSQL', async (t) => {
  if (skip) return t.skip(String(skip));
  const now = Date.now();
  const sale = await b!.createSale({ stock: 2, perUserLimit: 1 }, now);
  const r = await b!.reserve(sale.id, 'ann', 1, now);
  assert.ok(r.ok && r.value.ok, 'reserved');
  const orderId = r.value.order.orderId;
  const paid = await b!.pay(orderId, 'ref\u0000poison', now + 1000);
  await b!.drained(sale.id);
  const deadline = Date.now() + 5000;
  let rows = await b!.records(sale.id);
  while (paid.ok && rows[0]?.status !== 'paid' && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    rows = await b!.records(sale.id);
  }
  if (paid.ok) assert.equal(rows[0]?.status, 'paid', 'answered paid: the row of record must say paid');
  else assert.equal(rows[0]?.status, 'reserved', `answered ${paid.code}: nothing changed`);
});
