import type { Order } from '../../domain/order.js';
import type { SqliteSync } from './sqlite-record-store.js';

/** What the worker thread needs to open its own connection to the data dir's database. */
export interface WorkerSetup {
  dataDir: string;
  sync: SqliteSync;
}

/** To the worker: a batch to commit in one transaction, or the end. */
export type ToWorker = { kind: 'insert'; id: number; orders: Order[] } | { kind: 'close' };

/** From the worker: its connection is open; a batch committed; a batch rolled back (nothing written). */
export type FromWorker =
  | { kind: 'ready' }
  | { kind: 'done'; id: number }
  | { kind: 'failed'; id: number; message: string; cause: string | null };
