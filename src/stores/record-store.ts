import type { Order, OrderStatus } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';

export interface StatusTotals {
  /** Units (sum of quantities) per status. */
  reserved: number;
  paid: number;
  expired: number;
  cancelled: number;
}

export interface OrderPage {
  orders: Order[];
  next: string | null;
}

/** How an order leaves `reserved`. */
export type Transition =
  | { to: 'paid'; paidAt: number; paymentRef: string }
  | { to: 'cancelled' }
  | { to: 'expired' };

/**
 * The database of record. Methods are async so that PostgreSQL fits behind the same
 * interface; the SQL is kept portable between SQLite and PostgreSQL.
 */
export interface OrderRepository {
  loadSales(): Promise<Sale[]>;
  getSale(saleId: string): Promise<Sale | null>;
  insertSale(sale: Sale): Promise<void>;
  setPaused(saleId: string, paused: boolean): Promise<void>;

  /** One transaction for the whole batch; replaying an order id changes nothing. */
  insertOrders(orders: Order[]): Promise<void>;
  getOrder(orderId: string): Promise<Order | null>;
  ordersOfUser(userId: string): Promise<Order[]>;
  listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage>;
  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order>;

  /** Units held (reserved + paid) per user of a sale. */
  holdings(saleId: string): Promise<Map<string, number>>;
  totals(saleId: string): Promise<StatusTotals>;

  /**
   * Move an order out of `reserved` if, and only if, it is still reserved (and, for `paid`,
   * not past its window at `now`). Returns the updated order, or null when another transition
   * won: the one conditional UPDATE is what makes every exit from `reserved` happen once.
   */
  transition(orderId: string, t: Transition, now: number): Promise<Order | null>;
  dueForExpiry(now: number, limit: number): Promise<Order[]>;

  ping(): Promise<void>;
  close(): Promise<void>;
}
