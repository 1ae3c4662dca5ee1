import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { SeckillError } from '../../domain/errors.js';
import type { Order } from '../../domain/order.js';
import { AmbiguousOutcome } from '../../domain/outcome.js';
import type { RecordStore } from '../record-store.js';
import type { FromWorker, ToWorker, WorkerSetup } from './order-insert-messages.js';
import type { SqliteSync } from './sqlite-record-store.js';

interface InFlight {
  orders: Order[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The process's own connection: asked whether the database is there, and what a lost batch wrote. */
export type MainConnection = Pick<RecordStore, 'getOrder' | 'ping'>;

/** How often the database is asked again whether a lost batch was written, while it cannot say. */
const RECHECK_MS = 200;

/**
 * The group commit's inserts on a worker thread (order-insert-worker.ts), which holds a second
 * SQLite connection to the same database: the batch INSERT and its fsync no longer stop the event
 * loop. `insertOrders` resolves once the worker's transaction committed, as SqliteRecordStore's
 * does, and a rejection with `busy` means the batch was rolled back. When the worker dies with a
 * batch in flight, the batch may or may not have committed: the caller gets an AmbiguousOutcome
 * whose outcome is read from the database through the process's main connection (`lookup`).
 * A new worker is started for the next batch.
 *
 * The main connection still writes (pay, cancel, expiry, sales): both connections run WAL with
 * a busy_timeout (SqliteRecordStore's constructor), so each waits for the other's short commit.
 */
export class OrderInsertThread {
  private worker: Worker | null = null;
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 1;
  private closed = false;
  /** Workers started; more than one means a worker died and was replaced. */
  started = 0;

  private constructor(
    private readonly setup: WorkerSetup,
    private readonly lookup: MainConnection,
    private readonly log: Logger,
  ) {}

  /** Starts the worker and waits until its connection is open (a failure there fails the start). */
  static async open(dataDir: string, sync: SqliteSync, lookup: MainConnection, log: Logger): Promise<OrderInsertThread> {
    const t = new OrderInsertThread({ dataDir, sync }, lookup, log);
    await t.ready(t.spawn());
    return t;
  }

  async insertOrders(orders: Order[]): Promise<void> {
    if (this.closed) throw new SeckillError('busy', 'The service is shutting down.');
    // One cheap statement per batch on the main connection: a database this process has lost
    // (closed, failing) takes no orders here either, as when the batches were written on the loop.
    await this.lookup.ping();
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.inFlight.set(id, { orders, resolve, reject });
      const m: ToWorker = { kind: 'insert', id, orders };
      worker.postMessage(m);
    });
  }

  /** The running worker, for the fault tests (terminate it with a batch in flight). */
  get thread(): Worker | null {
    return this.worker;
  }

  private spawn(): Worker {
    this.started++;
    const here = import.meta.url;
    const fromSource = here.endsWith('.ts');
    const entry = new URL(fromSource ? './order-insert-worker.ts' : './order-insert-worker.js', here);
    // From the sources, a small plain module makes sure the thread can load TypeScript (see it).
    const worker = fromSource
      ? new Worker(new URL('./order-insert-worker-boot.mjs', here), { workerData: { entry: entry.href, setup: this.setup } })
      : new Worker(entry, { workerData: { setup: this.setup } });
    this.worker = worker;
    // The HTTP server keeps the process alive; a forgotten close must not (close refs it again).
    worker.unref();
    worker.on('message', (m: FromWorker) => this.answer(m));
    worker.on('error', (err) => this.log.error({ err }, 'order insert thread failed'));
    worker.on('exit', (code) => this.exited(worker, code));
    return worker;
  }

  private ready(worker: Worker): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.kind !== 'ready') return;
        worker.off('exit', onExit);
        worker.off('message', onMessage);
        resolve();
      };
      const onExit = (code: number) => {
        worker.off('message', onMessage);
        reject(new Error(`the order insert thread stopped before its database was open (exit code ${code})`));
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
  }

  private answer(m: FromWorker): void {
    if (m.kind === 'ready') return;
    const b = this.inFlight.get(m.id);
    if (!b) return;
    this.inFlight.delete(m.id);
    if (m.kind === 'done') b.resolve();
    else {
      const cause = new Error(m.cause ?? m.message);
      b.reject(new SeckillError('busy', 'The order database is unavailable; nothing was changed.', undefined, cause));
    }
  }

  /**
   * The worker is gone. Its connection went with it, so a transaction it had not committed is
   * rolled back; one it committed stays. Which of the two, for each batch it held, the database says.
   */
  private exited(worker: Worker, code: number): void {
    if (this.worker === worker) this.worker = null;
    if (this.inFlight.size === 0) return;
    const lost = [...this.inFlight.values()];
    this.inFlight.clear();
    this.log.error({ code, batches: lost.length }, 'order insert thread stopped with batches in flight; asking the database which were written');
    const cause = new Error(`order insert thread exited (code ${code}) before answering`);
    for (const b of lost) b.reject(new AmbiguousOutcome(this.written(b.orders), cause));
  }

  /** The ids of `orders` the database has; asked again while it cannot answer (until closed). */
  private async written(orders: Order[]): Promise<Set<string>> {
    for (;;) {
      try {
        const found = new Set<string>();
        for (const o of orders) if (await this.lookup.getOrder(o.orderId)) found.add(o.orderId);
        return found;
      } catch (err) {
        if (this.closed) throw err;
        await sleep(RECHECK_MS);
      }
    }
  }

  /** After the order writer closed (nothing in flight any more): the worker closes its connection. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await sleep(10);
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const m: ToWorker = { kind: 'close' };
    worker.postMessage(m);
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }
}
