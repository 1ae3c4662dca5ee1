// The waiting room through the real sale page (issue 14), in Debian's Chromium driven by playwright-core:
// a fifo room letting one user through per second, buyers who join before the page user (by the API)
// and at the open, the page user's place falling while he waits, his turn, his buy and his order; then
// the dashboard shows the room's figures.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { SHOTS, browserSkip, phoneBrowser, type Browser } from '../support/browser.js';
import { signUserToken } from '../../src/gateway/auth.js';
import { until } from '../support/wait.js';
import { ADMIN_KEY, call, saleBody, generatedUserSecret, startTestServer, type TestServer } from '../support/server.js';

const skip = browserSkip('e2e-waiting-room-page');

describe('waiting room on the sale page', { skip: skip ?? false }, () => {
  let t: TestServer;
  let ctx: BrowserContext;
  let browser: Browser | undefined;
  let userSecret: string;
  const pageErrors: string[] = [];

  before(async () => {
    // Demo mode, for the page's sign-in; places kept a minute without polling (a loaded machine's API users are slow).
    t = await startTestServer({ SECKILL_USER_SECRET: undefined, SECKILL_DEMO: '1', SECKILL_QUEUE_ABANDON_MS: '60000' });
    userSecret = generatedUserSecret(t.dataDir);
    browser = await phoneBrowser();
    ctx = browser.ctx;
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  async function open(url: string, init?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`${page.url()}: ${m.text()}`);
    });
    if (init) await init(page);
    await page.goto(t.url + url);
    return page;
  }

  const join = (saleId: string, user: string) =>
    call(t.url, 'POST', `/api/sales/${saleId}/queue`, { token: signUserToken(userSecret, user), body: {} });

  test('a buyer waits his turn on the page, sees his place fall, buys, sees his order; the dashboard shows the room', async () => {
    // Opens 8 s from now (time for Chromium to load and sign in on a loaded machine); one user let through per second.
    const created = await t.admin('POST', '/api/admin/sales', {
      ...saleBody({ stock: 20, startsIn: 8_000 }),
      waitingRoom: { method: 'fifo', admitPerSecond: 1 },
    });
    assert.equal(created.status, 201, created.text);
    const sale = created.body as { id: string; startsAt: string };

    // Three buyers take their places before the page user, by the API.
    for (const u of ['early-1', 'early-2', 'early-3']) assert.equal((await join(sale.id, u)).status, 200);

    const page = await open(`/sales/${sale.id}`);
    // Every place the page shows, as it shows it (not sampled: a poll every 2 s could slip between samples).
    await page.evaluate(() => {
      const q = document.getElementById('queue')!;
      const w = window as unknown as { places: number[] };
      w.places = [];
      new MutationObserver(() => {
        const m = /number (\d+) in line/.exec(q.textContent ?? '');
        if (m && Number(m[1]) !== w.places[w.places.length - 1]) w.places.push(Number(m[1]));
      }).observe(q, { childList: true, characterData: true, subtree: true });
    });
    await page.getByLabel('Your name').fill('paula');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#who-name', { hasText: 'paula' }).waitFor();
    // Signed in: she takes a place at once, behind the three.
    await page.locator('#queue', { hasText: /number \d+ in line/ }).waitFor({ timeout: 30_000 });

    // Two more join at the open (behind her in a fifo room).
    await until('the sale open', async () => (Date.now() >= Date.parse(sale.startsAt) ? true : undefined), 30_000, 100);
    for (const u of ['late-1', 'late-2']) assert.equal((await join(sale.id, u)).status, 200);

    // While she waits the button stays dark; read her place from the page a few times.
    const read: number[] = [];
    const readPlace = async () => {
      const m = /number (\d+) in line/.exec(String(await page.locator('#queue').textContent()));
      if (m) read.push(Number(m[1]));
    };
    await readPlace();
    await page.locator('#buy', { hasText: 'Waiting for your turn' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#buy').isDisabled(), true, 'no buying before her turn');
    await page.screenshot({ path: path.join(SHOTS, 'waiting-room-waiting.png') });
    await readPlace();
    await page.locator('#queue', { hasText: /number [12] in line|Your turn/ }).waitFor({ timeout: 30_000 });
    await readPlace();

    // Her turn: the button lights.
    await page.locator('#queue', { hasText: 'Your turn' }).waitFor({ timeout: 30_000 });
    await page.locator('#buy', { hasText: 'Buy now' }).waitFor({ timeout: 30_000 });
    const places = await page.evaluate(() => (window as unknown as { places: number[] }).places);
    console.log(`places the page showed: ${JSON.stringify(places)}; read by the test: ${JSON.stringify(read)}`);
    await page.screenshot({ path: path.join(SHOTS, 'waiting-room-your-turn.png') });
    assert.ok(places.length >= 2, `her place changed at least once while she waited: ${JSON.stringify(places)}`);
    assert.ok(places[0] > 1, `she did not start first in line: ${JSON.stringify(places)}`);
    for (const seq of [places, read]) {
      for (let i = 1; i < seq.length; i++) assert.ok(seq[i] <= seq[i - 1], `her place never went up: ${JSON.stringify(seq)}`);
    }
    assert.ok(read.length === 0 || read[0] > 0);

    // She buys and sees her order.
    await page.locator('#buy').click();
    await page.locator('#result h2', { hasText: 'Reserved' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#queue').isHidden(), true, 'the room is behind her');
    const mine = await call(t.url, 'GET', '/api/me/orders', { token: signUserToken(userSecret, 'paula') });
    const orders = (mine.body.orders as Array<{ orderId: string; saleId: string; status: string }>).filter((o) => o.saleId === sale.id);
    assert.deepEqual(orders.map((o) => o.status), ['reserved']);
    // A reload finds her order (and does not put her back in line).
    await page.reload();
    await page.locator('#result', { hasText: orders[0].orderId }).filter({ hasText: 'Reserved' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#queue').isHidden(), true, 'not back in line after a reload');
    await page.getByRole('button', { name: 'Pay now (demo)' }).click();
    await page.locator('#result h2', { hasText: 'Paid' }).waitFor({ timeout: 30_000 });
    await page.close();

    // The dashboard: the room's figures under the sale's live ones.
    const stats = (await t.admin('GET', `/api/admin/sales/${sale.id}/queue`)).body.room as { admitted: number };
    assert.ok(stats.admitted >= 4, `three before her and her let through: ${JSON.stringify(stats)}`);
    const dash = await open(`/admin#sale=${sale.id}`, async (p) => {
      await p.addInitScript((k) => sessionStorage.setItem('seckill.adminKey', k), ADMIN_KEY);
    });
    await dash.setViewportSize({ width: 1280, height: 1000 });
    await dash.locator('#room-kpis').waitFor({ timeout: 30_000 });
    await dash.waitForFunction(() => Number(document.getElementById('k-room-admitted')?.textContent) >= 4, null, { timeout: 30_000 });
    assert.match(String(await dash.locator('#k-room-rate').textContent()), /^\d+\.\d$/);
    assert.match(String(await dash.locator('#k-room-waiting').textContent()), /^\d+$/);
    assert.match(String(await dash.locator('#k-room-abandoned').textContent()), /^\d+$/);
    await dash.locator('#h-list li', { hasText: 'waiting room fifo 1/s' }).waitFor({ timeout: 30_000 });
    await dash.screenshot({ path: path.join(SHOTS, 'dashboard-waiting-room.png'), fullPage: true });
    await dash.close();
    assert.deepEqual(pageErrors, []);
  });
});
