import { Breaker } from '../gateway/breaker.js';
import { guardStore } from '../gateway/store-guard.js';
import { DatabaseLock } from '../stores/postgres/database-lock.js';
import { PgRecordStore } from '../stores/postgres/pg-record-store.js';
import type { RecordStore } from '../stores/record-store.js';
import { Opened, RECORD_STORE_LOCAL, type Backend, type BackendContext } from './backend.js';
import { owningBackend } from './embedded.js';

/** PostgreSQL mode: one process per database, the stock in memory, the orders in PostgreSQL. */
export async function postgresBackend(ctx: BackendContext, databaseUrl: string): Promise<Backend> {
  const { config, log } = ctx;
  const opened = new Opened();
  try {
    // One process per database in this mode (distributed processes share theirs by design).
    const lock = opened.add(new DatabaseLock(databaseUrl, log), (l) => l.release());
    // Without the lock no order is written: buys answer busy (the stock goes back at once).
    const pg = opened.add(new PgRecordStore(databaseUrl, config.pgPool, { log, writeGate: () => lock.refusal() }), (s) => s.close());
    await pg.init();
    await lock.hold();
    // PostgreSQL down or slow: 503 busy at once while its breaker is open, never a hang.
    const breaker = new Breaker('database');
    const store = guardStore<RecordStore>(pg, breaker, 'database', RECORD_STORE_LOCAL);
    return owningBackend(ctx, opened, {
      store,
      breakers: [breaker],
      pings: { instanceLock: () => lock.check(), database: () => pg.ping() },
      outbox: { records: pg, lease: (sink) => pg.relayLease(sink) },
    });
  } catch (err) {
    return opened.abandon(err);
  }
}
