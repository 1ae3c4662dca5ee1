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

/**
 * The database of record: the one seam every store implements (SQLite embedded, PostgreSQL).
 * Methods are async so that PostgreSQL fits behind the same interface.
 */
export interface RecordStore extends SaleRecords, OrderRecords {
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
