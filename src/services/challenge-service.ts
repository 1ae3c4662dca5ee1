import type { Logger } from 'pino';
import {
  checkChallenge, issueChallenge, type ChallengeClaims, type ChallengeTask, type ChallengeVerdict, type SpentChallenges,
} from '../domain/challenge.js';
import { SeckillError } from '../domain/errors.js';
import type { Sale } from '../domain/sale.js';
import type { Auth } from '../gateway/auth.js';
import { publicRefusal, type FunnelHints, type FunnelSwitches, type PublicRefusal } from '../gateway/funnel.js';
import type { SaleService } from './sale-service.js';

/** How long a challenge may be answered: time to solve or read it, not to stockpile answers. */
export const CHALLENGE_TTL_MS = 120_000;

/**
 * Spent challenges in this process's memory (embedded, postgres: one process gives every path).
 * Each is kept until its token expires; a used token is refused anyway after that.
 */
export class MemorySpentChallenges implements SpentChallenges {
  /** key → when it may be forgotten. Entries are added roughly in expiry order (one TTL for all). */
  private readonly spent = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async spend(saleId: string, nonce: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    this.prune(now);
    const key = `${saleId}\0${nonce}`;
    const until = this.spent.get(key);
    if (until !== undefined && until > now) return false;
    this.spent.set(key, now + ttlMs);
    return true;
  }

  /** Forgets the expired entries at the front (the oldest); a later one expired early waits its turn. */
  private prune(now: number): void {
    for (const [key, until] of this.spent) {
      if (until > now) return;
      this.spent.delete(key);
    }
  }

  get size(): number {
    return this.spent.size;
  }
}

export interface ChallengeSettings {
  /** pow: leading zero bits (SECKILL_POW_BITS). */
  powBits: number;
  /** quiz: the earliest answer after issue, ms (SECKILL_QUIZ_MIN_MS). */
  quizMinMs: number;
  ttlMs?: number;
}

export interface ChallengeDeps {
  sales: Pick<SaleService, 'get' | 'find'>;
  switches: FunnelSwitches;
  refusals: FunnelHints;
  auth: Pick<Auth, 'user'>;
  spent: SpentChallenges;
  log?: Pick<Logger, 'warn'>;
}

export type IssueResult = { ok: true; task: ChallengeTask } | { ok: false; refusal: PublicRefusal };

/** A path request's challenge, checked: the verdict for the funnel and, when solved, what to spend. */
export interface ChallengeCheck {
  verdict: ChallengeVerdict;
  claims?: ChallengeClaims;
}

/**
 * The challenges before the path (docs/challenges.md): issued statelessly, checked in
 * microseconds (two HMACs and, for pow, one SHA-256), spent once when the path is given.
 */
export class ChallengeService {
  private readonly ttlMs: number;

  constructor(private readonly d: ChallengeDeps, private readonly o: ChallengeSettings, private readonly now: () => number = Date.now) {
    this.ttlMs = o.ttlMs ?? CHALLENGE_TTL_MS;
  }

  /** `POST …/challenge`: the public checks of the path request, the token's user, then a new challenge (none: not_found). */
  async issue(saleId: string, token: string | null): Promise<IssueResult> {
    let sale = this.d.sales.get(saleId) ?? (await this.d.sales.find(saleId));
    const now = this.now();
    const code = publicRefusal({ step: 'path', sale, now }, this.d.switches, this.d.refusals);
    if (code !== null) return { ok: false, refusal: code };
    sale = sale as Sale;
    const userId = this.d.auth.user(token);
    if (!sale.challenge) return { ok: false, refusal: 'not_found' };
    return { ok: true, task: issueChallenge(sale.secret, { saleId: sale.id, userId, kind: sale.challenge, now, ttlMs: this.ttlMs, bits: this.o.powBits }) };
  }

  /**
   * The header of a path request for a sale with a challenge. Synchronous: nothing is spent here. A
   * wrong or too fast quiz answer burns its token at once, so that one token cannot try all four choices.
   */
  check(sale: Sale, userId: string, header: string | null, now: number): ChallengeCheck {
    const r = checkChallenge(sale.secret, header, sale.id, userId, now, this.o.quizMinMs);
    if (r.ok) return { verdict: 'solved', claims: r.claims };
    if (r.claims?.kind === 'quiz') void this.spend(r.claims).catch(() => undefined);
    return { verdict: r.why === 'missing' ? 'missing' : 'failed' };
  }

  /** Spends a solved challenge when its path is given: true the first time only. */
  async spend(claims: ChallengeClaims): Promise<boolean> {
    const ttl = Math.max(1, claims.expiresAt - this.now());
    try {
      return await this.d.spent.spend(claims.saleId, claims.nonce, ttl);
    } catch (err) {
      // Not knowing whether it was spent: nothing is given, and nothing changed.
      this.d.log?.warn({ err }, 'challenge spent-store unavailable');
      throw new SeckillError('busy', undefined, undefined, err);
    }
  }
}
