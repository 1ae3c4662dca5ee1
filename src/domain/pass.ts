// The waiting room's pass (issue 14): what a user let out of the room shows with `POST …/path`
// (header X-Seckill-Pass). Signed, bound to user, sale, expiry and a nonce; that it is used once
// is the room's to know (src/services/waiting-room.ts), this file only reads and writes the text.
import crypto from 'node:crypto';

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

const PREFIX = 'p1';

/** The pass key: derived from the sale's secret, so it differs from the order path's HMAC input. */
function passKey(saleSecret: string): Buffer {
  return crypto.createHmac('sha256', saleSecret).update('seckill waiting-room pass').digest();
}

function mac(saleSecret: string, body: string): Buffer {
  return crypto.createHmac('sha256', passKey(saleSecret)).update(PREFIX).update('.').update(body).digest();
}

/** `p1.<base64url JSON claims>.<base64url HMAC-SHA256>`. */
export function signPass(saleSecret: string, claims: PassClaims): string {
  const body = Buffer.from(JSON.stringify({ s: claims.saleId, u: claims.userId, e: claims.expiresAt, n: claims.nonce })).toString('base64url');
  return `${PREFIX}.${body}.${mac(saleSecret, body).toString('base64url')}`;
}

/** A new nonce: 96 random bits. */
export function passNonce(): string {
  return crypto.randomBytes(12).toString('base64url');
}

/** The pass's claims when it is genuine, for this sale and user, and not expired at `now`. */
export function readPass(saleSecret: string, text: string | null | undefined, saleId: string, userId: string, now: number): PassReading {
  if (typeof text !== 'string' || text.length > 1024) return { ok: false, why: 'malformed' };
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, why: 'malformed' };
  const given = Buffer.from(parts[2], 'base64url');
  const expected = mac(saleSecret, parts[1]);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return { ok: false, why: 'forged' };
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return { ok: false, why: 'malformed' };
  }
  const c = raw as { s?: unknown; u?: unknown; e?: unknown; n?: unknown };
  if (typeof c.s !== 'string' || typeof c.u !== 'string' || typeof c.e !== 'number' || typeof c.n !== 'string') return { ok: false, why: 'malformed' };
  if (c.s !== saleId) return { ok: false, why: 'other_sale' };
  if (c.u !== userId) return { ok: false, why: 'other_user' };
  if (now >= c.e) return { ok: false, why: 'expired' };
  return { ok: true, claims: { saleId: c.s, userId: c.u, expiresAt: c.e, nonce: c.n } };
}
