import crypto from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import { SeckillError } from '../domain/errors.js';
import { isStorableLine } from '../domain/stored-text.js';

/** What a key may do: `admin` everything; `payments` pay, cancel, refund and read orders. */
export type KeyScope = 'admin' | 'payments';
export const KEY_SCOPES: readonly KeyScope[] = ['admin', 'payments'];

/**
 * Which key a request came with, without the key: its scope and the first 8 hex digits of the
 * key's SHA-256 (`payments:1a2b3c4d`), for logs and audit records.
 */
export interface KeyRef {
  scope: KeyScope;
  id: string;
}

/** The keys of each scope (several per scope, so that they can be rotated). */
export type ScopedKeys = Record<KeyScope, readonly string[]>;

/**
 * Who a request is: a service or operator with a key (`kind: 'admin'` for either scope; `key.scope`
 * says which), or a user. Order reads and changes treat both scopes alike (no owner check).
 */
export type AuthResult = { kind: 'admin'; key: KeyRef } | { kind: 'user'; userId: string };

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
 * confusion are refused) and the scoped keys, compared in constant time over their digests.
 */
export class Auth {
  private readonly verify: (token: string) => { sub?: unknown; exp?: unknown };
  private readonly verified = new VerifiedTokens(VERIFIED_TOKENS);
  /** Only digests of the keys are kept, each with the key's non-secret id. */
  private readonly keyDigests: { digest: Buffer; ref: KeyRef }[];
  private readonly metricsDigest: Buffer | null;

  constructor(userSecret: string, keys: ScopedKeys, opts: AuthOptions = {}) {
    const { audience } = opts;
    // A token without `exp` would be valid forever, leaked or not: refused unless allowed.
    const required = opts.allowTokensWithoutExp ? ['sub'] : ['sub', 'exp'];
    this.verify = createVerifier({
      key: userSecret,
      algorithms: ['HS256'],
      // With an audience configured, a token minted for another service is refused.
      requiredClaims: audience ? [...required, 'aud'] : required,
      ...(audience ? { allowedAud: audience } : {}),
      // No cache here: fast-jwt's keys its entries by a SHA-256 of the token, which cost as much
      // as the HMAC it saved. `verified` below keeps the outcomes by the token itself.
    }) as (token: string) => { sub?: unknown; exp?: unknown };
    this.keyDigests = KEY_SCOPES.flatMap((scope) => keys[scope].map((k) => ({ digest: digest(k), ref: keyRef(scope, k) })));
    if (!this.keyDigests.some((k) => k.ref.scope === 'admin')) throw new Error('Auth needs at least one admin key.');
    this.metricsDigest = opts.metricsToken ? digest(opts.metricsToken) : null;
  }

  /** The bearer token of a request, or null. */
  static bearer(header: string | undefined): string | null {
    if (!header || header.length > 4096) return null;
    if (!header.startsWith('Bearer ')) return null;
    const t = header.slice(7).trim();
    return t.length > 0 ? t : null;
  }

  /**
   * The configured key `token` is, or null. Every key is compared (timingSafeEqual over SHA-256
   * digests, no early exit), so the time says neither whether nor which key matched.
   */
  key(token: string): KeyRef | null {
    const given = digest(token);
    let found: KeyRef | null = null;
    for (const k of this.keyDigests) {
      if (crypto.timingSafeEqual(given, k.digest)) found = k.ref;
    }
    return found;
  }

  /** The user id of a valid token; throws unauthorized otherwise. */
  user(token: string | null): string {
    if (!token) throw new SeckillError('unauthorized', 'Missing bearer token.');
    const now = Date.now();
    const known = this.verified.get(token, now);
    if (known !== null) return known;
    let payload: { sub?: unknown; exp?: unknown };
    try {
      payload = this.verify(token);
    } catch {
      throw new SeckillError('unauthorized', 'Invalid or expired token.');
    }
    const sub = payload.sub;
    const problem = userIdProblem(sub);
    if (problem !== null || typeof sub !== 'string') throw new SeckillError('unauthorized', problem ?? 'Token subject must be a user id.');
    // A verified token without exp was allowed (allowTokensWithoutExp): it stays valid.
    this.verified.set(token, sub, typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity);
    return sub;
  }

  /** A key of either scope, or a user token (the order routes: both scopes may read, pay and cancel). */
  identify(token: string | null): AuthResult {
    const key = token ? this.key(token) : null;
    if (key) return { kind: 'admin', key };
    return { kind: 'user', userId: this.user(token) };
  }

