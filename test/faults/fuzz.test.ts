import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ADMIN_KEY, call, startTestServer, userToken, type TestServer } from '../support/server.js';

/**
 * Property-based fuzzing of every route: random and malformed JSON, huge, negative and
 * fractional numbers, unicode and very long ids, missing and wrong headers, wrong content
 * types. Whatever comes in: no 5xx other than 503 busy, always the contract's error shape,
 * the process stays up, and no order exists without a 202.
 */
describe('fuzz: every route, 10,000+ generated requests', { skip: process.env.SECKILL_TEST_MODE === 'distributed' && 'runs in-process (inject)' }, () => {
  let t: TestServer;
  let saleId = '';
  let orderId = '';
  let path = '';
  const token = userToken('fuzzer');
  let accepted = 0;

  before(async () => {
    t = await startTestServer({ SECKILL_RATE_PER_USER: '0' });
    const sale = await t.createSale({ stock: 1_000_000, perUserLimit: 1000 });
    saleId = sale.id;
    path = (await call(t.url, 'POST', `/api/sales/${saleId}/path`, { token })).body.path;
    const b = await call(t.url, 'POST', `/api/sales/${saleId}/buy/${path}`, { token, body: { quantity: 1 } });
    orderId = b.body.orderId;
    accepted = 1;
  });
  after(async () => {
    await t.close();
  });

  const weirdString = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 300, maxLength: 3000 }),
    fc.constantFrom('', ' ', '..', '%00', '%E0%A4%A', '../../etc/passwd', '\u0000', '😀'.repeat(50), 'null', '-1', '1e309', "'; DROP TABLE orders; --"),
  );
  const jsonValue = fc.oneof(
    fc.jsonValue(),
    fc.record({ quantity: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1.5, 2 ** 53, 1e308, -0), fc.string(), fc.constant(null)) }, { requiredKeys: [] }),
    fc.record({ paymentRef: fc.oneof(weirdString, fc.integer()), status: fc.constantFrom('paid', 'reserved'), priceCents: fc.integer(), userId: fc.string() }, { requiredKeys: [] }),
    fc.record({ name: weirdString, priceCents: fc.oneof(fc.integer(), fc.double()), stock: fc.oneof(fc.integer(), fc.double()), startsAt: weirdString, perUserLimit: fc.integer() }, { requiredKeys: [] }),
  );
  const rawBody = fc.oneof(
    jsonValue.map((v) => JSON.stringify(v)),
    weirdString,
    fc.constantFrom('{', '{"quantity":', '[', '{"quantity":1}{"quantity":1}', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', 'x'.repeat(20_000)),
  );
  const id = fc.oneof(weirdString, fc.uuid(), fc.constant('SALE'), fc.constant('ORDER'));
  const route = fc.oneof(
    fc.tuple(fc.constant('GET'), fc.constantFrom('/api/time', '/api/sales', '/api/me/orders', '/healthz', '/readyz', '/api/admin/sales')),
    fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), id.map((x) => `/api/sales/${x}`)),
    fc.tuple(fc.constantFrom('POST', 'GET'), id.map((x) => `/api/sales/${x}/path`)),
    fc.tuple(fc.constantFrom('POST', 'GET'), fc.tuple(id, fc.oneof(weirdString, fc.constant('PATH'))).map(([s, p]) => `/api/sales/${s}/buy/${p}`)),
    fc.tuple(fc.constantFrom('GET', 'POST'), id.map((x) => `/api/orders/${x}`)),
    // Events of a live order stream until it ends, so only ids that are refused are fuzzed here.
    fc.tuple(fc.constant('GET'), weirdString.map((x) => `/api/orders/${encodeURIComponent(x)}/events`)),
    fc.tuple(fc.constant('POST'), fc.tuple(id, fc.constantFrom('pay', 'cancel')).map(([o, a]) => `/api/orders/${o}/${a}`)),
    fc.tuple(fc.constantFrom('GET', 'POST'), id.map((x) => `/api/admin/sales/${x}`)),
    fc.tuple(fc.constant('POST'), fc.tuple(id, fc.constantFrom('pause', 'resume')).map(([s, a]) => `/api/admin/sales/${s}/${a}`)),
    fc.tuple(fc.constant('GET'), fc.tuple(id, weirdString).map(([s, q]) => `/api/admin/sales/${s}/orders?limit=${encodeURIComponent(q)}&status=${encodeURIComponent(q)}`)),
    fc.tuple(fc.constant('POST'), fc.constant('/api/admin/sales')),
  );
  const auth = fc.oneof(
    fc.constant(undefined),
    fc.constant(`Bearer ${token}`),
    fc.constant(`Bearer ${ADMIN_KEY}`),
    weirdString.map((s) => `Bearer ${s}`),
    weirdString,
    fc.constant(`Bearer ${token}x`),
    fc.constant(`Bearer ${token.split('.').slice(0, 2).join('.')}.`),
  );
  const contentType = fc.oneof(
    fc.constant('application/json'),
    fc.constant(undefined),
    fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/xml', '*/*', ''),
  );
  const request = fc.record({ route, auth, contentType, body: fc.option(rawBody, { nil: undefined }), accept: fc.constantFrom(undefined, 'text/csv', '*/*', 'text/event-stream') });

  test('no 5xx but busy, always JSON errors, no order without a 202', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        n++;
        const url = r.route[1].replace('SALE', saleId).replace('ORDER', orderId).replace('PATH', path);
        const headers: Record<string, string> = {};
        if (r.auth !== undefined) headers.authorization = r.auth;
        if (r.contentType !== undefined && r.body !== undefined) headers['content-type'] = r.contentType;
        if (r.accept) headers.accept = r.accept;
        const res = await t.server!.app.inject({ method: r.route[0] as 'GET', url, headers, payload: r.body });
        if (res.statusCode === 202) accepted++;
        if (res.headers['content-type']?.toString().startsWith('text/csv')) return;
        assert.ok(res.statusCode < 500 || (res.statusCode === 503 && res.json().error.code === 'busy'), `${r.route[0]} ${url} → ${res.statusCode} ${res.body.slice(0, 200)}`);
        if (res.statusCode >= 400) {
          const body = res.json() as { error: { code: string; message: string } };
          assert.equal(typeof body.error.code, 'string');
          assert.equal(typeof body.error.message, 'string');
          assert.doesNotMatch(res.body, /\bat .*\.(ts|js):\d+/, 'no stack trace');
        }
      }),
      { numRuns: 10_000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 1e9) },
    );
    assert.ok(n >= 10_000);
    // Alive, and every order row belongs to a 202.
    assert.equal((await call(t.url, 'GET', '/healthz')).status, 200);
    const rows = await t.orders(saleId);
    assert.equal(rows.length, accepted, 'one row per 202, none for refused requests');
    const stats = await call(t.url, 'GET', `/api/admin/sales/${saleId}`, { token: ADMIN_KEY });
    assert.equal(stats.body.stats.available, 1_000_000 - stats.body.stats.reserved - stats.body.stats.paid);
  });
});
