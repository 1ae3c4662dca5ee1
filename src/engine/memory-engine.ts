import { newOrderId } from '../domain/order-id.js';
import { SeckillError } from '../domain/errors.js';
import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import { AmbiguousOutcome, OutcomeUnknown, within } from '../domain/outcome.js';
import type { OrderWriter } from './group-commit.js';
import type { RecordStore } from '../stores/record-store.js';
import { sourceOf, type Transition } from '../domain/transition.js';
import type { ReserveResult, StockEngine } from './stock-engine.js';

interface SaleStock {
  available: number;
  /** Units held per user: reserved + paid, + refunded when the sale does not restock on refund. */
  holdings: Map<string, number>;
  /** The sale's setting: a refund returns the units to stock (and the buyer's holding). */
  restockOnRefund: boolean;
}

export interface MemoryEngineOptions {
  /**
   * Stock came back to a sale from this user's order (a failed commit, a cancel, an expiry):
   * the sold-out flag and the user's at-limit memo, set from results computed while that order
   * held the stock, must go.
   */
  onRelease?: (saleId: string, userId: string) => void;
  /** How long a transition whose reply was lost waits for the database to say what happened (ms). */
  outcomeWaitMs?: number;
}

/**
 * The embedded engine. Node runs one callback at a time, so the check-limit + decrement
 * below is atomic without locks; durability comes from the order writer's group commit,
 * and a failed commit puts the stock back before the caller hears `busy`. Exits from
 * `reserved` are decided by the database's conditional UPDATE.
 */
export class MemoryStockEngine implements StockEngine {
  private readonly sales = new Map<string, SaleStock>();
  /**
   * Orders with a transition under way in this process, so that each order has one at a time:
   * after a lost reply the order's status read back then tells whose change it was.
   */
  private readonly changing = new Map<string, Promise<void>>();

  constructor(
    private readonly writer: OrderWriter,
    private readonly repo: RecordStore,
    private readonly opts: MemoryEngineOptions = {},
  ) {}

  async load(sale: Sale): Promise<void> {
    const holdings = await this.repo.holdings(sale.id);
    let held = 0;
    for (const q of holdings.values()) held += q;
    this.sales.set(sale.id, { available: sale.stock - held, holdings, restockOnRefund: sale.restockOnRefund });
  }

  async reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult> {
    const s = this.state(sale.id);
    const held = s.holdings.get(userId) ?? 0;
    if (held + quantity > sale.perUserLimit) {
      return { ok: false, refusal: 'limit_reached', available: s.available, held };
    }
    if (s.available < quantity) return { ok: false, refusal: 'sold_out', available: s.available, held };

    s.available -= quantity;
    s.holdings.set(userId, held + quantity);
    const order: Order = {
      orderId: newOrderId(),
      saleId: sale.id,
      userId,
      quantity,
      priceCents: sale.priceCents,
      status: 'reserved',
      createdAt: now,
      expiresAt: now + sale.paymentWindowSeconds * 1000,
      paidAt: null,
      paymentRef: null,
      refundedAt: null,
      refundReason: null,
    };
    try {
      await this.writer.submit(order);
    } catch (err) {
      if (err instanceof OutcomeUnknown) {
        // The order may exist: its stock stays held until the database says it does not.
        void err.applied.then((applied) => {
          if (!applied) this.release(sale.id, userId, quantity);
        }, () => undefined);
        throw err;
      }
      // Not durable: the reservation never happened.
      this.release(sale.id, userId, quantity);
      throw err;
    }
    // Read now, not before the commit: another batch may have failed and returned stock meanwhile,
    // and the caller sets its hints (sold out, at limit) from these.
    return { ok: true, order, available: s.available, held: s.holdings.get(userId) ?? 0 };
  }

  getOrder(orderId: string): Promise<Order | null> {
    return this.repo.getOrder(orderId);
  }

