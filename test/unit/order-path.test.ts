// The dynamic order path: an HMAC of sale and user under the sale's secret.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isOrderPath, orderPath } from '../../src/gateway/order-path.js';
import { sale } from '../support/fakes.js';

test('the path is stable for one sale and user, and URL-safe', () => {
  const s = sale();
  const p = orderPath(s, 'ann');
  assert.equal(orderPath(s, 'ann'), p);
  assert.match(p, /^[A-Za-z0-9_-]{43}$/, '32 bytes of HMAC in base64url');
  assert.ok(isOrderPath(s, 'ann', p));
});

test("one user's path is useless to another, to another sale, and under another secret", () => {
  const s = sale();
  const p = orderPath(s, 'ann');
  assert.equal(isOrderPath(s, 'bob', p), false);
  assert.equal(isOrderPath({ ...s, id: 'sale-2' }, 'ann', p), false);
  assert.equal(isOrderPath({ ...s, secret: 'another-secret-0123456789abcdef0123' }, 'ann', p), false);
});

test('the separator keeps (sale, user) pairs apart: "ab"+"c" is not "a"+"bc"', () => {
  assert.notEqual(orderPath(sale({ id: 'ab' }), 'c'), orderPath(sale({ id: 'a' }), 'bc'));
});

test('a candidate of another length, empty, or with one character changed is refused (no throw)', () => {
  const s = sale();
  const p = orderPath(s, 'ann');
  assert.equal(isOrderPath(s, 'ann', ''), false);
  assert.equal(isOrderPath(s, 'ann', p.slice(1)), false);
  assert.equal(isOrderPath(s, 'ann', `${p}x`), false);
  const flipped = (p[0] === 'A' ? 'B' : 'A') + p.slice(1);
  assert.equal(isOrderPath(s, 'ann', flipped), false);
  assert.equal(isOrderPath(s, 'ann', 'é'.repeat(22)), false, 'multi-byte text of another byte length');
});

test('property: only the path issued to (sale, user) is accepted', () => {
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), fc.string(), (user, other, candidate) => {
      const s = sale();
      assert.ok(isOrderPath(s, user, orderPath(s, user)));
      if (other !== user) assert.equal(isOrderPath(s, other, orderPath(s, user)), false);
      if (candidate !== orderPath(s, user)) assert.equal(isOrderPath(s, user, candidate), false);
    }),
    { numRuns: 300 },
  );
});
