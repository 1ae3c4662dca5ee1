import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { SeckillError } from '../domain/errors.js';
import type { Order } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { PgOrderRepository } from '../orders/pg-repository.js';
import type { Transition } from '../orders/repository.js';
import type { RedisKeys } from './redis-keys.js';
import { backlogOf, writerGroupInfo } from './writer-group.js';
import type { Refusal, ReserveResult, StockEngine } from './stock-engine.js';

const REFUSALS: Record<number, Refusal> = { [-2]: 'paused', [-3]: 'not_started', [-4]: 'ended', [-5]: 'limit_reached', [-6]: 'sold_out' };
const NOT_LOADED = -1;
/** How long a buy whose reserve reply was lost waits to learn whether its order was made. */
const UNKNOWN_OUTCOME_MS = 3000;

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

/** Redis is unreachable or slow: the buyer hears busy, and nothing was decided here. */
function busy(err: unknown): SeckillError {
  return new SeckillError('busy', 'The stock service is unavailable; nothing was changed. Try again shortly.', 1, err);
}

/**
 * The distributed engine: each decision is one Lua script on Redis (reserve, transition), and
 * the order record goes into the sale's stream inside the same script; the order writer copies
 * the stream into PostgreSQL. A sale whose record is missing in Redis (Redis restarted without
 * its data) is rebuilt from PostgreSQL before it sells again.
 */
