import type { Accepted } from './sale-sim.js';
import type { Api } from './target.js';

// The invariants of docs/design.md, checked from what the database of record holds. One checker
// for the benchmark (through the admin API) and for the tests (rows read directly): the facts
// are given, not fetched, so both feed it the same way.

/** One order, from whichever store or API it was read. */
export interface OrderFact {
  orderId: string;
  userId: string;
  quantity: number;
  status: string;
}

/** A buy answered 202: the order the client was promised. */
export interface AcceptedBuy {
  orderId: string;
  userId: string;
  quantity: number;
  /** The state its row must be in now, when the caller knows it. */
  status?: string;
}

/** A buy whose answer never came (the process died, the reply was lost): it may or may not have made an order. */
export interface UnansweredBuy {
  userId: string;
  quantity: number;
}

/** What the store itself says about the sale's units (the admin stats). */
export interface UnitCounts {
  stock?: number;
  reserved: number;
  paid: number;
  available: number;
  cancelled?: number;
  expired?: number;
}

export interface InvariantInput {
  stock: number;
  perUserLimit: number;
  orders: readonly OrderFact[];
  /** When given: must agree with the orders (units per state, available = stock − reserved − paid). */
  counts?: UnitCounts;
  /** When given: every 202 has its row (same user and quantity), and every row has a 202 or an excuse. */
  accepted?: readonly AcceptedBuy[];
  /** A 202 without a row is returned in `missing` instead of failing (a store allowed to lose data). */
  acceptedMayBeLost?: boolean;
  /** Rows without a 202 must each match one of these (user and quantity); none by default. */
  unanswered?: readonly UnansweredBuy[];
  /** Rows without a 202 already accounted for (matched in an earlier check). */
  accountedFor?: ReadonlySet<string>;
}

export type UnitsByState = Record<'reserved' | 'paid' | 'cancelled' | 'expired', number>;

export interface InvariantCheck {
  /** Empty when every invariant holds; one line per violation. */
  failures: string[];
  /** Units held (reserved or paid). */
  held: number;
  /** Units held per user. */
  perUser: Map<string, number>;
  units: UnitsByState;
  /** 202s without a row (a failure unless acceptedMayBeLost). */
  missing: AcceptedBuy[];
  /** Rows without a 202 (and not accounted for before), each matched to an unanswered buy. */
  unacked: OrderFact[];
}

const HOLDING = new Set(['reserved', 'paid']);

/**
 * Invariants 1–5: no oversell, nobody past the per-user limit, each order once, the store's counts
 * consistent with its orders, every 202 has its order and every order a 202 (or a buy whose answer
 * was lost), each in the state its client was left with.
 */
export function checkOrderInvariants(input: InvariantInput): InvariantCheck {
  const failures: string[] = [];
  const units: UnitsByState = { reserved: 0, paid: 0, cancelled: 0, expired: 0 };
  const perUser = new Map<string, number>();
  const byId = new Map<string, OrderFact>();
  let held = 0;
  for (const o of input.orders) {
    if (byId.has(o.orderId)) failures.push(`order ${o.orderId} stored twice`);
    byId.set(o.orderId, o);
    if (o.status in units) units[o.status as keyof UnitsByState] += o.quantity;
    else failures.push(`order ${o.orderId} in unknown state ${o.status}`);
    if (HOLDING.has(o.status)) {
      held += o.quantity;
      perUser.set(o.userId, (perUser.get(o.userId) ?? 0) + o.quantity);
    }
  }
  if (held > input.stock) failures.push(`oversell: ${held} units held of ${input.stock}`);
  for (const [u, q] of perUser) if (q > input.perUserLimit) failures.push(`user ${u} holds ${q} > limit ${input.perUserLimit}`);

  if (input.counts) failures.push(...countsDisagree(input.counts, input.stock, units));

  let missing: AcceptedBuy[] = [];
  let unacked: OrderFact[] = [];
  if (input.accepted) {
    const answered = acceptedWithoutRow(byId, input.accepted);
    failures.push(...answered.failures);
    missing = answered.missing;
    if (missing.length > 0 && !input.acceptedMayBeLost) {
      failures.push(`${missing.length} accepted orders (202) have no row: ${missing.slice(0, 5).map((a) => a.orderId).join(', ')}`);
    }
    const acked = new Set(input.accepted.map((a) => a.orderId));
    const matched = rowsWithoutAccepted(input.orders, acked, input.unanswered ?? [], input.accountedFor);
    failures.push(...matched.failures);
    unacked = matched.unacked;
  }
  return { failures, held, perUser, units, missing, unacked };
}

/**
 * Invariant 3: every 202 names its own order, and that order's row has the same user and quantity
 * (and the state the client was left with, when given). Returns the 202s whose row is missing.
 */
