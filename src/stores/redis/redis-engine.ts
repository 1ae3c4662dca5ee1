import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { newOrderId } from '../../domain/order-id.js';
import { SeckillError } from '../../domain/errors.js';
import type { Order } from '../../domain/order.js';
import type { Sale } from '../../domain/sale.js';
import { sourceOf, type Transition } from '../../domain/transition.js';
import type { SharedRecordStore } from '../record-store.js';
import type { RedisKeys } from './keys.js';
import { backlogOf, writerGroupInfo } from './writer-group.js';
import type { ReserveResult, StockEngine } from '../../engine/stock-engine.js';
import { LuaCode, busy, reserveRefusal, tooLate, unknownOutcome } from './codes.js';
import { SaleRebuilder, type RebuildTestHooks } from './rebuild.js';
import { parseStoredOrder, storedOrder } from './stored-order.js';

/**
 * A reserve script that has not started within this long (by Redis's clock) changes nothing.
 * Shorter than the connection's command timeout (2 s), so that by the time a caller gives up
 * waiting for the reply, the script can no longer make an order it does not know of.
 */
const RESERVE_BUDGET_MS = 1000;
/** How long after sending a reserve whose reply did not come the engine keeps asking what happened. */
const OUTCOME_WINDOW_MS = 10_000;
/** After that, a buy whose outcome stayed unknown is looked for (and cancelled if made) for this long. */
const ORPHAN_WATCH_MS = 10 * 60_000;
/**
 * At most this many buyers in one reserve-many call: Redis runs a script alone, so a longer one
 * holds up every other command (about 10–20 µs per buyer; 256 ≈ a few ms).
 */
const MAX_RESERVES_PER_CALL = 256;

export interface RedisEngineOptions {
  /** Called with each sale's available stock as Redis reports it (shared sold-out hint). */
  onAvailability?: (saleId: string, available: number) => void;
}

/** Not an error: a transition whose reply was lost turned out to have been made (carried out of `run`). */
class TransitionApplied extends Error {
  constructor(readonly order: Order) {
    super('transition applied');
  }
}

type Reply = Array<string | number>;
/** One buyer's numbers in a reserve-many reply: code, available, held, expiresAt. */
type BuyerReply = [number, number, number, number];

/** A buyer waiting for this turn's reserve-many call of his sale; `offset` is Redis's clock minus ours as he saw it. */
interface QueuedBuyer {
  userId: string;
  quantity: number;
  now: number;
  orderId: string;
  offset: number;
}
interface PendingBuyer extends QueuedBuyer {
  resolve(r: BuyerReply | ReserveResult): void;
  reject(err: unknown): void;
}

/**
 * The distributed engine: each decision is one Lua script on Redis (reserve-many, transition), and
 * the order record goes into the sale's stream inside the same script (the reserves of one
 * event-loop turn go as one reserve-many call per sale, each buyer decided in turn); the order writer copies
 * the stream into PostgreSQL. A sale whose record is missing in Redis (Redis restarted without
 * its data) is rebuilt from PostgreSQL before it sells again.
 */
