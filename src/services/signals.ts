import type { Order } from '../domain/order.js';
import type { LocalRefusals } from '../gateway/local-refusals.js';
import type { SwitchValues } from '../gateway/switches.js';

/**
 * What one process learns that every process should: a sale sold out, stock came back (for a
 * user), a sale was created or changed, an order changed status (for the order event streams
 * other processes serve). Embedded mode has one process, so signals apply locally (LocalSignals);
 * distributed mode sends them over Redis (RedisSignals, src/stores/redis/signals.ts).
 */
export interface SaleSignals {
  soldOut(saleId: string): void;
  released(saleId: string, userId: string): void;
  saleChanged(saleId: string): void;
  /** After this process emitted the change locally: tell the other processes. */
  orderChanged(order: Order): void;
  /** An operator flipped a switch here: every process applies it. */
  switchesChanged(values: SwitchValues): void;
  close(): Promise<void>;
}

export class LocalSignals implements SaleSignals {
  constructor(private readonly refusals: LocalRefusals) {}
  soldOut(saleId: string): void {
    this.refusals.markSoldOut(saleId);
  }
  released(saleId: string, userId: string): void {
    this.refusals.released(saleId, userId);
  }
  saleChanged(): void {}
  orderChanged(): void {}
  switchesChanged(): void {}
  async close(): Promise<void> {}
}
