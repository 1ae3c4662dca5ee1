import { SeckillError } from '../domain/errors.js';
import { fairnessReport, type FairnessReport, type FairnessUser } from '../domain/fairness.js';
import type { Sale } from '../domain/sale.js';
import type { RecordStore } from '../stores/record-store.js';
import type { SaleService } from './sale-service.js';
import type { WaitingRoomService } from './waiting-room.js';

export interface FairnessDepsOf {
  sales: Pick<SaleService, 'get' | 'find'>;
  /** Units held per user, counted by the database (reserved, paid; refunded when not restocked). */
  holdings: Pick<RecordStore, 'holdings'>;
  /** The room's records: first join, the join that gave the last place, the last admission. */
  room: Pick<WaitingRoomService, 'records'>;
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
    const units = await this.d.holdings.holdings(sale.id);
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
