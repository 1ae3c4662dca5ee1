// The sale page as a shop's page: its name, logo and home link, its currency and locale, its login
// (the #token= round trip), its checkout, the buyer's own order after a reload, and framing.
// Debian's Chromium driven by playwright-core, as in pages.test.ts; the shop's own pages are
// stood in for by routes of the browser (no shop server runs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, userToken, type TestServer } from '../support/server.js';

const CHROMIUM = process.env.SECKILL_CHROMIUM ?? '/usr/bin/chromium';
const missing = fs.existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (Debian: apt-get install -y chromium)`;
const distributed = process.env.SECKILL_TEST_MODE === 'distributed' ? 'the page tests run in embedded mode only' : null;
if (missing && process.env.CI) {
  test('browser tests need Chromium', () => assert.fail(`CI is set and ${missing}`));
} else if (missing || distributed) {
  console.log(`# e2e-shop-pages skipped: ${missing ?? distributed}`);
}

const SHOP = 'http://shop.test';
const NAME = 'Müller & Söhne <Keyboards>';
const LOGO = 'https://cdn.shop.test/logo.svg';
const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 28 28"><rect width="28" height="28" fill="#0a7"/></svg>';

describe('the sale page as the shop\'s page', { skip: missing ?? distributed ?? false }, () => {
  /** EUR in de-DE, sign-in, checkout, framing by the shop. */
  let t: TestServer;
  let ctx: BrowserContext;
  let userDataDir: string;
  const pageErrors: string[] = [];

  before(async () => {
    t = await startTestServer({
      SECKILL_SHOP_NAME: NAME,
      SECKILL_SHOP_URL: `https://shop.test/`,
      SECKILL_SHOP_LOGO_URL: LOGO,
      SECKILL_CURRENCY: 'EUR',
      SECKILL_LOCALE: 'de-DE',
      SECKILL_SIGN_IN_URL: 'https://shop.test/login',
      SECKILL_CHECKOUT_URL: 'https://shop.test/checkout?order={orderId}&sale={saleId}',
      SECKILL_FRAME_ANCESTORS: SHOP,
    });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-chromium-'));
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      // The stand-in shop (http://shop.test) counts as public and seckill listens on loopback:
      // Chromium's local network access checks would block the frame for that reason alone.
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-features=LocalNetworkAccessChecks',
      ],
      viewport: { width: 390, height: 844 },
      locale: 'en-GB',
      timezoneId: 'UTC',
    });
    // The shop's logo, from its CDN (an origin of its own: the pages' img-src must allow it).
    await ctx.route(LOGO, (route) => route.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG }));
  });

  after(async () => {
    await ctx?.close();
    await t?.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`${page.url()}: ${m.text()}`);
    });
    await page.goto(url.startsWith('http') ? url : t.url + url);
    return page;
  }

  async function createSale(o: { stock: number; priceCents: number }): Promise<string> {
    const r = await t.admin('POST', '/api/admin/sales', {
      name: 'Keyboard K2', priceCents: o.priceCents, stock: o.stock, perUserLimit: 1, paymentWindowSeconds: 600,
      startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    assert.equal(r.status, 201, r.text);
    return String(r.body.id);
  }

  test('branding, EUR in de-DE, the shop\'s login and back, reserve, Pay now to the checkout, paid, reload shows the order', async () => {
    const saleId = await createSale({ stock: 1, priceCents: 4900 });
    const page = await open(`/sales/${saleId}`);

    // Header: the shop's logo and name (escaped, not markup), leading back to the shop.
    const brand = page.locator('#brand');
    assert.equal(await brand.textContent(), NAME);
    assert.equal(await brand.getAttribute('href'), 'https://shop.test/');
    await page.waitForFunction(() => (document.querySelector('#brand img') as HTMLImageElement | null)?.naturalWidth !== 0);
    await page.locator('#price', { hasText: '€' }).waitFor();
    assert.match(String(await page.locator('#price').textContent()), /^49,00\s€$/u);
    assert.match(await page.title(), /Keyboard K2 · Müller & Söhne <Keyboards>/);

    // Not signed in, no demo: "Sign in" leads to the shop's login, told where to come back to.
    const link = page.locator('#signin-link');
    await link.waitFor();
    const back = `${t.url}/sales/${saleId}`;
    assert.equal(await link.getAttribute('href'), `https://shop.test/login?returnTo=${encodeURIComponent(back)}`);
    await page.locator('#buy', { hasText: 'Sign in to buy' }).waitFor();
    // The shop's login signs the buyer in and sends them back with the token in the fragment.
    const token = userToken('shop-buyer');
    await page.route('https://shop.test/login**', (route) => {
      const returnTo = new URL(route.request().url()).searchParams.get('returnTo') ?? '';
      return route.fulfill({ status: 302, headers: { location: `${returnTo}#token=${token}` } });
    });
    await page.locator('#buy').click(); // the lit button leads there too
    await page.locator('#who-name', { hasText: 'shop-buyer' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address');

    await page.locator('#buy', { hasText: 'Buy now' }).click();
    await page.locator('#result h2', { hasText: 'Reserved' }).waitFor();
    const orderId = String((await t.call('GET', '/api/me/orders', { token })).body.orders[0].orderId);
    const pay = page.locator('#checkout');
    assert.equal(await pay.textContent(), 'Pay now');
    assert.equal(await pay.getAttribute('href'), `https://shop.test/checkout?order=${encodeURIComponent(orderId)}&sale=${encodeURIComponent(saleId)}`);
    assert.equal(await pay.getAttribute('target'), '_top');
    assert.equal(await page.getByRole('button', { name: 'Pay now (demo)' }).count(), 0);
    assert.match(String(await page.locator('#result').textContent()), /Complete the payment at Müller & Söhne <Keyboards> before/);

    // The shop's payment service confirms; the page hears it; a reload shows the order, not only "Sold out".
    assert.equal((await t.admin('POST', `/api/orders/${orderId}/pay`, { paymentRef: 'psp-42' })).status, 200);
    await page.locator('#result h2', { hasText: 'Paid' }).waitFor({ timeout: 60_000 });
    await page.reload();
    await page.locator('#result h2', { hasText: 'You bought this' }).waitFor();
    assert.equal(await page.locator('#result code').textContent(), orderId);
    assert.equal(await page.locator('#status').textContent(), 'Sold out');
    assert.equal(await page.locator('#main').getAttribute('data-state'), 'paid');

    // The list of sales: the same header and money.
    const list = await open('/');
    await list.locator('#sales li', { hasText: 'Keyboard K2' }).first().waitFor();
    assert.match(String(await list.locator('#sales li .meta').first().textContent()), /^49,00\s€ ·/u);
    assert.equal(await list.locator('#brand').textContent(), NAME);
    assert.equal(await list.title(), `Flash sales · ${NAME}`);
    await Promise.all([page.close(), list.close()]);
  });

  test('a buyer whose reservation was cancelled sees so, above a sale still on', async () => {
    const saleId = await createSale({ stock: 2, priceCents: 1999 });
    const token = userToken('shop-canceller');
    const p = await t.call('POST', `/api/sales/${saleId}/path`, { token, body: {} });
    const buy = await t.call('POST', `/api/sales/${saleId}/buy/${p.body.path}`, { token, body: { quantity: 1 } });
    assert.equal(buy.status, 202, buy.text);
    assert.equal((await t.call('POST', `/api/orders/${buy.body.orderId}/cancel`, { token, body: {} })).status, 200);
    const page = await open(`/sales/${saleId}#token=${token}`);
    await page.locator('#mine', { hasText: 'Your reservation was cancelled' }).waitFor();
    assert.equal(await page.locator('#mine code').textContent(), buy.body.orderId);
    await page.locator('#buy', { hasText: 'Buy now' }).waitFor(); // and it can be bought again
    await page.close();
  });

  test('framed by the shop (SECKILL_FRAME_ANCESTORS): the page works in its iframe; the dashboard may not be framed', async () => {
    const saleId = await createSale({ stock: 5, priceCents: 1000 });
    const html = await t.call('GET', `/sales/${saleId}`);
    assert.match(String(html.headers['content-security-policy']), new RegExp(`frame-ancestors ${SHOP}(;|$)`));
    assert.match(String(html.headers['content-security-policy']), /img-src 'self' data: https:\/\/cdn\.shop\.test/);
    assert.equal(html.headers['x-frame-options'], undefined);
    const admin = await t.call('GET', '/admin');
    assert.match(String(admin.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(admin.headers['x-frame-options'], 'DENY');

    const token = userToken('framed-buyer');
    const page = await ctx.newPage();
    await page.route(`${SHOP}/embed`, (route) => route.fulfill({
      status: 200,
      contentType: 'text/html',
      body: `<!doctype html><title>Shop</title><iframe id="sale" src="${t.url}/sales/${saleId}#token=${token}" width="400" height="800"></iframe>`,
    }));
    await page.goto(`${SHOP}/embed`);
    const frame = page.frameLocator('#sale');
    await frame.locator('#who-name', { hasText: 'framed-buyer' }).waitFor();
    await frame.locator('#price', { hasText: /^10,00\s€$/u }).waitFor();
    await frame.locator('#buy', { hasText: 'Buy now' }).click();
    await frame.locator('#result h2', { hasText: 'Reserved' }).waitFor();
    await page.close();
    assert.deepEqual(pageErrors, []);
  });
});

describe('prices in a currency without minor units', { skip: missing ?? distributed ?? false }, () => {
  test('JPY: 4900 is ¥4,900; the defaults frame nothing', async () => {
    const t = await startTestServer({ SECKILL_CURRENCY: 'JPY', SECKILL_LOCALE: 'ja-JP' });
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seckill-chromium-'));
    const ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    try {
      const sale = await t.createSale({ stock: 3, priceCents: 4900 });
      const page = await ctx.newPage();
      await page.goto(`${t.url}/sales/${sale.id}`);
      await page.locator('#price', { hasText: '4,900' }).waitFor();
      assert.match(String(await page.locator('#price').textContent()), /^[¥￥]4,900$/u);
      // No shop settings: seckill's own header, no sign-in link, no framing.
      assert.equal(await page.locator('#brand').textContent(), 'seckill');
      assert.equal(await page.locator('#signin-link').isHidden(), true);
      const html = await t.call('GET', `/sales/${sale.id}`);
      assert.equal(html.headers['x-frame-options'], 'DENY');
      assert.match(String(html.headers['content-security-policy']), /frame-ancestors 'none'/);
    } finally {
      await ctx.close();
      await t.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    }
  });
});
