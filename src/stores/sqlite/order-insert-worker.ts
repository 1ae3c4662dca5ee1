// The worker thread of OrderInsertThread (order-insert-thread.ts): a second SQLite connection
// that commits the group commit's batches, so that the event loop keeps serving while a batch
// is written and fsynced. It commits through SqliteRecordStore's own insertOrders, so whatever
// that transaction writes with the orders is written here too.
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteRecordStore } from './sqlite-record-store.js';
import type { FromWorker, ToWorker, WorkerSetup } from './order-insert-messages.js';

const port = parentPort;
if (!port) throw new Error('order-insert-worker runs as a worker thread');
const { dataDir, sync } = (workerData as { setup: WorkerSetup }).setup;
const store = new SqliteRecordStore(dataDir, sync);
const reply = (m: FromWorker) => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  if (m.kind === 'close') {
    void store.close().finally(() => port.close());
    return;
  }
  // A failed insertOrders rolled its transaction back: nothing of the batch was written.
  store.insertOrders(m.orders).then(
    () => reply({ kind: 'done', id: m.id }),
    (err: Error) => reply({ kind: 'failed', id: m.id, message: err.message, cause: describe(err.cause) }),
  );
});
reply({ kind: 'ready' });

function describe(cause: unknown): string | null {
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  return cause === undefined ? null : String(cause);
}
