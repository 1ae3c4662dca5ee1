/**
 * How an order leaves `reserved`: paid (inside its payment window), cancelled by its buyer, or
 * expired (once its window is over). Each store decides with the same rule: exactly one
 * transition wins, and only while the order is still reserved.
 */
export type Transition =
  | { to: 'paid'; paidAt: number; paymentRef: string }
  | { to: 'cancelled' }
  | { to: 'expired' };
