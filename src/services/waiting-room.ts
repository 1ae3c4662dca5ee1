import { SeckillError } from '../domain/errors.js';
import { readPass, signPass } from '../domain/pass.js';
import { hasEnded, type Sale } from '../domain/sale.js';
import { ABANDON_AFTER_MS, PASS_TTL_MS, etaSeconds, roomSeed, seedHash, shuffleRank, type QueueAnswer } from '../domain/waiting-room.js';
import { MemoryRoomStore } from '../stores/memory-room-store.js';
import type { RoomRecord, RoomSale, RoomStore, RoomStoreOptions, StoreStats, Visit } from '../stores/room-store.js';
import type { SaleService } from './sale-service.js';

export type { RoomRecord, RoomStore } from '../stores/room-store.js';

export interface WaitingRoomOptions {
  /** How often the rooms admit (ms). */
  tickMs?: number;
  abandonAfterMs?: number;
  passTtlMs?: number;
  /** A buy holds a claimed pass at most this long. */
  claimTtlMs?: number;
  /** Where the rooms live; by default this process's memory (embedded, postgres). Distributed: Redis. */
  store?: (o: RoomStoreOptions) => RoomStore;
}

/** What the operators see of a room (the dashboard, the admin API): the store's figures and the configured rate. */
export interface RoomStats extends StoreStats {
  configuredPerSecond: number;
}

/** A claimed pass whose buy never settled (its process died) is free again after this. */
const CLAIM_TTL_MS = 30_000;

/**
 * The sales' waiting rooms: the timer that lets users out, and the answers the pages and the buy
 * see. The rules are src/domain/waiting-room.ts; the places, the bucket and the passes given are
 * in a RoomStore (src/stores/room-store.ts): this process's memory in embedded and postgres modes
 * (a restart forgets the rooms: the pages join again at the back, passes given before are no
 * longer good), Redis in distributed mode (every process sees one line; any of them may tick).
 */
export class WaitingRoomService {
  private readonly store: RoomStore;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** Sales whose room this process ticks (a sale without one costs the round nothing). */
  private readonly ticked = new Set<string>();
  private readonly tickMs: number;

  constructor(
    private readonly sales: Pick<SaleService, 'get' | 'find' | 'available' | 'all'>,
    o: WaitingRoomOptions = {},
  ) {
    this.tickMs = o.tickMs ?? 100;
    const options: RoomStoreOptions = {
      abandonAfterMs: o.abandonAfterMs ?? ABANDON_AFTER_MS,
      passTtlMs: o.passTtlMs ?? PASS_TTL_MS,
      claimTtlMs: o.claimTtlMs ?? CLAIM_TTL_MS,
    };
    this.store = o.store ? o.store(options) : new MemoryRoomStore((saleId) => sales.available(saleId), options);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // One round at a time: a slow store (Redis) never piles rounds up.
      if (this.ticking) return;
      this.ticking = true;
      this.tick(Date.now())
        .catch(() => undefined)
        .finally(() => (this.ticking = false));
    }, this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** `POST …/queue`: take a place (or keep the one this user has: one per user). */
  async join(saleId: string, userId: string, now = Date.now()): Promise<QueueAnswer> {
    const sale = await this.open(saleId, now);
    const room = roomOf(sale);
    const rank = room.method === 'random' ? shuffleRank(roomSeed(sale.id, sale.secret), userId) : null;
    const visit = await this.store.visit(room, userId, { join: true, rank, now });
    return this.answer(sale, userId, visit, now);
  }

  /** `GET …/queue`: where this user is; keeps the place. Not in line (never joined, or dropped): 404. */
  async poll(saleId: string, userId: string, now = Date.now()): Promise<QueueAnswer> {
    const sale = await this.open(saleId, now);
    const visit = await this.store.visit(roomOf(sale), userId, { join: false, rank: null, now });
    return this.answer(sale, userId, visit, now);
  }

  /** `GET …/queue/seed`: the seed's hash always, the seed itself once the sale opened. */
  async seed(saleId: string, now = Date.now()): Promise<{ seedHash: string; seed?: string }> {
    const sale = await this.sales.find(saleId);
    if (!sale?.waitingRoom) throw new SeckillError('not_found', 'This sale has no waiting room.');
    const seed = roomSeed(sale.id, sale.secret);
    return now >= sale.startsAt ? { seedHash: seedHash(seed), seed } : { seedHash: seedHash(seed) };
  }

  /** The path request's check: a genuine pass of this user and sale, not expired, not spent. */
  async checkPass(sale: Sale, userId: string, pass: string | null, now: number): Promise<boolean> {
    const nonce = this.nonceOf(sale, userId, pass, now);
    return nonce !== null && this.store.checkPass(sale.id, userId, nonce, now);
  }

