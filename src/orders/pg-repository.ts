import pg from 'pg';
import type { Order, OrderStatus } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { OrderPage, OrderRepository, StatusTotals, Transition } from './repository.js';
import { SCHEMA, pagedOrders, toOrder, toSale, type OrderRow, type SaleRow } from './rows.js';

// BIGINT columns hold epoch milliseconds and cents: well inside Number's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Columns of a batch as arrays, for `unnest`: one statement whatever the batch size. */
function columns(orders: Order[]) {
  return [
    orders.map((o) => o.orderId),
    orders.map((o) => o.saleId),
    orders.map((o) => o.userId),
    orders.map((o) => o.quantity),
    orders.map((o) => o.priceCents),
    orders.map((o) => o.status),
    orders.map((o) => o.createdAt),
    orders.map((o) => o.expiresAt),
    orders.map((o) => o.paidAt),
    orders.map((o) => o.paymentRef),
  ];
}

const UNNEST = `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[])`;
const COLS = '(order_id, sale_id, user_id, quantity, price_cents, status, created_at, expires_at, paid_at, payment_ref)';

/** PostgreSQL as the database of record (distributed mode). */
export class PgOrderRepository implements OrderRepository {
  readonly pool: pg.Pool;

  constructor(connectionString: string, poolSize = 4) {
    // Short timeouts: a database that is down or stuck must give 503 busy quickly, never a hang.
    this.pool = new pg.Pool({ connectionString, max: poolSize, connectionTimeoutMillis: 1000, query_timeout: 5000, idleTimeoutMillis: 30_000 });
    // An idle client that loses its connection must not take the process down.
    this.pool.on('error', () => undefined);
  }

