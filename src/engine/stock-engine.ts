import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { Transition } from '../domain/transition.js';

/** Why the engine refused a reservation. The window ones only come from a shared engine, whose clock check is final. */
export type Refusal = 'sold_out' | 'limit_reached' | 'not_started' | 'ended' | 'paused';

export type ReserveResult =
  | { ok: true; order: Order; available: number; held: number }
  | { ok: false; refusal: Refusal; available: number; held: number };

/**
 * The single place where stock changes and where an order's fate is decided.
 * `reserve` resolves only once the reservation is durable (committed to the database of
 * record, or appended to a persistent Redis stream), so the caller may answer 202 then. It
 * throws SeckillError('busy') when it could not decide or could not make the result durable;
 * then nothing was changed.
 */
export interface StockEngine {
  /** Make the engine ready to sell this sale: rebuild its state from the database when needed. */
  load(sale: Sale): Promise<void>;
  reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult>;
  /** The order with its authoritative status, or null. */
  getOrder(orderId: string): Promise<Order | null>;
  /**
   * Move an order out of `reserved` exactly once (paying only inside its window); expired and
   * cancelled orders return their stock in the same step. Returns the changed order, or null
   * when the order was not reserved any more (another transition won).
   */
  transition(order: Order, t: Transition, now: number): Promise<Order | null>;
  setPaused(saleId: string, paused: boolean): Promise<void>;
  /**
   * An operator corrected the sale (`before` → `after`, same id). Its end time may always change;
   * stock, limit, start, price and payment window only while no order exists (before it opens):
   * otherwise SeckillError('sale_open') and nothing changed.
   */
  correct(before: Sale, after: Sale): Promise<void>;
  /** Available units as this process last saw them (no I/O). */
  available(saleId: string): number;
  /** Available units asked of the engine now. */
  availableNow(saleId: string): Promise<number>;
  /** Order records of this sale decided but not yet in the database of record. */
  pendingWrites(saleId: string): Promise<number>;
  close(): Promise<void>;
}
