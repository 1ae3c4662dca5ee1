import crypto from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { SeckillError } from '../domain/errors.js';
import { isStorableLine, isStorableText } from '../domain/stored-text.js';
import { roomSettings, type Challenge, type QueueMethod } from '../domain/waiting-room.js';
import { hasEnded, hasOpened, type Sale, type SaleAuditAction, type SaleAuditEntry, type SaleField, type SaleFields } from '../domain/sale.js';
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
  /** The waiting room (issue 14); null or absent: none. */
  waitingRoom?: RoomInput | null;
  challenge?: Challenge | null;
}

/** A waiting room as an operator gives it (stockFactor defaults to 1). */
export interface RoomInput {
  method: QueueMethod;
  admitPerSecond: number;
  stockFactor?: number;
}

/** An operator's correction: any of these; `endsAt: null` removes the end time. */
export type SaleCorrection = Partial<Pick<Sale, 'name' | 'description' | 'priceCents' | 'stock' | 'startsAt' | 'endsAt' | 'perUserLimit' | 'paymentWindowSeconds' | 'challenge'>> & {
  waitingRoom?: RoomInput | null;
};

/** What may still change once a sale has opened. */
const OPEN_SALE_FIELDS: ReadonlySet<SaleField> = new Set(['name', 'description', 'endsAt']);

/** The order of the fields in a correction's audit entry. */
const CORRECTABLE: readonly (keyof SaleCorrection)[] = ['name', 'description', 'priceCents', 'stock', 'startsAt', 'endsAt', 'perUserLimit', 'paymentWindowSeconds', 'waitingRoom', 'challenge'];

