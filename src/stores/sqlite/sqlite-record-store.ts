import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SeckillError } from '../../domain/errors.js';
import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale } from '../../domain/sale.js';
import type { Transition } from '../../domain/transition.js';
import type { OrderPage, RecordStore, StatusTotals } from '../record-store.js';
import { SCHEMA, pagedOrders, toOrder, toSale, type OrderRow, type SaleRow } from '../sql/rows.js';

export type SqliteSync = 'FULL' | 'NORMAL';

/**
 * The embedded database of record: one SQLite file in the data dir, WAL journal.
 * better-sqlite3 is synchronous, so each method runs to completion inside one event-loop
 * turn; that is what makes the conditional UPDATEs race-free within the process.
 */
export class SqliteRecordStore implements RecordStore {
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
      getSale: db.prepare<[string], SaleRow>('SELECT * FROM sales WHERE id = ?'),
    };
    const insert = this.stmt.insertOrder;
    this.insertMany = db.transaction((orders: Order[]) => {
      for (const o of orders) {
        insert.run(o.orderId, o.saleId, o.userId, o.quantity, o.priceCents, o.status, o.createdAt, o.expiresAt, o.paidAt, o.paymentRef);
      }
    });
  }

  async loadSales(): Promise<Sale[]> {
    return this.guard(() => this.stmt.loadSales.all().map(toSale));
  }

  async getSale(saleId: string): Promise<Sale | null> {
    const r = this.guard(() => this.stmt.getSale.get(saleId));
    return r ? toSale(r) : null;
  }

  async insertSale(sale: Sale): Promise<void> {
    this.guard(() => this.stmt.insertSale.run({ ...sale, paused: sale.paused ? 1 : 0 }));
  }

  async setPaused(saleId: string, paused: boolean): Promise<void> {
    this.guard(() => this.stmt.setPaused.run(paused ? 1 : 0, saleId));
  }

  async insertOrders(orders: Order[]): Promise<void> {
    this.guard(() => this.insertMany(orders));
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const r = this.guard(() => this.stmt.getOrder.get(orderId));
    return r ? toOrder(r) : null;
  }

  async ordersOfUser(userId: string): Promise<Order[]> {
    return this.guard(() => this.stmt.ordersOfUser.all(userId)).map(toOrder);
  }

  async listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage> {
    const where = ['sale_id = ?'];
    const args: (string | number)[] = [saleId];
    if (status) { where.push('status = ?'); args.push(status); }
    if (after) { where.push('order_id > ?'); args.push(after); }
    args.push(limit + 1);
    const rows = this.guard(() => this.db
      .prepare<(string | number)[], OrderRow>(`SELECT * FROM orders WHERE ${where.join(' AND ')} ORDER BY order_id LIMIT ?`)
      .all(...args));
    const more = rows.length > limit;
    const page = (more ? rows.slice(0, limit) : rows).map(toOrder);
    return { orders: page, next: more ? page[page.length - 1].orderId : null };
  }

  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    return pagedOrders((after) => this.listOrders(saleId, status, after, 1000));
  }

  async holdings(saleId: string): Promise<Map<string, number>> {
    return new Map(this.guard(() => this.stmt.holdings.all(saleId)).map((r) => [r.user_id, r.q]));
  }

  async totals(saleId: string): Promise<StatusTotals> {
    const t: StatusTotals = { reserved: 0, paid: 0, expired: 0, cancelled: 0 };
    for (const r of this.guard(() => this.stmt.totals.all(saleId))) t[r.status] = r.q;
    return t;
  }

  async transition(orderId: string, t: Transition, now: number): Promise<Order | null> {
    const r = this.guard(() => t.to === 'paid'
      ? this.stmt.toPaid.get(t.paidAt, t.paymentRef, orderId, now)
      : this.stmt.toEnd.get(t.to, orderId));
    return r ? toOrder(r) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    return this.guard(() => this.stmt.due.all(now, limit)).map(toOrder);
  }

  async ping(): Promise<void> {
    this.guard(() => this.db.prepare('SELECT 1').get());
  }

  /**
   * A failing database (closed, I/O error, locked past busy_timeout) is a backing store down:
   * the API answers 503 busy with Retry-After, never a 500. Each statement is atomic, so a
   * failed one changed nothing. The driver's error is kept as the cause, for the log.
   */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new SeckillError('busy', 'The order database is unavailable; nothing was changed.', undefined, err);
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
