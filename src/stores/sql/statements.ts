import type { OrderStatus } from '../../domain/order.js';
import type { Transition } from '../../domain/transition.js';
import type { SaleFields } from '../../domain/sale.js';
import { AUDIT_COLUMNS, ORDER_COLUMNS, OUTBOX_COLUMNS, SALE_COLUMNS, saleFieldValues, type SqlArg } from './rows.js';

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

  // The outbox (rows.ts outboxSchema). An event's position orders it; a sink's cursor is the
  // position up to which it has nothing left to read (sent or dead), so reads start there.
  // "Not delivered" is a scalar subquery `(…) IS NULL`, not NOT EXISTS: PostgreSQL runs it as one
  // primary-key lookup per event read, where an anti-join planned on a young table's stale
  // statistics scanned every delivery of the sink for every event (O(kept²) per read).
  insertEvent: `INSERT INTO outbox_events (${OUTBOX_COLUMNS.join(', ')}, written_at) VALUES (${marks(OUTBOX_COLUMNS.length + 1)}) ON CONFLICT (id) DO NOTHING`,
  // Neither sent nor dead for the sink, and not behind a predecessor (same key, seq − 1) that is
  // kept and not sent to it: an order's events leave in their order, and a dead one holds the later ones.
  // args: sink, after (a position the caller knows it need not read below), sink, sink, limit
  pendingEvents: `SELECT e.* FROM outbox_events e
    WHERE e.pos > COALESCE((SELECT c.pos FROM outbox_cursors c WHERE c.sink = ?), 0) AND e.pos > ?
      AND (SELECT 1 FROM outbox_deliveries d WHERE d.sink = ? AND d.event_id = e.id) IS NULL
      AND (SELECT 1 FROM outbox_events p WHERE p.event_key = e.event_key AND p.seq = e.seq - 1
        AND (SELECT 1 FROM outbox_deliveries s WHERE s.sink = ? AND s.event_id = p.id AND s.state = 'sent') IS NULL LIMIT 1) IS NULL
    ORDER BY e.pos LIMIT ?`,
  // args: sink, event id, state, at, attempts, error
  markDelivery: `INSERT INTO outbox_deliveries (sink, event_id, state, at, attempts, error) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (sink, event_id) DO UPDATE SET state = excluded.state, at = excluded.at, attempts = excluded.attempts, error = excluded.error`,
  addCursor: 'INSERT INTO outbox_cursors (sink, pos) VALUES (?, 0) ON CONFLICT (sink) DO NOTHING',
  // Up to just before the first event after the cursor that is not done for the sink, or was
  // written after `?` (PostgreSQL: a transaction that took an earlier position may commit later).
  // args: horizon, sink
  advanceCursor: `UPDATE outbox_cursors SET pos = COALESCE(
      (SELECT MIN(e.pos) - 1 FROM outbox_events e WHERE e.pos > outbox_cursors.pos AND (e.written_at >= ?
        OR (SELECT 1 FROM outbox_deliveries d WHERE d.sink = outbox_cursors.sink AND d.event_id = e.id) IS NULL)),
      (SELECT MAX(e.pos) FROM outbox_events e WHERE e.pos > outbox_cursors.pos),
      pos)
    WHERE sink = ?`,
  // args: new position, sink, new position
  lowerCursor: 'UPDATE outbox_cursors SET pos = ? WHERE sink = ? AND pos > ?',
  deadLetters: `SELECT e.*, d.at AS dead_at, d.attempts, d.error FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id
    WHERE d.sink = ? AND d.state = 'dead' ORDER BY e.pos LIMIT ?`,
  deleteDelivery: 'DELETE FROM outbox_deliveries WHERE sink = ? AND event_id = ?',
  backlog: `SELECT COUNT(*) AS n, MIN(e.at) AS oldest FROM outbox_events e
    WHERE e.pos > COALESCE((SELECT c.pos FROM outbox_cursors c WHERE c.sink = ?), 0)
      AND (SELECT 1 FROM outbox_deliveries d WHERE d.sink = ? AND d.event_id = e.id) IS NULL`,
  deliveryCounts: 'SELECT state, COUNT(*) AS n FROM outbox_deliveries WHERE sink = ? GROUP BY state',
  eventsOf: 'SELECT * FROM outbox_events WHERE event_key = ? ORDER BY seq, pos',
  deleteEvent: 'DELETE FROM outbox_events WHERE id = ?',
  deleteDeliveriesOf: 'DELETE FROM outbox_deliveries WHERE event_id = ?',
} as const;

/**
 * Events written before `before` that every sink given was sent (none given: by age alone),
 * oldest first: what pruning may delete.
 */
export function prunableQuery(dialect: Dialect, before: number, sinks: string[], limit: number): { text: string; args: SqlArg[] } {
  const sent = sinks.length === 0
    ? ''
    : ` AND (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.event_id = e.id AND d.state = 'sent' AND d.sink IN (${marks(sinks.length)})) = ?`;
  const args: SqlArg[] = [before, ...sinks, ...(sinks.length === 0 ? [] : [sinks.length]), limit];
  return { text: render(`SELECT e.pos, e.id FROM outbox_events e WHERE e.written_at < ?${sent} ORDER BY e.pos LIMIT ?`, dialect), args };
}

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
