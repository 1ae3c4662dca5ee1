// The challenge before the path (src/domain/challenge.ts, src/services/challenge-service.ts): tokens
// that cannot be forged, moved to another user or sale, used after expiry or twice; pow answers checked
// by their hash; quiz answers checked for the right choice and a person's reading time. Prints how long
// a verification takes (not asserted: a loaded machine).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import {
  checkChallenge, issueChallenge, leadingZeroBits, powSolved, quizAnswer, readChallenge, signChallenge, type ChallengeClaims,
} from '../../src/domain/challenge.js';
import { QUIZ } from '../../src/domain/quiz.js';
import type { Sale } from '../../src/domain/sale.js';
import { ChallengeService, MemorySpentChallenges } from '../../src/services/challenge-service.js';
import { sale } from '../support/fakes.js';

const SECRET = 'sale-secret-0123456789';
const NOW = 1_000_000;
const TTL = 120_000;

/** The smallest nonce that solves a pow token (a few hundred hashes at 8 bits). */
function solve(token: string, bits: number): string {
  for (let n = 0; ; n++) if (powSolved(token, String(n), bits)) return String(n);
}

const pow = (userId = 'ann', saleId = 'sale-1', bits = 8, now = NOW) => {
  const t = issueChallenge(SECRET, { saleId, userId, kind: 'pow', now, ttlMs: TTL, bits });
  assert.equal(t.kind, 'pow');
  return t.challenge;
};
const quiz = (userId = 'ann', now = NOW) => {
  const t = issueChallenge(SECRET, { saleId: 'sale-1', userId, kind: 'quiz', now, ttlMs: TTL, bits: 0 });
  assert.ok(t.kind === 'quiz');
  return t;
};
const check = (header: string | null, userId = 'ann', now = NOW + 2000, saleId = 'sale-1', secret = SECRET) =>
  checkChallenge(secret, header, saleId, userId, now, 1500);

test('leading zero bits', () => {
  assert.equal(leadingZeroBits(Uint8Array.from([0x80])), 0);
  assert.equal(leadingZeroBits(Uint8Array.from([0x01, 0xff])), 7);
  assert.equal(leadingZeroBits(Uint8Array.from([0x00, 0x20])), 10);
  assert.equal(leadingZeroBits(Uint8Array.from([0, 0])), 16);
});

test('pow: the token never holds ":", a solved nonce is accepted, its hash is what the wire says', () => {
  const token = pow();
  assert.ok(!token.includes(':'));
  const nonce = solve(token, 8);
  const digest = crypto.createHash('sha256').update(`${token}:${nonce}`, 'utf8').digest();
  assert.ok(leadingZeroBits(digest) >= 8);
  const r = check(`${token}:${nonce}`);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.claims.kind, 'pow');
  assert.equal(r.claims.bits, 8);
});

test('pow: a wrong nonce, or no nonce at all, is refused', () => {
  const token = pow('ann', 'sale-1', 20);
  // 20 bits: the first nonces almost surely fail.
  const wrong = ['0', '1', '2'].find((n) => !powSolved(token, n, 20));
  assert.ok(wrong);
  assert.deepEqual(check(`${token}:${wrong}`).ok, false);
  assert.equal((check(`${token}:${wrong}`) as { why: string }).why, 'wrong');
  assert.equal((check(`${token}:-1`) as { why: string }).why, 'wrong');
  assert.equal((check(`${token}:`) as { why: string }).why, 'missing');
  assert.equal((check(token) as { why: string }).why, 'missing');
  assert.equal((check(null) as { why: string }).why, 'missing');
});

test('forged, other user, other sale, expired', () => {
  const token = pow();
  const nonce = solve(token, 8);
  const [p, body, mac] = token.split('.');
  // Claims changed (bits 0) under the old MAC.
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
  const forgedBody = Buffer.from(JSON.stringify({ ...claims, b: 0 })).toString('base64url');
  assert.equal((check(`${p}.${forgedBody}.${mac}:0`) as { why: string }).why, 'forged');
  // Signed with another sale's secret.
  assert.equal((check(`${token}:${nonce}`, 'ann', NOW + 2000, 'sale-1', 'other-secret') as { why: string }).why, 'forged');
  assert.equal((check(`${token}:${nonce}`, 'bob') as { why: string }).why, 'other_user');
  assert.equal((check(`${token}:${nonce}`, 'ann', NOW + 2000, 'sale-2') as { why: string }).why, 'other_sale');
  assert.equal((check(`${token}:${nonce}`, 'ann', NOW + TTL) as { why: string }).why, 'expired');
  assert.equal((check(`c1.y.z:${nonce}`) as { why: string }).why, 'forged');
  assert.equal((check(`nonsense:${nonce}`) as { why: string }).why, 'malformed');
});

test('quiz: the right choice after the reading time is accepted; wrong or too fast is refused', () => {
  const t = quiz();
  assert.equal(t.choices.length, 4);
  const claims = (readChallenge(SECRET, t.challenge, 'sale-1', 'ann', NOW) as { claims: ChallengeClaims }).claims;
  const right = quizAnswer(claims);
  const q = QUIZ[claims.question ?? -1];
  assert.equal(t.question, q.question);
  assert.equal(t.choices[right], q.choices[q.answer], 'the shown index names the right choice');
  assert.deepEqual([...t.choices].sort(), [...q.choices].sort());
  assert.ok(check(`${t.challenge}:${right}`).ok);
  assert.equal((check(`${t.challenge}:${(right + 1) % 4}`) as { why: string }).why, 'wrong');
  assert.equal((check(`${t.challenge}:4`) as { why: string }).why, 'wrong');
  assert.equal((check(`${t.challenge}:${right}`, 'ann', NOW + 200) as { why: string }).why, 'too_fast');
});

