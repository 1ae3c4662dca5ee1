import crypto from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import { SeckillError } from '../domain/errors.js';
import { isStorableLine } from '../domain/stored-text.js';

export type AuthResult = { kind: 'admin' } | { kind: 'user'; userId: string };

const MAX_SUB = 128;

/**
 * Why a token's `sub` is no user id seckill accepts, or null when it is one: a string of 1-128
 * UTF-16 code units that every store can keep (the user id is stored with every order: no control
 * character, no U+0000, no lone surrogate). The server's check; `seckill token` asks it too.
 */
export function userIdProblem(sub: unknown): string | null {
  if (typeof sub !== 'string' || sub.length < 1 || sub.length > MAX_SUB) {
    return `Token subject must be a user id of 1-${MAX_SUB} characters.`;
  }
  if (!isStorableLine(sub)) return 'Token subject must not contain control characters or unpaired surrogates.';
  return null;
}

export interface AuthOptions {
  /** When set, user tokens must carry this `aud` claim. */
  audience?: string;
  /** A second credential that may read /metrics only (SECKILL_METRICS_TOKEN); the admin key may too. */
  metricsToken?: string;
  /** Accept user tokens that never expire (SECKILL_ALLOW_TOKENS_WITHOUT_EXP); off by default. */
  allowTokensWithoutExp?: boolean;
}

/**
 * Identity: HS256 user tokens (fast-jwt; `alg` pinned to HS256, so `none` and RS/HS
 * confusion are refused) and the operators' admin key, compared in constant time.
 */
export class Auth {
  private readonly verify: (token: string) => { sub?: unknown };
  private readonly adminDigest: Buffer;
  private readonly metricsDigest: Buffer | null;

  constructor(userSecret: string, adminKey: string, opts: AuthOptions = {}) {
    const { audience } = opts;
    // A token without `exp` would be valid forever, leaked or not: refused unless allowed.
    const required = opts.allowTokensWithoutExp ? ['sub'] : ['sub', 'exp'];
    this.verify = createVerifier({
      key: userSecret,
      algorithms: ['HS256'],
      // With an audience configured, a token minted for another service is refused.
      requiredClaims: audience ? [...required, 'aud'] : required,
      ...(audience ? { allowedAud: audience } : {}),
      // Verified tokens are cached (until their exp), so a retrying buyer costs no HMAC.
      cache: 10_000,
    }) as (token: string) => { sub?: unknown };
    this.adminDigest = digest(adminKey);
    this.metricsDigest = opts.metricsToken ? digest(opts.metricsToken) : null;
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
    const problem = userIdProblem(sub);
    if (problem !== null || typeof sub !== 'string') throw new SeckillError('unauthorized', problem ?? 'Token subject must be a user id.');
    return sub;
  }

  /** Admin key or user token. */
  identify(token: string | null): AuthResult {
    if (token && this.isAdminKey(token)) return { kind: 'admin' };
    return { kind: 'user', userId: this.user(token) };
  }

  /**
   * The order event stream: a header carries the admin key or a user token; `?access_token=`
   * (EventSource cannot send headers) only a user token, so the admin key never goes into a URL
   * (and from there into proxy logs and browser history).
   */
  identifyStream(header: string | null, query: string | undefined): AuthResult {
    if (header) return this.identify(header);
    return { kind: 'user', userId: this.user(query ?? null) };
  }

  /** For /metrics: the metrics token or the admin key, else 401 (a user token is no credential here). */
  requireMetrics(token: string | null): void {
    if (token && this.metricsDigest && crypto.timingSafeEqual(digest(token), this.metricsDigest)) return;
    if (token && this.isAdminKey(token)) return;
    throw new SeckillError('unauthorized', 'Metrics need the metrics token (SECKILL_METRICS_TOKEN) or the admin key as a bearer token.');
  }

  /** For /api/admin: the admin key, or 403 for a valid user, or 401. */
  requireAdmin(token: string | null): void {
    if (token && this.isAdminKey(token)) return;
    // Neither the admin key nor a valid user token: say so in the operators' words (401).
    try {
      this.user(token);
    } catch {
      throw new SeckillError('unauthorized', token
        ? 'Wrong admin key: operator routes need the admin key (SECKILL_ADMIN_KEY or the data dir\'s secrets.json) as a bearer token.'
        : 'Missing admin key: operator routes need it as a bearer token.');
    }
    throw new SeckillError('forbidden', 'Operators only.');
  }
}

/** Hashing first gives equal lengths for timingSafeEqual, whatever the input. */
function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}

/** A user token: HS256 over { sub, iat, exp } (and `aud` when an audience is given). */
export function signUserToken(userSecret: string, userId: string, ttlSeconds = 3600, audience?: string): string {
  const sign = createSigner({ key: userSecret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000, ...(audience ? { aud: audience } : {}) });
  return sign({ sub: userId });
}