/** Who changed a sale when no key did: the service itself (the demo sale it creates at start). */
export const SYSTEM_ACTOR = 'seckill';

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

  /**
   * The waiting room and challenge as given (each undefined when not given), checked (400 when
   * not valid). Both work in every mode (distributed: the room is in Redis).
   */
  private checkAccess(room: RoomInput | null | undefined, challenge: Challenge | null | undefined): Pick<Sale, 'waitingRoom' | 'challenge'> {
    const out: Pick<Sale, 'waitingRoom' | 'challenge'> = {};
    if (challenge !== undefined) out.challenge = challenge;
    if (room !== undefined) {
      const settings = room === null ? null : roomSettings(room);
      if (typeof settings === 'string') throw new SeckillError('bad_request', settings);
      out.waitingRoom = settings;
    }
    return out;
  }

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

  async create(input: NewSale, now = Date.now(), actor = SYSTEM_ACTOR): Promise<Sale> {
    const endsAt = input.endsAt ?? null;
    checkWindow(input.startsAt, endsAt);
    checkText(input.name, input.description);
    const access = this.checkAccess(input.waitingRoom, input.challenge);
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
      ...access,
    };
    const changes: SaleAuditEntry['changes'] = {};
    for (const f of CORRECTABLE) changes[f] = [null, sale[f]];
    changes.restockOnRefund = [null, sale.restockOnRefund];
    // Recorded only when set: the audit of a sale without them reads as before.
    if (!sale.waitingRoom) delete changes.waitingRoom;
    if (!sale.challenge) delete changes.challenge;
    await this.repo.insertSale(sale, auditEntry(sale.id, now, actor, 'create', changes));
    await this.adopt(sale);
    this.signals.saleChanged(sale.id);
    return sale;
  }

  /**
   * In turn with the reloads: a reload that read the database before this change (say, on the
   * signal of the sale's creation) would otherwise land after it and undo `paused` here.
   */
  setPaused(saleId: string, paused: boolean, actor = SYSTEM_ACTOR): Promise<Sale> {
    return this.inTurn(saleId, () => this.applyPaused(saleId, paused, actor));
  }

  private async applyPaused(saleId: string, paused: boolean, actor: string): Promise<Sale> {
    const sale = this.sales.get(saleId);
    if (!sale) throw new SeckillError('not_found', 'No such sale.');
    const was = (await this.repo.getSale(saleId))?.paused ?? sale.paused;
    // Unchanged: written again all the same (repairs a stray flag), but not recorded as a change.
    const audit = was === paused ? undefined : auditEntry(saleId, Date.now(), actor, paused ? 'pause' : 'resume', { paused: [was, paused] });
    // The engine first (unreachable: 503 busy, nothing changed), then the database with the audit
    // entry in one transaction; should that fail, the engine's half is undone.
    await this.engine.setPaused(saleId, paused);
    try {
      await this.repo.updateSale(saleId, { paused }, audit);
    } catch (err) {
      await this.engine.setPaused(saleId, was).catch(() => undefined);
      throw err;
    }
    sale.paused = paused;
    this.signals.saleChanged(saleId);
    return sale;
  }

  /**
   * Correct a sale. Before it opens, any field; from then on only name, description and end time
   * (`sale_open` otherwise). A value equal to the current one is no change; no change at all
   * returns the sale as it is and records nothing. An archived sale changes no more.
   */
  correct(saleId: string, input: SaleCorrection, actor = SYSTEM_ACTOR, now = Date.now()): Promise<Sale> {
    return this.inTurn(saleId, async () => {
      const current = await this.current(saleId);
      if (current.archivedAt) throw new SeckillError('invalid_state', 'The sale is archived: it can no longer change.');
      const fields: SaleFields = {};
      const given = { ...input, ...this.checkAccess(input.waitingRoom, input.challenge) };
      for (const f of CORRECTABLE) {
        const v = given[f];
        if (v !== undefined && !sameValue(v, current[f])) Object.assign(fields, { [f]: v });
      }
      const changed = Object.keys(fields) as SaleField[];
      if (changed.length === 0) return current;
      if (hasOpened(current, now) && changed.some((f) => !OPEN_SALE_FIELDS.has(f))) throw new SeckillError('sale_open');
      const next: Sale = { ...current, ...fields };
      if (next.endsAt !== null && 'endsAt' in fields && next.endsAt < now) {
        throw new SeckillError('bad_request', 'endsAt cannot be in the past (to end the sale now, use POST /api/admin/sales/:saleId/end).');
      }
      if ('startsAt' in fields || 'endsAt' in fields) checkWindow(next.startsAt, next.endsAt);
      checkText(next.name, next.description);
      return this.apply(current, fields, auditEntry(saleId, now, actor, 'correct', diff(current, fields)));
    });
  }

  /** End the sale now (its end time becomes now); a sale already over is left as it is. */
  end(saleId: string, actor = SYSTEM_ACTOR, now = Date.now()): Promise<Sale> {
    return this.inTurn(saleId, async () => {
      const current = await this.current(saleId);
      if (hasEnded(current, now)) return current;
      const fields: SaleFields = { endsAt: now };
      return this.apply(current, fields, auditEntry(saleId, now, actor, 'end', diff(current, fields)));
    });
  }

  /**
   * Archive an ended sale, or one that never opened (which ends it too): off the public list for
   * good; its page still answers (ended) and its orders stay. An open sale: `sale_open`.
   */
  archive(saleId: string, actor = SYSTEM_ACTOR, now = Date.now()): Promise<Sale> {
    return this.inTurn(saleId, async () => {
      const current = await this.current(saleId);
      if (current.archivedAt) return current;
      const ended = hasEnded(current, now);
      if (!ended && hasOpened(current, now)) {
        throw new SeckillError('sale_open', 'The sale is open: end it before archiving it.');
      }
      const fields: SaleFields = ended ? { archivedAt: now } : { endsAt: now, archivedAt: now };
      return this.apply(current, fields, auditEntry(saleId, now, actor, 'archive', diff(current, fields)));
    });
  }

  /** The recorded changes of a sale, oldest first. */
  async history(saleId: string): Promise<SaleAuditEntry[]> {
    return this.repo.auditOf(saleId);
  }

  /** The recorded changes of the service-wide switches, newest first. */
  async switchesHistory(): Promise<SaleAuditEntry[]> {
    return this.repo.auditOf(null);
  }

  /** Record a change of the operators' switches (they live outside the database: recorded after the fact). */
  async recordSwitches(actor: string, changes: SaleAuditEntry['changes'], now = Date.now()): Promise<void> {
    if (Object.keys(changes).length === 0) return;
    await this.repo.appendAudit(auditEntry(null, now, actor, 'switches', changes));
  }

  /** The sale as the database has it now (another process may have changed it), known here too. */
  private async current(saleId: string): Promise<Sale> {
    const known = this.sales.get(saleId);
    const stored = await this.repo.getSale(saleId);
    if (!stored) throw new SeckillError('not_found', 'No such sale.');
    if (known) Object.assign(known, stored);
    return known ?? stored;
  }

  /**
   * The engine first (distributed: one atomic step on Redis, refused once an order exists), then
   * the database with the audit entry in one transaction; the engine is put back if that fails,
   * so that nothing changed. Then this process's copy, and the other processes by signal.
   */
  private async apply(current: Sale, fields: SaleFields, audit: SaleAuditEntry): Promise<Sale> {
    const before = { ...current };
    const next: Sale = { ...current, ...fields };
    if (!this.sales.has(current.id)) await this.adopt(current);
    await this.engine.correct(before, next);
    try {
      await this.repo.updateSale(current.id, fields, audit);
    } catch (err) {
      await this.engine.correct(next, before).catch(() => undefined);
      throw err;
    }
    const sale = this.sales.get(current.id) ?? current;
    Object.assign(sale, fields);
    this.signals.saleChanged(sale.id);
    return sale;
  }
}

/** Equal values, the waiting room's settings compared by content. */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'object' && a !== null) return JSON.stringify(a) === JSON.stringify(b ?? null);
  return a === (b ?? null) || a === b;
}

function checkWindow(startsAt: number, endsAt: number | null): void {
  if (endsAt !== null && endsAt <= startsAt) throw new SeckillError('bad_request', 'endsAt must be after startsAt.');
}

function checkText(name: string, description: string | undefined): void {
  if (!isStorableLine(name) || (description !== undefined && !isStorableText(description))) {
    throw new SeckillError('bad_request', 'name and description must be text a store can keep (no control characters, no unpaired surrogates).');
  }
}

/** {field: [old, new]} of the fields given. */
function diff(current: Sale, fields: SaleFields): SaleAuditEntry['changes'] {
  const out: SaleAuditEntry['changes'] = {};
  for (const f of Object.keys(fields) as SaleField[]) out[f] = [current[f] ?? null, fields[f] ?? null];
  return out;
}

function auditEntry(saleId: string | null, at: number, actor: string, action: SaleAuditAction, changes: SaleAuditEntry['changes']): SaleAuditEntry {
  return { id: uuidv7(), saleId, at, actor, action, changes };
}
