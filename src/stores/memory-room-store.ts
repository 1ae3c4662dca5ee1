// The waiting rooms in this process's memory (embedded and postgres modes: one process sells).
// A restart forgets them: the pages join again (at the back) and passes given before are no longer good.
import { passNonce } from '../domain/pass.js';
import { RateMeter, admission, byRank, meanAbsError, stockCap } from '../domain/waiting-room.js';
import { ETA_ERROR_SAMPLES, type RoomRecord, type RoomSale, type RoomStore, type RoomStoreOptions, type StoreStats, type Visit } from './room-store.js';

/** A user in line. */
interface Place {
  readonly userId: string;
  /** Shuffle rank (random room, joined before the open), else null. */
  readonly rank: number | null;
  lastSeen: number;
  /** 1 = next out; refreshed at each tick that changed the line. */
  position: number;
  gone: boolean;
}

/** A user let out: the pass given, and what became of it. */
interface Admitted {
  readonly nonce: string;
  readonly expiresAt: number;
  /** live: may ask for the path and buy; claimed: a buy with it is in flight; spent: an order was reserved with it. */
  state: 'live' | 'claimed' | 'spent';
  /** While claimed: the claim lapses then (the buy never settled). */
  claimUntil: number;
}

interface Rec {
  firstJoinedAt: number;
  joinedAt: number;
  admittedAt: number | null;
  /** When the first estimate after the open expected this place out. */
  expectedAt: number | null;
}

class Room {
  /** In line order (arrival order; at the open, the random pre-queue is reordered by rank). */
  line: Place[] = [];
  readonly places = new Map<string, Place>();
  readonly admitted = new Map<string, Admitted>();
  readonly records = new Map<string, Rec>();
  opened = false;
  openedAt = 0;
  credit = 0;
  lastTick: number | null = null;
  readonly meter = new RateMeter();
  dirty = false;
  abandoned = 0;
  admittedTotal = 0;
  /** The abandoned are looked for once a second, not at every tick (the line may be long). */
  nextSweep = 0;
  /** Recent admissions' estimate errors (ms). */
  readonly etaErrors: number[] = [];
}

export class MemoryRoomStore implements RoomStore {
  private readonly rooms = new Map<string, Room>();

  constructor(
    /** Units left now (the stock engine's figure). */
    private readonly available: (saleId: string) => number,
    private readonly o: RoomStoreOptions,
  ) {}

  async visit(sale: RoomSale, userId: string, v: { join: boolean; rank: number | null; now: number }): Promise<Visit> {
    const { now } = v;
    let room = this.rooms.get(sale.saleId);
    if (!room) {
      if (!v.join) return { kind: 'absent' };
      room = new Room();
      this.rooms.set(sale.saleId, room);
    }
    if (v.join && !room.places.has(userId) && !this.holdsPass(room.admitted.get(userId), now)) {
      // Never let out, a pass that ran out unused, or one spent on an order (one pass, one buy): back of the line.
      room.admitted.delete(userId);
      const place: Place = { userId, rank: room.opened ? null : v.rank, lastSeen: now, position: room.places.size + 1, gone: false };
      room.line.push(place);
      room.places.set(userId, place);
      room.dirty = true;
      const rec = room.records.get(userId);
      room.records.set(userId, { firstJoinedAt: rec?.firstJoinedAt ?? now, joinedAt: now, admittedAt: null, expectedAt: null });
    }
    const a = room.admitted.get(userId);
    if (a !== undefined && this.admittedNow(a, now)) return { kind: 'admitted', nonce: a.nonce, expiresAt: a.expiresAt, spent: a.state === 'spent' };
    const place = room.places.get(userId);
    if (!place) return { kind: 'absent' };
    place.lastSeen = now;
    return {
      kind: 'waiting',
      position: place.position,
      opened: room.opened,
      measuredRate: room.opened ? room.meter.rate(now, room.openedAt) : 0,
      estimated: room.records.get(userId)?.expectedAt != null,
      now,
    };
  }

  async noteEstimate(saleId: string, userId: string, expectedAt: number): Promise<void> {
    const rec = this.rooms.get(saleId)?.records.get(userId);
    if (rec && rec.expectedAt === null) rec.expectedAt = expectedAt;
  }