  /**
   * The order event stream: a header carries a key or a user token; `?access_token=`
   * (EventSource cannot send headers) only a user token, so a key never goes into a URL
   * (and from there into proxy logs and browser history).
   */
  identifyStream(header: string | null, query: string | undefined): AuthResult {
    if (header) return this.identify(header);
    return { kind: 'user', userId: this.user(query ?? null) };
  }

  /** For /metrics: the metrics token or an admin key, else 401 (403 for a payments key). */
  requireMetrics(token: string | null): void {
    if (token && this.metricsDigest && crypto.timingSafeEqual(digest(token), this.metricsDigest)) return;
    const key = token ? this.key(token) : null;
    if (key?.scope === 'admin') return;
    if (key) throw scopeRefusal(key, 'admin');
    throw new SeckillError('unauthorized', 'Metrics need the metrics token (SECKILL_METRICS_TOKEN) or an admin key as a bearer token.');
  }

  /**
   * The one check of a keyed route: a key whose scope covers `scope` (an admin key covers every
   * scope), answered with which key it was; 403 for a key of another scope or a valid user, else 401.
   * The routes only keys may use call this (`requireScope(token, 'payments')` for a refund).
   */
  requireScope(token: string | null, scope: KeyScope): KeyRef {
    const key = token ? this.key(token) : null;
    if (key && covers(key.scope, scope)) return key;
    if (key) throw scopeRefusal(key, scope);
    // Neither a key nor a valid user token: say so in the operators' words (401).
    try {
      this.user(token);
    } catch {
      throw new SeckillError('unauthorized', token
        ? `Wrong key: ${scopeWords(scope)} as a bearer token.`
        : `Missing key: ${scopeWords(scope)} as a bearer token.`);
    }
    throw new SeckillError('forbidden', 'Operators only.');
  }

  /** For /api/admin: an admin key, or 403 for a payments key or a valid user, or 401. */
  requireAdmin(token: string | null): KeyRef {
    return this.requireScope(token, 'admin');
  }
}

/** How many verified user tokens are kept: a buyer's path and buy requests verify once. */
const VERIFIED_TOKENS = 10_000;
/** Longer tokens are verified every time, so the kept ones hold a bounded amount of memory. */
const MAX_KEPT_TOKEN = 1024;

/**
 * User tokens that passed verification, by the token string itself, with their user id and the
 * time (ms) up to which verification would still accept them: the `exp` claim, checked as
 * fast-jwt checks it (valid while now <= exp × 1000; no clock tolerance is configured). Only
 * successes are kept and only byte-identical tokens hit, so another audience, another signature
 * or any changed byte is a miss and is verified in full. Bounded, least recently used out first
 * (a Map keeps insertion order; a hit moves its entry to the end).
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { userId: string; until: number }>();
  constructor(private readonly capacity: number) {}

  /** The user id of a kept, unexpired token, or null: verify it. */
  get(token: string, now: number): string | null {
    const e = this.entries.get(token);
    if (e === undefined) return null;
    this.entries.delete(token);
    if (now > e.until) return null;
    this.entries.set(token, e);
    return e.userId;
  }

  set(token: string, userId: string, until: number): void {
    if (token.length > MAX_KEPT_TOKEN) return;
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, { userId, until });
  }
}

/** An admin key may do what every scope may; a payments key only payments. */
function covers(held: KeyScope, needed: KeyScope): boolean {
  return held === 'admin' || held === needed;
}

function scopeWords(scope: KeyScope): string {
  return scope === 'admin'
    ? "operator routes need an admin key (SECKILL_ADMIN_KEY, SECKILL_ADMIN_KEYS or the data dir's secrets.json)"
    : 'this route needs a payments key (SECKILL_PAYMENTS_KEYS) or an admin key';
}

function scopeRefusal(key: KeyRef, needed: KeyScope): SeckillError {
  return new SeckillError('forbidden', `This key (${key.id}) has the ${key.scope} scope; this route needs ${needed === 'admin' ? 'an admin' : 'a payments'} key.`);
}

/** A key's non-secret id: its scope and the first 8 hex digits of its SHA-256. */
export function keyRef(scope: KeyScope, key: string): KeyRef {
  return { scope, id: `${scope}:${crypto.createHash('sha256').update(key).digest('hex').slice(0, 8)}` };
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
