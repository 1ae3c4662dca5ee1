// The challenge before the path over HTTP (issue 14, docs/challenges.md): a sale with a challenge
// gives no path without X-Seckill-Challenge, gives it for a solved pow and only once, refuses a quiz
// answered faster than a person reads and accepts the right answer after; a sale without one is
// unchanged. Small SECKILL_POW_BITS and SECKILL_QUIZ_MIN_MS keep it quick. Both modes.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { QUIZ } from '../../src/domain/quiz.js';
import { call, saleBody, skipUnlessReady, startTestServer, userToken, type Reply, type TestServer } from '../support/server.js';

const skip = await skipUnlessReady();
const BITS = 8;
const QUIZ_MIN_MS = 400;

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.equal(r.body?.error?.code, code, r.text);
}

/** A nonce whose SHA-256 over `<challenge>:<nonce>` starts with `bits` zero bits, as the wire says. */
function solvePow(challenge: string, bits: number): string {
  for (let n = 0; ; n++) {
    const d = crypto.createHash('sha256').update(`${challenge}:${n}`, 'utf8').digest();
    if (d.readUInt32BE(0) >>> (32 - bits) === 0) return String(n);
  }
}

/** The shown index of the right choice, by the question set (a person reads it; the test looks it up). */
function answerQuiz(question: string, choices: string[]): number {
  const q = QUIZ.find((x) => x.question === question);
  assert.ok(q, question);
  return choices.indexOf(q.choices[q.answer]);
}

describe('challenge before the path', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ SECKILL_POW_BITS: String(BITS), SECKILL_QUIZ_MIN_MS: String(QUIZ_MIN_MS) });
  });
  after(async () => {
    await t?.close();
  });

  const newSale = async (challenge: 'pow' | 'quiz' | null, o: { startsIn?: number } = {}) => {
    const r = await t.admin('POST', '/api/admin/sales', { ...saleBody({ stock: 10, ...o }), challenge });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.challenge, challenge);
    await t.settle(r.body.id as string);
    return r.body as { id: string };
  };
  const getChallenge = (saleId: string, user: string) => call(t.url, 'POST', `/api/sales/${saleId}/challenge`, { token: userToken(user), body: {} });
  const path = (saleId: string, user: string, header?: string) =>
    call(t.url, 'POST', `/api/sales/${saleId}/path`, { token: userToken(user), body: {}, headers: header === undefined ? {} : { 'x-seckill-challenge': header } });

  test('pow: refused without the header, given with a solved one, refused when reused or moved', async () => {
    const sale = await newSale('pow');
    const pub = await call(t.url, 'GET', `/api/sales/${sale.id}`);
    assert.equal(pub.body.challenge, 'pow', 'the page learns it from the public sale');

    assertError(await path(sale.id, 'ann'), 403, 'challenge_required');
    assertError(await path(sale.id, 'ann', 'no-colon-here'), 403, 'challenge_required');

    const c = await getChallenge(sale.id, 'ann');
    assert.equal(c.status, 200, c.text);
    assert.equal(c.headers['cache-control'], 'no-store');
    assert.equal(c.body.kind, 'pow');
    assert.equal(c.body.bits, BITS);
    assert.ok(!String(c.body.challenge).includes(':'));
    const header = `${c.body.challenge}:${solvePow(c.body.challenge, BITS)}`;

    assertError(await path(sale.id, 'bob', header), 403, 'challenge_failed');
    const ok = await path(sale.id, 'ann', header);
    assert.equal(ok.status, 200, ok.text);
    const bought = await call(t.url, 'POST', `/api/sales/${sale.id}/buy/${encodeURIComponent(ok.body.path)}`, { token: userToken('ann'), body: { quantity: 1 } });
    assert.equal(bought.status, 202, bought.text);
    assertError(await path(sale.id, 'ann', header), 403, 'challenge_failed');

    // A wrong nonce, and a forged token.
    const c2 = await getChallenge(sale.id, 'cid');
    const wrong = ['0', '1', '2', '3', '4'].find((n) => crypto.createHash('sha256').update(`${c2.body.challenge}:${n}`).digest()[0] !== 0);
    assertError(await path(sale.id, 'cid', `${c2.body.challenge}:${wrong}`), 403, 'challenge_failed');
    const [p, body] = String(c2.body.challenge).split('.');
    assertError(await path(sale.id, 'cid', `${p}.${body}.AAAA:0`), 403, 'challenge_failed');
  });

  test('quiz: too fast refused, the right answer after the reading time accepted', async () => {
    const sale = await newSale('quiz');
    const fast = await getChallenge(sale.id, 'dan');
    assert.equal(fast.status, 200, fast.text);
    assert.equal(fast.body.kind, 'quiz');
    assert.equal(fast.body.choices.length, 4);
    assertError(await path(sale.id, 'dan', `${fast.body.challenge}:${answerQuiz(fast.body.question, fast.body.choices)}`), 403, 'challenge_failed');

    const c = await getChallenge(sale.id, 'dan');
    const right = answerQuiz(c.body.question, c.body.choices);
    await sleep(QUIZ_MIN_MS + 100);
    assertError(await path(sale.id, 'dan', `${c.body.challenge}:${(right + 1) % 4}`), 403, 'challenge_failed');
    // The wrong answer burnt that token: the right one no longer helps.
    assertError(await path(sale.id, 'dan', `${c.body.challenge}:${right}`), 403, 'challenge_failed');

    const slow = await getChallenge(sale.id, 'dan');
    await sleep(QUIZ_MIN_MS + 100);
    const ok = await path(sale.id, 'dan', `${slow.body.challenge}:${answerQuiz(slow.body.question, slow.body.choices)}`);
    assert.equal(ok.status, 200, ok.text);
  });

  test('no challenge: the path as before, the challenge route 404; public refusals and identity first', async () => {
    const plain = await newSale(null);
    assert.equal((await path(plain.id, 'eve')).status, 200);
    assertError(await getChallenge(plain.id, 'eve'), 404, 'not_found');

    const early = await newSale('pow', { startsIn: 3600_000 });
    assertError(await getChallenge(early.id, 'eve'), 425, 'not_started');
    assertError(await call(t.url, 'POST', `/api/sales/${early.id}/challenge`, { body: {} }), 425, 'not_started');
    const live = await newSale('pow');
    assertError(await call(t.url, 'POST', `/api/sales/${live.id}/challenge`, { body: {} }), 401, 'unauthorized');
    assertError(await getChallenge('no-such-sale', 'eve'), 404, 'not_found');
  });

  test('settings: the challenge is set before the open, refused after it', async () => {
    const sale = await newSale(null, { startsIn: 3600_000 });
    const changed = await t.admin('PATCH', `/api/admin/sales/${sale.id}`, { challenge: 'quiz' });
    assert.equal(changed.status, 200, changed.text);
    assert.equal(changed.body.challenge, 'quiz');
    const live = await newSale('pow');
    assertError(await t.admin('PATCH', `/api/admin/sales/${live.id}`, { challenge: null }), 409, 'sale_open');
  });
});
