import { MemoryStockEngine } from '../engine/memory-engine.js';
import { OrderWriter, type OrderBatches } from '../engine/group-commit.js';
import type { Breaker } from '../gateway/breaker.js';
import { RateLimit } from '../gateway/rate-limit.js';
import { HELD_LEASE } from '../services/outbox-relay.js';
import { LocalSignals } from '../services/signals.js';
import { OwnedStatusTotals } from '../services/status-totals.js';
import { DataDirLock } from '../stores/sqlite/data-dir-lock.js';
import { OrderInsertThread } from '../stores/sqlite/order-insert-thread.js';
import type { RecordStore } from '../stores/record-store.js';
import { SqliteRecordStore } from '../stores/sqlite/sqlite-record-store.js';
import { Opened, type Backend, type BackendContext } from './backend.js';

/** Embedded mode: one process, SQLite in the data dir, the stock in memory. */
export async function embeddedBackend(ctx: BackendContext): Promise<Backend> {
  const { config } = ctx;
  const opened = new Opened();
  try {
    // One process per data dir: a second one refuses to start (it would sell the stock again).
    opened.add(DataDirLock.acquire(config.dataDir), (lock) => lock.release());
    const store = opened.add(new SqliteRecordStore(config.dataDir, config.sqliteSync), (s) => s.close());
    // The batch INSERT and its fsync on a thread of their own, off the event loop; the 202 still waits for them.
    const orderBatches = config.sqliteWriterThread
      ? opened.add(await OrderInsertThread.open(config.dataDir, config.sqliteSync, store, ctx.log), (t) => t.close())
      : undefined;
    // The data-dir lock already makes this process the only relay of this outbox.
    const outbox = { records: store, lease: () => HELD_LEASE };
    return owningBackend(ctx, opened, { store, orderBatches, breakers: [], pings: { database: () => store.ping() }, outbox });
  } catch (err) {
    return opened.abandon(err);
  }
}

/**
 * Embedded and PostgreSQL modes: this process owns the data. The stock is sold from memory, the
 * orders are written by group commit, and the signals and status totals stay in the process.
 */
export function owningBackend(
  ctx: BackendContext,
  opened: Opened,
  db: { store: RecordStore; orderBatches?: OrderBatches; breakers: Breaker[]; pings: Backend['pings']; outbox: Backend['outbox'] },
): Backend {
  const { config, log, refusals } = ctx;
  const { store } = db;
  const signals = new LocalSignals(refusals);
  const writer = opened.add(new OrderWriter(db.orderBatches ?? store, { groupCommitMs: config.groupCommitMs, maxBatch: config.writerBatch }, log), (w) => w.close());
  // Stock put back after a failed commit clears the hints set while that batch held it.
  const memoryEngine = new MemoryStockEngine(writer, store, { onRelease: (saleId, userId) => signals.released(saleId, userId) });
  // One process owns the data here: the status totals are counted from the engine's decisions.
  const totals = new OwnedStatusTotals(store);
  const engine = opened.add(totals.counting(memoryEngine), (e) => e.close());
  return {
    store,
    engine,
    signals,
    userLimit: new RateLimit(config.ratePerUser),
    breakers: db.breakers,
    pings: db.pings,
    outbox: db.outbox,
    shareSwitches: null,
    async serve() {
      return { writer, totals, sharedCounts: null };
    },
    close: () => opened.close(),
  };
}
