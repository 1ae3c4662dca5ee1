import { SeckillError } from '../domain/errors.js';
import { passNonce, readPass, signPass } from '../domain/pass.js';
import { hasEnded, type Sale } from '../domain/sale.js';
import {
  ABANDON_AFTER_MS, PASS_TTL_MS, RateMeter, admission, etaSeconds, roomSeed, seedHash, shuffled, stockCap,
  type QueueAnswer,
} from '../domain/waiting-room.js';
import type { SaleService } from './sale-service.js';

/** A user in line. */
interface Place {
  readonly userId: string;
  lastSeen: number;
  /** 1 = next out; refreshed at each tick that changed the line. */
  position: number;
  gone: boolean;
}

/** A user let out: the pass given, and what became of it. */
interface Admitted {
  readonly nonce: string;
  readonly pass: string;
  readonly expiresAt: number;
  /** live: may ask for the path and buy; claimed: a buy with it is in flight; spent: an order was reserved with it. */
  state: 'live' | 'claimed' | 'spent';
}

/** One sale's room, in this process. */
class Room {
  /** In line order (arrival order; at the open, the random pre-queue is reordered by the shuffle). */
  line: Place[] = [];
  readonly places = new Map<string, Place>();
  readonly admitted = new Map<string, Admitted>();
  opened = false;
  openedAt = 0;
  credit = 0;
  lastTick: number | null = null;
  readonly meter = new RateMeter();
  dirty = false;
  /** Counters for the operators (since this process holds the room). */
  abandoned = 0;
  admittedTotal = 0;
  /** The abandoned are looked for once a second, not at every tick (the line may be long). */
  nextSweep = 0;
}

export interface WaitingRoomOptions {
  /** How often the rooms admit (ms). */
  tickMs?: number;
  abandonAfterMs?: number;
  passTtlMs?: number;
}

/** What the operators see of a room (the dashboard, the admin API). */
export interface RoomStats {
  waiting: number;
  admitted: number;
  /** Let out and not bought yet, pass still good: they count against the stock cap. */
  outstanding: number;
  abandoned: number;
  admittedPerSecond: number;
  opened: boolean;
}

/**
 * The waiting room of embedded and postgres modes: one process holds every room in memory
 * (distributed mode refuses rooms for now: SaleService). The rules are src/domain/waiting-room.ts;
 * this class keeps the places, lets users out on a timer and answers polls. A restart forgets the
 * rooms: the pages join again (at the back) and passes given before it are no longer good.
 */
export class WaitingRoomService {
  private readonly rooms = new Map<string, Room>();
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;
  private readonly abandonAfterMs: number;
  private readonly passTtlMs: number;

