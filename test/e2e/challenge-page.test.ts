// The proof-of-work challenge through the real sale page (issue 14, docs/challenges.md), in Debian's
// Chromium driven by playwright-core: a live sale with `challenge: "pow"` at the default difficulty;
// the buyer signs in and clicks Buy; the page's worker solves the challenge, the path and the buy
// follow and the order is reserved. Prints how long the worker took (SECKILL_POW_BITS default).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { SHOTS, browserSkip, phoneBrowser, type Browser } from '../support/browser.js';
import { loadConfig } from '../../src/config/config.js';
import { QUIZ } from '../../src/domain/quiz.js';
import { saleBody, startTestServer, type TestServer } from '../support/server.js';

const skip = browserSkip('e2e-challenge-page');

describe('challenges on the sale page', { skip: skip ?? false }, () => {
  let t: TestServer;
  let ctx: BrowserContext;
  let browser: Browser | undefined;
  const pageErrors: string[] = [];

  before(async () => {
    // Demo mode, for the page's sign-in; the default difficulty (what a phone gets).
    t = await startTestServer({ SECKILL_USER_SECRET: undefined, SECKILL_DEMO: '1', SECKILL_POW_BITS: undefined });
    browser = await phoneBrowser();
    ctx = browser.ctx;
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('the page solves the challenge in its worker, then gets the path and buys', async () => {
    const created = await t.admin('POST', '/api/admin/sales', { ...saleBody({ stock: 5 }), challenge: 'pow' });
    assert.equal(created.status, 201, created.text);
    const sale = created.body as { id: string };
    await t.settle(sale.id);

    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(`${page.url()}: ${m.text()}`);
    });
    // The path request's header, as the page sent it.
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith(`/api/sales/${sale.id}/path`)) sent.push(r.headers()['x-seckill-challenge'] ?? '');
    });
    await page.goto(`${t.url}/sales/${sale.id}`);
    await page.getByLabel('Your name').fill('wanda');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#buy', { hasText: 'Buy now' }).waitFor({ timeout: 30_000 });
    await page.locator('#buy').click();
    await page.locator('#result h2', { hasText: 'Reserved' }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'challenge-pow-reserved.png') });
    assert.equal(sent.length, 1, 'one path request, solved the first time');
    assert.match(sent[0], /^c1\.[\w-]+\.[\w-]+:\d+$/);

    // The worker's time at the default difficulty, a few runs on this machine (printed, not asserted).
    const bits = loadConfig({}).powBits;
    const workerUrl = await page.locator('meta[name="seckill-pow-worker"]').getAttribute('content');
    const runs = await page.evaluate(async ({ url, bits }) => {
      const out: Array<{ ms: number; tries: number }> = [];
      for (let i = 0; i < 8; i++) {
        // As long as a real token (about 260 characters), different each run.
        const challenge = `c1.${crypto.randomUUID().repeat(6)}.${crypto.randomUUID()}`;
        const r = await new Promise<{ ms: number; tries: number }>((resolve) => {
          const w = new Worker(url);
          w.onmessage = (e) => {
            w.terminate();
            resolve(e.data as { ms: number; tries: number });
          };
          w.postMessage({ challenge, bits });
        });
        out.push(r);
      }
      return out;
    }, { url: String(workerUrl), bits });
    const ms = runs.reduce((a, r) => a + r.ms, 0);
    const tries = runs.reduce((a, r) => a + r.tries, 0);
    console.log(`# pow worker, ${bits} bits: ${runs.map((r) => `${r.ms} ms/${r.tries} hashes`).join(', ')}; mean ${Math.round(ms / runs.length)} ms, ${Math.round(tries / (ms / 1000))} hashes/s`);
    await page.close();
    assert.deepEqual(pageErrors, []);
  });

  test('a quiz sale: the page shows the question and its choices; the right one, clicked, gets the path and the buy', async () => {
    const created = await t.admin('POST', '/api/admin/sales', { ...saleBody({ stock: 5 }), challenge: 'quiz' });
    assert.equal(created.status, 201, created.text);
    const sale = created.body as { id: string };
    await t.settle(sale.id);

    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith(`/api/sales/${sale.id}/path`)) sent.push(r.headers()['x-seckill-challenge'] ?? '');
    });
    await page.goto(`${t.url}/sales/${sale.id}`);
    await page.getByLabel('Your name').fill('quincy');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#buy', { hasText: 'Buy now' }).waitFor({ timeout: 30_000 });
    await page.locator('#buy').click();
    // The question, as a person sees it; its right answer from the set (the page shows the choices shuffled).
    const title = page.locator('#result h2');
    await title.filter({ hasText: '?' }).waitFor({ timeout: 30_000 });
    const question = String(await title.textContent()).trim();
    const q = QUIZ.find((x) => x.question === question);
    assert.ok(q, `a question of the set: ${question}`);
    await page.screenshot({ path: path.join(SHOTS, 'challenge-quiz.png') });
    await page.getByRole('button', { name: q.choices[q.answer], exact: true }).click();
    await page.locator('#result h2', { hasText: 'Reserved' }).waitFor({ timeout: 30_000 });
    assert.equal(sent.length, 1, 'one path request, answered right the first time');
    assert.match(sent[0], /^c1\.[\w-]+\.[\w-]+:[0-3]$/);
    await page.close();
    assert.deepEqual(pageErrors, []);
  });
});
