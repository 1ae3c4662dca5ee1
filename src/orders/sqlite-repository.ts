import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Order, OrderStatus } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { OrderPage, OrderRepository, StatusTotals, Transition } from './repository.js';

const SCHEMA = `
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

interface OrderRow {
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

interface SaleRow {
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

function toOrder(r: OrderRow): Order {
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

function toSale(r: SaleRow): Sale {
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

export type SqliteSync = 'FULL' | 'NORMAL';

/**
 * The embedded database of record: one SQLite file in the data dir, WAL journal.
 * better-sqlite3 is synchronous, so each method runs to completion inside one event-loop
 * turn; that is what makes the conditional UPDATEs race-free within the process.
 */
export class SqliteOrderRepository implements OrderRepository {
  readonly db: Database.Database;
  private readonly stmt;
  private readonly insertMany: (orders: Order[]) => void;

  constructor(dataDir: string, sync: SqliteSync = 'FULL') {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, 'seckill.db'));
    this.db.pragma('journal_mode = WAL');
    // FULL: every commit is fsynced, so a 202 survives power loss, not only a process crash.
    this.db.pragma(`synchronous = ${sync}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmt = {
      insertOrder: db.prepare(
        `INSERT INTO orders (order_id, sale_id, user_id, quantity, price_cents, status, created_at, expires_at, paid_at, payment_ref)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
      ),
      getOrder: db.prepare<[string], OrderRow>('SELECT * FROM orders WHERE order_id = ?'),
      ordersOfUser: db.prepare<[string], OrderRow>('SELECT * FROM orders WHERE user_id = ? ORDER BY order_id LIMIT 1000'),
      holdings: db.prepare<[string], { user_id: string; q: number }>(
        `SELECT user_id, SUM(quantity) AS q FROM orders WHERE sale_id = ? AND status IN ('reserved', 'paid') GROUP BY user_id`,
      ),
      totals: db.prepare<[string], { status: OrderStatus; q: number }>(
        'SELECT status, SUM(quantity) AS q FROM orders WHERE sale_id = ? GROUP BY status',
      ),
      toPaid: db.prepare<[number, string, string, number], OrderRow>(
        `UPDATE orders SET status = 'paid', paid_at = ?, payment_ref = ?
         WHERE order_id = ? AND status = 'reserved' AND expires_at > ? RETURNING *`,
      ),
      toEnd: db.prepare<[string, string], OrderRow>(
        `UPDATE orders SET status = ? WHERE order_id = ? AND status = 'reserved' RETURNING *`,
      ),
      due: db.prepare<[number, number], OrderRow>(
        `SELECT * FROM orders WHERE status = 'reserved' AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
      ),
      insertSale: db.prepare(
        `INSERT INTO sales (id, name, description, price_cents, stock, starts_at, ends_at, per_user_limit, payment_window_seconds, paused, secret, created_at)
         VALUES (@id, @name, @description, @priceCents, @stock, @startsAt, @endsAt, @perUserLimit, @paymentWindowSeconds, @paused, @secret, @createdAt)`,
      ),
      setPaused: db.prepare<[number, string]>('UPDATE sales SET paused = ? WHERE id = ?'),
      loadSales: db.prepare<[], SaleRow>('SELECT * FROM sales ORDER BY created_at'),
    };
    const insert = this.stmt.insertOrder;
    this.insertMany = db.transaction((orders: Order[]) => {
      for (const o of orders) {
        insert.run(o.orderId, o.saleId, o.userId, o.quantity, o.priceCents, o.status, o.createdAt, o.expiresAt, o.paidAt, o.paymentRef);
      }
    });
  }

  async loadSales(): Promise<Sale[]> {
    return this.stmt.loadSales.all().map(toSale);
  }

  async insertSale(sale: Sale): Promise<void> {
    this.stmt.insertSale.run({ ...sale, paused: sale.paused ? 1 : 0 });
  }

  async setPaused(saleId: string, paused: boolean): Promise<void> {
    this.stmt.setPaused.run(paused ? 1 : 0, saleId);
  }

  async insertOrders(orders: Order[]): Promise<void> {
    this.insertMany(orders);
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const r = this.stmt.getOrder.get(orderId);
    return r ? toOrder(r) : null;
  }

  async ordersOfUser(userId: string): Promise<Order[]> {
    return this.stmt.ordersOfUser.all(userId).map(toOrder);
  }

  async listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage> {
    const where = ['sale_id = ?'];
    const args: (string | number)[] = [saleId];
    if (status) { where.push('status = ?'); args.push(status); }
    if (after) { where.push('order_id > ?'); args.push(after); }
    args.push(limit + 1);
    const rows = this.db
      .prepare<(string | number)[], OrderRow>(`SELECT * FROM orders WHERE ${where.join(' AND ')} ORDER BY order_id LIMIT ?`)
      .all(...args);
    const more = rows.length > limit;
    const page = (more ? rows.slice(0, limit) : rows).map(toOrder);
    return { orders: page, next: more ? page[page.length - 1].orderId : null };
  }

  async *iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    // Keyset pages rather than one long-lived cursor, so writers are never blocked for long.
    let after: string | undefined;
    for (;;) {
      const page = await this.listOrders(saleId, status, after, 1000);
      for (const o of page.orders) yield o;
      if (!page.next) return;
      after = page.next;
    }
  }

  async holdings(saleId: string): Promise<Map<string, number>> {
    return new Map(this.stmt.holdings.all(saleId).map((r) => [r.user_id, r.q]));
  }

  async totals(saleId: string): Promise<StatusTotals> {
    const t: StatusTotals = { reserved: 0, paid: 0, expired: 0, cancelled: 0 };
    for (const r of this.stmt.totals.all(saleId)) t[r.status] = r.q;
    return t;
  }

  async transition(orderId: string, t: Transition, now: number): Promise<Order | null> {
    const r = t.to === 'paid'
      ? this.stmt.toPaid.get(t.paidAt, t.paymentRef, orderId, now)
      : this.stmt.toEnd.get(t.to, orderId);
    return r ? toOrder(r) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    return this.stmt.due.all(now, limit).map(toOrder);
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
