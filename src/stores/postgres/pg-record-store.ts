import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Order, OrderStatus } from '../../domain/order.js';
import type { Sale, SaleAuditEntry, SaleFields } from '../../domain/sale.js';
import type { SeckillError } from '../../domain/errors.js';
import type { Transition } from '../../domain/transition.js';
import { AmbiguousOutcome } from '../../domain/outcome.js';
import { INTEREST_COLUMNS, INTEREST_SCHEMA, interestPageQuery, interestStatements, interestValues, toInterestPage, toInterestSummary, type DbInterestRow } from '../sql/interest.js';
import type { InterestPage, InterestRow, InterestSummary } from '../record-store.js';
import { inTransaction } from './transaction.js';
import { WriterFence, withRebuildFence } from './rebuild-fence.js';
import { orderEvent, type OutboxEvent } from '../../domain/events.js';
import type { DeadLetter, OrderPage, OutboxSinkStats, PendingEvent, RelayLease, SharedRecordStore, StatusTotals, WriterFenceHold } from '../record-store.js';
import { eventValues, eventsWithPredecessors, outboxSchema, toDeadLetter, toOutboxEvent, type DeadLetterRow, type OutboxEventRow } from '../sql/rows.js';
import { PgRelayLease } from './relay-lease.js';
import { ADDED_COLUMNS, ORDER_COLUMNS, SCHEMA, auditValues, toAudit, type SaleAuditRow, orderValues, pagedOrders, saleValues, toHoldings, toOrder, toPage, toSale, toTotals, type OrderRow, type SaleRow, type SqlArg } from '../sql/rows.js';
import { listOrdersQuery, prunableQuery, statements, transitionStatement, updateSaleQuery } from '../sql/statements.js';

// BIGINT columns hold epoch milliseconds and cents: well inside Number's exact range.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

const SQL = statements('postgres');
const INTEREST_SQL = interestStatements('postgres');

/** Columns of a batch as arrays, for `unnest`: one statement whatever the batch size. */
function columns(orders: Order[]): SqlArg[][] {
  const rows = orders.map(orderValues);
  return ORDER_COLUMNS.map((_, i) => rows.map((r) => r[i]));
}

// PostgreSQL only: a whole batch in one statement (SQLite inserts row by row in one transaction).
const UNNEST = `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[], $12::text[])`;
const COLS = `(${ORDER_COLUMNS.join(', ')})`;

/** Outbox rows as arrays, for `unnest` (written_at last). */
function eventColumns(events: OutboxEvent[], now: number): SqlArg[][] {
  const rows = events.map((e) => [...eventValues(e), now]);
  return Array.from({ length: 7 }, (_, i) => rows.map((r) => r[i]));
}
const EVENTS_FROM = (first: number) =>
  `unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::int[], $${first + 4}::bigint[], $${first + 5}::text[], $${first + 6}::bigint[]) AS e(id, type, event_key, seq, at, body, written_at)`;
const INSERT_EVENTS = `INSERT INTO outbox_events (id, type, event_key, seq, at, body, written_at) SELECT e.* FROM ${EVENTS_FROM(1)} ON CONFLICT (id) DO NOTHING`;
/**
 * How long a transaction may hold an outbox position before it commits (statement and
 * idle-in-transaction timeouts end it well before): a sink's cursor does not pass newer events,
 * so one committed late is still read.
 */
const CURSOR_HORIZON_MS = 60_000;

export interface PgRecordStoreOptions {
  /**
   * The server's own limit on each statement (statement_timeout, lock waits included), ms. The server
   * cancels a statement that runs longer and rolls it back: a definite failure, unlike a
   * client-side timeout after which the statement may still commit.
   */
  statementTimeoutMs?: number;
  log?: Logger;
  /** Why new orders may not be written now, or null (see PgRecordStore.writeGate). */
  writeGate?: () => SeckillError | null;
}

/** Which backend ran a statement: enough to stop exactly that one, never a later one with the same pid. */
interface Backend {
  pid: number | null;
  /** pg_stat_activity.backend_start as text (microseconds kept), or null when it could not be read. */
  start: string | null;
}

/**
 * Errors that prove the statement did not apply: the server refused it and rolled it back
 * (constraint, bad data, cancelled by statement_timeout or lock_timeout, deadlock). Anything
 * else — a socket error, a client-side timeout, the server shutting down or terminating the
 * session, an internal error — leaves the outcome unknown.
 */
function definiteFailure(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError) || typeof err.code !== 'string') return false;
  const c = err.code;
  return !(c.startsWith('08') || c.startsWith('57P') || c.startsWith('XX') || c.startsWith('58') || c === '40003');
}

