// Issue 9, input and request-line safety:
// - defect 5 (schema side): no stored string may hold what a store cannot keep (U+0000, an
//   unpaired UTF-16 surrogate) nor a control character: 400 for bodies, 401 for a token's `sub`;
// - defect 12: the per-address limit for an absolute-form request target, and behind a proxy
//   (SECKILL_TRUST_PROXY);
// - lesser: user tokens without `exp`; the admin key as ?access_token= on the order events.
//
// Runs embedded and, with SECKILL_TEST_MODE=distributed, against 3 processes on Redis and
// PostgreSQL; a PostgreSQL-mode server (memory engine + PostgreSQL) is also started in-process.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { Agent, request } from 'undici';
import { loadConfig, parseTrustProxy } from '../../src/config/config.js';
import type { RunningServer } from '../../src/server.js';
import { startInProcess } from '../support/launcher.js';
import {
  ADMIN_KEY,
  USER_SECRET,
  buy,
  call,
  mode,
  randomUser,
  saleBody,
  skipUnlessReady,
  startTestServer,
  tempDir,
  userToken,
  type Reply,
  type TestServer,
} from '../support/server.js';

const skip = await skipUnlessReady();
const embeddedOnly = skip || (mode === 'distributed' && 'the per-address limit is counted per process (3 workers behind one port)');

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(Object.keys(r.body ?? {}), ['error'], r.text);
  assert.equal(r.body.error.code, code, r.text);
  assert.equal(typeof r.body.error.message, 'string');
}

// Hand-made HS256 tokens: JSON.stringify writes a lone surrogate as a \ud800 escape, which the
// verifier's JSON.parse turns back into one.
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);
function hs256(payload: Record<string, unknown>, secret = USER_SECRET): string {
  const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Strings no store may be handed, by what is wrong with them. */
const POISON: Array<[string, string]> = [
  ['U+0000', 'ref\u0000x'],
  ['U+0000 alone', '\u0000'],
  ['lone high surrogate', 'ref\ud800'],
  ['lone low surrogate', '\udc00ref'],
  ['reversed pair', '\udc00\ud800'],
  ['ESC control character', 'ref\u001b[31m'],
  ['DEL', 'ref\u007f'],
  ['C1 control', 'ref\u0085'],
];

let srv: TestServer;

before(async () => {
  if (skip) return;
  srv = await startTestServer();
});
after(async () => {
  await srv?.close();
});

async function reserve(t: TestServer, saleId: string, token: string): Promise<string> {
  const r = await buy(t.url, saleId, token);
  assert.equal(r.status, 202, r.text);
  return r.body.orderId;
}

/** Pay with poisoned paymentRefs (400, order unchanged), then with a good one (200). */
async function payChecks(url: string, orderId: string, owner: string): Promise<void> {
  for (const [what, ref] of POISON) {
    const r = await call(url, 'POST', `/api/orders/${orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: ref } });
    assertError(r, 400, 'bad_request');
    assert.match(r.body.error.message, /paymentRef/, what);
    const o = await call(url, 'GET', `/api/orders/${orderId}`, { token: owner });
    assert.equal(o.body.status, 'reserved', `${what}: the order changed`);
  }
  assertError(await call(url, 'POST', `/api/orders/${orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: 'x'.repeat(129) } }), 400, 'bad_request');
  // Valid text is not over-refused: an astral character (a surrogate pair), accents, spaces.
  const good = 'pay-💳 é 42';
  const paid = await call(url, 'POST', `/api/orders/${orderId}/pay`, { token: ADMIN_KEY, body: { paymentRef: good } });
  assert.equal(paid.status, 200, paid.text);
  assert.equal(paid.body.status, 'paid');
}

