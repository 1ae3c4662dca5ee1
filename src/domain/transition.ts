/**
 * How an order changes status. It leaves `reserved` by being paid (inside its payment window),
 * cancelled, or expired (once its window is over); a paid order may then be refunded, once.
 * Each store decides with the same rule: exactly one transition wins, and only from its one
 * source status (`reserved`, or `paid` for a refund).
 */
export type Transition =
  | { to: 'paid'; paidAt: number; paymentRef: string }
  | { to: 'cancelled' }
  | { to: 'expired' }
  | { to: 'refunded'; refundedAt: number; reason: string | null };

/** The one status a transition may start from. */
export function sourceOf(t: Transition): 'reserved' | 'paid' {
  return t.to === 'refunded' ? 'paid' : 'reserved';
}
