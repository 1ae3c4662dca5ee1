import type { OutboxEvent } from '../domain/events.js';
import type { Order, OrderStatus } from '../domain/order.js';
import type { Sale, SaleAuditEntry, SaleFields } from '../domain/sale.js';
import type { Transition } from '../domain/transition.js';

export interface StatusTotals {
  /** Units (sum of quantities) per status. */
  reserved: number;
  paid: number;
  expired: number;
  cancelled: number;
  refunded: number;
}

export interface OrderPage {
  orders: Order[];
  next: string | null;
}

/** The sales half of the database of record. */
export interface SaleRecords {
  loadSales(): Promise<Sale[]>;
  getSale(saleId: string): Promise<Sale | null>;
  /** The sale, and its audit entry when given, in one transaction. */
  insertSale(sale: Sale, audit?: SaleAuditEntry): Promise<void>;
  setPaused(saleId: string, paused: boolean): Promise<void>;
  /** Some of a sale's fields, and the audit entry of the change when given, in one transaction. */
  updateSale(saleId: string, fields: SaleFields, audit?: SaleAuditEntry): Promise<void>;
  /** An audit entry on its own (the switches: nothing in the database changes with them). */
  appendAudit(entry: SaleAuditEntry): Promise<void>;
  /** A sale's audit entries, oldest first; null: the service-wide ones (switches), newest first. At most 1000. */
  auditOf(saleId: string | null): Promise<SaleAuditEntry[]>;
}

/** The orders half of the database of record. */
export interface OrderRecords {
  /** One transaction for the whole batch; replaying an order id changes nothing. */
  insertOrders(orders: Order[]): Promise<void>;
  getOrder(orderId: string): Promise<Order | null>;
  ordersOfUser(userId: string): Promise<Order[]>;
  listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage>;
  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order>;

  /** Units held per user of a sale: reserved + paid, + refunded when the sale does not restock on refund. */
  holdings(saleId: string): Promise<Map<string, number>>;
  totals(saleId: string): Promise<StatusTotals>;

  /**
   * Move an order out of `reserved` if, and only if, it is still reserved and the rule of its
   * target holds at `now` (paid: before `expiresAt`; expired: at or after it; cancelled: any time);
   * or, for a refund, out of `paid` if it is still paid.
   * Returns the updated order, or null when another transition won (or the rule refused): the
   * one conditional UPDATE is what makes every exit from `reserved` (and from `paid`) happen once.
   */
  transition(orderId: string, t: Transition, now: number): Promise<Order | null>;
  dueForExpiry(now: number, limit: number): Promise<Order[]>;
}

/** An outbox event with its position (the order it was written in). */
export interface PendingEvent extends OutboxEvent {
  pos: number;
}

/** An event the relay gave up on for one sink. */
export interface DeadLetter extends PendingEvent {
  deadAt: number;
  attempts: number;
  error: string | null;
}

/** One sink's view of the outbox. */
export interface OutboxSinkStats {
  sink: string;
  /** Events not yet sent nor dead for this sink. */
  backlog: number;
  /** `at` of the oldest of them (epoch ms), or null. */
  oldestPendingAt: number | null;
  /** Events sent to this sink and still kept (pruning removes them). */
  sent: number;
  dead: number;
}

/**
 * The outbox (issue 13). Order events are written by the order writes themselves (insertOrders,
 * transition, applyBatch), in their transaction; a sink's delivery state is kept per (sink, event),
 * so a sink configured later still finds every event kept.
 */