describe('defect 5: stored strings hold only what every store can keep', { skip }, () => {
  test('pay: paymentRef with U+0000, a lone surrogate or a control character is 400; the order stays reserved', async () => {
    const sale = await srv.createSale({ stock: 5 });
    const owner = userToken(randomUser());
    const orderId = await reserve(srv, sale.id, owner);
    await payChecks(srv.url, orderId, owner);
    // The order writers kept writing: a later buy is recorded in the database of record.
    const next = await reserve(srv, sale.id, userToken(randomUser()));
    await srv.settle(sale.id);
    const rows = await srv.orders(sale.id);
    assert.deepEqual(rows.map((r) => r.order_id).sort(), [orderId, next].sort());
  });

  test('create sale: name or description with U+0000, a lone surrogate or a control character is 400; no sale created', async () => {
    for (const [what, bad] of POISON) {
      const tag = crypto.randomBytes(4).toString('hex');
      const byName = await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: { ...saleBody(), name: `n-${tag}${bad}` } });
      assertError(byName, 400, 'bad_request');
      const byDescription = await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: { ...saleBody(), name: `d-${tag}`, description: `about ${bad}` } });
      assertError(byDescription, 400, 'bad_request');
      const all = await call(srv.url, 'GET', '/api/admin/sales', { token: ADMIN_KEY });
      assert.ok(!all.body.sales.some((s: { name: string }) => s.name.includes(tag)), `${what}: a sale was created`);
    }
    assertError(await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: { ...saleBody(), name: 'x'.repeat(201) } }), 400, 'bad_request');
    // A description keeps its line breaks and tabs; names keep any printable text.
    const ok = await call(srv.url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: { ...saleBody(), name: 'Keyboards ⌨️ — édition', description: 'Line one\n\tLine two\r\n' } });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.description, 'Line one\n\tLine two\r\n');
  });

  test('a token whose sub holds U+0000, a lone surrogate or a control character is 401 everywhere; nothing created', async () => {
    const sale = await srv.createSale({ stock: 5 });
    for (const [, bad] of POISON) {
      const token = hs256({ sub: `u-${bad}`, iat: nowSec(), exp: nowSec() + 600 });
      assertError(await call(srv.url, 'POST', `/api/sales/${sale.id}/path`, { token }), 401, 'unauthorized');
      assertError(await call(srv.url, 'GET', '/api/me/orders', { token }), 401, 'unauthorized');
      // The buy route checks the token before the path.
      assertError(await call(srv.url, 'POST', `/api/sales/${sale.id}/buy/${'A'.repeat(43)}`, { token, body: {} }), 401, 'unauthorized');
    }
    // A sub with an astral character is a user like any other.
    assert.equal((await buy(srv.url, sale.id, hs256({ sub: `u-😀-${randomUser()}`, iat: nowSec(), exp: nowSec() + 600 }))).status, 202);
    await srv.settle(sale.id);
    assert.equal((await srv.orders(sale.id)).length, 1);
  });

  test('the orders listing cursor (after) takes an order id only: %00 is 400, not a database error', async () => {
    const sale = await srv.createSale();
    const base = `/api/admin/sales/${sale.id}/orders`;
    for (const after of ['%00', 'a%00b', '%ED%A0%80', 'x%1b', "1'%20OR%201=1"]) {
      assertError(await call(srv.url, 'GET', `${base}?after=${after}`, { token: ADMIN_KEY }), 400, 'bad_request');
    }
    assert.equal((await call(srv.url, 'GET', `${base}?after=0190a000-0000-7000-8000-000000000000`, { token: ADMIN_KEY })).status, 200);
    // The database is fine afterwards (a refused query must not have opened a breaker).
    assert.equal((await call(srv.url, 'GET', '/readyz')).status, 200);
  });
});

describe('defect 5 in PostgreSQL mode (memory engine + PostgreSQL, in-process)', { skip: skip || (mode === 'distributed' && 'runs once, in the embedded run') }, () => {
  let pgSkip: string | null = null;
  let server: RunningServer | null = null;
  let drop: (() => Promise<void>) | null = null;

  before(async () => {
    const { servicesUnavailable, createDatabase } = await import('../support/cluster.js');
    pgSkip = await servicesUnavailable();
    if (pgSkip) return;
    const db = await createDatabase();
    drop = db.drop;
    server = await startInProcess({ DATABASE_URL: db.url, SECKILL_DATA_DIR: tempDir() });
  });
  after(async () => {
    await server?.close();
    await drop?.();
  });

  test('poisoned paymentRef and sub are refused before PostgreSQL; buys and payments go on', async (t) => {
    if (pgSkip || !server) return t.skip(pgSkip ?? 'no server');
    const url = server.url;
    const created = await call(url, 'POST', '/api/admin/sales', { token: ADMIN_KEY, body: saleBody({ stock: 5 }) });
    assert.equal(created.status, 201, created.text);
    const saleId = created.body.id;
    const owner = userToken(randomUser());
    const orderId = (await buy(url, saleId, owner)).body.orderId;
    await payChecks(url, orderId, owner);
    assertError(await call(url, 'POST', `/api/sales/${saleId}/path`, { token: hs256({ sub: 'a\u0000b', exp: nowSec() + 60 }) }), 401, 'unauthorized');
    assert.equal((await buy(url, saleId, userToken(randomUser()))).status, 202);
    assert.equal((await call(url, 'GET', '/readyz')).status, 200);
  });
});

