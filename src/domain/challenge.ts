// The challenge before the path (issue 14, docs/challenges.md): proof of work or a quiz, per sale.
// `POST …/challenge` gives a signed token; `POST …/path` carries `X-Seckill-Challenge:
// <token>:<answer>`. The token is stateless (HMAC under a key derived from the sale's secret), bound
// to sale, user, issue time, expiry, kind and a nonce; that it is used once is the spent-store's to
// know (SpentChallenges below), this file only writes, reads and checks the text.
import crypto from 'node:crypto';
import { SignedTokenFormat } from './signed-token.js';
import type { ChallengeTask } from './challenge-task.js';
import type { Challenge } from './queue.js';
import { QUIZ } from './quiz.js';

export type { ChallengeTask } from './challenge-task.js';

export interface ChallengeClaims {
  saleId: string;
  userId: string;
  kind: Challenge;
  /** Epoch ms. */
  issuedAt: number;
  /** Epoch ms. */
  expiresAt: number;
  /** Random: what the spent-store remembers. */
  nonce: string;
  /** pow: leading zero bits asked for (bound here, so a change of setting does not touch tokens out). */
  bits?: number;
  /** quiz: the question's index in QUIZ. */
  question?: number;
  /** quiz: the order shown, e.g. "2031": the page's choice j is the question's choice order[j]. */
  order?: string;
}


/** Why a challenge header does not let the path through. */
export type ChallengeFailure = 'forged' | 'malformed' | 'other_sale' | 'other_user' | 'expired' | 'wrong' | 'too_fast' | 'spent';

export type ChallengeReading =
  | { ok: true; claims: ChallengeClaims }
  | { ok: false; why: 'missing' | ChallengeFailure; claims?: ChallengeClaims };

/**
 * What the funnel reads (src/gateway/funnel.ts): `solved`, `missing` (no header, or not
 * `<token>:<answer>`: challenge_required), `failed` (anything else wrong: challenge_failed).
 */
export type ChallengeVerdict = 'solved' | 'missing' | 'failed';

/**
 * Challenges already used to get a path, remembered until they expire. Memory in one process
 * (embedded, postgres), Redis `SET NX PX` shared by every process (distributed).
 */
export interface SpentChallenges {
  /** True when this call spent it; false when it was spent before. */
  spend(saleId: string, nonce: string, ttlMs: number): Promise<boolean>;
}

const MAX_HEADER = 2048;
const POW_NONCE = /^[0-9]{1,20}$/;
const QUIZ_ANSWER = /^[0-3]$/;

/** `c1.<claims>.<mac>`: never contains ':' (the header's separator). */
const CHALLENGE = new SignedTokenFormat('c1', 'seckill challenge');

export function signChallenge(saleSecret: string, c: ChallengeClaims): string {
  const json: Record<string, unknown> = { s: c.saleId, u: c.userId, k: c.kind, i: c.issuedAt, e: c.expiresAt, n: c.nonce };
  if (c.bits !== undefined) json.b = c.bits;
  if (c.question !== undefined) json.q = c.question;
  if (c.order !== undefined) json.o = c.order;
  return CHALLENGE.sign(saleSecret, json);
}

/** A random permutation of 0..3, as four digits. */
function shuffledOrder(): string {
  const o = [0, 1, 2, 3];
  for (let i = o.length - 1; i > 0; i--) {
    const j = crypto.randomInt(i + 1);
    [o[i], o[j]] = [o[j], o[i]];
  }
  return o.join('');
}

export interface IssueInput {
  saleId: string;
  userId: string;
  kind: Challenge;
  now: number;
  ttlMs: number;
  /** pow's difficulty. */
  bits: number;
}

