import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale } from '../../domain/sale.js';
import type { OrderPage } from '../record-store.js';

// The one schema and row mapping of both databases of record (SQLite embedded, PostgreSQL
// distributed): the SQL below is valid in both.

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS sales (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  price_cents BIGINT NOT NULL,
  stock BIGINT NOT NULL,
  starts_at BIGINT NOT NULL,
  ends_at BIGINT,
  per_user_limit INTEGER NOT NULL,
  payment_window_seconds INTEGER NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  secret TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  order_id TEXT PRIMARY KEY,
  sale_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  price_cents BIGINT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  paid_at BIGINT,
  payment_ref TEXT
);
CREATE INDEX IF NOT EXISTS orders_sale_status ON orders (sale_id, status);
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id);
CREATE INDEX IF NOT EXISTS orders_due ON orders (status, expires_at);
`;

export interface OrderRow {
  order_id: string;
  sale_id: string;
  user_id: string;
  quantity: number;
  price_cents: number;
  status: OrderStatus;
  created_at: number;
  expires_at: number;
  paid_at: number | null;
  payment_ref: string | null;
}

export interface SaleRow {
  id: string;
  name: string;
  description: string;
  price_cents: number;
  stock: number;
  starts_at: number;
  ends_at: number | null;
  per_user_limit: number;
  payment_window_seconds: number;
  paused: number;
  secret: string;
  created_at: number;
}

export function toOrder(r: OrderRow): Order {
  return {
    orderId: r.order_id,
    saleId: r.sale_id,
    userId: r.user_id,
    quantity: r.quantity,
    priceCents: r.price_cents,
    status: r.status,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    paidAt: r.paid_at,
    paymentRef: r.payment_ref,
  };
}

export function toSale(r: SaleRow): Sale {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    priceCents: r.price_cents,
    stock: r.stock,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    perUserLimit: r.per_user_limit,
    paymentWindowSeconds: r.payment_window_seconds,
    paused: r.paused === 1,
    secret: r.secret,
    createdAt: r.created_at,
  };
}

/** Every order of a sale, read in keyset pages so that no long cursor blocks the writers. */
export async function* pagedOrders(
  list: (after: string | undefined) => Promise<OrderPage>,
): AsyncIterable<Order> {
  let after: string | undefined;
  for (;;) {
    const page = await list(after);
    for (const o of page.orders) yield o;
    if (!page.next) return;
    after = page.next;
  }
}