// ---------------------------------------------------------------------------------------------
// Defect 12

/** Raw HTTP/1.1 over one socket: the requests as given, answers' status codes in order. */
async function rawStatuses(port: number, requests: string[]): Promise<number[]> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  const statuses = () => [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  socket.write(requests.join(''));
  const deadline = Date.now() + 20_000;
  while (statuses().length < requests.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  socket.destroy();
  return statuses();
}

const port = (t: TestServer) => Number(new URL(t.url).port);

describe('defect 12: the per-address limit', { skip: embeddedOnly }, () => {
  let limited: TestServer;
  before(async () => {
    limited = await startTestServer({ SECKILL_RATE_PER_IP: '2' });
  });
  after(async () => {
    await limited?.close();
  });

  test('an absolute-form request target (GET/POST http://host/api/…) is limited like /api/…', async () => {
    const host = `127.0.0.1:${port(limited)}`;
    const sale = await limited.createSale();
    const gets = Array.from({ length: 10 }, () => `GET http://${host}/api/time HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const statuses = await rawStatuses(port(limited), gets);
    assert.equal(statuses.length, 10, `answers: ${statuses.join(',')}`);
    assert.ok(statuses.filter((s) => s === 429).length >= 5, `absolute-form GETs: ${statuses.join(',')}`);
    // A POST in absolute form (path of a sale, no token): 429 once over the limit, not 401.
    const posts = Array.from({ length: 10 }, () => `POST http://${host}/api/sales/${sale.id}/path HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\n\r\n`);
    const postStatuses = await rawStatuses(port(limited), posts);
    assert.ok(postStatuses.filter((s) => s === 429).length >= 5, `absolute-form POSTs: ${postStatuses.join(',')}`);
  });

  test('a percent-encoded path that the router decodes to an /api/ route is limited too', async () => {
    const host = `127.0.0.1:${port(limited)}`;
    await new Promise((r) => setTimeout(r, 2100)); // a fresh window for this address
    const gets = Array.from({ length: 10 }, () => `GET /%61pi/time HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const statuses = await rawStatuses(port(limited), gets);
    assert.equal(statuses.length, 10, statuses.join(','));
    // Whatever the router makes of it (the route or a 404), it is counted against the address.
    assert.ok(statuses.filter((s) => s === 429).length >= 5, statuses.join(','));
  });

  test('health probes and the pages stay outside the limit', async () => {
    await new Promise((r) => setTimeout(r, 2100));
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => call(limited.url, 'GET', i % 2 ? '/healthz' : '/readyz')));
    assert.deepEqual(all.map((r) => r.status), Array(12).fill(200));
  });
});

describe('defect 12: SECKILL_TRUST_PROXY', { skip: embeddedOnly }, () => {
  const burst = (t: TestServer, xff?: string) =>
    Promise.all(Array.from({ length: 10 }, () => call(t.url, 'GET', '/api/time', { headers: xff ? { 'x-forwarded-for': xff } : {} })));
  const refused = (rs: Reply[]) => rs.filter((r) => r.status === 429).length;

  test('off (default): X-Forwarded-For is ignored, every client behind the proxy shares its address', async () => {
    const t = await startTestServer({ SECKILL_RATE_PER_IP: '2' });
    try {
      assert.ok(refused(await burst(t, '203.0.113.1')) >= 5);
      // Another "client" named by the header is the same address: still refused.
      assertError(await call(t.url, 'GET', '/api/time', { headers: { 'x-forwarded-for': '203.0.113.2' } }), 429, 'rate_limited');
    } finally {
      await t.close();
    }
  });

  for (const trust of ['127.0.0.1', '127.0.0.0/8, ::1', 'loopback', '1']) {
    test(`SECKILL_TRUST_PROXY=${trust}: each client behind the proxy has its own limit`, async () => {
      const t = await startTestServer({ SECKILL_RATE_PER_IP: '2', SECKILL_TRUST_PROXY: trust });
      try {
        assert.ok(refused(await burst(t, '203.0.113.1')) >= 5, 'client 1 over its limit');
        assertError(await call(t.url, 'GET', '/api/time', { headers: { 'x-forwarded-for': '203.0.113.1' } }), 429, 'rate_limited');
        // Client 2, same proxy (our socket): its own budget.
        assert.equal((await call(t.url, 'GET', '/api/time', { headers: { 'x-forwarded-for': '203.0.113.2' } })).status, 200);
        // A client that puts its own X-Forwarded-For in front: the proxy appended the real address.
        assert.equal((await call(t.url, 'GET', '/api/time', { headers: { 'x-forwarded-for': '203.0.113.1, 203.0.113.3' } })).status, 200);
      } finally {
        await t.close();
      }
    });
  }

  test('a proxy address that is not the peer: X-Forwarded-For from anyone else is not believed', async () => {
    const t = await startTestServer({ SECKILL_RATE_PER_IP: '2', SECKILL_TRUST_PROXY: '10.0.0.0/8' });
    try {
      assert.ok(refused(await burst(t, '203.0.113.1')) >= 5);
      assertError(await call(t.url, 'GET', '/api/time', { headers: { 'x-forwarded-for': '203.0.113.9' } }), 429, 'rate_limited');
    } finally {
      await t.close();
    }
  });

  test('the setting is validated: a bad value stops the start', () => {
    assert.equal(parseTrustProxy('false'), false);
    assert.equal(parseTrustProxy(''), false);
    assert.equal(parseTrustProxy('true'), true);
    assert.equal(parseTrustProxy('2'), 2);
    assert.deepEqual(parseTrustProxy('10.0.0.1, 192.168.0.0/16,::1,fd00::/8,loopback'), ['10.0.0.1', '192.168.0.0/16', '::1', 'fd00::/8', 'loopback']);
    for (const bad of ['10.0.0.300', '10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/1', 'fd00::/129']) {
      assert.throws(() => parseTrustProxy(bad), /SECKILL_TRUST_PROXY/, bad);
    }
    assert.throws(() => loadConfig({ SECKILL_TRUST_PROXY: 'nonsense' }), /SECKILL_TRUST_PROXY/);
  });
});

// ---------------------------------------------------------------------------------------------
// Lesser items

describe('tokens without exp', { skip }, () => {
  test('refused (401) by default', async () => {
    const noExp = hs256({ sub: randomUser(), iat: nowSec() });
    assertError(await call(srv.url, 'GET', '/api/me/orders', { token: noExp }), 401, 'unauthorized');
    const sale = await srv.createSale();
    assertError(await call(srv.url, 'POST', `/api/sales/${sale.id}/path`, { token: noExp }), 401, 'unauthorized');
    assert.equal((await call(srv.url, 'GET', '/api/me/orders', { token: hs256({ sub: randomUser(), exp: nowSec() + 60 }) })).status, 200);
  });

  test('accepted with SECKILL_ALLOW_TOKENS_WITHOUT_EXP=1', async () => {
    const t = await startTestServer({ SECKILL_ALLOW_TOKENS_WITHOUT_EXP: '1' });
    try {
      const noExp = hs256({ sub: randomUser() });
      assert.equal((await call(t.url, 'GET', '/api/me/orders', { token: noExp })).status, 200);
      const sale = await t.createSale();
      assert.equal((await buy(t.url, sale.id, noExp)).status, 202);
      // An expired token is refused all the same.
      assertError(await call(t.url, 'GET', '/api/me/orders', { token: hs256({ sub: randomUser(), exp: nowSec() - 10 }) }), 401, 'unauthorized');
    } finally {
      await t.close();
    }
  });
});

describe('order events: the admin key is not accepted as ?access_token=', { skip }, () => {
  test('admin key in the query 401; in the header 200; a user token in the query 200', async () => {
    const sale = await srv.createSale({ stock: 3 });
    const owner = userToken(randomUser());
    const orderId = await reserve(srv, sale.id, owner);
    const url = `${srv.url}/api/orders/${orderId}/events`;
    const dispatcher = new Agent({ connections: 4 });
    try {
      // Status only: a 200 here is an open stream that never ends by itself.
      const status = async (u: string, headers: Record<string, string>) => {
        const ac = new AbortController();
        const res = await request(u, { headers, dispatcher, signal: ac.signal });
        res.body.on('error', () => undefined);
        const text = res.statusCode === 200 ? '' : await res.body.text();
        ac.abort();
        return { status: res.statusCode, text };
      };
      const refused = await status(`${url}?access_token=${encodeURIComponent(ADMIN_KEY)}`, {});
      assert.equal(refused.status, 401, refused.text);
      assert.equal(JSON.parse(refused.text).error.code, 'unauthorized');
      assert.equal((await status(url, { authorization: `Bearer ${ADMIN_KEY}` })).status, 200, 'admin key in the header');
      assert.equal((await status(`${url}?access_token=${owner}`, {})).status, 200, 'user token in the query');
    } finally {
      await dispatcher.destroy();
    }
  });
});
