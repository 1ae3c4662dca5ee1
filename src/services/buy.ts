import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { Refusal, ReserveResult, StockEngine } from '../engine/stock-engine.js';
import type { Auth } from '../gateway/auth.js';
import { buyerRefusal, publicRefusal, type BuyerRefusal, type FunnelStep, type FunnelSwitches, type PublicRefusal } from '../gateway/funnel.js';
import type { LocalRefusals } from '../gateway/local-refusals.js';
import { orderPath } from '../gateway/order-path.js';
import type { RateLimit } from '../gateway/rate-limit.js';
import type { InterestRecorder } from './interest-recorder.js';
import type { Metrics } from './metrics.js';
import type { WaitingRoomService } from './waiting-room.js';
import type { ChallengeService } from './challenge-service.js';
import type { SaleService } from './sale-service.js';
import type { SaleSignals } from './signals.js';

/** What the buy use case needs; the wired services fit it as they are. */
export interface BuyDeps {
  sales: Pick<SaleService, 'get' | 'find'>;
  switches: FunnelSwitches;
  refusals: Pick<LocalRefusals, 'isSoldOut' | 'holdsLimit' | 'markAtLimit'>;
  signals: Pick<SaleSignals, 'soldOut'>;
  engine: Pick<StockEngine, 'reserve'>;
  auth: Pick<Auth, 'user'>;
  userLimit: Pick<RateLimit, 'enabled' | 'take'>;
  metrics: Pick<Metrics, 'countReservation'>;
  /** The waiting rooms' passes (a sale with a room: no path, no buy without one). */
  room?: Pick<WaitingRoomService, 'checkPass' | 'claimPass' | 'settlePass'>;
  /** The challenges before the path (a sale with one: no path without it solved). */
  challenges?: Pick<ChallengeService, 'check' | 'spend'>;
  /** Intended purchases: buyers refused because the sale is sold out. */
  interest?: Pick<InterestRecorder, 'soldOut'>;
}

export type BuyRefusal = PublicRefusal | BuyerRefusal | Refusal;

export type PathResult = { ok: true; path: string } | { ok: false; refusal: PublicRefusal | BuyerRefusal };
export type BuyResult = { ok: true; order: Order } | { ok: false; refusal: BuyRefusal };

export interface BuyRequest {
  saleId: string;
  /** The order path from the URL. */
  path: string;
  /** The bearer token, or null; refused with 401 (thrown) once the public checks passed. */
  token: string | null;
  quantity: number;
  /** The waiting-room pass (header X-Seckill-Pass), or null/absent. */
  pass?: string | null;
}

/**
 * The buy use case: the funnel's checks (src/gateway/funnel.ts), then the stock engine's decision,
 * then what the decision teaches this process (sold-out flag, at-limit memo) and the reservation
 * counted. Refusals come back as codes (no Error is built for the common case); a bad token or a
 * rate limit throws its SeckillError as before.
 */
export class BuyService {
  constructor(private readonly d: BuyDeps) {}

  /**
   * A public refusal from what this process holds in memory, or null. Null also for a sale this
   * process does not know: another process may have created it (the use case looks further).
   */
  localRefusal(step: FunnelStep, saleId: string, now: number): Exclude<PublicRefusal, 'not_found'> | null {
    const sale = this.d.sales.get(saleId);
    if (!sale) return null;
    const code = publicRefusal({ step, sale, now }, this.d.switches, this.d.refusals);
    return code === 'not_found' ? null : code;
  }

  /** `POST …/path`: the caller's order path, once the sale is live. */
  async path(saleId: string, token: string | null, pass: string | null = null, challenge: string | null = null): Promise<PathResult> {
    const open = await this.publicStage('path', saleId);
    if (typeof open === 'string') return { ok: false, refusal: open };
    const userId = await this.identify(token);
    const hasPass = open.sale.waitingRoom ? await this.d.room?.checkPass(open.sale, userId, pass, open.now) : false;
    // A sale with a challenge: checked here (no await), spent below once nothing else refuses.
    const solved = open.sale.challenge ? this.d.challenges?.check(open.sale, userId, challenge, open.now) : undefined;
    const refused = buyerRefusal({ sale: open.sale, userId, path: '', quantity: 1, hasPass, challenge: solved?.verdict }, this.d.refusals, 'path');
    if (refused) return { ok: false, refusal: refused };
    if (solved?.claims && !(await this.d.challenges?.spend(solved.claims))) return { ok: false, refusal: 'challenge_failed' };
    return { ok: true, path: orderPath(open.sale, userId) };
  }

