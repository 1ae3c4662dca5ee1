import path from 'node:path';
import Database from 'better-sqlite3';
import { SeckillError } from '../../domain/errors.js';
import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale, SaleAuditEntry, SaleFields } from '../../domain/sale.js';
import type { Transition } from '../../domain/transition.js';
import type { OrderPage, RecordStore, StatusTotals } from '../record-store.js';
import { ADDED_COLUMNS, SCHEMA, auditValues, toAudit, type SaleAuditRow, orderValues, pagedOrders, saleValues, toHoldings, toOrder, toPage, toSale, toTotals, type OrderRow, type SaleRow, type SqlArg } from '../sql/rows.js';
import { listOrdersQuery, statements, transitionStatement, updateSaleQuery } from '../sql/statements.js';
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
    const insert = this.stmt.insertOrder;
    this.insertMany = db.transaction((orders: Order[]) => {
      for (const o of orders) insert.run(...orderValues(o));
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
    const { name, args } = transitionStatement(orderId, t, now);
    const r = this.guard(() => this.stmt[name].get(...args));
    return r ? toOrder(r) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    return this.guard(() => this.stmt.dueForExpiry.all(now, limit)).map(toOrder);
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
