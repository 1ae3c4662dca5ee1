// A sale as the service knows it. Times are epoch milliseconds inside, ISO strings at the edge.

export interface Sale {
  id: string;
  name: string;
  description: string;
  priceCents: number;
  stock: number;
  startsAt: number;
  endsAt: number | null;
  perUserLimit: number;
  paymentWindowSeconds: number;
  paused: boolean;
  /** Random per sale; keys the dynamic order path. Never leaves the server. */
  secret: string;
  createdAt: number;
}

export type SaleStatus = 'upcoming' | 'live' | 'sold_out' | 'ended' | 'paused';

/** Status from the server clock; `available` comes from the stock engine. */
export function saleStatus(sale: Sale, now: number, available: number): SaleStatus {
  if (sale.endsAt !== null && now >= sale.endsAt) return 'ended';
  if (sale.paused) return 'paused';
  if (now < sale.startsAt) return 'upcoming';
  if (available <= 0) return 'sold_out';
  return 'live';
}

/** Refusals that only need public facts and the server clock; checked before any token work. */
export function windowRefusal(sale: Sale, now: number): 'ended' | 'paused' | 'not_started' | null {
  if (sale.endsAt !== null && now >= sale.endsAt) return 'ended';
  if (sale.paused) return 'paused';
  if (now < sale.startsAt) return 'not_started';
  return null;
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function salePublic(sale: Sale, now: number, available: number) {
  return {
    id: sale.id,
    name: sale.name,
    description: sale.description,
    priceCents: sale.priceCents,
    startsAt: iso(sale.startsAt),
    endsAt: iso(sale.endsAt),
    perUserLimit: sale.perUserLimit,
    status: saleStatus(sale, now, available),
    serverTime: iso(now),
  };
}

/** What operators see: everything but the secret. */
export function saleAdmin(sale: Sale, now: number, available: number) {
  return {
    ...salePublic(sale, now, available),
    stock: sale.stock,
    paymentWindowSeconds: sale.paymentWindowSeconds,
    paused: sale.paused,
    createdAt: iso(sale.createdAt),
  };
}