  async transition(order: Order, t: Transition, now: number): Promise<Order | null> {
    const id = order.orderId;
    const before = this.changing.get(id);
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.changing.set(id, mine);
    /** What the next transition of this order must wait for: this one, or a doubt it left. */
    let holdUntil: Promise<unknown> | null = null;
    try {
      if (before && !(await within(before, this.waitMs))) {
        holdUntil = before;
        throw new SeckillError('busy', 'Another change of this order is still being confirmed; nothing was changed. Try again shortly.');
      }
      return await this.decide(order, t, now, (p) => (holdUntil = p));
    } finally {
      const finish = () => {
        if (this.changing.get(id) === mine) this.changing.delete(id);
        done();
      };
      if (holdUntil) void (holdUntil as Promise<unknown>).then(finish, finish);
      else finish();
    }
  }

  /**
   * The conditional UPDATE; the winner's exit to expired or cancelled returns the stock, once, and
   * so does a refund when the sale restocks on refund.
   */
  private async decide(order: Order, t: Transition, now: number, hold: (p: Promise<unknown>) => void): Promise<Order | null> {
    let after: Order | null;
    try {
      after = await this.repo.transition(order.orderId, t, now);
    } catch (err) {
      if (!(err instanceof AmbiguousOutcome)) throw err;
      // The reply was lost: the order's status, read once the statement can no longer commit, says.
      const outcome = err.outcome as Promise<Order | null>;
      const known = await within(outcome, this.waitMs).catch(() => undefined);
      if (!known) {
        hold(outcome);
        const applied = outcome.then((o) => {
          const mine = applies(o, t);
          if (mine && o && this.returnsStock(o)) this.release(o.saleId, o.userId, o.quantity);
          return mine;
        });
        throw new OutcomeUnknown('The order database did not confirm this change and could not be checked in time; GET /api/orders/:orderId shows the outcome once it is known.', applied, err);
      }
      const o = known.value;
      if (o?.status === sourceOf(t)) throw new SeckillError('busy', 'The order database did not apply the change; nothing was changed. Try again shortly.');
      after = applies(o, t) ? o : null;
    }
    if (after && this.returnsStock(after)) this.release(after.saleId, after.userId, after.quantity);
    return after;
  }

  /** Whether the order, as it just became, gives its units back. */
  private returnsStock(o: Order): boolean {
    if (o.status === 'expired' || o.status === 'cancelled') return true;
    return o.status === 'refunded' && this.state(o.saleId).restockOnRefund;
  }

  private get waitMs(): number {
    return this.opts.outcomeWaitMs ?? 30_000;
  }

  async correct(before: Sale, after: Sale): Promise<void> {
    // The window, limit, price and payment window are read from the sale itself at each buy;
    // only the stock is kept here, and it may change only while nobody holds any.
    if (after.stock === before.stock) return;
    const s = this.state(after.id);
    if (s.holdings.size > 0) throw new SeckillError('sale_open', 'The sale has orders: its stock can no longer change.');
    s.available += after.stock - before.stock;
  }

  async setPaused(): Promise<void> {
    // The gateway reads the paused flag from the sale itself.
  }

  available(saleId: string): number {
    return this.sales.get(saleId)?.available ?? 0;
  }

  async availableNow(saleId: string): Promise<number> {
    return this.available(saleId);
  }

  async pendingWrites(): Promise<number> {
    return 0; // a reservation is answered only after its commit
  }

  async close(): Promise<void> {}

  private release(saleId: string, userId: string, quantity: number): void {
    const s = this.state(saleId);
    s.available += quantity;
    const held = (s.holdings.get(userId) ?? 0) - quantity;
    if (held > 0) s.holdings.set(userId, held);
    else s.holdings.delete(userId);
    this.opts.onRelease?.(saleId, userId);
  }

  private state(saleId: string): SaleStock {
    const s = this.sales.get(saleId);
    if (!s) throw new Error(`sale ${saleId} not loaded in the engine`);
    return s;
  }
}

/**
 * Whether the order as read back is the result of this transition. One transition per order at a
 * time in this process, and one process per database (the instance lock): a matching status is ours.
 */
function applies(o: Order | null, t: Transition): boolean {
  if (!o) return false;
  if (t.to === 'paid') return o.status === 'paid' && o.paymentRef === t.paymentRef;
  if (t.to === 'refunded') return o.status === 'refunded' && o.refundedAt === t.refundedAt;
  return o.status === t.to;
}
