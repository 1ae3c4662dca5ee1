import path from 'node:path';
import Database from 'better-sqlite3';
import { SeckillError } from '../../domain/errors.js';
import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale, SaleAuditEntry, SaleFields } from '../../domain/sale.js';
import type { Transition } from '../../domain/transition.js';
import { orderEvent, type OutboxEvent } from '../../domain/events.js';
import type { DeadLetter, OrderPage, OutboxSinkStats, PendingEvent, RecordStore, StatusTotals } from '../record-store.js';
import { eventValues, outboxSchema, toDeadLetter, toOutboxEvent, type DeadLetterRow, type OutboxEventRow } from '../sql/rows.js';
import { ADDED_COLUMNS, SCHEMA, auditValues, toAudit, type SaleAuditRow, orderValues, pagedOrders, saleValues, toHoldings, toOrder, toPage, toSale, toTotals, type OrderRow, type SaleRow, type SqlArg } from '../sql/rows.js';
import { listOrdersQuery, prunableQuery, statements, transitionStatement, updateSaleQuery } from '../sql/statements.js';
import { INTEREST_SCHEMA, interestPageQuery, interestStatements, interestValues, toInterestPage, toInterestSummary, type DbInterestRow } from '../sql/interest.js';
import type { InterestPage, InterestRow, InterestSummary } from '../record-store.js';
import { createPrivateFile, makePrivateDir } from './private-files.js';

export type SqliteSync = 'FULL' | 'NORMAL';

/**
 * The embedded database of record: one SQLite file in the data dir, WAL journal.
 * better-sqlite3 is synchronous, so each method runs to completion inside one event-loop
 * turn; that is what makes the conditional UPDATEs race-free within the process.
 */
export class SqliteRecordStore implements RecordStore {
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly insertMany: (orders: Order[]) => void;
  private readonly interestSql = interestStatements('sqlite');
  /** The batch of intended purchases in one transaction (prepared on first use). */
  private insertInterest: ((rows: InterestRow[]) => void) | null = null;
  private readonly outbox;
  private readonly transitionTx: (orderId: string, t: Transition, now: number) => OrderRow | undefined;