  async init(): Promise<void> {
    // Several processes may start at once; the advisory lock keeps DDL from racing.
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock(7411)');
      await c.query(SCHEMA);
    } finally {
      await c.query('SELECT pg_advisory_unlock(7411)').catch(() => undefined);
      c.release();
    }
  }

  async loadSales(): Promise<Sale[]> {
    const r = await this.pool.query<SaleRow>('SELECT * FROM sales ORDER BY created_at');
    return r.rows.map(toSale);
  }

  async getSale(saleId: string): Promise<Sale | null> {
    const r = await this.pool.query<SaleRow>('SELECT * FROM sales WHERE id = $1', [saleId]);
    return r.rows[0] ? toSale(r.rows[0]) : null;
  }

  async insertSale(s: Sale): Promise<void> {
    await this.pool.query(
      `INSERT INTO sales (id, name, description, price_cents, stock, starts_at, ends_at, per_user_limit, payment_window_seconds, paused, secret, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [s.id, s.name, s.description, s.priceCents, s.stock, s.startsAt, s.endsAt, s.perUserLimit, s.paymentWindowSeconds, s.paused ? 1 : 0, s.secret, s.createdAt],
    );
  }

  async setPaused(saleId: string, paused: boolean): Promise<void> {
    await this.pool.query('UPDATE sales SET paused = $1 WHERE id = $2', [paused ? 1 : 0, saleId]);
  }

  async insertOrders(orders: Order[]): Promise<void> {
    if (orders.length === 0) return;
    await this.pool.query(`INSERT INTO orders ${COLS} ${UNNEST} ON CONFLICT (order_id) DO NOTHING`, columns(orders));
  }

  /**
   * The writer's batch: new reservations and status changes, in ONE transaction. A change may
   * arrive before its reservation (another writer holds that entry), so it is an upsert that
   * only ever moves a row out of `reserved`; a late reservation then changes nothing.
   */
  async applyBatch(created: Order[], changed: Order[]): Promise<void> {
    const c = await this.pool.connect();
    // A checked-out client has no listener of its own: the server going away mid-transaction
    // would emit an unhandled 'error' and end the process. The failed query rejects anyway.
    const onError = () => undefined;
    c.on('error', onError);
    let failed: Error | undefined;
    try {
      await c.query('BEGIN');
      if (created.length > 0) await c.query(`INSERT INTO orders ${COLS} ${UNNEST} ON CONFLICT (order_id) DO NOTHING`, columns(created));
      if (changed.length > 0) {
        await c.query(
          `INSERT INTO orders ${COLS} ${UNNEST}
           ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, paid_at = excluded.paid_at, payment_ref = excluded.payment_ref
           WHERE orders.status = 'reserved'`,
          columns(changed),
        );
      }
      await c.query('COMMIT');
    } catch (err) {
      failed = err as Error;
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.off('error', onError);
      // A client whose transaction failed may hold a dead connection: destroyed, not pooled again.
      c.release(failed);
    }
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const r = await this.pool.query<OrderRow>('SELECT * FROM orders WHERE order_id = $1', [orderId]);
    return r.rows[0] ? toOrder(r.rows[0]) : null;
  }

  async ordersOfUser(userId: string): Promise<Order[]> {
    const r = await this.pool.query<OrderRow>('SELECT * FROM orders WHERE user_id = $1 ORDER BY order_id LIMIT 1000', [userId]);
    return r.rows.map(toOrder);
  }

  async listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage> {
    const where = ['sale_id = $1'];
    const args: (string | number)[] = [saleId];
    if (status) where.push(`status = $${args.push(status)}`);
    if (after) where.push(`order_id > $${args.push(after)}`);
    const r = await this.pool.query<OrderRow>(
      `SELECT * FROM orders WHERE ${where.join(' AND ')} ORDER BY order_id LIMIT $${args.push(limit + 1)}`,
      args,
    );
    const more = r.rows.length > limit;
    const page = (more ? r.rows.slice(0, limit) : r.rows).map(toOrder);
    return { orders: page, next: more ? page[page.length - 1].orderId : null };
  }

  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    return pagedOrders((after) => this.listOrders(saleId, status, after, 1000));
  }

  async holdings(saleId: string): Promise<Map<string, number>> {
    const r = await this.pool.query<{ user_id: string; q: string }>(
      `SELECT user_id, SUM(quantity) AS q FROM orders WHERE sale_id = $1 AND status IN ('reserved', 'paid') GROUP BY user_id`,
      [saleId],
    );
    return new Map(r.rows.map((x) => [x.user_id, Number(x.q)]));
  }

  async openOrders(saleId: string): Promise<Order[]> {
    const r = await this.pool.query<OrderRow>(`SELECT * FROM orders WHERE sale_id = $1 AND status IN ('reserved', 'paid')`, [saleId]);
    return r.rows.map(toOrder);
  }

  async totals(saleId: string): Promise<StatusTotals> {
    const r = await this.pool.query<{ status: OrderStatus; q: string }>('SELECT status, SUM(quantity) AS q FROM orders WHERE sale_id = $1 GROUP BY status', [saleId]);
    const t: StatusTotals = { reserved: 0, paid: 0, expired: 0, cancelled: 0 };
    for (const x of r.rows) t[x.status] = Number(x.q);
    return t;
  }

  async transition(orderId: string, t: Transition, now: number): Promise<Order | null> {
    const r = t.to === 'paid'
      ? await this.pool.query<OrderRow>(
          `UPDATE orders SET status = 'paid', paid_at = $1, payment_ref = $2 WHERE order_id = $3 AND status = 'reserved' AND expires_at > $4 RETURNING *`,
          [t.paidAt, t.paymentRef, orderId, now],
        )
      : await this.pool.query<OrderRow>(`UPDATE orders SET status = $1 WHERE order_id = $2 AND status = 'reserved' RETURNING *`, [t.to, orderId]);
    return r.rows[0] ? toOrder(r.rows[0]) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    const r = await this.pool.query<OrderRow>(
      `SELECT * FROM orders WHERE status = 'reserved' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`,
      [now, limit],
    );
    return r.rows.map(toOrder);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** A sale's reserved and paid orders, read on the given client (one holding the rebuild fence). */
  async openOrdersOn(client: pg.ClientBase, saleId: string): Promise<Order[]> {
    const r = await client.query<OrderRow>(`SELECT * FROM orders WHERE sale_id = $1 AND status IN ('reserved', 'paid')`, [saleId]);
    return r.rows.map(toOrder);
  }
}
