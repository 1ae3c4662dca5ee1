import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale, SaleAuditAction, SaleAuditEntry, SaleField, SaleFields } from '../../domain/sale.js';
import type { Challenge, WaitingRoomSettings } from '../../domain/waiting-room.js';
import type { DeadLetter, OrderPage, PendingEvent, StatusTotals } from '../record-store.js';
import { orderEvent, type EventType, type OutboxEvent } from '../../domain/events.js';

// The one schema and row mapping of both databases of record (SQLite embedded, PostgreSQL
// distributed): the SQL below is valid in both. Rows become orders and sales here and nowhere
// else, and orders and sales become column values here too.

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
  created_at BIGINT NOT NULL,
  restock_on_refund INTEGER NOT NULL DEFAULT 0,
  archived_at BIGINT,
  waiting_room TEXT,
  challenge TEXT
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
  payment_ref TEXT,
  refunded_at BIGINT,
  refund_reason TEXT
);
CREATE INDEX IF NOT EXISTS orders_sale_status ON orders (sale_id, status);
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id);
CREATE INDEX IF NOT EXISTS orders_due ON orders (status, expires_at);
CREATE TABLE IF NOT EXISTS sale_audit (
  id TEXT PRIMARY KEY,
  sale_id TEXT,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  changes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sale_audit_sale ON sale_audit (sale_id, at);
`;

/**
 * Columns added after the first release, for databases created before them: each store adds the
 * ones its tables lack (`CREATE TABLE IF NOT EXISTS` leaves an existing table as it was). Both
 * dialects accept these definitions.
 */
export const ADDED_COLUMNS: ReadonlyArray<{ table: 'sales' | 'orders'; column: string; definition: string }> = [
  { table: 'sales', column: 'restock_on_refund', definition: 'INTEGER NOT NULL DEFAULT 0' },
  { table: 'sales', column: 'archived_at', definition: 'BIGINT' },
  { table: 'sales', column: 'waiting_room', definition: 'TEXT' },
  { table: 'sales', column: 'challenge', definition: 'TEXT' },
  { table: 'orders', column: 'refunded_at', definition: 'BIGINT' },
  { table: 'orders', column: 'refund_reason', definition: 'TEXT' },
];

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
  refunded_at: number | null;
  refund_reason: string | null;
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
  restock_on_refund: number;
  archived_at: number | null;
  /** JSON of the waiting room's settings, or null: none. */
  waiting_room: string | null;
  challenge: string | null;
}

export interface SaleAuditRow {
  id: string;
  sale_id: string | null;
  at: number;
  actor: string;
  action: SaleAuditAction;
  /** JSON: {field: [old, new]}. */
  changes: string;
}

/** A value bound to a placeholder. */
export type SqlArg = string | number | null;

/** The orders table's columns, in the order of `orderValues`. */
export const ORDER_COLUMNS = [
  'order_id', 'sale_id', 'user_id', 'quantity', 'price_cents', 'status', 'created_at', 'expires_at', 'paid_at', 'payment_ref', 'refunded_at', 'refund_reason',
] as const satisfies readonly (keyof OrderRow)[];

/** The sales table's columns, in the order of `saleValues`. */
export const SALE_COLUMNS = [
  'id', 'name', 'description', 'price_cents', 'stock', 'starts_at', 'ends_at', 'per_user_limit', 'payment_window_seconds', 'paused', 'secret', 'created_at', 'restock_on_refund', 'archived_at', 'waiting_room', 'challenge',
] as const satisfies readonly (keyof SaleRow)[];

/** The sale_audit table's columns, in the order of `auditValues`. */
export const AUDIT_COLUMNS = ['id', 'sale_id', 'at', 'actor', 'action', 'changes'] as const satisfies readonly (keyof SaleAuditRow)[];

/** The sale fields an operator may change after creation, and their columns. */
export const SALE_FIELD_COLUMNS = {
  name: 'name',
  description: 'description',
  priceCents: 'price_cents',
  stock: 'stock',
  startsAt: 'starts_at',
  endsAt: 'ends_at',
  perUserLimit: 'per_user_limit',
  paymentWindowSeconds: 'payment_window_seconds',
  paused: 'paused',
  archivedAt: 'archived_at',
  waitingRoom: 'waiting_room',
  challenge: 'challenge',
} as const satisfies Record<SaleField, keyof SaleRow>;

/** `SET col = ?, …` and its values, for the fields given (in SALE_FIELD_COLUMNS's order). */
export function saleFieldValues(fields: SaleFields): { columns: string[]; values: SqlArg[] } {
  const columns: string[] = [];
  const values: SqlArg[] = [];
  for (const f of Object.keys(SALE_FIELD_COLUMNS) as SaleField[]) {
    if (!(f in fields)) continue;
    const v = fields[f];
    columns.push(SALE_FIELD_COLUMNS[f]);
    values.push(typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'object' && v !== null ? JSON.stringify(v) : v ?? null);
  }
  return { columns, values };
}

export function auditValues(e: SaleAuditEntry): SqlArg[] {
  return [e.id, e.saleId, e.at, e.actor, e.action, JSON.stringify(e.changes)];
}

export function toAudit(r: SaleAuditRow): SaleAuditEntry {
  return { id: r.id, saleId: r.sale_id, at: r.at, actor: r.actor, action: r.action, changes: JSON.parse(r.changes) as SaleAuditEntry['changes'] };
}

export function orderValues(o: Order): SqlArg[] {
  return [o.orderId, o.saleId, o.userId, o.quantity, o.priceCents, o.status, o.createdAt, o.expiresAt, o.paidAt, o.paymentRef, o.refundedAt, o.refundReason];
}

export function saleValues(s: Sale): SqlArg[] {
  return [
    s.id, s.name, s.description, s.priceCents, s.stock, s.startsAt, s.endsAt, s.perUserLimit, s.paymentWindowSeconds,
    s.paused ? 1 : 0, s.secret, s.createdAt, s.restockOnRefund ? 1 : 0, s.archivedAt ?? null,
    s.waitingRoom ? JSON.stringify(s.waitingRoom) : null, s.challenge ?? null,
  ];
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
    refundedAt: r.refunded_at ?? null,
    refundReason: r.refund_reason ?? null,
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
    restockOnRefund: Number(r.restock_on_refund ?? 0) === 1,
    archivedAt: r.archived_at ?? null,
    // Set only when present: a sale without them reads as it did before the columns existed.
    ...(r.waiting_room ? { waitingRoom: JSON.parse(r.waiting_room) as WaitingRoomSettings } : {}),
    ...(r.challenge ? { challenge: r.challenge as Challenge } : {}),
  };
}

/** A summed quantity: a number from SQLite, possibly a numeric string from PostgreSQL. */
type Sum = number | string;

export function toHoldings(rows: { user_id: string; q: Sum }[]): Map<string, number> {
  return new Map(rows.map((r) => [r.user_id, Number(r.q)]));
}

export function toTotals(rows: { status: OrderStatus; q: Sum }[]): StatusTotals {
  const t: StatusTotals = { reserved: 0, paid: 0, expired: 0, cancelled: 0, refunded: 0 };
  for (const r of rows) t[r.status] = Number(r.q);
  return t;
}

/** A keyset page from rows read with `LIMIT limit + 1`: the extra row only says there is more. */
export function toPage(rows: OrderRow[], limit: number): OrderPage {
  const more = rows.length > limit;
  const orders = (more ? rows.slice(0, limit) : rows).map(toOrder);
  return { orders, next: more ? orders[orders.length - 1].orderId : null };
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


// The outbox (issue 13): every order event, written in the transaction of the change it
// describes, and what each sink has been sent. Sinks are not known when an event is written: a
// sink's delivery row appears when the relay sent (or gave up on) the event for it, and a
// sink's cursor says below which position it has nothing left to look at.

/** The outbox tables; only the position column is written differently by the two dialects. */
export function outboxSchema(dialect: 'sqlite' | 'postgres'): string {
  const pos = dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY';
  return `
CREATE TABLE IF NOT EXISTS outbox_events (
  pos ${pos},
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  event_key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at BIGINT NOT NULL,
  body TEXT NOT NULL,
  written_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_events_key ON outbox_events (event_key, seq);
CREATE INDEX IF NOT EXISTS outbox_events_written ON outbox_events (written_at);
CREATE TABLE IF NOT EXISTS outbox_deliveries (
  sink TEXT NOT NULL,
  event_id TEXT NOT NULL,
  state TEXT NOT NULL,
  at BIGINT NOT NULL,
  attempts INTEGER NOT NULL,
  error TEXT,
  PRIMARY KEY (sink, event_id)
);
CREATE INDEX IF NOT EXISTS outbox_deliveries_event ON outbox_deliveries (event_id);
CREATE TABLE IF NOT EXISTS outbox_cursors (
  sink TEXT PRIMARY KEY,
  pos BIGINT NOT NULL
);
`;
}

export interface OutboxEventRow {
  pos: number | string;
  id: string;
  type: EventType;
  event_key: string;
  seq: number;
  at: number;
  body: string;
  written_at: number;
}

export interface DeadLetterRow extends OutboxEventRow {
  dead_at: number;
  attempts: number;
  error: string | null;
}

/** An event's columns but the position and written_at, in the order the inserts bind them. */
export const OUTBOX_COLUMNS = ['id', 'type', 'event_key', 'seq', 'at', 'body'] as const;

export function eventValues(e: OutboxEvent): SqlArg[] {
  return [e.id, e.type, e.key, e.seq, e.at, e.body];
}

export function toOutboxEvent(r: OutboxEventRow): PendingEvent {
  return { pos: Number(r.pos), id: r.id, type: r.type, key: r.event_key, seq: r.seq, at: Number(r.at), body: r.body };
}

export function toDeadLetter(r: DeadLetterRow): DeadLetter {
  return { ...toOutboxEvent(r), deadAt: Number(r.dead_at), attempts: r.attempts, error: r.error };
}

/**
 * The events an order write puts in the outbox: its current status's, and, for a change that may
 * be written before its reservation (distributed mode's batches), the events before it, as the
 * order was then. Their ids are stable, so writing one twice adds nothing.
 */
export function eventsWithPredecessors(o: Order): OutboxEvent[] {
  const out: OutboxEvent[] = [];
  if (o.status !== 'reserved') {
    out.push(orderEvent({ ...o, status: 'reserved', paidAt: null, paymentRef: null, refundedAt: null, refundReason: null }));
  }
  if (o.status === 'refunded') out.push(orderEvent({ ...o, status: 'paid', refundedAt: null, refundReason: null }));
  out.push(orderEvent(o));
  return out;
}
