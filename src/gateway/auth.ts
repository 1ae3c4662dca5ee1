import crypto from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import { SeckillError } from '../domain/errors.js';

export type AuthResult = { kind: 'admin' } | { kind: 'user'; userId: string };

const MAX_SUB = 128;

/**
 * Identity: HS256 user tokens (fast-jwt; `alg` pinned to HS256, so `none` and RS/HS
 * confusion are refused) and the operators' admin key, compared in constant time.
 */
export class Auth {
  private readonly verify: (token: string) => { sub?: unknown };
  private readonly adminDigest: Buffer;

  constructor(userSecret: string, adminKey: string, audience?: string) {
    this.verify = createVerifier({
      key: userSecret,
      algorithms: ['HS256'],
      // With an audience configured, a token minted for another service is refused.
      requiredClaims: audience ? ['sub', 'aud'] : ['sub'],
      ...(audience ? { allowedAud: audience } : {}),
      // Verified tokens are cached (until their exp), so a retrying buyer costs no HMAC.
      cache: 10_000,
    }) as (token: string) => { sub?: unknown };
    this.adminDigest = digest(adminKey);
  }

  /** The bearer token of a request, or null. */
  static bearer(header: string | undefined): string | null {
    if (!header || header.length > 4096) return null;
    if (!header.startsWith('Bearer ')) return null;
    const t = header.slice(7).trim();
    return t.length > 0 ? t : null;
  }

  isAdminKey(token: string): boolean {
    return crypto.timingSafeEqual(digest(token), this.adminDigest);
  }

  /** The user id of a valid token; throws unauthorized otherwise. */
  user(token: string | null): string {
    if (!token) throw new SeckillError('unauthorized', 'Missing bearer token.');
    let payload: { sub?: unknown };
    try {
      payload = this.verify(token);
    } catch {
      throw new SeckillError('unauthorized', 'Invalid or expired token.');
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || sub.length < 1 || sub.length > MAX_SUB) {
      throw new SeckillError('unauthorized', 'Token subject must be a user id of 1-128 characters.');
    }
    return sub;
  }

  /** Admin key or user token. */
  identify(token: string | null): AuthResult {
    if (token && this.isAdminKey(token)) return { kind: 'admin' };
    return { kind: 'user', userId: this.user(token) };
  }

  /** For /api/admin: the admin key, or 403 for a valid user, or 401. */
  requireAdmin(token: string | null): void {
    if (token && this.isAdminKey(token)) return;
    this.user(token); // throws 401 when it is not a valid user token either
    throw new SeckillError('forbidden', 'Operators only.');
  }
}

/** Hashing first gives equal lengths for timingSafeEqual, whatever the input. */
function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

export function signUserToken(userSecret: string, userId: string, ttlSeconds = 3600): string {
  const sign = createSigner({ key: userSecret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 });
  return sign({ sub: userId });
}
