import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { SeckillError } from '../../domain/errors.js';
import type { Order } from '../../domain/order.js';
import type { Sale } from '../../domain/sale.js';
import type { Transition } from '../../domain/transition.js';
import type { SharedRecordStore } from '../record-store.js';
import type { RedisKeys } from './keys.js';
import { backlogOf, writerGroupInfo } from './writer-group.js';
import type { ReserveResult, StockEngine } from '../../engine/stock-engine.js';
import { LuaCode, busy, holdingsMismatch, rebuildLockLost, reserveRefusal, tooLate, unknownOutcome } from './codes.js';

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
/** The rebuild lock's lifetime; a watchdog renews it every third of that while the rebuild runs. */
const REBUILD_LOCK_MS = 15_000;
/** A caller waiting for another process's rebuild gives up (503, nothing changed) after this. */
const REBUILD_WAIT_MS = 8000;
/** A rebuild waits this long for the writers to put the sale's stream into PostgreSQL. */
const DRAIN_WAIT_MS = 20_000;
/** Orders per rebuild-chunk script. */
const REBUILD_CHUNK = 500;

export interface RedisEngineOptions {
  /** Called with each sale's available stock as Redis reports it (shared sold-out hint). */
  onAvailability?: (saleId: string, available: number) => void;
}

/** TEST-ONLY hooks into the rebuild (set by unit tests on their own engine; never in production). */
export interface RebuildTestHooks {
  /** After the database was read, before the first chunk is written. */
  afterRead?: (saleId: string) => Promise<void>;
  /** After every chunk is written, before the stock record is created. */
  beforeFinish?: (saleId: string) => Promise<void>;
}

/** An order as the Lua scripts write it: cjson leaves out the fields that are still null. */
type StoredOrder = Omit<Order, 'paidAt' | 'paymentRef'> & { paidAt?: number; paymentRef?: string };

/** The order as the Lua scripts store it (JSON in the sale's orders hash and in the stream). */
export function parseStoredOrder(json: string): Order {
  const o = JSON.parse(json) as StoredOrder;
  return { ...o, paidAt: o.paidAt ?? null, paymentRef: o.paymentRef ?? null };
}

function storedOrder(o: Order): string {
  const { paidAt, paymentRef, ...rest } = o;
  return JSON.stringify({ ...rest, ...(paidAt === null ? {} : { paidAt }), ...(paymentRef === null ? {} : { paymentRef }) });
}

/** Not an error: a transition whose reply was lost turned out to have been made (carried out of `run`). */
class TransitionApplied extends Error {
  constructor(readonly order: Order) {
    super('transition applied');
  }
}

/** Process-wide queue of rebuild reads: one fenced PostgreSQL read at a time per process. */
let fenceQueue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const p = fenceQueue.then(fn, fn);
  fenceQueue = p.catch(() => undefined);
  return p;
}

type Reply = Array<string | number>;

/**
 * The distributed engine: each decision is one Lua script on Redis (reserve, transition), and
 * the order record goes into the sale's stream inside the same script; the order writer copies
 * the stream into PostgreSQL. A sale whose record is missing in Redis (Redis restarted without
 * its data) is rebuilt from PostgreSQL before it sells again.
 */
