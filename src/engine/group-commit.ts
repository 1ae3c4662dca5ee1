import type { Logger } from 'pino';
import type { Order } from '../domain/order.js';
import { SeckillError } from '../domain/errors.js';
import { AmbiguousOutcome, OutcomeUnknown, within } from '../domain/outcome.js';
import type { OrderRecords } from '../stores/record-store.js';

/** Where the batches go: the record store itself, or a writer of its own (SQLite's worker thread). */
export type OrderBatches = Pick<OrderRecords, 'insertOrders'>;

interface Pending {
  order: Order;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface OrderWriterOptions {
  /** How long the first reservation of a batch waits for company. */
  groupCommitMs: number;
  maxBatch: number;
  /**
   * After a commit whose reply was lost: how long the buyers wait for the database to say
   * whether their orders exist (ms) before they are told the outcome is unknown.
   */
  outcomeWaitMs?: number;
}

/** The message of a buy whose commit could not be confirmed or denied in time. */
export const UNKNOWN_ORDER_MESSAGE =
  'The order database did not confirm this reservation and could not be checked in time: it may exist. ' +
  'GET /api/me/orders lists it if it does; its stock stays held until that is known.';

/**
 * Group commit: reservations that arrive within a few milliseconds are written in one
 * transaction, and each caller's promise resolves only after that transaction committed.
 * One batch is in flight at a time, so batches commit in arrival order.
 */
export class OrderWriter {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private flushing = false;
  private closed = false;
  /** Reservations waiting for their commit. */
  backlog = 0;
  ordersWritten = 0;
  /** Reservations whose commit reply was lost, waiting for the database to say whether they exist. */
  inDoubt = 0;
  batchesWritten = 0;
  lastError: Error | null = null;

  constructor(
    private readonly repo: OrderBatches,
    private readonly opts: OrderWriterOptions,
    private readonly log: Logger,
  ) {}

  submit(order: Order): Promise<void> {
    if (this.closed) return Promise.reject(new SeckillError('busy', 'The service is shutting down.'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ order, resolve, reject });
      this.backlog++;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush picks the queue up when it ends
    if (this.queue.length >= this.opts.maxBatch) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      setImmediate(() => void this.flush());
    } else if (!this.timer && !this.immediate) {
      if (this.opts.groupCommitMs === 0) {
        // Commit at the end of this event-loop turn: the batch is whatever arrived in it.
        this.immediate = setImmediate(() => {
          this.immediate = null;
          void this.flush();
        });
      } else {
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.flush();
        }, this.opts.groupCommitMs);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = true;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    try {
      await this.repo.insertOrders(batch.map((p) => p.order));
      this.lastError = null;
      this.ordersWritten += batch.length;
      this.batchesWritten++;
      this.backlog -= batch.length;
      for (const p of batch) p.resolve();
    } catch (err) {
      this.lastError = err as Error;
      this.backlog -= batch.length;
      if (err instanceof AmbiguousOutcome) {
        // Not `busy` before the database said these orders do not exist. Settled aside, so
        // that the next batches go on meanwhile (fast refusals while the database is down).
        void this.settle(batch, err as AmbiguousOutcome<Set<string>>);
      } else {
        this.log.error({ err, batch: batch.length }, 'order batch failed; reservations refused with busy');
        const busy = new SeckillError('busy', 'Could not record the order; nothing was changed.');
        for (const p of batch) p.reject(busy);
      }
    } finally {
      this.flushing = false;
    }
    if (this.queue.length > 0) this.schedule();
  }

  /**
   * A batch whose commit reply was lost: the orders the database has are answered as written,
   * the others `busy` (their stock goes back). When the database cannot say within
   * outcomeWaitMs, the buyers hear that the outcome is unknown, and each order's stock stays
   * held until the database says (OutcomeUnknown.applied).
   */
  private async settle(batch: Pending[], err: AmbiguousOutcome<Set<string>>): Promise<void> {
    this.inDoubt += batch.length;
    let known: { value: Set<string> } | undefined;
    try {
      known = await within(err.outcome, this.opts.outcomeWaitMs ?? 30_000);
    } catch {
      known = undefined; // closing: the outcome was never read
    }
    if (known) {
      this.inDoubt -= batch.length;
      const written = known.value;
      const busy = new SeckillError('busy', 'Could not record the order; nothing was changed.');
      let n = 0;
      for (const p of batch) {
        if (written.has(p.order.orderId)) {
          n++;
          p.resolve();
        } else p.reject(busy);
      }
      this.ordersWritten += n;
      this.log.warn({ batch: batch.length, committed: n }, 'outcome of a batch with a lost reply checked');
      return;
    }
    this.log.error({ batch: batch.length }, 'outcome of an order batch still unknown; its stock stays held until the database answers');
    const settled = err.outcome.finally(() => (this.inDoubt -= batch.length));
    for (const p of batch) {
      const applied = settled.then((written) => written.has(p.order.orderId));
      p.reject(new OutcomeUnknown(UNKNOWN_ORDER_MESSAGE, applied));
    }
  }

  /** Writes what is waiting, then refuses new work. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length > 0 || this.flushing) {
      if (!this.flushing) await this.flush();
      else await new Promise((r) => setImmediate(r));
    }
  }
}
