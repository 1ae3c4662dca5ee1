import type { OrderStatus } from '../../domain/order.js';
import type { Transition } from '../../domain/transition.js';
import type { SaleFields } from '../../domain/sale.js';
import { AUDIT_COLUMNS, ORDER_COLUMNS, SALE_COLUMNS, saleFieldValues, type SqlArg } from './rows.js';

// The statements both databases of record run, written once. They are portable SQL with `?`
// placeholders; PostgreSQL's driver wants `$1, $2, …`, so each store renders them for its dialect
// once, at construction. Only what the dialects do differently stays in each store: SQLite
// inserts a batch row by row in one transaction, PostgreSQL in one `unnest` statement.

/** How a driver writes positional parameters: SQLite `?`, PostgreSQL `$1, $2, …`. */
export type Dialect = 'sqlite' | 'postgres';

const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** The order's units are held (domain/order.ts `holds`): a refund keeps them unless its sale restocks. */
const HELD = `(status IN ('reserved', 'paid') OR (status = 'refunded' AND NOT EXISTS (SELECT 1 FROM sales WHERE sales.id = orders.sale_id AND sales.restock_on_refund = 1)))`;

const SHARED = {
  loadSales: 'SELECT * FROM sales ORDER BY created_at',
  getSale: 'SELECT * FROM sales WHERE id = ?',
  insertSale: `INSERT INTO sales (${SALE_COLUMNS.join(', ')}) VALUES (${marks(SALE_COLUMNS.length)})`,
  setPaused: 'UPDATE sales SET paused = ? WHERE id = ?',
  // The audit trail of operators' changes (null sale: the service-wide switches).
  insertAudit: `INSERT INTO sale_audit (${AUDIT_COLUMNS.join(', ')}) VALUES (${marks(AUDIT_COLUMNS.length)})`,
  saleAudit: 'SELECT * FROM sale_audit WHERE sale_id = ? ORDER BY at, id LIMIT 1000',
  serviceAudit: 'SELECT * FROM sale_audit WHERE sale_id IS NULL ORDER BY at DESC, id DESC LIMIT 1000',

  insertOrder: `INSERT INTO orders (${ORDER_COLUMNS.join(', ')}) VALUES (${marks(ORDER_COLUMNS.length)}) ON CONFLICT (order_id) DO NOTHING`,
  getOrder: 'SELECT * FROM orders WHERE order_id = ?',
  ordersOfUser: 'SELECT * FROM orders WHERE user_id = ? ORDER BY order_id LIMIT 1000',
  // What a rebuild of Redis reads: the orders that may still change (reserved, paid) and the
  // refunded ones, kept in Redis as the record that their refund happened (a second refund then
  // changes nothing). Which of them hold units is the rebuild's call (domain/order.ts `holds`).
  openOrders: `SELECT * FROM orders WHERE sale_id = ? AND status IN ('reserved', 'paid', 'refunded')`,
  // Units held: reserved and paid, and refunded ones when their sale does not restock on refund
  // (those stay sold and count against the buyer's limit).
  holdings: `SELECT user_id, SUM(quantity) AS q FROM orders WHERE sale_id = ? AND ${HELD} GROUP BY user_id`,
  totals: 'SELECT status, SUM(quantity) AS q FROM orders WHERE sale_id = ? GROUP BY status',
  dueForExpiry: `SELECT * FROM orders WHERE status = 'reserved' AND expires_at <= ? ORDER BY expires_at LIMIT ?`,

  // The exits from `reserved`, one conditional UPDATE each: the same rule as transition.lua.
  // Paid only before the order's expiresAt, expired only from it on, cancelled at any time.
  toPaid: `UPDATE orders SET status = 'paid', paid_at = ?, payment_ref = ? WHERE order_id = ? AND status = 'reserved' AND expires_at > ? RETURNING *`,
  toCancelled: `UPDATE orders SET status = 'cancelled' WHERE order_id = ? AND status = 'reserved' RETURNING *`,
  toExpired: `UPDATE orders SET status = 'expired' WHERE order_id = ? AND status = 'reserved' AND expires_at <= ? RETURNING *`,
  // The one exit from `paid`: once, whoever asks first.
  toRefunded: `UPDATE orders SET status = 'refunded', refunded_at = ?, refund_reason = ? WHERE order_id = ? AND status = 'paid' RETURNING *`,

  ping: 'SELECT 1',
} as const;

export type StatementName = keyof typeof SHARED;
export type Statements = Record<StatementName, string>;

/** `?` placeholders as the dialect writes them. (No statement here has a `?` inside a literal.) */
export function render(sql: string, dialect: Dialect): string {
  if (dialect === 'sqlite') return sql;
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Every shared statement, rendered for one dialect. */
export function statements(dialect: Dialect): Statements {
  const out = {} as Statements;
  for (const name of Object.keys(SHARED) as StatementName[]) out[name] = render(SHARED[name], dialect);
  return out;
}

/** Which exit statement a transition runs, with its arguments. */
export function transitionStatement(
  orderId: string,
  t: Transition,
  now: number,
): { name: 'toPaid' | 'toCancelled' | 'toExpired' | 'toRefunded'; args: SqlArg[] } {
  switch (t.to) {
    case 'paid':
      return { name: 'toPaid', args: [t.paidAt, t.paymentRef, orderId, now] };
    case 'cancelled':
      return { name: 'toCancelled', args: [orderId] };
    case 'expired':
      return { name: 'toExpired', args: [orderId, now] };
    case 'refunded':
      return { name: 'toRefunded', args: [t.refundedAt, t.reason, orderId] };
  }
}

/** One keyset page of a sale's orders (one row more than `limit`, to tell whether there is a next page). */
export function listOrdersQuery(
  dialect: Dialect,
  saleId: string,
  status: OrderStatus | undefined,
  after: string | undefined,
  limit: number,
): { text: string; args: SqlArg[] } {
  const where = ['sale_id = ?'];
  const args: SqlArg[] = [saleId];
  if (status) {
    where.push('status = ?');
    args.push(status);
  }
  if (after) {
    where.push('order_id > ?');
    args.push(after);
  }
  args.push(limit + 1);
  return { text: render(`SELECT * FROM orders WHERE ${where.join(' AND ')} ORDER BY order_id LIMIT ?`, dialect), args };
}

/** An UPDATE of some of a sale's changeable fields (the columns come from rows.ts, never from input). */
export function updateSaleQuery(dialect: Dialect, saleId: string, fields: SaleFields): { text: string; args: SqlArg[] } | null {
  const { columns, values } = saleFieldValues(fields);
  if (columns.length === 0) return null;
  return { text: render(`UPDATE sales SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`, dialect), args: [...values, saleId] };
}