export class RedisStockEngine implements StockEngine {
  private readonly availability = new Map<string, number>();
  private readonly sales = new Map<string, Sale>();
  private refresher: NodeJS.Timeout | null = null;
  /** Called with each sale's available stock as Redis reports it (shared sold-out hint). */
  onAvailability: (saleId: string, available: number) => void = () => undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: PgOrderRepository,
    private readonly log: Logger,
  ) {}

  async load(sale: Sale): Promise<void> {
    this.sales.set(sale.id, sale);
    try {
      await this.ensureGroup(sale.id);
      if (!(await this.hasStockRecord(sale.id))) await this.rebuild(sale);
      await this.refresh(sale.id);
    } catch (err) {
      throw err instanceof SeckillError ? err : busy(err);
    }
  }

  /**
   * Whether Redis holds the sale's stock record. Its `available` field is the test, not the key:
   * a write to the hash while Redis had lost the sale (setPaused after an empty restart) leaves a
   * key without a record, which must still be rebuilt.
   */
  private async hasStockRecord(saleId: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.sale(saleId), 'available')) === 1;
  }

  /** Rebuild a sale's Redis state from the database of record, under a lock so one process does it. */
  private async rebuild(sale: Sale): Promise<void> {
    const lock = this.keys.rebuildLock(sale.id);
    const token = crypto.randomBytes(8).toString('hex');
    while (!(await this.redis.set(lock, token, 'PX', 30_000, 'NX'))) {
      await new Promise((r) => setTimeout(r, 100));
      if (await this.hasStockRecord(sale.id)) return;
    }
    try {
      if (await this.hasStockRecord(sale.id)) return;
      const open = await this.repo.openOrders(sale.id);
      let held = 0;
      await this.redis.del(this.keys.holdings(sale.id), this.keys.orders(sale.id));
      for (let i = 0; i < open.length; i += 1000) {
        const p = this.redis.pipeline();
        for (const o of open.slice(i, i + 1000)) {
          held += o.quantity;
          p.hset(this.keys.orders(sale.id), o.orderId, storedOrder(o));
          p.hincrby(this.keys.holdings(sale.id), o.userId, o.quantity);
          p.hset(this.keys.orderIndex(), o.orderId, sale.id);
        }
        await p.exec();
      }
      const created = await this.redis.seckillInitSale(
        this.keys.sale(sale.id),
        sale.stock, sale.stock - held, sale.perUserLimit, sale.startsAt, sale.endsAt ?? 0,
        sale.paused ? 1 : 0, sale.priceCents, sale.paymentWindowSeconds,
      );
      if (open.length > 0 || sale.createdAt < Date.now() - 60_000) {
        this.log.warn({ saleId: sale.id, openOrders: open.length, held, created }, 'sale state rebuilt in Redis from the database');
      }
    } finally {
      if ((await this.redis.get(lock)) === token) await this.redis.del(lock);
    }
  }

  private async ensureGroup(saleId: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.stream(saleId), this.keys.writerGroup, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  async reserve(sale: Sale, userId: string, quantity: number, now: number): Promise<ReserveResult> {
    const orderId = uuidv7();
    const run = () =>
      this.redis.seckillReserve(
        this.keys.sale(sale.id), this.keys.holdings(sale.id), this.keys.orders(sale.id), this.keys.stream(sale.id), this.keys.orderIndex(),
        sale.id, userId, quantity, now, orderId,
      );
    let r: Array<string | number>;
    try {
      r = await run();
      if (Number(r[0]) === NOT_LOADED) {
        await this.load(sale);
        r = await run();
      }
    } catch (err) {
      // The script may have run with only its reply lost: then the order is real, and the buyer
      // must hear so (a 503 says that nothing was changed).
      const made = await this.reserveOutcome(sale.id, userId, orderId, err);
      if (made) return made;
      throw busy(err);
    }
    const [code, available, held, expiresAt] = r.map(Number);
    this.availability.set(sale.id, available);
    if (code === 1) {
      const order: Order = {
        orderId, saleId: sale.id, userId, quantity, priceCents: sale.priceCents, status: 'reserved',
        createdAt: now, expiresAt, paidAt: null, paymentRef: null,
      };
      return { ok: true, order, available, held };
    }
    const refusal = REFUSALS[code];
    if (!refusal) throw busy(new Error(`reserve script answered ${code}`));
    return { ok: false, refusal, available, held };
  }

  /**
   * A reserve script was sent and no reply came: Redis stopped, or the link broke, after it may
   * have run (Redis writes a command's effects, to its AOF too, before the reply leaves). Ask
   * Redis, for up to a few seconds, whether the order exists: if it does, it is returned and the
   * buyer gets the 202 it is owed; if Redis says it does not, the script did not run (it is never
   * sent twice) and 503 busy is true. A command refused before it was sent (client offline)
   * did not run.
   */
  private async reserveOutcome(saleId: string, userId: string, orderId: string, err: unknown): Promise<ReserveResult | null> {
    if (err instanceof Error && err.message.includes('enableOfflineQueue')) return null;
    const deadline = Date.now() + UNKNOWN_OUTCOME_MS;
    while (Date.now() < deadline) {
      try {
        const json = await this.redis.hget(this.keys.orders(saleId), orderId);
        if (json === null) return null;
        const [available, held] = await Promise.all([
          this.redis.hget(this.keys.sale(saleId), 'available'),
          this.redis.hget(this.keys.holdings(saleId), userId),
        ]);
        this.log.warn({ saleId, orderId, err: String(err) }, 'reserve: reply lost, but the order was made; answering 202');
        return { ok: true, order: parseStoredOrder(json), available: Number(available ?? 0), held: Number(held ?? 0) };
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return null;
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
    const run = () =>
      this.redis.seckillTransition(
        this.keys.sale(order.saleId), this.keys.holdings(order.saleId), this.keys.orders(order.saleId), this.keys.stream(order.saleId),
        order.orderId, t.to, now, t.to === 'paid' ? t.paymentRef : '',
      );
    try {
      let r = await run();
      if (Number(r[0]) === -1 && order.status === 'reserved') {
        // Redis lost this sale's state: rebuild it from the database, then decide.
        const sale = this.sales.get(order.saleId);
        if (!sale) return null;
        await this.load(sale);
        r = await run();
      }
      if (Number(r[0]) !== 1) return null;
      const after = parseStoredOrder(String(r[1]));
      if (t.to !== 'paid') this.availability.set(order.saleId, Number(r[2]));
      return after;
    } catch (err) {
      throw busy(err);
    }
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

  /** Keep the local view of every sale's stock fresh: other processes sell too. */
  startRefresh(intervalMs = 500): void {
    this.refresher = setInterval(() => {
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

  /** Reads the sale's available stock from Redis; false when Redis has no stock record for it. */
  private async refresh(saleId: string): Promise<boolean> {
    const v = await this.redis.hget(this.keys.sale(saleId), 'available');
    if (v === null) return false;
    const available = Number(v);
    this.availability.set(saleId, available);
    this.onAvailability(saleId, available);
    return true;
  }

  async close(): Promise<void> {
    if (this.refresher) clearInterval(this.refresher);
  }
}