  constructor(
    private readonly sales: Pick<SaleService, 'get' | 'find' | 'available'>,
    o: WaitingRoomOptions = {},
  ) {
    this.tickMs = o.tickMs ?? 100;
    this.abandonAfterMs = o.abandonAfterMs ?? ABANDON_AFTER_MS;
    this.passTtlMs = o.passTtlMs ?? PASS_TTL_MS;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(Date.now()), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** `POST …/queue`: take a place (or keep the one this user has: one per user). */
  async join(saleId: string, userId: string, now = Date.now()): Promise<QueueAnswer> {
    const { sale, room } = await this.open(saleId, now, true);
    if (!room.places.has(userId) && !this.holdsPass(room, userId, now)) {
      // Never let out, a pass that ran out unused, or one spent on an order (one pass, one buy): back of the line.
      room.admitted.delete(userId);
      const place: Place = { userId, lastSeen: now, position: room.places.size + 1, gone: false };
      room.line.push(place);
      room.places.set(userId, place);
      room.dirty = true;
    }
    return this.answer(sale, room, userId, now);
  }

  /** `GET …/queue`: where this user is; keeps the place. Not in line (never joined, or dropped): 404. */
  async poll(saleId: string, userId: string, now = Date.now()): Promise<QueueAnswer> {
    const { sale, room } = await this.open(saleId, now, false);
    if (!room.places.has(userId) && !this.admittedNow(room, userId, now)) {
      throw new SeckillError('not_found', 'Not in this sale\'s waiting room (never joined, or dropped after not polling): join with POST.');
    }
    return this.answer(sale, room, userId, now);
  }

  /** `GET …/queue/seed`: the seed's hash always, the seed itself once the sale opened. */
  async seed(saleId: string, now = Date.now()): Promise<{ seedHash: string; seed?: string }> {
    const sale = await this.sales.find(saleId);
    if (!sale?.waitingRoom) throw new SeckillError('not_found', 'This sale has no waiting room.');
    const seed = roomSeed(sale.id, sale.secret);
    return now >= sale.startsAt ? { seedHash: seedHash(seed), seed } : { seedHash: seedHash(seed) };
  }

  /** The path request's check: a genuine pass of this user and sale, not expired, not spent. */
  checkPass(sale: Sale, userId: string, pass: string | null, now: number): boolean {
    const a = this.passOf(sale, userId, pass, now);
    return a !== null && a.state !== 'spent';
  }

  /**
   * The buy's check: as checkPass, and the pass is taken for this buy (a second buy with it waits
   * its outcome: refused meanwhile). `settlePass` must follow.
   */
  claimPass(sale: Sale, userId: string, pass: string | null, now: number): boolean {
    const a = this.passOf(sale, userId, pass, now);
    if (a === null || a.state !== 'live') return false;
    a.state = 'claimed';
    return true;
  }

  /** After the buy: reserved, the pass is spent; otherwise it is good again (until it expires). */
  settlePass(saleId: string, userId: string, reserved: boolean): void {
    const a = this.rooms.get(saleId)?.admitted.get(userId);
    if (a?.state === 'claimed') a.state = reserved ? 'spent' : 'live';
  }

  stats(saleId: string, now = Date.now()): RoomStats | null {
    const room = this.rooms.get(saleId);
    if (!room) return null;
    return {
      waiting: room.places.size,
      admitted: room.admittedTotal,
      outstanding: this.outstanding(room, now),
      abandoned: room.abandoned,
      admittedPerSecond: room.opened ? room.meter.rate(now, room.openedAt) : 0,
      opened: room.opened,
    };
  }

  /** One round over every room: drop the abandoned, open, let users out. Public for the tests' clock. */
  tick(now: number): void {
    for (const [saleId, room] of this.rooms) {
      const sale = this.sales.get(saleId);
      if (!sale?.waitingRoom || hasEnded(sale, now)) {
        this.rooms.delete(saleId);
        continue;
      }
      this.tickRoom(sale, room, now);
    }
  }

  private tickRoom(sale: Sale, room: Room, now: number): void {
    const settings = sale.waitingRoom;
    if (!settings) return;
    // Places not polled lately are dropped; passes that ran out unused stop counting (the user re-joins at the back).
    if (now >= room.nextSweep) {
      room.nextSweep = now + Math.min(1000, this.abandonAfterMs / 4);
      for (const place of room.places.values()) {
        if (now - place.lastSeen > this.abandonAfterMs) this.drop(room, place);
      }
      for (const [userId, a] of room.admitted) {
        if (a.state === 'live' && now >= a.expiresAt) room.admitted.delete(userId);
      }
    }
    if (!room.opened && now >= sale.startsAt) {
      room.opened = true;
      room.openedAt = now;
      if (settings.method === 'random') {
        const byUser = new Map(room.line.filter((p) => !p.gone).map((p) => [p.userId, p]));
        room.line = shuffled(roomSeed(sale.id, sale.secret), byUser.keys()).map((u) => byUser.get(u) as Place);
      }
      room.dirty = true;
    }
    const available = this.sales.available(sale.id);
    if (room.opened && !sale.paused && available > 0) {
      const elapsedMs = room.lastTick === null ? 0 : now - room.lastTick;
      const cap = stockCap(available, settings.stockFactor, this.outstanding(room, now));
      const a = admission({ credit: room.credit, admitPerSecond: settings.admitPerSecond, elapsedMs, cap, waiting: room.places.size });
      room.credit = a.credit;
      room.lastTick = now;
      if (a.admit > 0) this.letOut(sale, room, a.admit, now);
    } else {
      // Paused, sold out or not open: nothing saved up for the moment it resumes.
      room.credit = 0;
      room.lastTick = null;
    }
    if (room.dirty) this.renumber(room);
  }

  private letOut(sale: Sale, room: Room, n: number, now: number): void {
    let out = 0;
    for (const place of room.line) {
      if (out >= n) break;
      if (place.gone) continue;
      const nonce = passNonce();
      const expiresAt = now + this.passTtlMs;
      const pass = signPass(sale.secret, { saleId: sale.id, userId: place.userId, expiresAt, nonce });
      room.admitted.set(place.userId, { nonce, pass, expiresAt, state: 'live' });
      this.drop(room, place);
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
    if (!room.admitted.has(place.userId)) room.abandoned++;
  }

  private renumber(room: Room): void {
    room.line = room.line.filter((p) => !p.gone);
    room.line.forEach((p, i) => (p.position = i + 1));
    room.dirty = false;
  }

  /** Let out and not bought, pass still good (claimed ones too: their buy is in flight). */
  private outstanding(room: Room, now: number): number {
    let n = 0;
    for (const a of room.admitted.values()) if (a.state === 'claimed' || (a.state === 'live' && now < a.expiresAt)) n++;
    return n;
  }

  /** Let out with a pass still good (or in a buy now): joining again keeps it. */
  private holdsPass(room: Room, userId: string, now: number): boolean {
    const a = room.admitted.get(userId);
    return a !== undefined && (a.state === 'claimed' || (a.state === 'live' && now < a.expiresAt));
  }

  /** Let out and the pass still of use (good or spent): polling answers `admitted`. */
  private admittedNow(room: Room, userId: string, now: number): boolean {
    const a = room.admitted.get(userId);
    return a !== undefined && (a.state !== 'live' || now < a.expiresAt);
  }

  private passOf(sale: Sale, userId: string, pass: string | null, now: number): Admitted | null {
    const read = readPass(sale.secret, pass, sale.id, userId, now);
    if (!read.ok) return null;
    const a = this.rooms.get(sale.id)?.admitted.get(userId);
    return a !== undefined && a.nonce === read.claims.nonce ? a : null;
  }

  private async open(saleId: string, now: number, create: boolean): Promise<{ sale: Sale; room: Room }> {
    const sale = await this.sales.find(saleId);
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    if (!sale.waitingRoom) throw new SeckillError('not_found', 'This sale has no waiting room.');
    if (hasEnded(sale, now)) throw new SeckillError('ended');
    let room = this.rooms.get(saleId);
    if (!room) {
      room = new Room();
      if (create) this.rooms.set(saleId, room);
    }
    return { sale, room };
  }

  private answer(sale: Sale, room: Room, userId: string, now: number): QueueAnswer {
    const a = room.admitted.get(userId);
    if (a !== undefined && this.admittedNow(room, userId, now)) {
      const out: QueueAnswer = { state: 'admitted', position: 0, ahead: 0, etaSeconds: 0 };
      if (a.state !== 'spent') out.pass = a.pass;
      return out;
    }
    const place = room.places.get(userId);
    if (!place) throw new SeckillError('not_found', 'Not in this sale\'s waiting room.');
    place.lastSeen = now;
    const settings = sale.waitingRoom;
    // Before the open a random room has no order yet: nobody's place is known (the seed is secret).
    if (!settings || (!room.opened && settings.method === 'random')) return { state: 'waiting', position: null, ahead: null, etaSeconds: null };
    const ahead = place.position - 1;
    // Read now, not at the last tick: everyone waiting hears of the sell-out at their next poll.
    if (room.opened && this.sales.available(sale.id) <= 0) return { state: 'sold_out', position: place.position, ahead, etaSeconds: null };
    const measured = room.opened ? room.meter.rate(now, room.openedAt) : 0;
    const untilOpen = room.opened ? 0 : Math.ceil(Math.max(0, sale.startsAt - now) / 1000);
    return { state: 'waiting', position: place.position, ahead, etaSeconds: untilOpen + etaSeconds(ahead, measured, settings.admitPerSecond) };
  }
}
