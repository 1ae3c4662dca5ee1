import { v7 as uuidv7 } from 'uuid';
import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { OrderWriter } from '../orders/order-writer.js';
import type { OrderRepository, Transition } from '../orders/repository.js';
import type { ReserveResult, StockEngine } from './stock-engine.js';

interface SaleStock {
  available: number;
  /** Units held (reserved + paid) per user. */
  holdings: Map<string, number>;
}

/**
 * The embedded engine. Node runs one callback at a time, so the check-limit + decrement
 * below is atomic without locks; durability comes from the order writer's group commit,
 * and a failed commit puts the stock back before the caller hears `busy`. Exits from
 * `reserved` are decided by the database's conditional UPDATE.
 */
export class MemoryStockEngine implements StockEngine {
  private readonly sales = new Map<string, SaleStock>();

  constructor(
    private readonly writer: OrderWriter,
    private readonly repo: OrderRepository,
  ) {}

  async load(sale: Sale): Promise<void> {
    const holdings = await this.repo.holdings(sale.id);
    let held = 0;
    for (const q of holdings.values()) held += q;
    this.sales.set(sale.id, { available: sale.stock - held, holdings });
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
      orderId: uuidv7(),
      saleId: sale.id,
      userId,
      quantity,
      priceCents: sale.priceCents,
      status: 'reserved',
      createdAt: now,
      expiresAt: now + sale.paymentWindowSeconds * 1000,
      paidAt: null,
      paymentRef: null,
    };
    try {
      await this.writer.submit(order);
    } catch (err) {
      // Not durable: the reservation never happened.
      this.release(sale.id, userId, quantity);
      throw err;
    }
    return { ok: true, order, available: s.available, held: held + quantity };
  }

  getOrder(orderId: string): Promise<Order | null> {
    return this.repo.getOrder(orderId);
  }

  async transition(order: Order, t: Transition, now: number): Promise<Order | null> {
    const after = await this.repo.transition(order.orderId, t, now);
    if (after && after.status !== 'paid') this.release(after.saleId, after.userId, after.quantity);
    return after;
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
  }

  private state(saleId: string): SaleStock {
    const s = this.sales.get(saleId);
    if (!s) throw new Error(`sale ${saleId} not loaded in the engine`);
    return s;
  }
}
