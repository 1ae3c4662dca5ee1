import type { Order } from '../../domain/order.js';

/** An order as the Lua scripts write it: cjson leaves out the fields that are still null. */
type StoredOrder = Omit<Order, 'paidAt' | 'paymentRef'> & { paidAt?: number; paymentRef?: string };

/** The order as the Lua scripts store it (JSON in the sale's orders hash and in the stream). */
export function parseStoredOrder(json: string): Order {
  const o = JSON.parse(json) as StoredOrder;
  return { ...o, paidAt: o.paidAt ?? null, paymentRef: o.paymentRef ?? null };
}

/** The JSON the Lua scripts would have written for `o` (a rebuild or an adoption writes it from the database). */
export function storedOrder(o: Order): string {
  const { paidAt, paymentRef, ...rest } = o;
  return JSON.stringify({ ...rest, ...(paidAt === null ? {} : { paidAt }), ...(paymentRef === null ? {} : { paymentRef }) });
}
