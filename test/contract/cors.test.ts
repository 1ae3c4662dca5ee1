// CORS for a shop with its own front end (SECKILL_CORS_ORIGINS), including the refusals the raw fast
// path answers before fastify, and the start-up refusals of wrong shop settings.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/config/errors.js';
import { startTestServer, userToken, type Reply, type TestServer } from '../support/server.js';

const SHOP = 'https://shop.example';
const OTHER = 'https://evil.example';

const acao = (r: Reply) => r.headers['access-control-allow-origin'];

describe('CORS (SECKILL_CORS_ORIGINS)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ SECKILL_CORS_ORIGINS: `${SHOP}, https://www.shop.example` });
  });
  after(async () => t?.close());

  /** A buy as the shop's front end sends it: its Origin, a bearer token. */
  async function buyFrom(origin: string, saleId: string, user: string): Promise<{ path: Reply; buy: Reply }> {
    const token = userToken(user);
    const headers = { origin };
    const path = await t.call('POST', `/api/sales/${saleId}/path`, { token, body: {}, headers });
    const p = path.status === 200 ? String(path.body.path) : 'none';
    const buy = await t.call('POST', `/api/sales/${saleId}/buy/${p}`, { token, body: { quantity: 1 }, headers });
    return { path, buy };
  }

  test('an allowed origin reads a 202 and the fast path refusals; a preflight is answered and cached', async () => {
    const sale = await t.createSale({ stock: 1 });
    const first = await buyFrom(SHOP, sale.id, 'cors-a');
    assert.equal(first.buy.status, 202, first.buy.text);
    assert.equal(acao(first.path), SHOP);
    assert.equal(acao(first.buy), SHOP);
    assert.equal(first.buy.headers['access-control-allow-credentials'], undefined, 'no credentials: bearer tokens');
    await t.settle(sale.id);

    // Sold out: answered by the raw fast path (before fastify) for a known sale. The body is not
    // JSON: fastify would refuse it with 400, so a 409 shows the fast path answered.
    const token = userToken('cors-b');
    const soldOut = await t.call('POST', `/api/sales/${sale.id}/buy/anything`, { token, rawBody: '{not json', headers: { origin: SHOP } });
    assert.equal(soldOut.status, 409);
    assert.equal(soldOut.body.error.code, 'sold_out');
    assert.equal(acao(soldOut), SHOP);
    assert.match(String(soldOut.headers['access-control-expose-headers']), /retry-after/i);
    const upcoming = await t.createSale({ stock: 5, startsIn: 600_000 });
    const early = await t.call('POST', `/api/sales/${upcoming.id}/path`, { token, body: {}, headers: { origin: 'https://www.shop.example' } });
    assert.equal(early.body.error.code, 'not_started');
    assert.equal(acao(early), 'https://www.shop.example');

    const pre = await t.call('OPTIONS', `/api/sales/${sale.id}/buy/x`, {
      headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(pre.status, 204, pre.text);
    assert.equal(acao(pre), SHOP);
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
    assert.match(String(pre.headers['access-control-allow-headers']), /authorization/i);
    assert.match(String(pre.headers['access-control-allow-headers']), /content-type/i);
    assert.equal(pre.headers['access-control-max-age'], '600');

    // Reads too (the shop's page shows the sale and the buyer's orders), and the order's event stream.
    assert.equal(acao(await t.call('GET', `/api/sales/${sale.id}`, { headers: { origin: SHOP } })), SHOP);
    assert.equal(acao(await t.call('GET', '/api/me/orders', { token: userToken('cors-a'), headers: { origin: SHOP } })), SHOP);
    const orderId = String(first.buy.body.orderId);
    assert.equal((await t.admin('POST', `/api/orders/${orderId}/pay`, { paymentRef: 'cors-1' })).status, 200);
    const events = await t.call('GET', `/api/orders/${orderId}/events?access_token=${userToken('cors-a')}`, { headers: { origin: SHOP }, timeoutMs: 10_000 });
    assert.match(String(events.headers['content-type']), /text\/event-stream/);
    assert.equal(acao(events), SHOP);
  });

  test('an origin not listed gets no CORS header, from fastify or the fast path; nor do the pages', async () => {
    const sale = await t.createSale({ stock: 1 });
    const mine = await buyFrom(OTHER, sale.id, 'cors-c');
    assert.equal(mine.buy.status, 202, 'the server still answers (the browser hides it)');
    assert.equal(acao(mine.path), undefined);
    assert.equal(acao(mine.buy), undefined);
    await t.settle(sale.id);
    const refused = await t.call('POST', `/api/sales/${sale.id}/buy/anything`, { token: userToken('cors-d'), body: { quantity: 1 }, headers: { origin: OTHER } });
    assert.equal(refused.status, 409);
    assert.equal(acao(refused), undefined);
    const pre = await t.call('OPTIONS', `/api/sales/${sale.id}/buy/x`, { headers: { origin: OTHER, 'access-control-request-method': 'POST' } });
    assert.equal(acao(pre), undefined);
    // A near miss is not the origin: another scheme, a trailing path.
    assert.equal(acao(await t.call('GET', '/api/time', { headers: { origin: 'http://shop.example' } })), undefined);
    // The pages are not for other origins' scripts.
    assert.equal(acao(await t.call('GET', `/sales/${sale.id}`, { headers: { origin: SHOP } })), undefined);
  });

  test('off by default', async () => {
    const plain = await startTestServer();
    try {
      const sale = await plain.createSale({ stock: 1 });
      const r = await plain.call('GET', `/api/sales/${sale.id}`, { headers: { origin: SHOP } });
      assert.equal(r.status, 200);
      assert.equal(acao(r), undefined);
      const pre = await plain.call('OPTIONS', `/api/sales/${sale.id}/buy/x`, { headers: { origin: SHOP, 'access-control-request-method': 'POST' } });
      assert.equal(acao(pre), undefined);
      assert.notEqual(pre.status, 204);
    } finally {
      await plain.close();
    }
  });
});