test('the quiz set: at least 30 questions, 4 distinct choices each, answers spread', () => {
  assert.ok(QUIZ.length >= 30);
  for (const q of QUIZ) {
    assert.equal(new Set(q.choices).size, 4, q.question);
    assert.ok(q.question.length <= 80, q.question);
  }
  assert.equal(new Set(QUIZ.map((q) => q.answer)).size, 4);
});

// ---------------------------------------------------------------- the service: issue, check, spend
function service(s: Sale, o: { now?: () => number; quizMinMs?: number } = {}) {
  const spent = new MemorySpentChallenges(o.now);
  const svc = new ChallengeService(
    {
      sales: { get: (id) => (id === s.id ? s : undefined), find: async () => undefined },
      switches: { refuseBuys: false },
      refusals: { isSoldOut: () => false, holdsLimit: () => false },
      auth: { user: (token) => token ?? 'nobody' },
      spent,
    },
    { powBits: 8, quizMinMs: o.quizMinMs ?? 0 },
    o.now,
  );
  return { svc, spent };
}

test('service: a solved challenge is spent once; the second path with it fails', async () => {
  const s = sale({ startsAt: 0, endsAt: null, challenge: 'pow' });
  const { svc } = service(s);
  const issued = await svc.issue(s.id, 'ann');
  assert.ok(issued.ok && issued.task.kind === 'pow');
  const header = `${issued.task.challenge}:${solve(issued.task.challenge, issued.task.bits)}`;
  const first = svc.check(s, 'ann', header, Date.now());
  assert.equal(first.verdict, 'solved');
  assert.equal(await svc.spend(first.claims!), true);
  const again = svc.check(s, 'ann', header, Date.now());
  assert.equal(again.verdict, 'solved', 'checking does not spend');
  assert.equal(await svc.spend(again.claims!), false, 'reuse: already spent');
  assert.equal(svc.check(s, 'bob', header, Date.now()).verdict, 'failed');
  assert.equal(svc.check(s, 'ann', null, Date.now()).verdict, 'missing');
});

test('service: no challenge on the sale is not_found; public refusals come first', async () => {
  const plain = sale({ startsAt: 0, endsAt: null });
  assert.deepEqual(await service(plain).svc.issue(plain.id, 'ann'), { ok: false, refusal: 'not_found' });
  const ended = sale({ startsAt: 0, endsAt: 1, challenge: 'quiz' });
  assert.deepEqual(await service(ended).svc.issue(ended.id, 'ann'), { ok: false, refusal: 'ended' });
  assert.deepEqual(await service(ended).svc.issue('nope', 'ann'), { ok: false, refusal: 'not_found' });
});

test('service: a wrong quiz answer burns the token (one token cannot try every choice)', async () => {
  const s = sale({ startsAt: 0, endsAt: null, challenge: 'quiz' });
  const { svc } = service(s);
  const issued = await svc.issue(s.id, 'ann');
  assert.ok(issued.ok && issued.task.kind === 'quiz');
  const claims = (readChallenge(s.secret, issued.task.challenge, s.id, 'ann', Date.now()) as { claims: ChallengeClaims }).claims;
  const right = quizAnswer(claims);
  assert.equal(svc.check(s, 'ann', `${issued.task.challenge}:${(right + 1) % 4}`, Date.now()).verdict, 'failed');
  await new Promise((r) => setImmediate(r));
  const then = svc.check(s, 'ann', `${issued.task.challenge}:${right}`, Date.now());
  assert.equal(then.verdict, 'solved');
  assert.equal(await svc.spend(then.claims!), false, 'burnt by the wrong answer');
});

test('memory spent-store: forgets what expired', async () => {
  let now = 0;
  const spent = new MemorySpentChallenges(() => now);
  assert.equal(await spent.spend('s', 'a', 100), true);
  assert.equal(await spent.spend('s', 'a', 100), false);
  assert.equal(await spent.spend('t', 'a', 100), true, 'another sale');
  now = 150;
  assert.equal(await spent.spend('s', 'b', 100), true);
  assert.equal(spent.size, 1, 'the expired ones are gone');
});

test('verification cost (printed, not asserted)', () => {
  const token = pow('ann', 'sale-1', 8);
  const header = `${token}:${solve(token, 8)}`;
  const t = quiz();
  const claims = (readChallenge(SECRET, t.challenge, 'sale-1', 'ann', NOW) as { claims: ChallengeClaims }).claims;
  const quizHeader = `${t.challenge}:${quizAnswer(claims)}`;
  const N = 10_000;
  for (const [name, h] of [['pow', header], ['quiz', quizHeader]] as const) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) assert.ok(check(h).ok);
    const us = Number(process.hrtime.bigint() - start) / 1000 / N;
    console.log(`# ${name}: ${N} verifications, ${us.toFixed(2)} µs each`);
  }
  // The token's size, for the header (sent once per path request).
  assert.ok(signChallenge(SECRET, claims).length < 300);
});
