import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { SeckillError } from '../domain/errors.js';
import type { Order, OrderStatus } from '../domain/order.js';
import type { Sale } from '../domain/sale.js';
import type { PgOrderRepository } from '../orders/pg-repository.js';
import type { Transition } from '../orders/repository.js';
import type { RedisKeys } from './redis-keys.js';
import type { Refusal, ReserveResult, StockEngine } from './stock-engine.js';

const REFUSALS: Record<number, Refusal> = { [-2]: 'paused', [-3]: 'not_started', [-4]: 'ended', [-5]: 'limit_reached', [-6]: 'sold_out' };
const NOT_LOADED = -1;

interface StoredOrder {
  orderId: string;
  saleId: string;
  userId: string;
  quantity: number;
  priceCents: number;
  status: OrderStatus;
  createdAt: number;
  expiresAt: number;
  paidAt?: number;
  paymentRef?: string;
}

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
    await this.ensureGroup(sale.id);
    if (!(await this.redis.exists(this.keys.sale(sale.id)))) await this.rebuild(sale);
    await this.refresh(sale.id);
  }

  /** Rebuild a sale's Redis state from the database of record, under a lock so one process does it. */
  private async rebuild(sale: Sale): Promise<void> {
    const lock = this.keys.rebuildLock(sale.id);
    const token = crypto.randomBytes(8).toString('hex');
    while (!(await this.redis.set(lock, token, 'PX', 30_000, 'NX'))) {
      await new Promise((r) => setTimeout(r, 100));
      if (await this.redis.exists(this.keys.sale(sale.id))) return;
    }
    try {
      if (await this.redis.exists(this.keys.sale(sale.id))) return;
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
    await this.redis.hset(this.keys.sale(saleId), 'paused', paused ? '1' : '0');
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
    const groups = (await this.redis.xinfo('GROUPS', this.keys.stream(saleId)).catch((err: unknown) => {
      throw busy(err);
    })) as Array<Array<string | number>>;
    for (const g of groups) {
      const f = new Map<string, string | number>();
      for (let i = 0; i < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
      if (f.get('name') === this.keys.writerGroup) return Number(f.get('pending') ?? 0) + Number(f.get('lag') ?? 0);
    }
    return 0;
  }

  /** Keep the local view of every sale's stock fresh: other processes sell too. */
  startRefresh(intervalMs = 500): void {
    this.refresher = setInterval(() => {
      for (const saleId of this.sales.keys()) void this.refresh(saleId).catch(() => undefined);
    }, intervalMs);
    this.refresher.unref();
  }

  private async refresh(saleId: string): Promise<void> {
    const v = await this.redis.hget(this.keys.sale(saleId), 'available');
    if (v === null) return;
    const available = Number(v);
    this.availability.set(saleId, available);
    this.onAvailability(saleId, available);
  }

  async close(): Promise<void> {
    if (this.refresher) clearInterval(this.refresher);
  }
}
