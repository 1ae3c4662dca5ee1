// The waiting room's event stream through the real sale page (issue 14), in Debian's Chromium driven by
// playwright-core: the page waits in line on the stream (no polling), shows the sell-out the moment the
// last unit is bought elsewhere, without a reload, and when the unit comes back (a cancel) it is let
// through and its button lights.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { SHOTS, browserSkip, phoneBrowser, type Browser } from '../support/browser.js';
import { signUserToken } from '../../src/gateway/auth.js';
import { until } from '../support/wait.js';
import { call, saleBody, generatedUserSecret, startTestServer, type TestServer } from '../support/server.js';

const skip = browserSkip('e2e-queue-events-page');

describe('waiting room event stream on the sale page', { skip: skip ?? false }, () => {
  let t: TestServer;
  let ctx: BrowserContext;
  let browser: Browser | undefined;
  let userSecret: string;
  const pageErrors: string[] = [];

  before(async () => {
    // Demo mode, for the page's sign-in.
    t = await startTestServer({ SECKILL_USER_SECRET: undefined, SECKILL_DEMO: '1', SECKILL_QUEUE_ABANDON_MS: '60000' });
    userSecret = generatedUserSecret(t.dataDir);
    browser = await phoneBrowser();
    ctx = browser.ctx;
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('the page waits on the stream, shows the sell-out without a reload, and is let through when the unit returns', async () => {
    // One unit: the room lets out no more users than units, so the first (by the API) is out and the page user waits.
    const created = await t.admin('POST', '/api/admin/sales', { ...saleBody({ stock: 1 }), waitingRoom: { method: 'fifo', admitPerSecond: 50 } });
    assert.equal(created.status, 201, created.text);
    const saleId = (created.body as { id: string }).id;
    const first = signUserToken(userSecret, 'first');
    assert.equal((await call(t.url, 'POST', `/api/sales/${saleId}/queue`, { token: first, body: {} })).status, 200);
    const firstPass = await until('first admitted', async () => {
      const r = await call(t.url, 'GET', `/api/sales/${saleId}/queue`, { token: first });
      return r.body.state === 'admitted' ? (r.body.pass as string) : undefined;
    }, 15_000, 100);

    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    // The page's room requests: polls (GET …/queue) and streams (GET …/queue/events).
    const polls: number[] = [];
    let streams = 0;
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (r.method() !== 'GET') return;
      if (u.pathname === `/api/sales/${saleId}/queue`) polls.push(Date.now());
      if (u.pathname === `/api/sales/${saleId}/queue/events`) streams++;
    });
    await page.goto(`${t.url}/sales/${saleId}`);
    await page.getByLabel('Your name').fill('paula');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#queue', { hasText: 'number 1 in line' }).waitFor({ timeout: 30_000 });
    await until('the page holds the stream', () => streams > 0 || undefined, 30_000, 50);
    await page.locator('#buy', { hasText: 'Waiting for your turn' }).waitFor({ timeout: 30_000 });
    const pollsBefore = polls.length;

    // The unit is bought elsewhere: the page says sold out by itself.
    const p = await call(t.url, 'POST', `/api/sales/${saleId}/path`, { token: first, headers: { 'x-seckill-pass': firstPass } });
    assert.equal(p.status, 200, p.text);
    const bought = await call(t.url, 'POST', `/api/sales/${saleId}/buy/${encodeURIComponent(p.body.path as string)}`,
      { token: first, body: { quantity: 1 }, headers: { 'x-seckill-pass': firstPass } });
    assert.equal(bought.status, 202, bought.text);
    const boughtAt = Date.now();
    // The buy form (the room's line with it) steps aside for the sale's sold-out result.
    await page.locator('#result h2', { hasText: 'Sold out' }).waitFor({ timeout: 30_000 });
    const shownMs = Date.now() - boughtAt;
    assert.equal(await page.locator('#status').getAttribute('data-status'), 'sold_out');
    assert.match(String(await page.locator('#queue').textContent()), /Sold out for now/);
    console.log(`# the page showed sold out ${shownMs} ms after the buy's answer (pushed; ${polls.length - pollsBefore} polls meanwhile)`);
    assert.equal(polls.length, pollsBefore, 'told by the stream, not by a poll');
    await page.screenshot({ path: path.join(SHOTS, 'waiting-room-sold-out-pushed.png') });

    // The unit comes back (the buyer cancels): the page user is next, and let through.
    assert.equal((await call(t.url, 'POST', `/api/orders/${bought.body.orderId as string}/cancel`, { token: first, body: {} })).status, 200);
    await page.locator('#queue', { hasText: 'Your turn' }).waitFor({ timeout: 30_000 });
    await page.locator('#buy', { hasText: 'Buy now' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#buy').isDisabled(), false);
    assert.equal(polls.length, pollsBefore, 'still no polling: the stream said it all');
    await page.close();
    assert.deepEqual(pageErrors, []);
  });
});
