import type { Logger } from 'pino';
import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { StockEngine } from '../engine/stock-engine.js';
import { OutcomeUnknown } from '../domain/outcome.js';
import type { RecordStore, StatusTotals } from '../stores/record-store.js';
import { sourceOf } from '../domain/transition.js';

/**
 * Units per order status and sale, for /metrics, the admin stats and the dashboard: the one place
 * they are read (issue 9, defect 11). Summing the orders table per scrape cost O(orders) — 378 ms
 * on 1 M rows in embedded mode, on the event loop — so a scrape now reads totals kept here, O(sales).
 */
export interface SaleStatusTotals {
  /** Totals of one sale for an operator's read (admin stats, dashboard): exact, as of now. */
  read(saleId: string): Promise<StatusTotals>;
  /** What a scrape reports: no database work, never waits. */
  snapshot(saleIds: string[]): Array<[string, StatusTotals]>;
  close(): void;
}

const zero = (): StatusTotals => ({ reserved: 0, paid: 0, expired: 0, cancelled: 0, refunded: 0 });

/**
 * Embedded and PostgreSQL modes: this process owns the data (one process per data dir or
 * database), so the totals are counted in memory. Each sale's totals are read from the database
 * once, when the engine loads it (before the sale can be sold here: nothing is in flight), then
 * moved by the engine's own decisions: every reservation it answered as committed, every
 * transition it won. They cannot drift from the engine's stock: reserved + paid (+ refunded, when the sale does not
 * restock on refund) = stock − available.
 */
export class OwnedStatusTotals implements SaleStatusTotals {
  private readonly bySale = new Map<string, StatusTotals>();

  constructor(private readonly repo: RecordStore) {}

  /**
   * The engine, with its reservations and transitions counted here. A proxy, so the engine's
   * other members (and `instanceof`) are untouched.
   */
  counting<E extends StockEngine>(engine: E): E {
    const load = async (sale: Sale): Promise<void> => {
      await engine.load(sale);
      if (!this.bySale.has(sale.id)) this.bySale.set(sale.id, { ...(await this.repo.totals(sale.id)) });
    };
    // An outcome the database could not confirm in time (OutcomeUnknown) is counted once it is
    // known, as the engine then keeps or returns the stock.
    const later = (err: unknown, count: () => void) => {
      if (err instanceof OutcomeUnknown) void err.applied.then((applied) => applied && count(), () => undefined);
    };
    const reserve: StockEngine['reserve'] = async (sale, userId, quantity, now) => {
      try {
        const result = await engine.reserve(sale, userId, quantity, now);
        if (result.ok) this.committed(result.order);
        return result;
      } catch (err) {
        later(err, () => (this.of(sale.id).reserved += quantity));
        throw err;
      }
    };
    const transition: StockEngine['transition'] = async (order, t, now) => {
      try {
        const after = await engine.transition(order, t, now);
        if (after) this.moved(after, sourceOf(t));
        return after;
      } catch (err) {
        later(err, () => this.moved({ ...order, status: t.to }, sourceOf(t)));
        throw err;
      }
    };
    const own: Partial<Record<PropertyKey, unknown>> = { load, reserve, transition };
    return new Proxy(engine, {
      get(target, prop, receiver) {
        if (prop in own) return own[prop];
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** A reservation the engine answered as committed (202). */
  committed(order: Order): void {
    this.of(order.saleId)[order.status] += order.quantity;
  }

  /** An order that left `from` (`reserved`, or `paid` for a refund) for its status now. */
  moved(order: Order, from: 'reserved' | 'paid'): void {
    const t = this.of(order.saleId);
    t[from] -= order.quantity;
    t[order.status] += order.quantity;
  }

  async read(saleId: string): Promise<StatusTotals> {
    const t = this.bySale.get(saleId);
    // A sale the engine never loaded here has no orders written by this process.
    return t ? { ...t } : this.repo.totals(saleId);
  }

  snapshot(saleIds: string[]): Array<[string, StatusTotals]> {
    return saleIds.map((id) => [id, { ...(this.bySale.get(id) ?? zero()) }]);
  }

  close(): void {}

  private of(saleId: string): StatusTotals {
    let t = this.bySale.get(saleId);
    if (!t) this.bySale.set(saleId, (t = zero()));
    return t;
  }
}

/**
 * Distributed mode: the orders are written by every process's order writers, so no process can
 * count them. Scrapes read totals refreshed in the background (async PostgreSQL queries, one
 * sale at a time, off the scrape path) every `refreshMs`, and only while someone scrapes: an
 * idle process asks nothing. The admin stats read PostgreSQL itself (exact once the writers
 * drained), as before, and refresh the scrape's copy on the way.
 */
export class RefreshedStatusTotals implements SaleStatusTotals {
  private readonly cache = new Map<string, StatusTotals>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** When a scrape last asked: the refresh stops a while after the last one. */
  private wantedAt = 0;

  constructor(
    private readonly repo: RecordStore,
    private readonly saleIds: () => string[],
    private readonly refreshMs: number,
    private readonly log: Logger,
    /** Refreshing goes on this long after the last scrape. */
    private readonly keepMs = 5 * 60_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (Date.now() - this.wantedAt < this.keepMs) void this.refresh();
    }, this.refreshMs);
    this.timer.unref();
  }

  async read(saleId: string): Promise<StatusTotals> {
    const t = await this.repo.totals(saleId);
    this.cache.set(saleId, { ...t });
    return t;
  }

  snapshot(saleIds: string[]): Array<[string, StatusTotals]> {
    const first = this.wantedAt === 0;
    this.wantedAt = Date.now();
    // The first scrape starts the refreshing at once; it reports what is known until it lands.
    if (first) void this.refresh();
    return saleIds.flatMap((id): Array<[string, StatusTotals]> => {
      const t = this.cache.get(id);
      return t ? [[id, { ...t }]] : [];
    });
  }

  /** One refresh at a time; a failing database leaves the last figures (/readyz tells). */
  refresh(): Promise<void> {
    if (this.running) return this.running;
    const run = this.refreshAll().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  private async refreshAll(): Promise<void> {
    try {
      for (const id of this.saleIds()) this.cache.set(id, { ...(await this.repo.totals(id)) });
    } catch (err) {
      this.log.debug({ err }, 'status totals refresh failed; keeping the last figures');
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