  constructor(dataDir: string, sync: SqliteSync = 'FULL') {
    makePrivateDir(dataDir);
    // 0600 from the start (the sales' secrets are in it); its -wal and -shm files take the same mode.
    createPrivateFile(path.join(dataDir, 'seckill.db'));
    this.db = new Database(path.join(dataDir, 'seckill.db'));
    this.db.pragma('journal_mode = WAL');
    // FULL: every commit is fsynced, so a 202 survives power loss, not only a process crash.
    this.db.pragma(`synchronous = ${sync}`);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.db.exec(INTEREST_SCHEMA);
    this.db.exec(outboxSchema('sqlite'));
    // A data dir from an older version: add the columns its tables lack (SQLite has no ADD COLUMN IF NOT EXISTS).
    for (const c of ADDED_COLUMNS) {
      const have = this.db.prepare<[], { name: string }>(`PRAGMA table_info(${c.table})`).all();
      if (!have.some((h) => h.name === c.column)) this.db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.column} ${c.definition}`);
    }
    const sql = statements('sqlite');
    const db = this.db;
    const rows = (text: string) => db.prepare<SqlArg[], OrderRow>(text);
    this.stmt = {
      loadSales: db.prepare<[], SaleRow>(sql.loadSales),
      getSale: db.prepare<[string], SaleRow>(sql.getSale),
      insertSale: db.prepare<SqlArg[]>(sql.insertSale),
      setPaused: db.prepare<[number, string]>(sql.setPaused),
      insertAudit: db.prepare<SqlArg[]>(sql.insertAudit),
      saleAudit: db.prepare<[string], SaleAuditRow>(sql.saleAudit),
      serviceAudit: db.prepare<[], SaleAuditRow>(sql.serviceAudit),
      insertOrder: db.prepare<SqlArg[]>(sql.insertOrder),
      getOrder: db.prepare<[string], OrderRow>(sql.getOrder),
      ordersOfUser: db.prepare<[string], OrderRow>(sql.ordersOfUser),
      holdings: db.prepare<[string], { user_id: string; q: number }>(sql.holdings),
      totals: db.prepare<[string], { status: OrderStatus; q: number }>(sql.totals),
      dueForExpiry: db.prepare<[number, number], OrderRow>(sql.dueForExpiry),
      toPaid: rows(sql.toPaid),
      toCancelled: rows(sql.toCancelled),
      toExpired: rows(sql.toExpired),
      toRefunded: rows(sql.toRefunded),
      ping: db.prepare(sql.ping),
    };
    const events = (text: string) => db.prepare<SqlArg[], OutboxEventRow>(text);
    this.outbox = {
      insertEvent: db.prepare<SqlArg[]>(sql.insertEvent),
      pendingEvents: events(sql.pendingEvents),
      markDelivery: db.prepare<SqlArg[]>(sql.markDelivery),
      addCursor: db.prepare<[string]>(sql.addCursor),
      advanceCursor: db.prepare<[number, string]>(sql.advanceCursor),
      lowerCursor: db.prepare<[number, string, number]>(sql.lowerCursor),
      deadLetters: db.prepare<[string, number], DeadLetterRow>(sql.deadLetters),
      deleteDelivery: db.prepare<[string, string]>(sql.deleteDelivery),
      backlog: db.prepare<[string, string], { n: number; oldest: number | null }>(sql.backlog),
      deliveryCounts: db.prepare<[string], { state: string; n: number }>(sql.deliveryCounts),
      eventsOf: events(sql.eventsOf),
      deleteEvent: db.prepare<[string]>(sql.deleteEvent),
      deleteDeliveriesOf: db.prepare<[string]>(sql.deleteDeliveriesOf),
    };
    const insert = this.stmt.insertOrder;
    const insertEvent = this.outbox.insertEvent;
    // Each new order's `order.reserved` in the same transaction as its row (a replayed id adds neither).
    this.insertMany = db.transaction((orders: Order[]) => {
      const now = Date.now();
      for (const o of orders) {
        if (insert.run(...orderValues(o)).changes > 0) insertEvent.run(...eventValues(orderEvent(o)), now);
      }
    });
    // The conditional UPDATE and, when it applied, the change's event: one transaction.
    this.transitionTx = db.transaction((orderId: string, t: Transition, now: number) => {
      const { name, args } = transitionStatement(orderId, t, now);
      const r = this.stmt[name].get(...args);
      if (r) insertEvent.run(...eventValues(orderEvent(toOrder(r), t.to === 'cancelled' ? now : undefined)), Date.now());
      return r;
    });
  }

  async loadSales(): Promise<Sale[]> {
    return this.guard(() => this.stmt.loadSales.all().map(toSale));
  }

  async getSale(saleId: string): Promise<Sale | null> {
    const r = this.guard(() => this.stmt.getSale.get(saleId));
    return r ? toSale(r) : null;
  }

  async insertSale(sale: Sale, audit?: SaleAuditEntry): Promise<void> {
    this.guard(() =>
      this.db.transaction(() => {
        this.stmt.insertSale.run(...saleValues(sale));
        if (audit) this.stmt.insertAudit.run(...auditValues(audit));
      })(),
    );
  }

  async updateSale(saleId: string, fields: SaleFields, audit?: SaleAuditEntry): Promise<void> {
    const q = updateSaleQuery('sqlite', saleId, fields);
    this.guard(() =>
      this.db.transaction(() => {
        if (q) this.db.prepare<SqlArg[]>(q.text).run(...q.args);
        if (audit) this.stmt.insertAudit.run(...auditValues(audit));
      })(),
    );
  }

  async appendAudit(entry: SaleAuditEntry): Promise<void> {
    this.guard(() => this.stmt.insertAudit.run(...auditValues(entry)));
  }

  async auditOf(saleId: string | null): Promise<SaleAuditEntry[]> {
    const rows = this.guard(() => (saleId === null ? this.stmt.serviceAudit.all() : this.stmt.saleAudit.all(saleId)));
    return rows.map(toAudit);
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
    const q = listOrdersQuery('sqlite', saleId, status, after, limit);
    return toPage(this.guard(() => this.db.prepare<SqlArg[], OrderRow>(q.text).all(...q.args)), limit);
  }

  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    return pagedOrders((after) => this.listOrders(saleId, status, after, 1000));
  }

  async holdings(saleId: string): Promise<Map<string, number>> {
    return toHoldings(this.guard(() => this.stmt.holdings.all(saleId)));
  }

  async totals(saleId: string): Promise<StatusTotals> {
    return toTotals(this.guard(() => this.stmt.totals.all(saleId)));
  }

  async transition(orderId: string, t: Transition, now: number): Promise<Order | null> {
    const r = this.guard(() => this.transitionTx(orderId, t, now));
    return r ? toOrder(r) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    return this.guard(() => this.stmt.dueForExpiry.all(now, limit)).map(toOrder);
  }

  async appendEvents(events: OutboxEvent[]): Promise<void> {
    const now = Date.now();
    this.guard(() => this.db.transaction(() => {
      for (const e of events) this.outbox.insertEvent.run(...eventValues(e), now);
    })());
  }

  async pendingEvents(sink: string, limit: number, after = 0): Promise<PendingEvent[]> {
    return this.guard(() => this.outbox.pendingEvents.all(sink, after, sink, sink, limit)).map(toOutboxEvent);
  }

  async markSent(sink: string, ids: string[], at: number): Promise<void> {
    this.guard(() => this.db.transaction(() => {
      for (const id of ids) this.outbox.markDelivery.run(sink, id, 'sent', at, 0, null);
      this.advance(sink);
    })());
  }

  async markDead(sink: string, id: string, attempts: number, error: string, at: number): Promise<void> {
    this.guard(() => this.db.transaction(() => {
      this.outbox.markDelivery.run(sink, id, 'dead', at, attempts, error);
      this.advance(sink);
    })());
  }

  /** One writer at a time here: positions commit in their order, so the cursor needs no horizon. */
  private advance(sink: string): void {
    this.outbox.addCursor.run(sink);
    this.outbox.advanceCursor.run(Number.MAX_SAFE_INTEGER, sink);
  }

  async deadLetters(sink: string, limit: number): Promise<DeadLetter[]> {
    return this.guard(() => this.outbox.deadLetters.all(sink, limit)).map(toDeadLetter);
  }

  async redrive(sink: string, ids?: string[]): Promise<number> {
    return this.guard(() => this.db.transaction(() => {
      const wanted = ids ? new Set(ids) : null;
      const dead = this.outbox.deadLetters.all(sink, Number.MAX_SAFE_INTEGER).filter((d) => !wanted || wanted.has(d.id));
      if (dead.length === 0) return 0;
      for (const d of dead) this.outbox.deleteDelivery.run(sink, d.id);
      const below = Math.min(...dead.map((d) => Number(d.pos))) - 1;
      this.outbox.lowerCursor.run(below, sink, below);
      return dead.length;
    })());
  }

  async pruneEvents(before: number, sinks: string[], limit: number): Promise<number> {
    const q = prunableQuery('sqlite', before, sinks, limit);
    return this.guard(() => this.db.transaction(() => {
      const rows = this.db.prepare<SqlArg[], { id: string }>(q.text).all(...q.args);
      for (const r of rows) {
        this.outbox.deleteDeliveriesOf.run(r.id);
        this.outbox.deleteEvent.run(r.id);
      }
      return rows.length;
    })());
  }

  async outboxStats(sinks: string[]): Promise<OutboxSinkStats[]> {
    return this.guard(() => sinks.map((sink) => {
      const b = this.outbox.backlog.get(sink, sink);
      const counts = new Map(this.outbox.deliveryCounts.all(sink).map((r) => [r.state, Number(r.n)]));
      return { sink, backlog: Number(b?.n ?? 0), oldestPendingAt: b?.oldest ?? null, sent: counts.get('sent') ?? 0, dead: counts.get('dead') ?? 0 };
    }));
  }

  async eventsOf(key: string): Promise<PendingEvent[]> {
    return this.guard(() => this.outbox.eventsOf.all(key)).map(toOutboxEvent);
  }

  async recordInterest(rows: InterestRow[]): Promise<void> {
    if (rows.length === 0) return;
    this.guard(() => {
      if (this.insertInterest === null) {
        const insert = this.db.prepare<SqlArg[]>(this.interestSql.insert);
        this.insertInterest = this.db.transaction((batch: InterestRow[]) => {
          for (const r of batch) insert.run(...interestValues(r));
        });
      }
      this.insertInterest(rows);
    });
  }

  async listInterest(saleId: string, after: string | undefined, limit: number): Promise<InterestPage> {
    const q = interestPageQuery(this.interestSql, saleId, after, limit);
    return toInterestPage(this.guard(() => this.db.prepare<SqlArg[], DbInterestRow>(q.text).all(...q.args)), limit);
  }

  async interestSummary(saleId: string): Promise<InterestSummary> {
    return toInterestSummary(this.guard(() => this.db.prepare<[string], { users: number; units: number }>(this.interestSql.summary).get(saleId)));
  }

  async ping(): Promise<void> {
    this.guard(() => this.stmt.ping.get());
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
