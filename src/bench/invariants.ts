import type { Accepted } from './sale-sim.js';
import type { Api } from './target.js';

interface Row {
  orderId: string;
  userId: string;
  quantity: number;
  status: string;
}

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
    const r = await api.call('GET', `/api/admin/sales/${saleId}`, adminKey);
    if (r.status === 200 && r.body.stats.pendingWrites === 0) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`writes did not settle: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * The invariants of docs/design.md, counted from the database of record through the admin API:
 * no oversell, nobody over the limit, every 202 has its row (same user and quantity), no row
 * without a 202, and stock + orders add up.
 */
export async function checkInvariants(api: Api, adminKey: string, saleId: string, stock: number, limit: number, accepted: Accepted[]): Promise<InvariantReport> {
  const drainMs = await settle(api, adminKey, saleId);
  const rows = new Map<string, Row>();
  let after: string | null = null;
  do {
    const q: string = after ? `&after=${encodeURIComponent(after)}` : '';
    const r = await api.call('GET', `/api/admin/sales/${saleId}/orders?limit=1000${q}`, adminKey);
    if (r.status !== 200) throw new Error(`list orders: ${r.status}`);
    for (const o of r.body.orders as Row[]) rows.set(o.orderId, o);
    after = r.body.next;
  } while (after);
  const stats = (await api.call('GET', `/api/admin/sales/${saleId}`, adminKey)).body.stats;

  const failures: string[] = [];
  let held = 0;
  const perUser = new Map<string, number>();
  for (const o of rows.values()) {
    if (o.status === 'reserved' || o.status === 'paid') {
      held += o.quantity;
      perUser.set(o.userId, (perUser.get(o.userId) ?? 0) + o.quantity);
    }
  }
  if (held > stock) failures.push(`oversell: ${held} units held of ${stock}`);
  for (const [u, q] of perUser) if (q > limit) failures.push(`user ${u} holds ${q} > limit ${limit}`);
  let missing = 0;
  for (const a of accepted) {
    const row = rows.get(a.orderId);
    if (!row || row.userId !== a.userId || row.quantity !== a.quantity) missing++;
  }
  if (missing > 0) failures.push(`${missing} accepted orders (202) have no matching row`);
  if (rows.size !== accepted.length) failures.push(`${rows.size} rows for ${accepted.length} accepted orders`);
  if (stats.available !== stock - stats.reserved - stats.paid) {
    failures.push(`available ${stats.available} ≠ stock ${stock} − reserved ${stats.reserved} − paid ${stats.paid}`);
  }
  if (stats.reserved + stats.paid !== held) failures.push(`stats say ${stats.reserved + stats.paid} held, rows ${held}`);
  return { ok: failures.length === 0, failures, rows: rows.size, heldUnits: held, drainMs };
}