export interface OutboxRecords {
  /** Events not tied to an order write (`sale.interest`); an id already there is left as it is. */
  appendEvents(events: OutboxEvent[]): Promise<void>;
  /**
   * Up to `limit` events neither sent nor dead for `sink`, oldest first, leaving out every event
   * whose predecessor (same key, seq − 1) is kept and not yet sent to that sink. `after`: read only
   * positions above it (the relay's scan start; the sink's cursor applies anyway).
   */
  pendingEvents(sink: string, limit: number, after?: number): Promise<PendingEvent[]>;
  /** Record the events as sent to `sink` (after it confirmed them). */
  markSent(sink: string, ids: string[], at: number): Promise<void>;
  markDead(sink: string, id: string, attempts: number, error: string, at: number): Promise<void>;
  /** The sink's dead letters, oldest first. */
  deadLetters(sink: string, limit: number): Promise<DeadLetter[]>;
  /** Make dead letters pending again (all of the sink's, or those ids); returns how many. */
  redrive(sink: string, ids?: string[]): Promise<number>;
  /**
   * Delete up to `limit` events written before `before` that every sink of `sinks` was sent (with
   * no sink: by age alone), with their delivery rows. Returns how many.
   */
  pruneEvents(before: number, sinks: string[], limit: number): Promise<number>;
  outboxStats(sinks: string[]): Promise<OutboxSinkStats[]>;
  /** Every event of a key (an order id, a sale id), by seq: for checks and the admin API. */
  eventsOf(key: string): Promise<PendingEvent[]>;
}

/**
 * Who may relay one sink's events now: one holder at a time across processes. Embedded mode's
 * data-dir lock already makes this process the only one, so its lease is always held.
 */
export interface RelayLease {
  /** Try to take (or confirm) the lease; false while another process holds it. */
  acquire(): Promise<boolean>;
  /** Whether the lease is still held (false once its connection was lost). */
  held(): boolean;
  release(): Promise<void>;
}

/** One refused buyer of one sale (an intended purchase). */
export interface InterestRow {
  saleId: string;
  userId: string;
  /** Units asked for (the buy body's quantity, 1 when it named none). */
  quantity: number;
  /** When the refusal was answered (epoch ms). */
  at: number;
}

export interface InterestPage {
  rows: InterestRow[];
  /** The last user id of this page when there is a next one, else null. */
  next: string | null;
}

export interface InterestSummary {
  users: number;
  units: number;
}

/** Intended purchases (issue 13): buyers refused because a sale was sold out, once per user and sale. */
export interface InterestRecords {
  /** Insert-or-ignore on (sale, user): a user already recorded for the sale keeps the first row. */
  recordInterest(rows: InterestRow[]): Promise<void>;
  /** A sale's refused buyers by user id, after `after` (a user id), at most `limit`. */
  listInterest(saleId: string, after: string | undefined, limit: number): Promise<InterestPage>;
  interestSummary(saleId: string): Promise<InterestSummary>;
}

/**
 * The database of record: the one seam every store implements (SQLite embedded, PostgreSQL).
 * Methods are async so that PostgreSQL fits behind the same interface.
 */
export interface RecordStore extends SaleRecords, OrderRecords, InterestRecords, OutboxRecords {
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A hold on the writers' side of the rebuild fence, on a connection of its own. */
export interface WriterFenceHold {
  /**
   * Run `fn` (read a batch → commit → acknowledge) while no rebuild can read the orders. While
   * `keepHeld()` is true afterwards (the writer still holds a batch it could not commit), the fence
   * stays up until a later `run` ends without it.
   */
  run<T>(fn: () => Promise<T>, keepHeld?: () => boolean): Promise<T>;
  close(): Promise<void>;
}

/**
 * What distributed mode needs on top of the record store, where several processes share one
 * PostgreSQL database and the stock lives in Redis: the stream writer's batched upserts, and the
 * fence between those batches and a rebuild of a sale's Redis state from the database.
 */
export interface SharedRecordStore extends RecordStore {
  /**
   * The writer's batch: new reservations and status changes in ONE transaction. A change is an
   * upsert that only ever moves a row out of `reserved`, so it may arrive before its reservation.
   */
  applyBatch(created: Order[], changed: Order[]): Promise<void>;
  /** A new writer-side fence hold (see rebuild-fence.ts). */
  writerFence(): WriterFenceHold;
  /**
   * A sale's reserved, paid and refunded orders, read under the exclusive side of the rebuild fence: every
   * batch a writer had read before has committed. Throws when the writers do not let go in time.
   */
  openOrdersFenced(saleId: string): Promise<Order[]>;
}
