import { iso } from './sale.js';

export type OrderStatus = 'reserved' | 'paid' | 'expired' | 'cancelled';

export interface Order {
  orderId: string;
  saleId: string;
  userId: string;
  quantity: number;
  priceCents: number;
  status: OrderStatus;
  createdAt: number;
  expiresAt: number;
  paidAt: number | null;
  paymentRef: string | null;
}

/** Statuses that hold stock. */
export const HOLDING: ReadonlySet<OrderStatus> = new Set(['reserved', 'paid']);

export function orderJson(o: Order) {
  return {
    orderId: o.orderId,
    saleId: o.saleId,
    userId: o.userId,
    quantity: o.quantity,
    priceCents: o.priceCents,
    status: o.status,
    createdAt: iso(o.createdAt),
    expiresAt: iso(o.expiresAt),
    paidAt: iso(o.paidAt),
    // The payment service's own reference, so the shop can match its records (null until paid).
    paymentRef: o.paymentRef,
  };
}
