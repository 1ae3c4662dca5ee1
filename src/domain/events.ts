import { v5 as uuidv5 } from 'uuid';
import { orderJson, type Order, type OrderStatus } from './order.js';

// The events seckill tells the shop about (issue 13): one per order state change, and one
// summary of the refused buyers' interest per sale. They are written to the outbox in the same
// transaction as the change they describe, and relayed to the configured sinks at least once.

export type OrderEventType = 'order.reserved' | 'order.paid' | 'order.expired' | 'order.cancelled' | 'order.refunded';
export type EventType = OrderEventType | 'sale.interest';

export const EVENT_TYPES: readonly EventType[] = [
  'order.reserved', 'order.paid', 'order.expired', 'order.cancelled', 'order.refunded', 'sale.interest',
];

/**
 * An order's events are numbered by where the status sits in the lifecycle: every status is
 * reached at most once, so (order, status) names one event, whichever process writes it and
 * however often a writer replays it.
 */
export const SEQ_OF_STATUS: Readonly<Record<OrderStatus, number>> = {
  reserved: 1, paid: 2, expired: 2, cancelled: 2, refunded: 3,
};

/** Namespace of the name-based (v5) event ids: fixed forever, receivers de-duplicate by the id. */
const EVENT_ID_NAMESPACE = '6f1c3a52-8d0e-4b7a-9c61-2f4d8e0b7a13';

/** One outbox row: what is published, as published. */
export interface OutboxEvent {
  /** Stable: the same change always has the same id (receivers de-duplicate on it). */
  id: string;
  type: EventType;
  /** What the events are ordered by: the order id, or the sale id for `sale.interest`. */
  key: string;
  /** Position within `key` (1 for `sale.interest`). */
  seq: number;
  /** When the change happened (epoch ms). */
  at: number;
  /** The JSON body, exactly as every sink publishes it. */
  body: string;
}

export function eventId(key: string, type: EventType): string {
  return uuidv5(`${type}/${key}`, EVENT_ID_NAMESPACE);
}

/** When an order reached its current status. */
function changedAt(o: Order): number {
  if (o.status === 'paid') return o.paidAt ?? o.createdAt;
  if (o.status === 'refunded') return o.refundedAt ?? o.paidAt ?? o.createdAt;
  if (o.status === 'expired') return o.expiresAt;
  return o.createdAt; // reserved; cancelled carries no time of its own
}

/**
 * The event of an order's current status. `at` may be given (a cancel's time); otherwise it is
 * read off the order.
 */
export function orderEvent(o: Order, at?: number): OutboxEvent {
  const type = `order.${o.status}` as OrderEventType;
  const seq = SEQ_OF_STATUS[o.status];
  const id = eventId(o.orderId, type);
  const when = at ?? changedAt(o);
  const body = JSON.stringify({ id, type, seq, at: new Date(when).toISOString(), order: orderJson(o) });
  return { id, type, key: o.orderId, seq, at: when, body };
}

/** The summary of a sale's intended purchases (buyers refused because it sold out). */
export function saleInterestEvent(saleId: string, users: number, units: number, at: number): OutboxEvent {
  const id = eventId(saleId, 'sale.interest');
  const body = JSON.stringify({ id, type: 'sale.interest', at: new Date(at).toISOString(), saleId, users, units });
  return { id, type: 'sale.interest', key: saleId, seq: 1, at, body };
}