/** A new challenge for this user and sale: the token and what the page shows or solves. */
export function issueChallenge(saleSecret: string, i: IssueInput): ChallengeTask {
  const claims: ChallengeClaims = {
    saleId: i.saleId, userId: i.userId, kind: i.kind, issuedAt: i.now, expiresAt: i.now + i.ttlMs,
    nonce: crypto.randomBytes(12).toString('base64url'),
  };
  if (i.kind === 'pow') {
    claims.bits = i.bits;
    return { kind: 'pow', challenge: signChallenge(saleSecret, claims), bits: i.bits };
  }
  claims.question = crypto.randomInt(QUIZ.length);
  claims.order = shuffledOrder();
  const q = QUIZ[claims.question];
  const choices = [...claims.order].map((d) => q.choices[Number(d)]);
  return { kind: 'quiz', challenge: signChallenge(saleSecret, claims), question: q.question, choices };
}

/** The token's claims when it is genuine, for this sale and user, and not expired at `now`. */
export function readChallenge(saleSecret: string, token: string, saleId: string, userId: string, now: number): ChallengeReading {
  const read = CHALLENGE.read(saleSecret, token, MAX_HEADER);
  if (!read.ok) return read;
  const c = read.claims;
  if (typeof c.s !== 'string' || typeof c.u !== 'string' || (c.k !== 'pow' && c.k !== 'quiz') || typeof c.i !== 'number'
    || typeof c.e !== 'number' || typeof c.n !== 'string') return { ok: false, why: 'malformed' };
  if (c.s !== saleId) return { ok: false, why: 'other_sale' };
  if (c.u !== userId) return { ok: false, why: 'other_user' };
  if (now >= c.e) return { ok: false, why: 'expired' };
  const claims: ChallengeClaims = { saleId: c.s, userId: c.u, kind: c.k, issuedAt: c.i, expiresAt: c.e, nonce: c.n };
  if (c.k === 'pow') {
    if (typeof c.b !== 'number') return { ok: false, why: 'malformed' };
    claims.bits = c.b;
  } else {
    if (typeof c.q !== 'number' || !QUIZ[c.q] || typeof c.o !== 'string' || !/^[0-3]{4}$/.test(c.o)) return { ok: false, why: 'malformed' };
    claims.question = c.q;
    claims.order = c.o;
  }
  return { ok: true, claims };
}

/** Leading zero bits of a digest. */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/** Proof of work: SHA-256 of the UTF-8 text `<challenge>:<nonce>` starts with `bits` zero bits. */
export function powSolved(challenge: string, nonce: string, bits: number): boolean {
  return leadingZeroBits(crypto.createHash('sha256').update(`${challenge}:${nonce}`).digest()) >= bits;
}

/** The shown index of a quiz challenge's right choice. */
export function quizAnswer(claims: Pick<ChallengeClaims, 'question' | 'order'>): number {
  const q = QUIZ[claims.question ?? -1];
  return q && claims.order ? claims.order.indexOf(String(q.answer)) : -1;
}

/**
 * The header `X-Seckill-Challenge: <challenge>:<answer>` checked, but not spent: genuine, this
 * sale's and user's, not expired, answered right, and (a quiz) not sooner than `quizMinMs` after
 * issue. `missing` when there is no header or it is not of that form.
 */
export function checkChallenge(
  saleSecret: string, header: string | null | undefined, saleId: string, userId: string, now: number, quizMinMs: number,
): ChallengeReading {
  if (typeof header !== 'string' || header.length > MAX_HEADER) return { ok: false, why: 'missing' };
  const colon = header.indexOf(':');
  if (colon <= 0 || colon === header.length - 1) return { ok: false, why: 'missing' };
  const token = header.slice(0, colon);
  const answer = header.slice(colon + 1);
  const read = readChallenge(saleSecret, token, saleId, userId, now);
  if (!read.ok) return read;
  const { claims } = read;
  if (claims.kind === 'pow') {
    if (!POW_NONCE.test(answer) || !powSolved(token, answer, claims.bits ?? 0)) return { ok: false, why: 'wrong', claims };
    return read;
  }
  if (!QUIZ_ANSWER.test(answer) || Number(answer) !== quizAnswer(claims)) return { ok: false, why: 'wrong', claims };
  // Answered before a person could have read the question: a script's speed.
  if (now - claims.issuedAt < quizMinMs) return { ok: false, why: 'too_fast', claims };
  return read;
}
