import pg from 'pg';
import { inTransaction } from './transaction.js';

/**
 * The fence between the order writers and a rebuild of a sale's Redis state from PostgreSQL.
 *
 * A writer reads a batch from a Redis stream, commits it to PostgreSQL, then acknowledges it.
 * If Redis loses its data in between, the batch exists nowhere but in that writer's memory and,
 * a moment later, in PostgreSQL. A rebuild that read PostgreSQL before that commit would leave
 * those orders out (stock too high, orders Redis never heard of). So each writer holds a SHARED
 * advisory lock from before its read until after its commit, and a rebuild reads PostgreSQL
 * under the EXCLUSIVE lock: it waits for every batch in flight, and new reads wait for it.
 * (Writers do not exclude one another.) One key for all sales: a batch spans every sale.
 */
export const REBUILD_FENCE_KEY = 7412;

/** How long a rebuild waits for in-flight batches before it gives up (and is tried again). */
const REBUILD_LOCK_TIMEOUT_MS = 4000;

/**
 * The writer's side, on a connection of its own (never the pool's: the commit inside needs a
 * pool connection, and a pool of one must not deadlock). Reconnects after a failure.
 */
export class WriterFence {
  private client: pg.Client | null = null;
  /** The shared lock is held on `client` (kept between runs while a batch is held). */
  private holding = false;

  constructor(private readonly options: pg.ClientConfig) {}

  /**
   * Run `fn` (read a batch from Redis → commit → acknowledge) under the shared lock. A batch whose
   * commit failed exists only in the writer's memory if Redis lost its stream meanwhile: while
   * `keepHeld()` says so, the lock is kept, so no rebuild reads PostgreSQL without that batch.
   */
  async run<T>(fn: () => Promise<T>, keepHeld: () => boolean = () => false): Promise<T> {
    const c = await this.connect();
    if (!this.holding) {
      try {
        await c.query('SELECT pg_advisory_lock_shared($1)', [REBUILD_FENCE_KEY]);
        this.holding = true;
      } catch (err) {
        this.drop();
        throw err;
      }
    }
    try {
      return await fn();
    } finally {
      if (!keepHeld() && this.holding) {
        this.holding = false;
        // A failed unlock leaves the lock on a connection we then close: closing releases it.
        await c.query('SELECT pg_advisory_unlock_shared($1)', [REBUILD_FENCE_KEY]).catch(() => this.drop());
      }
    }
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = new pg.Client({ ...this.options, query_timeout: undefined, statement_timeout: 30_000 });
    c.on('error', () => this.drop()); // the server went away: the lock went with it
    try {
      await c.connect();
    } catch (err) {
      c.end().catch(() => undefined);
      throw err;
    }
    this.client = c;
    return c;
  }

  private drop(): void {
    const c = this.client;
    this.client = null;
    this.holding = false; // the lock goes with the connection
    c?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.drop();
  }
}

/**
 * The rebuild's side: `fn` runs on one client, inside a transaction holding the exclusive lock,
 * so every read it makes sees every batch a writer had read before. Throws (lock_timeout) when
 * the writers do not let go in time.
 */
export async function withRebuildFence<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (c) => {
    await c.query(`SET LOCAL lock_timeout = ${REBUILD_LOCK_TIMEOUT_MS}`);
    await c.query('SELECT pg_advisory_xact_lock($1)', [REBUILD_FENCE_KEY]);
    return fn(c);
  });
}
