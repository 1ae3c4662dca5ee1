import crypto from 'node:crypto';
import { SeckillError } from '../domain/errors.js';
import type { Sale } from '../domain/sale.js';
import type { StockEngine } from '../engine/stock-engine.js';
import type { LocalRefusals } from '../gateway/local-refusals.js';
import type { OrderRepository } from '../orders/repository.js';

export interface NewSale {
  name: string;
  description?: string;
  priceCents: number;
  stock: number;
  startsAt: number;
  endsAt?: number | null;
  perUserLimit?: number;
  paymentWindowSeconds?: number;
}

/** The sales, held in memory (they are few and read on every request), written through to the database. */
export class SaleService {
  private readonly sales = new Map<string, Sale>();

  constructor(
    private readonly repo: OrderRepository,
    private readonly engine: StockEngine,
    private readonly refusals: LocalRefusals,
  ) {}

  /** Rebuild the engine's state from the database of record. */
  async loadAll(): Promise<void> {
    for (const sale of await this.repo.loadSales()) {
      const holdings = await this.repo.holdings(sale.id);
      this.engine.load(sale, holdings);
      this.sales.set(sale.id, sale);
      if (this.engine.available(sale.id) <= 0) this.refusals.markSoldOut(sale.id);
      for (const [userId, q] of holdings) if (q >= sale.perUserLimit) this.refusals.markAtLimit(sale.id, userId);
    }
  }

  get(saleId: string): Sale | undefined {
    return this.sales.get(saleId);
  }

  all(): Sale[] {
    return [...this.sales.values()];
  }

  async create(input: NewSale, now = Date.now()): Promise<Sale> {
    const endsAt = input.endsAt ?? null;
    if (endsAt !== null && endsAt <= input.startsAt) {
      throw new SeckillError('bad_request', 'endsAt must be after startsAt.');
    }
    const sale: Sale = {
      id: crypto.randomBytes(9).toString('base64url'),
      name: input.name,
      description: input.description ?? '',
      priceCents: input.priceCents,
      stock: input.stock,
      startsAt: input.startsAt,
      endsAt,
      perUserLimit: input.perUserLimit ?? 1,
      paymentWindowSeconds: input.paymentWindowSeconds ?? 600,
      paused: false,
      secret: crypto.randomBytes(32).toString('base64url'),
      createdAt: now,
    };
    await this.repo.insertSale(sale);
    this.engine.load(sale, new Map());
    this.sales.set(sale.id, sale);
    return sale;
  }

  async setPaused(saleId: string, paused: boolean): Promise<Sale> {
    const sale = this.sales.get(saleId);
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    await this.repo.setPaused(saleId, paused);
    sale.paused = paused;
    return sale;
  }
}