export function acceptedWithoutRow(orders: ReadonlyMap<string, OrderFact>, accepted: readonly AcceptedBuy[]): { failures: string[]; missing: AcceptedBuy[] } {
  const failures: string[] = [];
  const missing: AcceptedBuy[] = [];
  const seen = new Set<string>();
  for (const a of accepted) {
    if (seen.has(a.orderId)) failures.push(`order ${a.orderId} answered 202 twice`);
    seen.add(a.orderId);
    const row = orders.get(a.orderId);
    if (!row) {
      missing.push(a);
      continue;
    }
    if (row.userId !== a.userId) failures.push(`order ${a.orderId}: user ${row.userId}, the 202 said ${a.userId}`);
    if (row.quantity !== a.quantity) failures.push(`order ${a.orderId}: quantity ${row.quantity}, the 202 said ${a.quantity}`);
    if (a.status !== undefined && row.status !== a.status) failures.push(`order ${a.orderId}: ${row.status}, expected ${a.status}`);
  }
  return { failures, missing };
}

function countsDisagree(c: UnitCounts, stock: number, units: UnitsByState): string[] {
  const out: string[] = [];
  if (c.stock !== undefined && c.stock !== stock) out.push(`the store says stock ${c.stock}, the sale has ${stock}`);
  if (c.reserved !== units.reserved) out.push(`the store says ${c.reserved} units reserved, the orders ${units.reserved}`);
  if (c.paid !== units.paid) out.push(`the store says ${c.paid} units paid, the orders ${units.paid}`);
  if (c.cancelled !== undefined && c.cancelled !== units.cancelled) out.push(`the store says ${c.cancelled} units cancelled, the orders ${units.cancelled}`);
  if (c.expired !== undefined && c.expired !== units.expired) out.push(`the store says ${c.expired} units expired, the orders ${units.expired}`);
  if (c.available !== stock - c.reserved - c.paid) out.push(`available ${c.available} ≠ stock ${stock} − reserved ${c.reserved} − paid ${c.paid}`);
  return out;
}

/**
 * Invariant 4: rows without a 202 (and not in `accountedFor`) may only come from buys whose answer
 * was lost, one row per such buy, same user and quantity. Returns the rows so matched.
 */
export function rowsWithoutAccepted(
  orders: readonly OrderFact[],
  accepted: ReadonlySet<string>,
  unanswered: readonly UnansweredBuy[],
  accountedFor?: ReadonlySet<string>,
): { failures: string[]; unacked: OrderFact[] } {
  const fresh = orders.filter((o) => !accepted.has(o.orderId) && !accountedFor?.has(o.orderId));
  const failures: string[] = [];
  if (fresh.length > unanswered.length) failures.push(`${fresh.length} rows without a 202, but only ${unanswered.length} buys had an unknown outcome`);
  const left = [...unanswered];
  const unacked: OrderFact[] = [];
  for (const row of fresh) {
    const i = left.findIndex((a) => a.userId === row.userId && a.quantity === row.quantity);
    if (i < 0) {
      failures.push(`order ${row.orderId} (${row.userId} × ${row.quantity}) has no 202 and matches no buy of unknown outcome`);
      continue;
    }
    left.splice(i, 1);
    unacked.push(row);
  }
  return { failures, unacked };
}

// ---------------------------------------------------------------------------------------------
// The benchmark's check, through the admin API

export interface InvariantReport {
  ok: boolean;
  failures: string[];
  rows: number;
  heldUnits: number;
  /** ms the writers needed after the buyers stopped until every decided order was in the database. */
  drainMs: number;
}

/** Waits until the database of record has every decided order of the sale. */
export async function settle(api: Api, adminKey: string, saleId: string, timeoutMs = 120_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await api.patient('GET', `/api/admin/sales/${saleId}`, adminKey);
    if (r.status === 200 && r.body.stats.pendingWrites === 0) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`writes did not settle: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * The invariants, counted from the database of record through the admin API once the writers
 * drained: every buy of the run was answered, so every row must have its 202.
 */
export async function checkInvariants(api: Api, adminKey: string, saleId: string, stock: number, limit: number, accepted: Accepted[]): Promise<InvariantReport> {
  const drainMs = await settle(api, adminKey, saleId);
  const orders: OrderFact[] = [];
  let after: string | null = null;
  do {
    const q: string = after ? `&after=${encodeURIComponent(after)}` : '';
    const r = await api.patient('GET', `/api/admin/sales/${saleId}/orders?limit=1000${q}`, adminKey);
    if (r.status !== 200) throw new Error(`list orders: ${r.status}`);
    orders.push(...(r.body.orders as OrderFact[]));
    after = r.body.next;
  } while (after);
  const counts = (await api.patient('GET', `/api/admin/sales/${saleId}`, adminKey)).body.stats as UnitCounts;
  const c = checkOrderInvariants({ stock, perUserLimit: limit, orders, counts, accepted });
  return { ok: c.failures.length === 0, failures: c.failures, rows: new Set(orders.map((o) => o.orderId)).size, heldUnits: c.held, drainMs };
}
