import { MemoryStockEngine } from '../engine/memory-engine.js';
import { OrderWriter } from '../engine/group-commit.js';
import type { Breaker } from '../gateway/breaker.js';
import { RateLimit } from '../gateway/rate-limit.js';
import { LocalSignals } from '../services/signals.js';
import { OwnedStatusTotals } from '../services/status-totals.js';
import { DataDirLock } from '../stores/sqlite/data-dir-lock.js';
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
    return owningBackend(ctx, opened, { store, breakers: [], pings: { database: () => store.ping() } });
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
  db: { store: RecordStore; breakers: Breaker[]; pings: Backend['pings'] },
): Backend {
  const { config, log, refusals } = ctx;
  const { store } = db;
  const signals = new LocalSignals(refusals);
  const writer = opened.add(new OrderWriter(store, { groupCommitMs: config.groupCommitMs, maxBatch: config.writerBatch }, log), (w) => w.close());
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
    shareSwitches: null,
    async serve() {
      return { writer, totals, sharedCounts: null };
    },
    close: () => opened.close(),
  };
}