const noop = () => undefined;

/** PostgreSQL as the database of record (PostgreSQL and distributed modes). */
export class PgRecordStore implements SharedRecordStore {
  private readonly pool: pg.Pool;
  private readonly backends = new WeakMap<pg.ClientBase, Backend>();
  private readonly statementTimeoutMs: number;
  private readonly log: Logger | undefined;
  private closed = false;
  /**
   * Why new orders may not be written now (PostgreSQL mode: this process does not hold the
   * database's instance lock), or null. Checked inside the repository, so that the refusal counts
   * on the database's breaker like any other failure to write.
   */
  private readonly writeGate: () => SeckillError | null;

  constructor(
    private readonly connectionString: string,
    poolSize = 4,
    opts: PgRecordStoreOptions = {},
  ) {
    this.writeGate = opts.writeGate ?? (() => null);
    const st = opts.statementTimeoutMs ?? 5000;
    this.statementTimeoutMs = st;
    this.log = opts.log;
    // Server-side limits, so that a slow or blocked statement is cancelled by the server itself
    // (nothing committed, known for sure); the client-side timeout is only a last resort, longer
    // than the server's, for a server that does not answer at all. A session abandoned inside a
    // transaction is ended by the server too.
    this.pool = new pg.Pool({
      connectionString,
      max: poolSize,
      connectionTimeoutMillis: 1000,
      statement_timeout: st, // lock waits included
      idle_in_transaction_session_timeout: 2 * st + 5000,
      query_timeout: st + 5000,
      idleTimeoutMillis: 30_000,
      // Each connection's backend, read once before first use: after a lost reply, that backend is
      // stopped before the outcome is read, so a statement still running there cannot commit later.
      onConnect: async (client: pg.ClientBase) => {
        const pid = (client as unknown as { processID: number | null }).processID;
        const start = await client
          .query<{ s: string }>('SELECT backend_start::text AS s FROM pg_stat_activity WHERE pid = pg_backend_pid()')
          .then((r) => r.rows[0]?.s ?? null, () => null);
        this.backends.set(client, { pid, start });
      },
    });
    // An idle client that loses its connection must not take the process down.
    this.pool.on('error', noop);
  }

