// Intended purchases (issue 13): buyers refused because the sale sold out are kept once per user,
// from what the refused request carried, verified off the refusal path (a forged or expired token
// records nothing); the admin route lists them in pages and as CSV, to an admin key only.
// Embedded, or with SECKILL_TEST_MODE=distributed 3 processes on Redis and PostgreSQL (each
// records what it saw; the database's key keeps a user once).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSigner } from 'fast-jwt';
import { metric } from '../support/metrics.js';
import { until } from '../support/wait.js';
import { buy, call, mode, randomUser, saleBody, skipUnlessReady, startTestServer, userToken, ADMIN_KEY, USER_SECRET, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();

/** A well-formed token the server did not sign. */
const forged = (userId: string) => createSigner({ key: 'not-the-user-secret-0123456789abcdef0123', algorithm: 'HS256', expiresIn: 3_600_000 })({ sub: userId });
/** A token the server signed, expired an hour ago. */
const expired = (userId: string) => createSigner({ key: USER_SECRET, algorithm: 'HS256', expiresIn: 60_000, clockTimestamp: Date.now() - 7_200_000 })({ sub: userId });

interface Interest {
  userId: string;
  quantity: number;
  at: string;
}

describe('intended purchases', { skip }, () => {
  let t: TestServer;
  let saleId = '';
  /** The real refused users, with the quantity of their first refusal. */
  const real = new Map<string, number>();
  const fakes: string[] = [];

  before(async () => {
    t = await startTestServer();
    const r = await t.admin('POST', '/api/admin/sales', saleBody({ stock: 1, perUserLimit: 1 }));
    assert.equal(r.status, 201, r.text);
    saleId = r.body.id;
    await t.settle(saleId);
    const winner = randomUser('winner');
    assert.equal((await buy(t.url, saleId, userToken(winner))).status, 202);
    await t.settle(saleId);

    const refuse = async (token: string, quantity?: number) => {
      const r = await call(t.url, 'POST', `/api/sales/${saleId}/buy/any-path`, { token, ...(quantity === undefined ? {} : { body: { quantity } }) });
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'sold_out');
    };
    // Forged and expired tokens first: each process then meets them before the real ones.
    for (let i = 0; i < 3; i++) {
      const u = randomUser('forger');
      fakes.push(u);
      await refuse(forged(u));
    }
    for (let i = 0; i < 2; i++) {
      const u = randomUser('expired');
      fakes.push(u);
      await refuse(expired(u));
    }
    for (let i = 0; i < 8; i++) {
      const u = randomUser('fan');
      const q = i < 2 ? 2 : undefined;
      real.set(u, q ?? 1);
      await refuse(userToken(u), q);
      // Some come back, with another token of theirs (another string) and another quantity.
      if (i % 3 === 0) await refuse(userToken(u, 7200), 1);
    }
    // A forged token naming a real user records nothing either (the real user stays once).
    await refuse(forged([...real.keys()][0]));
    await refuse(forged([...real.keys()][1]), 3);
    // Embedded: everything queued is written now; distributed: wait for the rows (below).
    await t.server?.services.interest.flush();
  });
  after(async () => {
    await t?.close();
  });

  const list = async (query = '') => {
    const r = await call(t.url, 'GET', `/api/admin/sales/${saleId}/interest${query}`, { token: ADMIN_KEY });
    assert.equal(r.status, 200, r.text);
    return r.body as { interest: Interest[]; next: string | null };
  };
  const everyone = () => until('every refused buyer recorded', async () => {
    const page = await list('?limit=1000');
    return page.interest.length >= real.size ? page : undefined;
  }, 30_000, 100);

  test('each real user once, with the first refusal\'s quantity; forged and expired tokens record nothing', async () => {
    const page = await everyone();
    assert.equal(page.next, null);
    assert.deepEqual(page.interest.map((i) => i.userId), [...real.keys()].sort(), 'each real user exactly once, by user id');
    for (const i of page.interest) {
      assert.equal(i.quantity, real.get(i.userId), `${i.userId}: the quantity of the buy body`);
      assert.ok(Math.abs(Date.parse(i.at) - Date.now()) < 120_000, `${i.userId}: at is the refusal's time (${i.at})`);
      assert.deepEqual(Object.keys(i).sort(), ['at', 'quantity', 'userId']);
    }
    for (const u of fakes) assert.ok(!page.interest.some((i) => i.userId === u), `${u} (forged or expired) not recorded`);
    const summary = await call(t.url, 'GET', `/api/admin/sales/${saleId}/interest/summary`, { token: ADMIN_KEY });
    assert.equal(summary.status, 200, summary.text);
    assert.equal(summary.body.users, real.size);
    assert.equal(summary.body.units, [...real.values()].reduce((a, b) => a + b, 0));
    assert.equal(summary.body.recording, true);
    assert.equal(typeof summary.body.thisProcess.dropped, 'number');
    const scrape = await call(t.url, 'GET', '/metrics', { token: ADMIN_KEY });
    assert.equal(scrape.status, 200);
    // One process of several may have seen none of them: the series are there, the counts anywhere.
    for (const outcome of ['queued', 'dropped', 'rejected', 'written', 'failed']) {
      assert.notEqual(metric(scrape.text, 'seckill_interest_refusals', `outcome="${outcome}"`), undefined, outcome);
    }
    if (mode === 'embedded') assert.ok(metric(scrape.text, 'seckill_interest_refusals', 'outcome="written"')! >= real.size);
  });

  test('keyset pages: limit, next as after, every user once, in order', async () => {
    await everyone();
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await list(`?limit=3${after ? `&after=${after}` : ''}`);
      assert.ok(page.interest.length <= 3);
      seen.push(...page.interest.map((i) => i.userId));
      after = page.next;
      pages++;
    } while (after !== null && pages < 10);
    assert.equal(pages, Math.ceil(real.size / 3));
    assert.deepEqual(seen, [...real.keys()].sort());
    const bad = await call(t.url, 'GET', `/api/admin/sales/${saleId}/interest?limit=0`, { token: ADMIN_KEY });
    assert.equal(bad.status, 400, bad.text);
    const badCursor = await call(t.url, 'GET', `/api/admin/sales/${saleId}/interest?after=a%20b`, { token: ADMIN_KEY });
    assert.equal(badCursor.status, 400, badCursor.text);
  });

  test('CSV export: a header and one row per user', async () => {
    await everyone();
    const r = await call(t.url, 'GET', `/api/admin/sales/${saleId}/interest`, { token: ADMIN_KEY, headers: { accept: 'text/csv' } });
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^text\/csv/);
    assert.match(String(r.headers['content-disposition']), new RegExp(`interest-${saleId}\\.csv`));
    const lines = r.text.trim().split('\n');
    assert.equal(lines[0], 'userId,quantity,at');
    assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), [...real.keys()].sort());
    for (const l of lines.slice(1)) assert.equal(Number(l.split(',')[1]), real.get(l.split(',')[0]));
  });

  test('ending the sale appends one sale.interest event to the outbox, summarising them', { skip: mode !== 'embedded' && 'embedded: the outbox is read in process' }, async () => {
    await everyone();
    const ended = await t.admin('POST', `/api/admin/sales/${saleId}/end`);
    assert.equal(ended.status, 200, ended.text);
    const repo = t.server?.services.repo;
    assert.ok(repo);
    const events = await until('the sale.interest event', async () => {
      const e = (await repo.eventsOf(saleId)).filter((x) => x.type === 'sale.interest');
      return e.length > 0 ? e : undefined;
    }, 30_000, 100);
    assert.equal(events.length, 1);
    const body = JSON.parse(events[0].body);
    assert.deepEqual({ type: body.type, saleId: body.saleId, users: body.users, units: body.units },
      { type: 'sale.interest', saleId, users: real.size, units: [...real.values()].reduce((a, b) => a + b, 0) });
    assert.equal(body.id, events[0].id);
  });

  test('admin key required; an unknown sale is 404', async () => {
    const url = `/api/admin/sales/${saleId}/interest`;
    assert.equal((await call(t.url, 'GET', url)).status, 401);
    assert.equal((await call(t.url, 'GET', url, { token: 'wrong-key-0123456789abcdef' })).status, 401);
    assert.equal((await call(t.url, 'GET', url, { token: userToken(randomUser()) })).status, 403);
    assert.equal((await call(t.url, 'GET', `${url}/summary`)).status, 401);
    assert.equal((await call(t.url, 'GET', '/api/admin/sales/no-such-sale/interest', { token: ADMIN_KEY })).status, 404);
  });
});