  /**
   * The buy's check: as checkPass, and the pass is taken for this buy (a second buy with it waits
   * its outcome: refused meanwhile). `settlePass` must follow.
   */
  async claimPass(sale: Sale, userId: string, pass: string | null, now: number): Promise<boolean> {
    const nonce = this.nonceOf(sale, userId, pass, now);
    return nonce !== null && this.store.claimPass(sale.id, userId, nonce, now);
  }

  /** After the buy: reserved, the pass is spent; otherwise it is good again (until it expires). */
  async settlePass(saleId: string, userId: string, reserved: boolean): Promise<void> {
    await this.store.settlePass(saleId, userId, reserved, Date.now());
  }

  async stats(saleId: string, now = Date.now()): Promise<RoomStats | null> {
    const sale = this.sales.get(saleId) ?? (await this.sales.find(saleId));
    const st = await this.store.stats(saleId, now);
    if (!st) return null;
    return { ...st, configuredPerSecond: sale?.waitingRoom?.admitPerSecond ?? 0 };
  }

  /** Every user who joined: first join, the join of the last place, admission (the fairness report). */
  records(saleId: string): Promise<RoomRecord[]> {
    return this.store.records(saleId);
  }

  /** One round over every room: drop the abandoned, open, let users out. Public for the tests' clock. */
  async tick(now: number): Promise<void> {
    // One room's failure does not stop the others' round; the first is thrown after it.
    let failed: unknown = null;
    for (const sale of this.sales.all()) {
      try {
        if (sale.waitingRoom && !hasEnded(sale, now)) {
          this.ticked.add(sale.id);
          await this.store.tick(roomOf(sale), now);
        } else if (this.ticked.delete(sale.id)) {
          // Ended, or the room taken off before the open: what the store keeps of it may go.
          await this.store.forget(sale.id);
        }
      } catch (err) {
        failed ??= err;
      }
    }
    if (failed !== null) throw failed;
  }

  private nonceOf(sale: Sale, userId: string, pass: string | null, now: number): string | null {
    const read = readPass(sale.secret, pass, sale.id, userId, now);
    return read.ok ? read.claims.nonce : null;
  }

  private async open(saleId: string, now: number): Promise<Sale> {
    const sale = await this.sales.find(saleId);
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    if (!sale.waitingRoom) throw new SeckillError('not_found', 'This sale has no waiting room.');
    if (hasEnded(sale, now)) throw new SeckillError('ended');
    return sale;
  }

  private async answer(sale: Sale, userId: string, visit: Visit, now: number): Promise<QueueAnswer> {
    if (visit.kind === 'absent') {
      throw new SeckillError('not_found', 'Not in this sale\'s waiting room (never joined, or dropped after not polling): join with POST.');
    }
    if (visit.kind === 'admitted') {
      const out: QueueAnswer = { state: 'admitted', position: 0, ahead: 0, etaSeconds: 0 };
      if (!visit.spent) out.pass = signPass(sale.secret, { saleId: sale.id, userId, expiresAt: visit.expiresAt, nonce: visit.nonce });
      return out;
    }
    const settings = sale.waitingRoom;
    // Before the open a random room has no order yet: nobody's place is known (the seed is secret).
    if (!settings || (!visit.opened && settings.method === 'random')) return { state: 'waiting', position: null, ahead: null, etaSeconds: null };
    const ahead = visit.position - 1;
    // Read now, not at the last tick: everyone waiting hears of the sell-out at their next poll.
    if (visit.opened && this.sales.available(sale.id) <= 0) return { state: 'sold_out', position: visit.position, ahead, etaSeconds: null };
    const untilOpen = visit.opened ? 0 : Math.ceil(Math.max(0, sale.startsAt - now) / 1000);
    const eta = untilOpen + etaSeconds(ahead, visit.measuredRate, settings.admitPerSecond);
    // The first estimate after the open is what the estimate's error is measured against.
    if (visit.opened && !visit.estimated) await this.store.noteEstimate(sale.id, userId, visit.now + eta * 1000);
    return { state: 'waiting', position: visit.position, ahead, etaSeconds: eta };
  }
}

/** The store's view of a sale with a room. */
function roomOf(sale: Sale): RoomSale {
  const r = sale.waitingRoom;
  if (!r) throw new SeckillError('not_found', 'This sale has no waiting room.');
  return { saleId: sale.id, method: r.method, admitPerSecond: r.admitPerSecond, stockFactor: r.stockFactor, startsAt: sale.startsAt, endsAt: sale.endsAt, paused: sale.paused };
}
