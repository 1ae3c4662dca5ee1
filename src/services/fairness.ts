import { SeckillError } from '../domain/errors.js';
import { fairnessReport, type FairnessReport, type FairnessUser } from '../domain/fairness.js';
import { holds } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { OrderService } from './order-service.js';
import type { SaleService } from './sale-service.js';

/** What the room keeps of each user it has seen (epoch ms); the room's `records` gives them. */
export interface RoomRecord {
  userId: string;
  firstJoinedAt: number;
  /** The join that gave the current (or last) place. */
  joinedAt: number;
  admittedAt: number | null;
}

/** The room as the report reads it. */
export interface RoomRecords {
  records(saleId: string): Promise<RoomRecord[]>;
}

/**
 * The room's records when the room offers them; an empty list otherwise.
 * TEMPORARY: until `WaitingRoomService.records` lands (the room behind its store interface).
 */
export function roomRecordsOf(room: object): RoomRecords {
  const r = room as Partial<RoomRecords>;
  return { records: (saleId) => (typeof r.records === 'function' ? r.records.call(room, saleId) : Promise.resolve([])) };
}

export interface FairnessDepsOf {
  sales: Pick<SaleService, 'get' | 'find'>;
  orders: Pick<OrderService, 'iterate'>;
  room: RoomRecords;
}

/** A sale's fairness report and its per-user rows (docs/fairness.md). */
export class FairnessService {
  constructor(private readonly d: FairnessDepsOf) {}

  /** One row per user seen (room records and order holders), by user id. */
  async users(saleId: string): Promise<{ sale: Sale; users: FairnessUser[] }> {
    const sale = this.d.sales.get(saleId) ?? (await this.d.sales.find(saleId));
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    // Units won = the units the sale counts as held (reserved, paid; refunded when not restocked):
    // an expired or cancelled order gave its unit back to be won by someone else.
    const units = new Map<string, number>();
    for await (const o of this.d.orders.iterate(sale.id, undefined)) {
      if (holds(o.status, sale.restockOnRefund)) units.set(o.userId, (units.get(o.userId) ?? 0) + o.quantity);
    }
    const records = sale.waitingRoom ? await this.d.room.records(sale.id) : [];
    const byUser = new Map<string, FairnessUser>();
    for (const r of records) {
      byUser.set(r.userId, { userId: r.userId, firstJoinedAt: r.firstJoinedAt, joinedAt: r.joinedAt, admittedAt: r.admittedAt, units: units.get(r.userId) ?? 0 });
    }
    for (const [userId, n] of units) {
      if (!byUser.has(userId)) byUser.set(userId, { userId, firstJoinedAt: null, joinedAt: null, admittedAt: null, units: n });
    }
    const users = [...byUser.values()].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    return { sale, users };
  }

  async report(saleId: string, botPrefix: string): Promise<{ sale: Sale; report: FairnessReport }> {
    const { sale, users } = await this.users(saleId);
    return { sale, report: fairnessReport({ opensAt: sale.startsAt, method: sale.waitingRoom?.method ?? null, users, botPrefix }) };
  }
}
