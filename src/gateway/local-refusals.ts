/** How long a sold-out flag is believed without being set again (ms). */
export const SOLD_OUT_TTL_MS = 3000;
/** How long an at-limit memo is believed without being set again (ms). */
export const AT_LIMIT_TTL_MS = 5000;

/**
 * What the gateway may refuse without asking the engine: sales known to be sold out and
 * users known to hold their limit. Both are hints that only ever refuse what the engine
 * would refuse too; they are cleared as soon as stock comes back, and each one expires a few
 * seconds after it was last set, so a hint set from a result that later turned out wrong (a
 * failed commit, a lost signal) is wrong only briefly: the next request past its expiry asks
 * the engine, whose answer sets it again. No timers: each entry keeps its expiry time, checked
 * when read; expired memos are swept at most once per TTL, so the maps stay bounded.
 */
export class LocalRefusals {
  /** saleId → expiry time (epoch ms). */
  private readonly soldOut = new Map<string, number>();
  /** saleId → userId → expiry time (epoch ms). */
  private readonly atLimit = new Map<string, Map<string, number>>();
  private nextSweep = 0;

  constructor(
    private readonly soldOutTtlMs = SOLD_OUT_TTL_MS,
    private readonly atLimitTtlMs = AT_LIMIT_TTL_MS,
  ) {}

  isSoldOut(saleId: string): boolean {
    const until = this.soldOut.get(saleId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.soldOut.delete(saleId);
    return false;
  }

  markSoldOut(saleId: string): void {
    this.soldOut.set(saleId, Date.now() + this.soldOutTtlMs);
  }

  clearSoldOut(saleId: string): void {
    this.soldOut.delete(saleId);
  }

  holdsLimit(saleId: string, userId: string): boolean {
    const users = this.atLimit.get(saleId);
    const until = users?.get(userId);
    if (users === undefined || until === undefined) return false;
    if (until > Date.now()) return true;
    users.delete(userId);
    return false;
  }

  markAtLimit(saleId: string, userId: string): void {
    const now = Date.now();
    if (now >= this.nextSweep) this.sweep(now);
    let users = this.atLimit.get(saleId);
    if (!users) this.atLimit.set(saleId, (users = new Map()));
    users.set(userId, now + this.atLimitTtlMs);
  }

  /** Stock returned to a sale from this user's order. */
  released(saleId: string, userId: string): void {
    this.soldOut.delete(saleId);
    this.atLimit.get(saleId)?.delete(userId);
  }

  /** Forget every hint (e.g. after missed signals): the next requests ask the engine. */
  clear(): void {
    this.soldOut.clear();
    this.atLimit.clear();
  }

  /** Drop expired memos: once per TTL, so the cost per mark stays constant. */
  private sweep(now: number): void {
    this.nextSweep = now + this.atLimitTtlMs;
    for (const [saleId, users] of this.atLimit) {
      for (const [userId, until] of users) if (until <= now) users.delete(userId);
      if (users.size === 0) this.atLimit.delete(saleId);
    }
  }
}
