// A sale as the service knows it. Times are epoch milliseconds inside, ISO strings at the edge.
import type { Challenge, WaitingRoomSettings } from './queue.js';

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
  /**
   * What a refund does with the order's units: true, they return to stock and leave the buyer's
   * holding; false (the default), they stay sold and keep counting against the buyer's limit.
   */
  restockOnRefund: boolean;
  /** Random per sale; keys the dynamic order path. Never leaves the server. */
  secret: string;
  createdAt: number;
  /**
   * When an operator archived the sale (always an ended one), or null/absent: an archived sale is
   * off the public list and can no longer change, but its page and orders stay.
   */
  archivedAt?: number | null;
  /** The waiting room in front of the path (issue 14), or null/absent: none. */
  waitingRoom?: WaitingRoomSettings | null;
  /** The challenge before the path, or null/absent: none. */
  challenge?: Challenge | null;
}

/** The fields of a sale that change after its creation (by an operator). */
export type SaleField =
  | 'name' | 'description' | 'priceCents' | 'stock' | 'startsAt' | 'endsAt' | 'perUserLimit' | 'paymentWindowSeconds'
  | 'paused' | 'archivedAt' | 'waitingRoom' | 'challenge';
/** New values of some of them. */
export type SaleFields = Partial<Pick<Sale, SaleField>>;

/** Whether the sale has opened: from then on only its name, description and end can change. */
export function hasOpened(sale: Sale, now: number): boolean {
  return now >= sale.startsAt;
}

/** Whether the sale's window is over (an end time that has passed). */
export function hasEnded(sale: Sale, now: number): boolean {
  return sale.endsAt !== null && now >= sale.endsAt;
}

/** What an operator did to a sale (or, `switches`, to the whole service). */
export type SaleAuditAction = 'create' | 'correct' | 'pause' | 'resume' | 'end' | 'archive' | 'switches';

/** One recorded change: who, when, what (each changed field as [old, new]). */
export interface SaleAuditEntry {
  /** A UUIDv7: ordered by time. */
  id: string;
  /** null for the service-wide switches. */
  saleId: string | null;
  at: number;
  /** The admin key's id (never the key). */
  actor: string;
  action: SaleAuditAction;
  changes: Record<string, [unknown, unknown]>;
}

/** An audit entry at the edge: times as ISO strings. */
export function auditJson(e: SaleAuditEntry) {
  return { id: e.id, saleId: e.saleId, at: iso(e.at), actor: e.actor, action: e.action, changes: e.changes };
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
    // Only for a sale with a room: the JSON of other sales stays as it was.
    ...(sale.waitingRoom ? { waitingRoom: { method: sale.waitingRoom.method, admitPerSecond: sale.waitingRoom.admitPerSecond } } : {}),
    // Only for a sale with a challenge: the page then asks for one before the path (docs/challenges.md).
    ...(sale.challenge ? { challenge: sale.challenge } : {}),
  };
}

/** What operators see: everything but the secret. */
export function saleAdmin(sale: Sale, now: number, available: number) {
  return {
    ...salePublic(sale, now, available),
    stock: sale.stock,
    paymentWindowSeconds: sale.paymentWindowSeconds,
    paused: sale.paused,
    restockOnRefund: sale.restockOnRefund,
    createdAt: iso(sale.createdAt),
    archivedAt: iso(sale.archivedAt ?? null),
    waitingRoom: sale.waitingRoom ?? null,
    challenge: sale.challenge ?? null,
  };
}
