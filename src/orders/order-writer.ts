import type { Logger } from 'pino';
import type { Order } from '../domain/order.js';
import { SeckillError } from '../domain/errors.js';
import type { OrderRepository } from './repository.js';

interface Pending {
  order: Order;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface OrderWriterOptions {
  /** How long the first reservation of a batch waits for company. */
  groupCommitMs: number;
  maxBatch: number;
}

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
  batchesWritten = 0;
  lastError: Error | null = null;

  constructor(
    private readonly repo: OrderRepository,
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
      this.log.error({ err, batch: batch.length }, 'order batch failed; reservations refused with busy');
      const busy = new SeckillError('busy', 'Could not record the order; nothing was changed.');
      for (const p of batch) p.reject(busy);
    } finally {
      this.flushing = false;
    }
    if (this.queue.length > 0) this.schedule();
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
