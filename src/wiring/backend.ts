import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { SpentChallenges } from '../domain/challenge.js';
import type { Order } from '../domain/order.js';
import type { StockEngine } from '../engine/stock-engine.js';
import type { RoomStore, RoomStoreOptions } from '../stores/room-store.js';
import type { Breaker } from '../gateway/breaker.js';
import type { LocalMembers } from '../gateway/store-guard.js';
import type { LocalRefusals } from '../gateway/local-refusals.js';
import type { RateLimit } from '../gateway/rate-limit.js';
import type { Switches, SwitchValues } from '../gateway/switches.js';
import type { SharedCounts } from '../services/metrics.js';
import type { SaleService } from '../services/sale-service.js';
import type { SaleSignals } from '../services/signals.js';
import type { SaleStatusTotals } from '../services/status-totals.js';
import type { OutboxRecords, RecordStore, RelayLease } from '../stores/record-store.js';

export type Mode = 'embedded' | 'postgres' | 'distributed';

/** What /readyz and /metrics need of whichever order writer runs. */
export interface WriterStatus {
  backlog: number;
  ordersWritten: number;
  lastError: Error | null;
  /** Distributed: order records PostgreSQL refused, set aside for an operator. */
  quarantined?: number;
}

type HeardEvents = {
  sale: [saleId: string];
  order: [order: Order];
  switches: [values: SwitchValues];
  resubscribed: [];
};

/**
 * What the other processes signal (distributed mode; nothing is heard in the others). Created
 * before the subscriber that emits on it and before the services that listen to it, so neither
 * needs the other to exist first; what is heard before anyone listens is dropped (the services
 * read the same state when they load).
 */
export class Heard extends EventEmitter<HeardEvents> {
  saleChanged(saleId: string): void {
    this.emit('sale', saleId);
  }
  orderChanged(order: Order): void {
    this.emit('order', order);
  }
  switchesChanged(values: SwitchValues): void {
    this.emit('switches', values);
  }
  resubscribed(): void {
    this.emit('resubscribed');
  }
}

/** What every mode is built from: the configuration and the process-wide hints its stores keep right. */
export interface BackendContext {
  config: Config;
  log: Logger;
  refusals: LocalRefusals;
  switches: Switches;
  heard: Heard;
}

/** What a backend's background work reads, once the sales are loaded. */
export interface Served {
  sales: SaleService;
}

/** What a backend runs once its sales are loaded. */
export interface Serving {
  writer: WriterStatus;
  /** Units per order status and sale (admin stats, dashboard, /metrics). */
  totals: SaleStatusTotals;
  /** Distributed: request counts summed over every process; null where one process counts alone. */
  sharedCounts: SharedCounts | null;
}

/**
 * One mode's backing stores, built in two steps: the stores, the engine and the signals (what the
 * services are made of), then `serve` once the sales are loaded (the order writer and the
 * background work that reads the sales). `close` closes everything it opened, in reverse order,
 * and is also what a failed start calls.
 */
export interface Backend {
  /** The database of record as the services use it (behind its breaker where it can be down). */
  store: RecordStore;
  /** The stock engine as the services use it (behind its breaker where it can be down). */
  engine: StockEngine;
  signals: SaleSignals;
  /** Per user: shared by every process in distributed mode. */
  userLimit: RateLimit;
  /** Challenges used to get a path, shared by every process (distributed); absent: this process's memory. */
  spentChallenges?: SpentChallenges;
  /** The waiting rooms, shared by every process (distributed: Redis); absent: this process's memory. */
  roomStore?: (o: RoomStoreOptions) => RoomStore;
  /** One circuit breaker per backing store that can be down. */
  breakers: Breaker[];
  /** Checks of the backing stores for /readyz, by name (on the unguarded stores). */
  pings: Record<string, () => Promise<unknown>>;
  /** The outbox as its relay reads it (unguarded: the relay backs off by itself), and each sink's relay lease. */
  outbox: { records: OutboxRecords; lease(sink: string): RelayLease };
  /** Distributed: keep switches set here for every process (stored, then signalled); null elsewhere. */
  shareSwitches: ((values: SwitchValues) => Promise<void>) | null;
  serve(services: Served): Promise<Serving>;
  close(): Promise<void>;
}

/**
 * What a backend has opened so far, closed in reverse order: everything at a normal close, and
 * whatever was opened before a failed start (so that nothing keeps the process alive).
 */
export class Opened {
  private readonly closers: Array<() => unknown> = [];

  /** `close` of something just opened; returns `it`, for `const x = opened.add(open(), () => x.close())`. */
  add<T>(it: T, close: (it: T) => unknown): T {
    this.closers.push(() => close(it));
    return it;
  }

  /** Closes everything; one failing close does not keep the others open (the first error is thrown). */
  async close(): Promise<void> {
    let first: unknown = null;
    for (let c = this.closers.pop(); c; c = this.closers.pop()) {
      try {
        await c();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** For a failed start: closes everything, then rethrows what made the start fail. */
  async abandon(cause: unknown): Promise<never> {
    await this.close().catch(() => undefined);
    throw cause;
  }
}

/** The record store's methods that never reach the database when called (the compiler keeps this complete). */
export const RECORD_STORE_LOCAL: LocalMembers<RecordStore> = { iterateOrders: true };

/** The engine's methods that answer from this process's memory (the compiler keeps this complete). */
export const STOCK_ENGINE_LOCAL: LocalMembers<StockEngine> = { available: true };
