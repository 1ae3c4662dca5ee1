import type { Order } from '../../domain/order.js';

/** An order as the Lua scripts write it: cjson leaves out the fields that are still null. */
type StoredOrder = Omit<Order, 'paidAt' | 'paymentRef' | 'refundedAt' | 'refundReason'> & {
  paidAt?: number;
  paymentRef?: string;
  refundedAt?: number;
  refundReason?: string;
};

/** The order as the Lua scripts store it (JSON in the sale's orders hash and in the stream). */
export function parseStoredOrder(json: string): Order {
  const o = JSON.parse(json) as StoredOrder;
  return { ...o, paidAt: o.paidAt ?? null, paymentRef: o.paymentRef ?? null, refundedAt: o.refundedAt ?? null, refundReason: o.refundReason ?? null };
}

/** The JSON the Lua scripts would have written for `o` (a rebuild or an adoption writes it from the database). */
export function storedOrder(o: Order): string {
  const { paidAt, paymentRef, refundedAt, refundReason, ...rest } = o;
  return JSON.stringify({
    ...rest,
    ...(paidAt === null ? {} : { paidAt }),
    ...(paymentRef === null ? {} : { paymentRef }),
    ...(refundedAt === null ? {} : { refundedAt }),
    ...(refundReason === null ? {} : { refundReason }),
  });
}
