import { iso } from './sale.js';

/**
 * The lifecycle: reserved → paid | expired | cancelled; paid → refunded. `reserved` is left once;
 * `refunded` is reached only from `paid` (POST /api/orders/:orderId/refund).
 */
export type OrderStatus = 'reserved' | 'paid' | 'expired' | 'cancelled' | 'refunded';

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
  /** When the shop refunded it (null unless `refunded`). */
  refundedAt: number | null;
  /** The shop's reason for the refund, as given (null when none). */
  refundReason: string | null;
}

/**
 * Statuses that always hold stock. A `refunded` order holds its units too when its sale does not
 * restock on refund (see `holds`).
 */
export const HOLDING: ReadonlySet<OrderStatus> = new Set(['reserved', 'paid']);

/** Whether an order's units are held (out of stock, counted against its buyer's limit). */
export function holds(status: OrderStatus, restockOnRefund: boolean): boolean {
  return HOLDING.has(status) || (status === 'refunded' && !restockOnRefund);
}

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
    refundedAt: iso(o.refundedAt),
    refundReason: o.refundReason,
  };
}