describe('shop settings: a wrong value stops the start, saying what is allowed', () => {
  const refused = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.message;
    }
    return assert.fail(`accepted ${JSON.stringify(env)}`);
  };

  test('each variable names itself, the value and the allowed forms', () => {
    assert.match(refused({ SECKILL_CORS_ORIGINS: '*' }), /SECKILL_CORS_ORIGINS="\*" is not allowed: .*exact origins/);
    assert.match(refused({ SECKILL_CORS_ORIGINS: 'https://shop.example/' }), /SECKILL_CORS_ORIGINS=.*no path/);
    assert.match(refused({ SECKILL_CURRENCY: 'EURO' }), /SECKILL_CURRENCY="EURO" is not allowed: .*ISO 4217/);
    assert.match(refused({ SECKILL_LOCALE: 'de_DE' }), /SECKILL_LOCALE="de_DE" is not allowed: .*BCP 47/);
    assert.match(refused({ SECKILL_CHECKOUT_URL: 'https://shop.example/pay' }), /SECKILL_CHECKOUT_URL=.*\{orderId\}/);
    assert.match(refused({ SECKILL_CHECKOUT_URL: 'https://shop.example/pay/{order}' }), /SECKILL_CHECKOUT_URL/);
    assert.match(refused({ SECKILL_SIGN_IN_URL: 'http://shop.example/login' }), /SECKILL_SIGN_IN_URL=.*https:\/\/ URL or a path/);
    assert.match(refused({ SECKILL_SHOP_LOGO_URL: '//cdn.example/logo.png' }), /SECKILL_SHOP_LOGO_URL/);
    assert.match(refused({ SECKILL_FRAME_ANCESTORS: 'shop.example' }), /SECKILL_FRAME_ANCESTORS/);
  });

  test('good values are taken in their canonical form', () => {
    const { web } = loadConfig({
      SECKILL_CURRENCY: 'eur', SECKILL_LOCALE: 'de-de', SECKILL_CORS_ORIGINS: 'https://a.example,https://a.example, http://localhost:5173',
      SECKILL_CHECKOUT_URL: '/checkout/{saleId}/{orderId}', SECKILL_FRAME_ANCESTORS: "'self' https://shop.example",
    });
    assert.equal(web.shop.currency, 'EUR');
    assert.equal(web.shop.locale, 'de-DE');
    assert.deepEqual(web.corsOrigins, ['https://a.example', 'http://localhost:5173']);
    assert.deepEqual(web.frameAncestors, ["'self'", 'https://shop.example']);
    const dflt = loadConfig({}).web;
    assert.deepEqual([dflt.shop.currency, dflt.shop.locale, dflt.corsOrigins, dflt.frameAncestors], ['USD', 'en-US', [], []]);
  });
});
