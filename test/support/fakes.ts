// In-memory stand-ins for the unit tier: no database, no network.
import { pino } from 'pino';
import type { Order } from '../../src/domain/order.js';
import type { Sale } from '../../src/domain/sale.js';

export const silent = pino({ level: 'silent' });

export function sale(over: Partial<Sale> = {}): Sale {
  return {
    id: 'sale-1',
    name: 'unit',
    description: '',
    priceCents: 100,
    stock: 3,
    startsAt: 1_000,
    endsAt: null,
    perUserLimit: 1,
    paymentWindowSeconds: 60,
    paused: false,
    restockOnRefund: false,
    secret: 'secret-of-the-sale-0123456789abcdef',
    createdAt: 0,
    ...over,
  };
}

export function order(over: Partial<Order> = {}): Order {
  return {
    orderId: `o-${Math.random().toString(36).slice(2)}`,
    saleId: 'sale-1',
    userId: 'ann',
    quantity: 1,
    priceCents: 100,
    status: 'reserved',
    createdAt: 2_000,
    expiresAt: 62_000,
    paidAt: null,
    paymentRef: null,
    refundedAt: null,
    refundReason: null,
    ...over,
  };
}

/** A promise with its resolve and reject outside. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
