// The sale's own signed tokens (the waiting room's pass, the challenge): `<prefix>.<base64url JSON
// claims>.<base64url HMAC-SHA256>`, under a key derived from the sale's secret and the token's
// purpose, so a token of one kind never reads as another, nor as an order path.
import crypto from 'node:crypto';

export type TokenReading = { ok: true; claims: Record<string, unknown> } | { ok: false; why: 'malformed' | 'forged' };

/** Derived keys kept per sale secret: sales are few, and a check then costs one HMAC less. */
const KEYS_KEPT = 1000;

export class SignedTokenFormat {
  private readonly keys = new Map<string, Buffer>();

  /** `purpose`: the derivation's label, fixed for the kind (changing it voids every token out). */
  constructor(private readonly prefix: string, private readonly purpose: string) {}

  sign(saleSecret: string, claims: Record<string, unknown>): string {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${this.prefix}.${body}.${this.mac(saleSecret, body).toString('base64url')}`;
  }

  /** The claims of a genuine token; what they say (sale, user, expiry) is the caller's to check. */
  read(saleSecret: string, text: string, maxLength: number): TokenReading {
    if (text.length > maxLength) return { ok: false, why: 'malformed' };
    const parts = text.split('.');
    if (parts.length !== 3 || parts[0] !== this.prefix) return { ok: false, why: 'malformed' };
    const given = Buffer.from(parts[2], 'base64url');
    const expected = this.mac(saleSecret, parts[1]);
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return { ok: false, why: 'forged' };
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      return { ok: false, why: 'malformed' };
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, why: 'malformed' };
    return { ok: true, claims: raw as Record<string, unknown> };
  }

  private key(saleSecret: string): Buffer {
    let key = this.keys.get(saleSecret);
    if (!key) {
      key = crypto.createHmac('sha256', saleSecret).update(this.purpose).digest();
      if (this.keys.size >= KEYS_KEPT) this.keys.clear();
      this.keys.set(saleSecret, key);
    }
    return key;
  }

  private mac(saleSecret: string, body: string): Buffer {
    return crypto.createHmac('sha256', this.key(saleSecret)).update(this.prefix).update('.').update(body).digest();
  }
}
