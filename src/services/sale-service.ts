import crypto from 'node:crypto';
import { SeckillError } from '../domain/errors.js';
import { isStorableLine, isStorableText } from '../domain/stored-text.js';
import type { Sale } from '../domain/sale.js';
import type { StockEngine } from '../engine/stock-engine.js';
import type { LocalRefusals } from '../gateway/local-refusals.js';
import type { SaleSignals } from './signals.js';
import type { RecordStore } from '../stores/record-store.js';

/**
 * A new sale id: 12 base64url characters (72 random bits). Never one that begins with `-`, which
 * a command line would read as an option (`seckill sale show -x…`).
 */
export function newSaleId(): string {
  for (;;) {
    const id = crypto.randomBytes(9).toString('base64url');
    if (id[0] !== '-') return id;
  }
}

export interface NewSale {
  name: string;
  description?: string;
  priceCents: number;
  stock: number;
  startsAt: number;
  endsAt?: number | null;
  perUserLimit?: number;
  paymentWindowSeconds?: number;
  /** A refund returns the units to stock (default false: they stay sold). */
  restockOnRefund?: boolean;
}

/**
 * The sales, held in memory (they are few and read on every request), written through to the
 * database. Other processes hear of a new or changed sale by a signal; until then an unknown id
 * is looked up in the database, at most once a second per id.
 */
export class SaleService {
  private readonly sales = new Map<string, Sale>();
  private readonly misses = new Map<string, number>();
  private readonly reloads = new Map<string, Promise<void>>();

  constructor(
    private readonly repo: RecordStore,
    private readonly engine: StockEngine,
    private readonly refusals: LocalRefusals,
    /** Tells the other processes of a new or changed sale. */
    private readonly signals: Pick<SaleSignals, 'saleChanged'>,
  ) {}

  /** Load every sale and make the engine ready to sell it (rebuilding its state when needed). */
  async loadAll(): Promise<void> {
    for (const sale of await this.repo.loadSales()) await this.adopt(sale);
  }

  private async adopt(sale: Sale): Promise<void> {
    await this.engine.load(sale);
    const known = this.sales.get(sale.id);
    if (known) Object.assign(known, sale);
    else this.sales.set(sale.id, sale);
    if (this.engine.available(sale.id) <= 0) this.refusals.markSoldOut(sale.id);
  }

  get(saleId: string): Sale | undefined {
    return this.sales.get(saleId);
  }

  /** Units left as this process last saw them (no I/O). */
  available(saleId: string): number {
    return this.engine.available(saleId);
  }

  /** Units left, asked of the engine now. */
  availableNow(saleId: string): Promise<number> {
    return this.engine.availableNow(saleId);
  }

  /** Order records of this sale decided but not yet in the database of record (distributed mode). */
  pendingWrites(saleId: string): Promise<number> {
    return this.engine.pendingWrites(saleId);
  }

  /** A sale this process may not have heard of yet (created on another process a moment ago). */
  async find(saleId: string): Promise<Sale | undefined> {
    const known = this.sales.get(saleId);
    if (known) return known;
    const now = Date.now();
    if ((this.misses.get(saleId) ?? 0) > now) return undefined;
    await this.reload(saleId);
    const found = this.sales.get(saleId);
    if (!found) {
      if (this.misses.size > 10_000) this.misses.clear();
      this.misses.set(saleId, now + 1000);
    }
    return found;
  }

  /**
   * Read a sale again from the database (a signal said it changed). One reload at a time per
   * sale, in the order asked: an older read whose engine load is slow (a rebuild waiting for
   * another process's lock) must not land after a newer one (e.g. a stale `paused`).
   */
  async reload(saleId: string): Promise<void> {
    await this.inTurn(saleId, async () => {
      const sale = await this.repo.getSale(saleId);
      if (sale) await this.adopt(sale);
    });
  }

  /** Run `step` after this sale's earlier reloads and changes (one at a time per sale, in order). */
  private async inTurn<T>(saleId: string, step: () => Promise<T>): Promise<T> {
    const run = (this.reloads.get(saleId) ?? Promise.resolve()).catch(() => undefined).then(step);
    const next = run.then(() => undefined, () => undefined); // the queue goes on after a failure
    this.reloads.set(saleId, next);
    try {
      return await run;
    } finally {
      if (this.reloads.get(saleId) === next) this.reloads.delete(saleId);
    }
  }

  all(): Sale[] {
    return [...this.sales.values()];
  }

  async create(input: NewSale, now = Date.now()): Promise<Sale> {
    const endsAt = input.endsAt ?? null;
    if (endsAt !== null && endsAt <= input.startsAt) {
      throw new SeckillError('bad_request', 'endsAt must be after startsAt.');
    }
    if (!isStorableLine(input.name) || (input.description !== undefined && !isStorableText(input.description))) {
      throw new SeckillError('bad_request', 'name and description must be text a store can keep (no control characters, no unpaired surrogates).');
    }
    const sale: Sale = {
      id: newSaleId(),
      name: input.name,
      description: input.description ?? '',
      priceCents: input.priceCents,
      stock: input.stock,
      startsAt: input.startsAt,
      endsAt,
      perUserLimit: input.perUserLimit ?? 1,
      paymentWindowSeconds: input.paymentWindowSeconds ?? 600,
      paused: false,
      restockOnRefund: input.restockOnRefund ?? false,
      secret: crypto.randomBytes(32).toString('base64url'),
      createdAt: now,
    };
    await this.repo.insertSale(sale);
    await this.adopt(sale);
    this.signals.saleChanged(sale.id);
    return sale;
  }

  /**
   * In turn with the reloads: a reload that read the database before this change (say, on the
   * signal of the sale's creation) would otherwise land after it and undo `paused` here.
   */
  setPaused(saleId: string, paused: boolean): Promise<Sale> {
    return this.inTurn(saleId, () => this.applyPaused(saleId, paused));
  }

  private async applyPaused(saleId: string, paused: boolean): Promise<Sale> {
    const sale = this.sales.get(saleId);
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    await this.repo.setPaused(saleId, paused);
    try {
      await this.engine.setPaused(saleId, paused);
    } catch (err) {
      // The engine is unreachable (503 busy): undo the database's half, so that nothing changed.
      await this.repo.setPaused(saleId, sale.paused).catch(() => undefined);
      throw err;
    }
    sale.paused = paused;
    this.signals.saleChanged(saleId);
    return sale;
  }
}
