import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';

/** Why the engine refused a reservation. */
export type Refusal = 'sold_out' | 'limit_reached';

export type ReserveResult =
  | { ok: true; order: Order; available: number }
  | { ok: false; refusal: Refusal; available: number };

/**
 * The single place where stock changes. `reserve` resolves only once the reservation is
 * durable (committed to the database of record, or appended to a durable stream), so the
 * caller may answer 202 as soon as it resolves. It throws SeckillError('busy') when it
 * could not make the reservation durable; then nothing was changed.
 */
export interface StockEngine {
  /** Start tracking a sale; `holdings` are the units each user holds (reserved + paid). */
  load(sale: Sale, holdings: Map<string, number>): void;
  reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult>;
  /** Return the stock of an order that left `reserved` for expired or cancelled (once). */
  release(saleId: string, userId: string, quantity: number): void;
  /** An order was paid: the units stay sold. */
  commit(saleId: string, userId: string, quantity: number): void;
  available(saleId: string): number;
  /** Units this user holds in this sale. */
  held(saleId: string, userId: string): number;
}