  /** `POST …/buy/:path`: a reservation, durable before this resolves, or why not. */
  async buy(req: BuyRequest): Promise<BuyResult> {
    const open = await this.publicStage('buy', req.saleId);
    if (open === 'sold_out') this.d.interest?.soldOut(req.saleId, req.token, req.quantity);
    if (typeof open === 'string') return { ok: false, refusal: open };
    const { sale, now } = open;
    const userId = await this.identify(req.token);
    // A sale with a room: the pass is taken for this buy, spent if it reserves, given back otherwise.
    const claimed = sale.waitingRoom ? await this.claimPass(sale, userId, req.pass ?? null, now) : false;
    const refused = buyerRefusal({ sale, userId, path: req.path, quantity: req.quantity, hasPass: claimed }, this.d.refusals);
    if (refused) {
      if (claimed) await this.settlePass(sale.id, userId, false);
      return { ok: false, refusal: refused };
    }

    const result = claimed ? await this.reserveWithPass(sale, userId, req.quantity, now) : await this.d.engine.reserve(sale, userId, req.quantity, now);
    // Hints for the next requests, whatever the answer: refused cheaply from now on.
    if (result.available <= 0) this.d.signals.soldOut(sale.id);
    if (result.held >= sale.perUserLimit) this.d.refusals.markAtLimit(sale.id, userId);
    if (!result.ok && result.refusal === 'sold_out') this.d.interest?.soldOut(sale.id, req.token, req.quantity);
    if (!result.ok) return { ok: false, refusal: result.refusal };
    this.d.metrics.countReservation(sale.id);
    return { ok: true, order: result.order };
  }

  /** The engine's decision for a buy holding a claimed pass: spent when reserved, given back otherwise (a throw included). */
  private async reserveWithPass(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult> {
    let reserved = false;
    try {
      const result = await this.d.engine.reserve(sale, userId, quantity, now);
      reserved = result.ok;
      return result;
    } finally {
      await this.settlePass(sale.id, userId, reserved);
    }
  }

  /**
   * The pass taken for this buy. A claim whose answer never came (Redis slow or away: the buy then
   * answers busy) may have applied: it is given back before that answer, so the retry finds the pass
   * good rather than `no_pass` (and if Redis cannot be reached for that either, the claim lapses).
   */
  private async claimPass(sale: Sale, userId: string, pass: string | null, now: number): Promise<boolean> {
    try {
      return (await this.d.room?.claimPass(sale, userId, pass, now)) ?? false;
    } catch (err) {
      await this.settlePass(sale.id, userId, false);
      throw err;
    }
  }

  /** A pass settle that fails (Redis away) is not the buy's failure: the claim lapses by itself (claimTtlMs). */
  private async settlePass(saleId: string, userId: string, reserved: boolean): Promise<void> {
    await this.d.room?.settlePass(saleId, userId, reserved).catch(() => undefined);
  }

  /**
   * The public checks. A sale this process does not hold is looked up further (the database, at
   * most once a second per id) only when the switch did not refuse first.
   */
  private async publicStage(step: FunnelStep, saleId: string): Promise<PublicRefusal | { sale: Sale; now: number }> {
    let sale = this.d.sales.get(saleId);
    let now = Date.now();
    let code = publicRefusal({ step, sale, now }, this.d.switches, this.d.refusals);
    if (code === 'not_found') {
      sale = await this.d.sales.find(saleId);
      now = Date.now();
      code = publicRefusal({ step, sale, now }, this.d.switches, this.d.refusals);
    }
    if (code !== null) return code;
    // No refusal means the sale is known (the funnel refuses an unknown one).
    return sale ? { sale, now } : 'not_found';
  }

  /** Identity: the token's user (401 thrown otherwise), then the per-user rate limit (429 thrown). */
  private async identify(token: string | null): Promise<string> {
    const userId = this.d.auth.user(token);
    if (this.d.userLimit.enabled) await this.d.userLimit.take(userId);
    return userId;
  }
}
