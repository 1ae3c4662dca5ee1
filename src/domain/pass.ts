// The waiting room's pass (issue 14): what a user let out of the room shows with `POST …/path`
// (header X-Seckill-Pass). Signed, bound to user, sale, expiry and a nonce; that it is used once
// is the room's to know (src/services/waiting-room.ts), this file only reads and writes the text.
import crypto from 'node:crypto';
import { SignedTokenFormat } from './signed-token.js';

export interface PassClaims {
  saleId: string;
  userId: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Random; the room remembers which nonce it gave each user and whether it was spent. */
  nonce: string;
}

export type PassReading =
  | { ok: true; claims: PassClaims }
  | { ok: false; why: 'malformed' | 'forged' | 'other_sale' | 'other_user' | 'expired' };

/** `p1.<claims>.<mac>`, under a key derived from the sale's secret for passes alone. */
const PASS = new SignedTokenFormat('p1', 'seckill waiting-room pass');

export function signPass(saleSecret: string, claims: PassClaims): string {
  return PASS.sign(saleSecret, { s: claims.saleId, u: claims.userId, e: claims.expiresAt, n: claims.nonce });
}

/** A new nonce: 96 random bits. */
export function passNonce(): string {
  return crypto.randomBytes(12).toString('base64url');
}

/** The pass's claims when it is genuine, for this sale and user, and not expired at `now`. */
export function readPass(saleSecret: string, text: string | null | undefined, saleId: string, userId: string, now: number): PassReading {
  if (typeof text !== 'string') return { ok: false, why: 'malformed' };
  const read = PASS.read(saleSecret, text, 1024);
  if (!read.ok) return read;
  const c = read.claims;
  if (typeof c.s !== 'string' || typeof c.u !== 'string' || typeof c.e !== 'number' || typeof c.n !== 'string') return { ok: false, why: 'malformed' };
  if (c.s !== saleId) return { ok: false, why: 'other_sale' };
  if (c.u !== userId) return { ok: false, why: 'other_user' };
  if (now >= c.e) return { ok: false, why: 'expired' };
  return { ok: true, claims: { saleId: c.s, userId: c.u, expiresAt: c.e, nonce: c.n } };
}