export class RedisStockEngine implements StockEngine {
  private readonly availability = new Map<string, number>();
  private readonly sales = new Map<string, Sale>();
  private readonly rebuilding = new Map<string, Promise<void>>();
  private refresher: NodeJS.Timeout | null = null;
  /** Redis's clock minus ours (ms), learned from TIME; refreshed in the background. */
  private clockOffsetMs: number | null = null;
  private clockLearnedAt = 0;
  /** TEST-ONLY: see RebuildTestHooks. */
  testHooks: RebuildTestHooks = {};

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: SharedRecordStore,
    private readonly log: Logger,
    private readonly opts: RedisEngineOptions = {},
  ) {}

  async load(sale: Sale): Promise<void> {
    this.sales.set(sale.id, sale);
    try {
      await this.ensureGroup(sale.id);
      if (!(await this.isLoaded(sale.id))) await this.rebuildOnce(sale);
      await this.refresh(sale.id);
      if (this.clockOffsetMs === null) await this.learnClock();
    } catch (err) {
      throw err instanceof SeckillError ? err : busy(err);
    }
  }

  /**
   * Whether Redis holds the sale's complete stock record: its `ready` field, written by
   * init-sale together with the rest, is the test. A key with only some fields (a pause written
   * while Redis had lost the sale, a rebuild under way) is not a loaded sale.
   */
  private async isLoaded(saleId: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.sale(saleId), 'ready')) === '1';
  }

  /** One rebuild of a sale at a time in this process; callers share it. */
  private rebuildOnce(sale: Sale): Promise<void> {
    let p = this.rebuilding.get(sale.id);
    if (!p) {
      p = this.rebuild(sale).finally(() => this.rebuilding.delete(sale.id));
      this.rebuilding.set(sale.id, p);
    }
    return p;
  }

  /**
   * Rebuild a sale's Redis state from the database of record, under a lock so one process does
   * it. While the record is not `ready`, no script writes into the sale, so the stream gets
   * nothing new for it: first every order already in the stream is let into PostgreSQL (the
   * writers drain it), then PostgreSQL is read inside the rebuild fence (no writer holds a batch
   * it read and has not committed: see rebuild-fence.ts), then orders and holdings are written
   * in chunks and, last, the record in one step. The lock is renewed while this runs, every
   * write checks it is still ours, and it is released by compare-and-delete.
   */
  private async rebuild(sale: Sale): Promise<void> {
    const lock = this.keys.rebuildLock(sale.id);
    const token = crypto.randomBytes(8).toString('hex');
    const giveUp = Date.now() + REBUILD_WAIT_MS;
    while (!(await this.redis.set(lock, token, 'PX', REBUILD_LOCK_MS, 'NX'))) {
      if (await this.isLoaded(sale.id)) return;
      if (Date.now() > giveUp) throw new SeckillError('busy', 'The sale is being restored; nothing was changed. Try again shortly.', 2);
      await sleep(100);
    }
    let lost = false;
    const watchdog = setInterval(() => {
      this.redis.seckillLockExtend(lock, token, REBUILD_LOCK_MS).then(
        (ok) => {
          if (Number(ok) !== LuaCode['lock-extend'].renewed) lost = true;
        },
        () => undefined, // Redis away: the next renewal (or the writes' own checks) will tell
      );
    }, REBUILD_LOCK_MS / 3);
    watchdog.unref();
    const sk = this.keys;
    try {
      const begun = Number(await this.redis.seckillRebuildBegin(lock, sk.sale(sale.id), sk.holdings(sale.id), sk.orders(sale.id), token));
      if (begun === LuaCode['rebuild-begin'].loaded) return;
      if (begun !== LuaCode['rebuild-begin'].begun) throw rebuildLockLost();
      await this.drained(sale.id);
      const open = await oneAtATime(() => this.repo.openOrdersFenced(sale.id));
      await this.testHooks.afterRead?.(sale.id);
      if (lost) throw rebuildLockLost();
      let held = 0;
      for (let i = 0; i < open.length; i += REBUILD_CHUNK) {
        const args: string[] = [];
        for (const o of open.slice(i, i + REBUILD_CHUNK)) {
          held += o.quantity;
          args.push(o.orderId, o.userId, String(o.quantity), storedOrder(o));
        }
        const n = Number(await this.redis.seckillRebuildChunk(lock, sk.holdings(sale.id), sk.orders(sale.id), sk.orderIndex(), token, sale.id, ...args));
        if (n === LuaCode['rebuild-chunk'].lockLost) throw rebuildLockLost();
      }
      await this.testHooks.beforeFinish?.(sale.id);
      const created = Number(
        await this.redis.seckillInitSale(
          sk.sale(sale.id), lock, sk.holdings(sale.id), token,
          sale.stock, sale.stock - held, sale.perUserLimit, sale.startsAt, sale.endsAt ?? 0,
          sale.paused ? 1 : 0, sale.priceCents, sale.paymentWindowSeconds, held,
        ),
      );
      if (created === LuaCode['init-sale'].lockLost) throw rebuildLockLost();
      if (created === LuaCode['init-sale'].holdingsMismatch) throw holdingsMismatch(sale.id, held);
      if (open.length > 0 || sale.createdAt < Date.now() - 60_000) {
        this.log.warn({ saleId: sale.id, openOrders: open.length, held, created }, 'sale state rebuilt in Redis from the database');
      }
    } finally {
      clearInterval(watchdog);
      await this.redis.seckillLockRelease(lock, token).catch(() => undefined); // else it expires
    }
  }

  /**
   * Wait until every record in the sale's stream is in PostgreSQL: nothing pending (delivered,
   * not acknowledged — writers acknowledge after their commit) and nothing undelivered.
   */
  private async drained(saleId: string): Promise<void> {
    const stream = this.keys.stream(saleId);
    const giveUp = Date.now() + DRAIN_WAIT_MS;
    for (;;) {
      const info = await writerGroupInfo(this.redis, stream, this.keys.writerGroup);
      let left = 0;
      if (info) {
        // XINFO's lag is null when Redis cannot compute it: compare the last ids instead.
        const s = (await this.redis.xinfo('STREAM', stream)) as Array<string | number>;
        const lastId = String(s[s.indexOf('last-generated-id') + 1]);
        left = info.pending + (Number.isFinite(info.lag) ? info.lag : lastId === info.lastDeliveredId ? 0 : 1);
      }
      if (left === 0) return;
      if (Date.now() > giveUp) {
        throw new SeckillError('busy', `The sale is being restored and ${left} of its order records are still being written; nothing was changed. Try again shortly.`, 2);
      }
      await sleep(100);
    }
  }

  private async ensureGroup(saleId: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.stream(saleId), this.keys.writerGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  /** Redis's clock minus ours; learned once, then kept fresh by the refresher. */
  private async clockOffset(): Promise<number> {
    if (this.clockOffsetMs === null || Date.now() - this.clockLearnedAt > 60_000) await this.learnClock();
    return this.clockOffsetMs!;
  }

  private async learnClock(): Promise<void> {
    const t0 = Date.now();
    const [s, us] = (await this.redis.time()) as Array<string | number>;
    const t1 = Date.now();
    // A slow sample is a poor one (the error is up to half the round trip): keep the last good one.
    if (this.clockOffsetMs === null || t1 - t0 <= 100) {
      this.clockOffsetMs = Number(s) * 1000 + Math.floor(Number(us) / 1000) - Math.round((t0 + t1) / 2);
    }
    this.clockLearnedAt = t1;
  }

  async reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult> {
    const orderId = uuidv7();
    let offset: number;
    try {
      offset = await this.clockOffset();
    } catch (err) {
      throw busy(err); // nothing was sent
    }
    // Each send carries a deadline in Redis's clock; past it the script changes nothing.
    const attempt = async (): Promise<Reply | ReserveResult> => {
      const sentAt = Date.now();
      const deadline = sentAt + offset + RESERVE_BUDGET_MS;
      try {
        return await this.redis.seckillReserve(
          this.keys.sale(sale.id), this.keys.holdings(sale.id), this.keys.orders(sale.id), this.keys.stream(sale.id), this.keys.orderIndex(),
          sale.id, userId, quantity, now, orderId, deadline,
        );
      } catch (err) {
        // No reply: the script may have run with only its reply lost (the order is real, and
        // the buyer must hear so), or may still be queued behind a stalled Redis.
        const outcome = await this.reserveOutcome(sale.id, userId, orderId, deadline, sentAt, err);
        if (outcome === 'none') throw busy(err);
        if (outcome === 'unknown') {
          this.watchOrphan(sale.id, userId, orderId, deadline);
          throw unknownOutcome(err);
        }
        return outcome;
      }
    };
    let r = await attempt();
    if (!Array.isArray(r)) return r;
    if (Number(r[0]) === LuaCode.reserve.notLoaded) {
      await this.load(sale);
      r = await attempt();
      if (!Array.isArray(r)) return r;
    }
    const [code, available, held, expiresAt] = r.map(Number);
    if (code === LuaCode.reserve.tooLate) throw tooLate('reserve');
    this.availability.set(sale.id, available);
    if (code === LuaCode.reserve.reserved) {
      const order: Order = {
        orderId, saleId: sale.id, userId, quantity, priceCents: sale.priceCents, status: 'reserved',
        createdAt: now, expiresAt, paidAt: null, paymentRef: null,
      };
      return { ok: true, order, available, held };
    }
    const refusal = reserveRefusal(code);
    if (!refusal) throw busy(new Error(`reserve script answered ${code}`));
    return { ok: false, refusal, available, held };
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
      try {
        return await this.redis.seckillTransition(
          this.keys.sale(order.saleId), this.keys.holdings(order.saleId), this.keys.orders(order.saleId), this.keys.stream(order.saleId),
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
        if (current && current.status === t.to && (t.to !== 'paid' || current.paymentRef === t.paymentRef)) {
          this.log.warn({ orderId: order.orderId, to: t.to, err: String(err) }, 'transition: reply lost, but the change was made');
          if (t.to !== 'paid') this.availability.set(order.saleId, Number(available));
          return new TransitionApplied(current);
        }
        if (!current || current.status !== 'reserved' || Number(redisNow) > deadline) return busy(err);
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