  async tick(sale: RoomSale, now: number): Promise<void> {
    const room = this.rooms.get(sale.saleId);
    if (!room) return;
    // Places not polled lately are dropped; passes that ran out unused (or claims never settled) stop counting.
    if (now >= room.nextSweep) {
      room.nextSweep = now + Math.min(1000, this.o.abandonAfterMs / 4);
      for (const place of room.places.values()) {
        if (now - place.lastSeen > this.o.abandonAfterMs) {
          this.drop(room, place);
          room.abandoned++;
        }
      }
      for (const [userId, a] of room.admitted) {
        if (a.state !== 'spent' && now >= this.outstandingUntil(a)) room.admitted.delete(userId);
      }
    }
    if (!room.opened && now >= sale.startsAt) {
      room.opened = true;
      room.openedAt = now;
      // The random pre-queue (those with a rank) in rank order, the rest behind in arrival order.
      const live = room.line.filter((p) => !p.gone);
      const ranked = live.filter((p) => p.rank !== null).map((p) => ({ userId: p.userId, rank: p.rank as number, p }));
      ranked.sort(byRank);
      room.line = [...ranked.map((r) => r.p), ...live.filter((p) => p.rank === null)];
      room.dirty = true;
    }
    const available = this.available(sale.saleId);
    if (room.opened && !sale.paused && available > 0) {
      const elapsedMs = room.lastTick === null ? 0 : now - room.lastTick;
      const cap = stockCap(available, sale.stockFactor, this.outstanding(room, now));
      const a = admission({ credit: room.credit, admitPerSecond: sale.admitPerSecond, elapsedMs, cap, waiting: room.places.size });
      room.credit = a.credit;
      room.lastTick = now;
      if (a.admit > 0) this.letOut(room, a.admit, now);
    } else {
      // Paused, sold out or not open: nothing saved up for the moment it resumes.
      room.credit = 0;
      room.lastTick = null;
    }
    if (room.dirty) this.renumber(room);
  }

  async checkPass(saleId: string, userId: string, nonce: string): Promise<boolean> {
    const a = this.rooms.get(saleId)?.admitted.get(userId);
    return a !== undefined && a.nonce === nonce && a.state !== 'spent';
  }

  async claimPass(saleId: string, userId: string, nonce: string, now: number): Promise<boolean> {
    const a = this.rooms.get(saleId)?.admitted.get(userId);
    if (a === undefined || a.nonce !== nonce || now >= a.expiresAt) return false;
    if (a.state === 'spent' || (a.state === 'claimed' && now < a.claimUntil)) return false;
    a.state = 'claimed';
    a.claimUntil = now + this.o.claimTtlMs;
    return true;
  }

  async settlePass(saleId: string, userId: string, reserved: boolean): Promise<void> {
    const a = this.rooms.get(saleId)?.admitted.get(userId);
    if (a?.state === 'claimed') a.state = reserved ? 'spent' : 'live';
  }

  async stats(saleId: string, now: number): Promise<StoreStats | null> {
    const room = this.rooms.get(saleId);
    if (!room) return null;
    return {
      waiting: room.places.size,
      admitted: room.admittedTotal,
      outstanding: this.outstanding(room, now),
      abandoned: room.abandoned,
      admittedPerSecond: room.opened ? room.meter.rate(now, room.openedAt) : 0,
      opened: room.opened,
      etaErrorSeconds: meanAbsError(room.etaErrors),
    };
  }

  async records(saleId: string): Promise<RoomRecord[]> {
    const room = this.rooms.get(saleId);
    if (!room) return [];
    return [...room.records].map(([userId, r]) => ({ userId, firstJoinedAt: r.firstJoinedAt, joinedAt: r.joinedAt, admittedAt: r.admittedAt }));
  }

  async forget(saleId: string): Promise<void> {
    this.rooms.delete(saleId);
  }

  private letOut(room: Room, n: number, now: number): void {
    let out = 0;
    for (const place of room.line) {
      if (out >= n) break;
      if (place.gone) continue;
      room.admitted.set(place.userId, { nonce: passNonce(), expiresAt: now + this.o.passTtlMs, state: 'live', claimUntil: 0 });
      this.drop(room, place);
      const rec = room.records.get(place.userId);
      if (rec) {
        rec.admittedAt = now;
        if (rec.expectedAt !== null) {
          room.etaErrors.push(now - rec.expectedAt);
          if (room.etaErrors.length > ETA_ERROR_SAMPLES) room.etaErrors.shift();
        }
      }
      out++;
    }
    room.admittedTotal += out;
    room.meter.add(out, now);
  }

  private drop(room: Room, place: Place): void {
    if (place.gone) return;
    place.gone = true;
    room.places.delete(place.userId);
    room.dirty = true;
  }

  private renumber(room: Room): void {
    room.line = room.line.filter((p) => !p.gone);
    room.line.forEach((p, i) => (p.position = i + 1));
    room.dirty = false;
  }

  /** Until when a pass counts against the stock: its expiry, or its claim's end if later. Spent: never again. */
  private outstandingUntil(a: Admitted): number {
    return a.state === 'claimed' ? Math.max(a.expiresAt, a.claimUntil) : a.expiresAt;
  }

  /** Let out and not bought, pass still good (claimed ones too: their buy is in flight). */
  private outstanding(room: Room, now: number): number {
    let n = 0;
    for (const a of room.admitted.values()) if (a.state !== 'spent' && now < this.outstandingUntil(a)) n++;
    return n;
  }

  /** Let out with a pass still good (or in a buy now): joining again keeps it. */
  private holdsPass(a: Admitted | undefined, now: number): boolean {
    return a !== undefined && a.state !== 'spent' && now < this.outstandingUntil(a);
  }

  /** Let out and the pass still of use (good, in a buy, or spent): the visit answers `admitted`. */
  private admittedNow(a: Admitted, now: number): boolean {
    return a.state !== 'live' || now < a.expiresAt;
  }
}