export class RedisStockEngine implements StockEngine {
  private readonly availability = new Map<string, number>();
  private readonly sales = new Map<string, Sale>();
  private refresher: NodeJS.Timeout | null = null;
  /** Redis's clock minus ours (ms), learned from TIME; refreshed in the background. */
  private clockOffsetMs: number | null = null;
  private clockLearnedAt = 0;
  /** Rebuilds a sale Redis lost, from the database of record. */
  private readonly rebuilder: SaleRebuilder;
  /** Reserves of this event-loop turn, by sale, sent together when the turn ends. */
  private readonly queued = new Map<string, { sale: Sale; buyers: PendingBuyer[] }>();
  private flushScheduled = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: SharedRecordStore,
    private readonly log: Logger,
    private readonly opts: RedisEngineOptions = {},
  ) {
    this.rebuilder = new SaleRebuilder(redis, keys, repo, log);
  }

  /** TEST-ONLY: see RebuildTestHooks. */
  get testHooks(): RebuildTestHooks {
    return this.rebuilder.testHooks;
  }

  async load(sale: Sale): Promise<void> {
    this.sales.set(sale.id, sale);
    try {
      await this.rebuilder.ensureLoaded(sale);
      await this.refresh(sale.id);
      if (this.clockOffsetMs === null) await this.learnClock();
    } catch (err) {
      throw err instanceof SeckillError ? err : busy(err);
    }
  }

  /** Redis's clock minus ours; learned once, then kept fresh by the refresher. */
  private async clockOffset(): Promise<number> {
    if (this.clockOffsetMs === null || Date.now() - this.clockLearnedAt > 60_000) return this.learnClock();
    return this.clockOffsetMs;
  }

  /** Returns the offset now believed. */
  private async learnClock(): Promise<number> {
    const t0 = Date.now();
    const [s, us] = (await this.redis.time()) as Array<string | number>;
    const t1 = Date.now();
    const sample = Number(s) * 1000 + Math.floor(Number(us) / 1000) - Math.round((t0 + t1) / 2);
    // A slow sample is a poor one (the error is up to half the round trip): keep the last good one.
    const offset = this.clockOffsetMs === null || t1 - t0 <= 100 ? sample : this.clockOffsetMs;
    this.clockOffsetMs = offset;
    this.clockLearnedAt = t1;
    return offset;
  }

  async reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult> {
    const orderId = newOrderId();
    let offset: number;
    try {
      offset = await this.clockOffset();
    } catch (err) {
      throw busy(err); // nothing was sent
    }
    const buyer = { userId, quantity, now, orderId, offset };
    let r = await this.queueReserve(sale, buyer);
    if (!Array.isArray(r)) return r;
    if (r[0] === LuaCode['reserve-many'].notLoaded) {
      await this.load(sale);
      r = await this.queueReserve(sale, buyer);
      if (!Array.isArray(r)) return r;
    }
    const [code, available, held, expiresAt] = r;
    if (code === LuaCode['reserve-many'].tooLate) throw tooLate('reserve');
    this.availability.set(sale.id, available);
    if (code === LuaCode['reserve-many'].reserved) {
      const order: Order = {
        orderId, saleId: sale.id, userId, quantity, priceCents: sale.priceCents, status: 'reserved',
        createdAt: now, expiresAt, paidAt: null, paymentRef: null, refundedAt: null, refundReason: null,
      };
      return { ok: true, order, available, held };
    }
    const refusal = reserveRefusal(code);
    if (!refusal) throw busy(new Error(`reserve script answered ${code}`));
    return { ok: false, refusal, available, held };
  }

  /**
   * Queue one buyer for this turn's reserve-many call of his sale. Settles with his own four
   * numbers (code, available, held, expiresAt), or with his outcome learned after a lost reply.
   */
  private queueReserve(sale: Sale, buyer: QueuedBuyer): Promise<BuyerReply | ReserveResult> {
    return new Promise((resolve, reject) => {
      let q = this.queued.get(sale.id);
      if (!q) {
        q = { sale, buyers: [] };
        this.queued.set(sale.id, q);
      }
      q.buyers.push({ ...buyer, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // After the poll phase: every buy whose request was read in this turn is queued by then.
        setImmediate(() => this.flushReserves());
      }
    });
  }

  private flushReserves(): void {
    this.flushScheduled = false;
    const queued = [...this.queued.values()];
    this.queued.clear();
    for (const { sale, buyers } of queued) {
      for (let i = 0; i < buyers.length; i += MAX_RESERVES_PER_CALL) void this.reserveMany(sale, buyers.slice(i, i + MAX_RESERVES_PER_CALL));
    }
  }

  /** One reserve-many call; each buyer's promise settles with his own answer. */
  private async reserveMany(sale: Sale, buyers: PendingBuyer[]): Promise<void> {
    // Each call carries a deadline in Redis's clock; past it the script changes nothing.
    const sentAt = Date.now();
    const deadline = sentAt + Math.min(...buyers.map((b) => b.offset)) + RESERVE_BUDGET_MS;
    const args: Array<string | number> = [];
    for (const b of buyers) args.push(b.userId, b.quantity, b.now, b.orderId);
    let reply: number[];
    try {
      const raw = await this.redis.seckillReserveMany(
        this.keys.sale(sale.id), this.keys.holdings(sale.id), this.keys.orders(sale.id), this.keys.stream(sale.id), this.keys.orderIndex(),
        sale.id, deadline, ...args,
      );
      reply = raw.map(Number);
    } catch (err) {
      // No reply: the script may have run with only its reply lost (the orders are real, and
      // their buyers must hear so), or may still be queued behind a stalled Redis. Each buyer
      // finds out about his own order.
      await Promise.all(buyers.map(async (b) => {
        try {
          b.resolve(await this.lostReply(sale.id, b, deadline, sentAt, err));
        } catch (e) {
          b.reject(e);
        }
      }));
      return;
    }
    // One number: the whole call's answer (too late, or the sale not loaded); nothing changed.
    if (reply.length === 1) {
      for (const b of buyers) b.resolve([reply[0], 0, 0, 0]);
      return;
    }
    if (reply.length !== 4 * buyers.length) {
      const err = new Error(`reserve-many answered ${reply.length} numbers for ${buyers.length} buyers`);
      for (const b of buyers) b.reject(unknownOutcome(err));
      return;
    }
    buyers.forEach((b, i) => b.resolve([reply[4 * i], reply[4 * i + 1], reply[4 * i + 2], reply[4 * i + 3]]));
  }

  /** A buyer of a call whose reply never came: his 202 if his order was made, else busy (nothing changed, or unknown). */
  private async lostReply(saleId: string, b: QueuedBuyer, deadline: number, sentAt: number, err: unknown): Promise<ReserveResult> {
    const outcome = await this.reserveOutcome(saleId, b.userId, b.orderId, deadline, sentAt, err);
    if (outcome === 'none') throw busy(err);
    if (outcome === 'unknown') {
      this.watchOrphan(saleId, b.userId, b.orderId, deadline);
      throw unknownOutcome(err);
    }
    return outcome;
  }

  /**
   * A reserve script was sent and no reply came (Redis stalled, stopped, or the link broke).
   * Ask Redis, within the outcome window, whether the order exists, reading Redis's clock in the
   * same step: found → the buyer gets the 202 it is owed; absent while Redis's clock is past the
   * script's deadline → the script did not and never will make it (it is never sent twice), so
   * 503 busy is true. On the same connection the question queues behind the script itself. A
   * command refused before it was sent (client offline) did not run. Still silent at the end of
   * the window: 'unknown'.
   */
  private async reserveOutcome(saleId: string, userId: string, orderId: string, deadline: number, sentAt: number, err: unknown): Promise<ReserveResult | 'none' | 'unknown'> {
    if (err instanceof Error && err.message.includes('enableOfflineQueue')) return 'none';
    const end = sentAt + OUTCOME_WINDOW_MS;
    for (;;) {
      const found = await this.lookForOrder(saleId, userId, orderId, deadline).catch(() => 'unknown' as const);
      if (typeof found === 'object') {
        this.log.warn({ saleId, orderId, err: String(err) }, 'reserve: reply lost, but the order was made; answering 202');
      }
      if (found !== 'unknown' || Date.now() >= end) return found;
      await sleep(100);
    }
  }

  private async lookForOrder(saleId: string, userId: string, orderId: string, deadline: number): Promise<Extract<ReserveResult, { ok: true }> | 'none' | 'unknown'> {
    const [json, redisNow, available, held] = await this.redis.seckillReserveOutcome(
      this.keys.orders(saleId), this.keys.sale(saleId), this.keys.holdings(saleId), orderId, userId,
    );
    if (json) return { ok: true, order: parseStoredOrder(String(json)), available: Number(available), held: Number(held) };
    return Number(redisNow) > deadline ? 'none' : 'unknown';
  }

  /**
   * A buy answered 503 while its outcome was unknown: keep looking (in the background) until
   * Redis tells; if the order was made after all, cancel it, so the buyer holds nothing and the
   * stock sells again. Lasts ORPHAN_WATCH_MS; should this process die first, the order (if any)
   * expires at the end of its payment window like any unpaid one.
   */
  private watchOrphan(saleId: string, userId: string, orderId: string, deadline: number): void {
    const giveUp = Date.now() + ORPHAN_WATCH_MS;
    void (async () => {
      while (Date.now() < giveUp) {
        await sleep(1000, undefined, { ref: false });
        try {
          const found = await this.lookForOrder(saleId, userId, orderId, deadline);
          if (found === 'unknown') continue;
          if (found === 'none') return;
          const cancelled = found.order.status === 'reserved' ? await this.transition(found.order, { to: 'cancelled' }, Date.now()) : null;
          this.log.warn({ saleId, orderId, status: cancelled?.status ?? found.order.status }, 'reserve answered 503 with its outcome unknown made an order: cancelled');
          return;
        } catch {
          // still unreachable: ask again
        }
      }
      this.log.error({ saleId, orderId, userId }, 'reserve outcome never learned: an order, if made, expires with its payment window');
    })();
  }

  async getOrder(orderId: string): Promise<Order | null> {
    try {
      const saleId = await this.redis.hget(this.keys.orderIndex(), orderId);
      const json = saleId ? await this.redis.hget(this.keys.orders(saleId), orderId) : null;
      if (json) return parseStoredOrder(json);
    } catch (err) {
      throw busy(err);
    }
    // Finished orders of a rebuilt sale live in the database only.
    return this.repo.getOrder(orderId);
  }

  async transition(order: Order, t: Transition, now: number): Promise<Order | null> {
    let offset: number;
    try {
      offset = await this.clockOffset();
    } catch (err) {
      throw busy(err); // nothing was sent
    }
    // Like reserve: a deadline in Redis's clock, and after a lost reply Redis is asked what happened.
    const run = async (): Promise<Reply> => {
      const sentAt = Date.now();
      const deadline = sentAt + offset + RESERVE_BUDGET_MS;
      const k = this.keys;
      const id = order.saleId;
      try {
        // A refund has its own script (it leaves `paid`, and may find the order pruned from Redis);
        // its reply reads like transition's (same codes, same shape).
        if (t.to === 'refunded') {
          return await this.redis.seckillRefund(
            k.sale(id), k.holdings(id), k.orders(id), k.stream(id), k.orderIndex(),
            order.orderId, t.refundedAt, t.reason ?? '', deadline, storedOrder(order), id,
          );
        }
        return await this.redis.seckillTransition(
          k.sale(id), k.holdings(id), k.orders(id), k.stream(id),
          order.orderId, t.to, now, t.to === 'paid' ? t.paymentRef : '', deadline,
        );
      } catch (err) {
        throw await this.transitionOutcome(order, t, deadline, sentAt, err);
      }
    };
    try {
      let r = await run();
      if (Number(r[0]) === LuaCode.transition.notLoaded) {
        // Redis lost this sale's state (or a rebuild is under way): rebuild it, then decide.
        const sale = this.sales.get(order.saleId) ?? (await this.repo.getSale(order.saleId));
        if (!sale) return null;
        await this.load(sale);
        r = await run();
      }
      if (Number(r[0]) === LuaCode.transition.unknownOrder && (await this.adopt(order.orderId))) r = await run();
      if (Number(r[0]) === LuaCode.transition.tooLate) throw tooLate('transition');
      if (Number(r[0]) !== LuaCode.transition.changed) return null;
      const after = parseStoredOrder(String(r[1]));
      if (t.to !== 'paid') this.availability.set(order.saleId, Number(r[2]));
      return after;
    } catch (err) {
      if (err instanceof TransitionApplied) return err.order;
      throw err instanceof SeckillError ? err : busy(err);
    }
  }

  /**
   * A transition whose reply never came: read the order with Redis's clock (read-only) until the
   * answer is certain. Changed as asked: the change is ours (carried out as `TransitionApplied`).
   * Still reserved once Redis's clock is past the deadline: it never will be, so busy is true.
   * Redis silent past the window: a busy that says the outcome is unknown.
   */
  private async transitionOutcome(order: Order, t: Transition, deadline: number, sentAt: number, err: unknown): Promise<Error> {
    if (err instanceof Error && err.message.includes('enableOfflineQueue')) return busy(err);
    const end = sentAt + OUTCOME_WINDOW_MS;
    for (;;) {
      try {
        const [json, redisNow, available] = await this.redis.seckillReserveOutcome(
          this.keys.orders(order.saleId), this.keys.sale(order.saleId), this.keys.holdings(order.saleId), order.orderId, order.userId,
        );
        // Not in Redis any more: settled and already pruned after its write, so PostgreSQL knows.
        const current = json ? parseStoredOrder(String(json)) : await this.repo.getOrder(order.orderId);
        if (current && current.status === t.to && (t.to !== 'paid' || current.paymentRef === t.paymentRef) && (t.to !== 'refunded' || current.refundedAt === t.refundedAt)) {
          this.log.warn({ orderId: order.orderId, to: t.to, err: String(err) }, 'transition: reply lost, but the change was made');
          if (t.to !== 'paid') this.availability.set(order.saleId, Number(available));
          return new TransitionApplied(current);
        }
        if (!current || current.status !== sourceOf(t) || Number(redisNow) > deadline) return busy(err);
      } catch {
        // still silent: ask again until the window ends
      }
      if (Date.now() >= end) {
        return new SeckillError('busy', 'The stock service did not answer in time; the change may or may not have been made. Read the order, then try again.', 2, err);
      }
      await sleep(100);
    }
  }

  /**
   * An order the database has as `reserved` that a loaded sale in Redis does not know (left out
   * by a rebuild before the fence existed): take it in, holding its units, so it can leave
   * `reserved` like any other. Returns whether Redis now knows it.
   */
  private async adopt(orderId: string): Promise<boolean> {
    const o = await this.repo.getOrder(orderId);
    if (!o || o.status !== 'reserved') return false;
    const sk = this.keys;
    const r = Number(
      await this.redis.seckillAdoptOrder(sk.sale(o.saleId), sk.holdings(o.saleId), sk.orders(o.saleId), sk.orderIndex(), o.orderId, storedOrder(o), o.userId, o.quantity, o.saleId),
    );
    if (r === LuaCode['adopt-order'].adopted) this.log.warn({ saleId: o.saleId, orderId, quantity: o.quantity }, 'an order known only to the database was adopted into Redis');
    return r === LuaCode['adopt-order'].adopted || r === LuaCode['adopt-order'].known;
  }

  /** One step on Redis (update-sale.lua): refused there when an order exists, so no reserve slips in between. */
  async correct(before: Sale, after: Sale): Promise<void> {
    const fixedToo =
      after.stock !== before.stock || after.perUserLimit !== before.perUserLimit || after.startsAt !== before.startsAt ||
      after.priceCents !== before.priceCents || after.paymentWindowSeconds !== before.paymentWindowSeconds;
    const sk = this.keys;
    const run = () =>
      this.redis.seckillUpdateSale(
        sk.sale(after.id), sk.holdings(after.id), sk.orders(after.id),
        after.endsAt ?? 0, fixedToo ? 1 : 0, after.stock, after.perUserLimit, after.startsAt, after.priceCents, after.paymentWindowSeconds,
      );
    let code: number;
    try {
      code = Number(await run());
      if (code === LuaCode['update-sale'].notLoaded) {
        // Redis lost the sale: rebuild it (from the corrected sale and the database's orders), then correct.
        await this.load(after);
        code = Number(await run());
      }
    } catch (err) {
      throw err instanceof SeckillError ? err : busy(err);
    }
    if (code === LuaCode['update-sale'].hasOrders) throw new SeckillError('sale_open', 'The sale has orders: only its name, description and end time can change.');
    if (code !== LuaCode['update-sale'].updated) throw busy(new Error(`update-sale answered ${code}`));
    this.sales.set(after.id, after);
    await this.refresh(after.id).catch(() => undefined);
  }

  async setPaused(saleId: string, paused: boolean): Promise<void> {
    try {
      await this.redis.hset(this.keys.sale(saleId), 'paused', paused ? '1' : '0');
    } catch (err) {
      throw busy(err);
    }
  }

  available(saleId: string): number {
    return this.availability.get(saleId) ?? 0;
  }

  async availableNow(saleId: string): Promise<number> {
    await this.refresh(saleId).catch((err: unknown) => {
      throw busy(err);
    });
    return this.available(saleId);
  }

  async pendingWrites(saleId: string): Promise<number> {
    const info = await writerGroupInfo(this.redis, this.keys.stream(saleId), this.keys.writerGroup).catch((err: unknown) => {
      throw busy(err);
    });
    return backlogOf(info);
  }

  /** Keep the local view of every sale's stock (other processes sell too) and of Redis's clock fresh. */
  startRefresh(intervalMs = 500): void {
    let ticks = 0;
    this.refresher = setInterval(() => {
      if (ticks++ % 10 === 0) void this.learnClock().catch(() => undefined);
      for (const [saleId, sale] of this.sales) {
        void this.refresh(saleId)
          .then(async (found) => {
            // Redis lost this sale (restarted without its data): rebuild it now, rather than on the
            // next buy — a sold-out flag may be keeping every buy from getting that far.
            if (!found) await this.load(sale);
          })
          .catch(() => undefined);
      }
    }, intervalMs);
    this.refresher.unref();
  }

  /** Reads the sale's available stock from Redis; false when Redis has no complete record of it. */
  private async refresh(saleId: string): Promise<boolean> {
    const [v, ready] = await this.redis.hmget(this.keys.sale(saleId), 'available', 'ready');
    if (v === null || ready !== '1') return false;
    const available = Number(v);
    this.availability.set(saleId, available);
    this.opts.onAvailability?.(saleId, available);
    return true;
  }

  async close(): Promise<void> {
    if (this.refresher) clearInterval(this.refresher);
  }
}