  async init(): Promise<void> {
    // Several processes may start at once; the advisory lock keeps DDL from racing. A loaded
    // machine can miss the 1 s connect timeout at start: keep trying for a while, as for Redis.
    const deadline = Date.now() + 15_000;
    let c: pg.PoolClient;
    for (;;) {
      try {
        c = await this.pool.connect();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
    try {
      await c.query('SELECT pg_advisory_lock(7411)');
      await c.query(SCHEMA);
      await c.query(INTEREST_SCHEMA);
      await c.query(outboxSchema('postgres'));
      // A database from an older version: add the columns its tables lack.
      for (const a of ADDED_COLUMNS) await c.query(`ALTER TABLE ${a.table} ADD COLUMN IF NOT EXISTS ${a.column} ${a.definition}`);
    } finally {
      await c.query('SELECT pg_advisory_unlock(7411)').catch(() => undefined);
      c.release();
    }
  }

  async loadSales(): Promise<Sale[]> {
    const r = await this.pool.query<SaleRow>(SQL.loadSales);
    return r.rows.map(toSale);
  }

  async getSale(saleId: string): Promise<Sale | null> {
    const r = await this.pool.query<SaleRow>(SQL.getSale, [saleId]);
    return r.rows[0] ? toSale(r.rows[0]) : null;
  }

  async insertSale(s: Sale, audit?: SaleAuditEntry): Promise<void> {
    if (!audit) {
      await this.pool.query(SQL.insertSale, saleValues(s));
      return;
    }
    await inTransaction(this.pool, async (c) => {
      await c.query(SQL.insertSale, saleValues(s));
      await c.query(SQL.insertAudit, auditValues(audit));
    });
  }

  async updateSale(saleId: string, fields: SaleFields, audit?: SaleAuditEntry): Promise<void> {
    const q = updateSaleQuery('postgres', saleId, fields);
    await inTransaction(this.pool, async (c) => {
      if (q) await c.query(q.text, q.args);
      if (audit) await c.query(SQL.insertAudit, auditValues(audit));
    });
  }

  async appendAudit(entry: SaleAuditEntry): Promise<void> {
    await this.pool.query(SQL.insertAudit, auditValues(entry));
  }

  async auditOf(saleId: string | null): Promise<SaleAuditEntry[]> {
    const r = saleId === null
      ? await this.pool.query<SaleAuditRow>(SQL.serviceAudit)
      : await this.pool.query<SaleAuditRow>(SQL.saleAudit, [saleId]);
    return r.rows.map(toAudit);
  }

  async setPaused(saleId: string, paused: boolean): Promise<void> {
    await this.pool.query(SQL.setPaused, [paused ? 1 : 0, saleId]);
  }

  /**
   * The group commit's INSERT (one statement, so all or nothing). A definite failure is thrown
   * as is; a lost reply becomes an AmbiguousOutcome whose outcome is the set of these orders
   * that exist, read once the backend that ran the INSERT is gone.
   */
  async insertOrders(orders: Order[]): Promise<void> {
    if (orders.length === 0) return;
    const refused = this.writeGate();
    if (refused) throw refused; // nothing sent: a definite failure
    const ids = orders.map((o) => o.orderId);
    await this.onOneBackend(
      // One statement still: each order that is new gets its `order.reserved` in the outbox with it.
      (c) => c.query(
        `WITH o AS (INSERT INTO orders ${COLS} ${UNNEST} ON CONFLICT (order_id) DO NOTHING RETURNING order_id)
         INSERT INTO outbox_events (id, type, event_key, seq, at, body, written_at) SELECT e.* FROM ${EVENTS_FROM(13)}
         WHERE e.event_key IN (SELECT order_id FROM o) ON CONFLICT (id) DO NOTHING`,
        [...columns(orders), ...eventColumns(orders.map((o) => orderEvent(o)), Date.now())],
      ),
      async (q) => {
        const r = await q.query<{ order_id: string }>('SELECT order_id FROM orders WHERE order_id = ANY($1::text[])', [ids]);
        return new Set(r.rows.map((x) => x.order_id));
      },
    );
  }

  /**
   * Run `write` on one pooled connection. When its reply is lost, throw an AmbiguousOutcome
   * whose outcome is `check`, run (retrying until it can) from a fresh connection once the
   * backend that ran `write` has been terminated and has exited.
   */
  private async onOneBackend<T, C>(write: (c: pg.PoolClient) => Promise<T>, check: (q: pg.Client) => Promise<C>): Promise<T> {
    const c = await this.pool.connect(); // a failure here sent nothing: definite
    const backend = this.backends.get(c);
    // A checked-out client has no listener of its own; the failed query rejects anyway.
    c.on('error', noop);
    try {
      const result = await write(c);
      c.off('error', noop);
      c.release();
      return result;
    } catch (err) {
      c.off('error', noop);
      c.release(err as Error); // destroyed, never pooled again
      if (definiteFailure(err)) throw err;
      this.log?.warn({ err, pid: backend?.pid }, 'database reply lost; checking what was committed before answering');
      throw new AmbiguousOutcome(this.settle(backend, check), err);
    }
  }

  /**
   * Find out what a write whose reply was lost did: from a fresh connection, terminate the
   * backend that ran it and wait until it has exited (its transaction is then committed or
   * rolled back for good), then run `check`. Retries while the database cannot be reached,
   * until the repository is closed.
   */
  private async settle<C>(backend: Backend | undefined, check: (q: pg.Client) => Promise<C>): Promise<C> {
    const start = backend?.start ?? null;
    let pause = 100;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new Error('repository closed before the outcome of a lost reply was known');
      const q = new pg.Client({
        connectionString: this.connectionString,
        connectionTimeoutMillis: 1000,
        statement_timeout: this.statementTimeoutMs,
        query_timeout: this.statementTimeoutMs + 5000,
      });
      q.on('error', noop);
      try {
        await q.connect();
        if (backend?.pid) await this.stopBackend(q, backend.pid, start);
        return await check(q);
      } catch (err) {
        this.log?.warn({ err, attempt }, 'could not check the outcome of a lost database reply yet; retrying');
      } finally {
        await q.end().catch(noop);
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 2000);
    }
  }

  private async stopBackend(q: pg.Client, pid: number, start: string | null): Promise<void> {
    const where = start ? 'pid = $1 AND backend_start::text = $2' : 'pid = $1';
    const args = start ? [pid, start] : [pid];
    await q.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${where}`, args);
    const deadline = Date.now() + this.statementTimeoutMs + 5000;
    for (;;) {
      const r = await q.query(`SELECT 1 FROM pg_stat_activity WHERE ${where}`, args);
      if (r.rowCount === 0) return;
      if (Date.now() > deadline) throw new Error(`backend ${pid} did not exit after pg_terminate_backend`);
      await sleep(20);
    }
  }

  /**
   * The writer's batch: new reservations and status changes, in ONE transaction. A change may
   * arrive before its reservation (another writer holds that entry), so it is an upsert that
   * only ever moves a row out of `reserved`, or from `paid` to `refunded`; a late reservation
   * (or a late `paid` after the refund) then changes nothing.
   */
  async applyBatch(created: Order[], changed: Order[]): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      if (created.length > 0) await c.query(`INSERT INTO orders ${COLS} ${UNNEST} ON CONFLICT (order_id) DO NOTHING`, columns(created));
      if (changed.length > 0) {
        await c.query(
          `INSERT INTO orders ${COLS} ${UNNEST}
           ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, paid_at = excluded.paid_at, payment_ref = excluded.payment_ref,
             refunded_at = excluded.refunded_at, refund_reason = excluded.refund_reason
           WHERE orders.status = 'reserved' OR (orders.status = 'paid' AND excluded.status = 'refunded')`,
          columns(changed),
        );
      }
      // Their events in the same transaction. A change may come before its reservation, so it
      // brings the events before it too; ids are stable, so a replayed batch adds nothing.
      const events = [...created.map((o) => orderEvent(o)), ...changed.flatMap(eventsWithPredecessors)];
      if (events.length > 0) await c.query(INSERT_EVENTS, eventColumns(events, Date.now()));
    });
  }


  async getOrder(orderId: string): Promise<Order | null> {
    const r = await this.pool.query<OrderRow>(SQL.getOrder, [orderId]);
    return r.rows[0] ? toOrder(r.rows[0]) : null;
  }

  async ordersOfUser(userId: string): Promise<Order[]> {
    const r = await this.pool.query<OrderRow>(SQL.ordersOfUser, [userId]);
    return r.rows.map(toOrder);
  }

  async listOrders(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage> {
    const q = listOrdersQuery('postgres', saleId, status, after, limit);
    return toPage((await this.pool.query<OrderRow>(q.text, q.args)).rows, limit);
  }

  iterateOrders(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    return pagedOrders((after) => this.listOrders(saleId, status, after, 1000));
  }

  async holdings(saleId: string): Promise<Map<string, number>> {
    return toHoldings((await this.pool.query<{ user_id: string; q: string }>(SQL.holdings, [saleId])).rows);
  }

  async totals(saleId: string): Promise<StatusTotals> {
    return toTotals((await this.pool.query<{ status: OrderStatus; q: string }>(SQL.totals, [saleId])).rows);
  }

  /**
   * The conditional UPDATE. When its reply is lost, the AmbiguousOutcome's outcome is the order
   * as it is once the backend that ran the UPDATE is gone (null if there is no such order): the
   * caller tells from its status whether the change applied.
   */
  async transition(orderId: string, t: Transition, now: number): Promise<Order | null> {
    const { name, args } = transitionStatement(orderId, t, now);
    const r = await this.onOneBackend(
      // The UPDATE and its event in one transaction; a lost reply (COMMIT's included) is settled
      // from the order's row, which committed with its event or not at all.
      async (c) => {
        await c.query('BEGIN');
        const u = await c.query<OrderRow>(SQL[name], args);
        if (u.rows[0]) await c.query(INSERT_EVENTS, eventColumns([orderEvent(toOrder(u.rows[0]), t.to === 'cancelled' ? now : undefined)], Date.now()));
        await c.query('COMMIT');
        return u;
      },
      async (q) => {
        const found = await q.query<OrderRow>(SQL.getOrder, [orderId]);
        return found.rows[0] ? toOrder(found.rows[0]) : null;
      },
    );
    return r.rows[0] ? toOrder(r.rows[0]) : null;
  }

  async dueForExpiry(now: number, limit: number): Promise<Order[]> {
    const r = await this.pool.query<OrderRow>(SQL.dueForExpiry, [now, limit]);
    return r.rows.map(toOrder);
  }

  async appendEvents(events: OutboxEvent[]): Promise<void> {
    if (events.length > 0) await this.pool.query(INSERT_EVENTS, eventColumns(events, Date.now()));
  }

  async pendingEvents(sink: string, limit: number, after = 0): Promise<PendingEvent[]> {
    const r = await this.pool.query<OutboxEventRow>(SQL.pendingEvents, [sink, after, sink, sink, limit]);
    return r.rows.map(toOutboxEvent);
  }

  async markSent(sink: string, ids: string[], at: number): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO outbox_deliveries (sink, event_id, state, at, attempts, error) SELECT $1, unnest($2::text[]), 'sent', $3, 0, NULL
         ON CONFLICT (sink, event_id) DO UPDATE SET state = 'sent', at = excluded.at, attempts = 0, error = NULL`,
        [sink, ids, at],
      );
      await this.advance(c, sink);
    });
  }

  async markDead(sink: string, id: string, attempts: number, error: string, at: number): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      await c.query(SQL.markDelivery, [sink, id, 'dead', at, attempts, error]);
      await this.advance(c, sink);
    });
  }

  private async advance(c: pg.PoolClient, sink: string): Promise<void> {
    await c.query(SQL.addCursor, [sink]);
    await c.query(SQL.advanceCursor, [Date.now() - CURSOR_HORIZON_MS, sink]);
  }

  async deadLetters(sink: string, limit: number): Promise<DeadLetter[]> {
    return (await this.pool.query<DeadLetterRow>(SQL.deadLetters, [sink, limit])).rows.map(toDeadLetter);
  }

  async redrive(sink: string, ids?: string[]): Promise<number> {
    return inTransaction(this.pool, async (c) => {
      const r = await c.query<{ pos: number }>(
        `DELETE FROM outbox_deliveries d USING outbox_events e
         WHERE d.sink = $1 AND d.state = 'dead' AND e.id = d.event_id AND ($2::text[] IS NULL OR d.event_id = ANY($2::text[]))
         RETURNING e.pos`,
        [sink, ids ?? null],
      );
      if (r.rows.length === 0) return 0;
      const below = Math.min(...r.rows.map((x) => Number(x.pos))) - 1;
      await c.query(SQL.lowerCursor, [below, sink, below]);
      return r.rows.length;
    });
  }

  async pruneEvents(before: number, sinks: string[], limit: number): Promise<number> {
    const q = prunableQuery('postgres', before, sinks, limit);
    return inTransaction(this.pool, async (c) => {
      const ids = (await c.query<{ id: string }>(q.text, q.args)).rows.map((r) => r.id);
      if (ids.length === 0) return 0;
      await c.query('DELETE FROM outbox_deliveries WHERE event_id = ANY($1::text[])', [ids]);
      await c.query('DELETE FROM outbox_events WHERE id = ANY($1::text[])', [ids]);
      return ids.length;
    });
  }

  async outboxStats(sinks: string[]): Promise<OutboxSinkStats[]> {
    return Promise.all(sinks.map(async (sink) => {
      const b = (await this.pool.query<{ n: string; oldest: number | null }>(SQL.backlog, [sink, sink])).rows[0];
      const counts = new Map((await this.pool.query<{ state: string; n: string }>(SQL.deliveryCounts, [sink])).rows.map((r) => [r.state, Number(r.n)]));
      return { sink, backlog: Number(b?.n ?? 0), oldestPendingAt: b?.oldest ?? null, sent: counts.get('sent') ?? 0, dead: counts.get('dead') ?? 0 };
    }));
  }

  async eventsOf(key: string): Promise<PendingEvent[]> {
    return (await this.pool.query<OutboxEventRow>(SQL.eventsOf, [key])).rows.map(toOutboxEvent);
  }

  /** The relay's lease on one sink: an advisory lock held by a connection of its own. */
  relayLease(sink: string): RelayLease {
    return new PgRelayLease(this.connectionString, sink, this.log);
  }

  /** One statement for the batch (unnest); a user already recorded for the sale is skipped. */
  async recordInterest(rows: InterestRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values = rows.map(interestValues);
    await this.pool.query(
      `INSERT INTO intended_purchases (${INTEREST_COLUMNS.join(', ')}) SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
       ON CONFLICT (sale_id, user_id) DO NOTHING`,
      INTEREST_COLUMNS.map((_, i) => values.map((v) => v[i])),
    );
  }

  async listInterest(saleId: string, after: string | undefined, limit: number): Promise<InterestPage> {
    const q = interestPageQuery(INTEREST_SQL, saleId, after, limit);
    return toInterestPage((await this.pool.query<DbInterestRow>(q.text, q.args)).rows, limit);
  }

  async interestSummary(saleId: string): Promise<InterestSummary> {
    return toInterestSummary((await this.pool.query<{ users: string; units: string }>(INTEREST_SQL.summary, [saleId])).rows[0]);
  }

  async ping(): Promise<void> {
    await this.pool.query(SQL.ping);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.end();
  }

  async openOrdersFenced(saleId: string): Promise<Order[]> {
    return withRebuildFence(this.pool, async (c) => {
      const r = await c.query<OrderRow>(SQL.openOrders, [saleId]);
      return r.rows.map(toOrder);
    });
  }

  writerFence(): WriterFenceHold {
    return new WriterFence(this.pool.options);
  }
}
