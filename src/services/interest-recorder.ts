import { setImmediate as yieldTurn } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { saleInterestEvent, type OutboxEvent } from '../domain/events.js';
import { windowRefusal, type Sale } from '../domain/sale.js';
import { Auth } from '../gateway/auth.js';
import type { InterestPage, InterestRecords, InterestRow, InterestSummary } from '../stores/record-store.js';

/** One intended purchase, as the routes show it (they do not reach the stores). */
export type { InterestRow } from '../stores/record-store.js';

// Intended purchases (issue 13): a buyer refused because the sale is sold out is kept for the
// sales team, once per user and sale. The refusal is answered before anyone looks at the token
// (src/gateway/funnel.ts), and it must stay that cheap: the refusal path only puts the credential
// as sent (the Authorization header) into a bounded queue; the tokens are verified later, off
// that path, in batches, and a token that does not verify (forged, expired) records nothing.

/** The request body still to come (the raw fast path does not read it): only its quantity is wanted. */
export interface RawBody {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** The buy's quantity: parsed already (the routes), or in the raw body (the fast path). */
export type QuantitySource = number | RawBody;

/** What the recorder needs; the wired services fit it. */
export interface InterestRecorderDeps {
  auth: Pick<Auth, 'user'>;
  store: Pick<InterestRecords, 'recordInterest' | 'listInterest' | 'interestSummary'>;
  /** The sales this process holds, and their stock left (the engine's count: the sold-out hint expires). */
  sales: { all(): Sale[]; available(saleId: string): number };
  log: Logger;
  /** SECKILL_INTEREST: off records nothing (and appends no summary). */
  enabled: boolean;
  /** Appends the `sale.interest` summary to the outbox (an id already there is left as it is); absent, none is sent. */
  appendEvents?: (events: OutboxEvent[]) => Promise<void>;
}

export interface InterestLimits {
  /** Refusals waiting for verification; more are dropped (and counted). */
  queueCapacity: number;
  /** Tokens verified between two looks at the clock (the batch yields to the answers there). */
  batchSize: number;
  /** How long a refusal waits in the queue for company before the batch runs (ms). */
  flushMs: number;
  /**
   * The share of the event loop's busy time the timed batches may spend verifying tokens (each
   * verification is an HMAC, dearer than the refusal itself): a flood of new tokens slows the
   * refusals by at most this much; what the batches cannot take waits in the queue, and past its
   * capacity is dropped (counted in `stats.dropped`).
   */
  verifyShare: number;
  /** Credentials (header or token strings) remembered per sale (a repeat costs a set lookup, nothing more). */
  tokensPerSale: number;
  /** User ids remembered per sale as recorded (past it, the database's key de-duplicates). */
  usersPerSale: number;
  /** How often sales are checked for a due summary (ms). */
  summaryCheckMs: number;
  /** A sale without an end time is summarised once it has stayed sold out this long (ms). */
  settleMs: number;
  /** At start, a sale that ended up to this long ago is still summarised (a restart around its end). */
  summaryGraceMs: number;
}

export const INTEREST_LIMITS: InterestLimits = {
  queueCapacity: 10_000,
  batchSize: 16,
  flushMs: 100,
  verifyShare: 0.05,
  tokensPerSale: 10_000,
  usersPerSale: 100_000,
  summaryCheckMs: 1000,
  settleMs: 60_000,
  summaryGraceMs: 10 * 60_000,
};

/** Counters since the start of this process (for logs, tests and /metrics). */
export interface InterestStats {
  queued: number;
  /** Refusals not recorded because the queue was full. */
  dropped: number;
  /** Tokens that did not verify (forged, expired, not a user token). */
  rejected: number;
  /** Rows handed to the database (it ignores users it already holds). */
  written: number;
  /** Rows lost to a failed write (their tokens are forgotten: a later refusal records them). */
  failed: number;
  summaries: number;
}

interface Pending {
  saleId: string;
  /** The Authorization header as sent, or the bearer token itself. */
  credential: string;
  quantity: number;
  at: number;
}

/** Largest quantity a buy may ask for (src/http/schemas.ts BuyBody); other values count as 1. */
const MAX_QUANTITY = 1000;
/** A raw body longer than this is not read for its quantity (the fast path drains at most 16 KiB). */
const MAX_RAW_BODY = 1024;
/** Longer credentials are not kept (Auth.bearer refuses headers over 4096 characters anyway). */
const MAX_CREDENTIAL = 2048;

/**
 * The bearer token of a credential: the Authorization header as sent (the raw fast path: keyed by
 * the header string the parser made, which hashes at once, unlike a slice of it), or the token
 * itself (the use case). A JWT never starts with "Bearer ".
 */
function tokenOf(credential: string): string | null {
  return credential.startsWith('Bearer ') ? Auth.bearer(credential) : credential;
}

/** The quantity a raw buy body asks for: its `quantity` when a valid one, else 1 (the buy's default). */
export function quantityOf(body: string): number {
  if (body.length === 0) return 1;
  try {
    const q = (JSON.parse(body) as { quantity?: unknown } | null)?.quantity;
    return typeof q === 'number' && Number.isInteger(q) && q >= 1 && q <= MAX_QUANTITY ? q : 1;
  } catch {
    return 1;
  }
}

/** A number mixed from a credential's length and last characters (a token's signature): cheap to hash. */
function keyOf(credential: string): number {
  let h = credential.length;
  for (let i = Math.max(0, credential.length - 8); i < credential.length; i++) h = (Math.imul(h, 31) + credential.charCodeAt(i)) | 0;
  return h & 0x3fffffff; // a small integer: the map hashes it at once
}

/**
 * The credentials already queued for one sale, looked up without hashing the whole string: V8
 * hashes a fresh 200-character header string in about a microsecond (bench/interest-hot-path.ts),
 * as much as the rest of the refusal. Keyed by `keyOf`; each entry holds the whole string it
 * stands for, compared on a hit (two credentials with one key: the later one is queued each time,
 * and the user set or the database's key keeps its user once). Stops growing at `cap`.
 */
class SeenCredentials {
  private readonly byKey = new Map<number, string>();
  constructor(private readonly cap: number) {}

  has(credential: string): boolean {
    return this.byKey.get(keyOf(credential)) === credential;
  }

  add(credential: string): void {
    if (this.byKey.size < this.cap) this.byKey.set(keyOf(credential), credential);
  }

  delete(credential: string): void {
    const k = keyOf(credential);
    if (this.byKey.get(k) === credential) this.byKey.delete(k);
  }
}

/** A set that stops growing at `cap` (past it, membership still answers for what it holds). */
function addBounded(set: Set<string>, value: string, cap: number): void {
  if (set.size < cap) set.add(value);
}

export class InterestRecorder {
  private readonly limits: InterestLimits;
  private queue: Pending[] = [];
  /** Refusals taken by the batch running now (they count against the queue's capacity). */
  private inBatch = 0;
  /** Per sale: credentials already queued (verified or not): a repeat costs nothing more. */
  private readonly seen = new Map<string, SeenCredentials>();
  /** Per sale: users already recorded by this process. */
  private readonly users = new Map<string, Set<string>>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private summaryTimer: NodeJS.Timeout | null = null;
  private summarising = false;
  /** Sales whose summary this process appended (or found not due: ended before it started). */
  private readonly summarised = new Set<string>();
  /** Sales without an end time: since when this process has seen them sold out. */
  private readonly soldOutSince = new Map<string, number>();
  private readonly startedAt = Date.now();
  /** The event loop's busy time (ms) when the last timed batch started, and how long that batch took. */
  private lastActiveMs = performance.eventLoopUtilization().active;
  private lastBatchMs = 0;
  private closed = false;
  readonly stats: InterestStats = { queued: 0, dropped: 0, rejected: 0, written: 0, failed: 0, summaries: 0 };

  constructor(private readonly d: InterestRecorderDeps, limits: Partial<InterestLimits> = {}) {
    this.limits = { ...INTEREST_LIMITS, ...limits };
  }

  get enabled(): boolean {
    return this.d.enabled;
  }

  /** Starts the periodic summary check (not needed for recording). */
  start(): void {
    if (!this.d.enabled || this.summaryTimer) return;
    this.summaryTimer = setInterval(() => void this.summariseDue(), this.limits.summaryCheckMs);
    this.summaryTimer.unref();
  }

  /**
   * A buy refused because the sale is sold out: the credential as sent (the Authorization header,
   * or the bearer token) and the quantity, queued for a batch. The refusal path's whole cost here
   * is a set lookup for a credential seen before, and a push for a new one. Never throws.
   */
  soldOut(saleId: string, credential: string | null | undefined, quantity: QuantitySource, at = Date.now()): void {
    if (!this.d.enabled || !credential || credential.length > MAX_CREDENTIAL || this.closed) return;
    let seen = this.seen.get(saleId);
    if (seen === undefined) {
      seen = new SeenCredentials(this.limits.tokensPerSale);
      this.seen.set(saleId, seen);
    } else if (seen.has(credential)) return;
    if (this.queue.length + this.inBatch >= this.limits.queueCapacity) {
      this.stats.dropped++;
      return;
    }
    if (typeof quantity === 'number') {
      this.enqueue(seen, { saleId, credential, quantity, at });
      return;
    }
    // The body arrives after this answer was sent: its quantity is read when it ends.
    seen.add(credential);
    let body = '';
    quantity.on('data', (chunk) => {
      if (body.length <= MAX_RAW_BODY) body += chunk.toString('utf8');
    });
    quantity.on('end', () => {
      if (this.queue.length + this.inBatch < this.limits.queueCapacity) {
        this.enqueue(seen, { saleId, credential, quantity: body.length > MAX_RAW_BODY ? 1 : quantityOf(body), at });
        return;
      }
      this.stats.dropped++;
      seen.delete(credential); // not queued: a later refusal may be
    });
  }

  private enqueue(seen: SeenCredentials, p: Pending): void {
    seen.add(p.credential);
    this.queue.push(p);
    this.stats.queued++;
    this.schedule();
  }

  /** The next timed batch, unless one is due already. */
  private schedule(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.timedBatch();
    }, this.limits.flushMs);
    this.flushTimer.unref(); // close() writes what is left
  }

  /**
   * A batch within its time budget: verifyShare of the time the event loop spent on other work
   * (answers) since the last batch, so that the refusals lose at most that share however busy
   * the process is; at least verifyShare of 20 ms, so that a quiet process still drains its queue.
   * The rest waits for the next batch.
   */
  private timedBatch(): Promise<void> {
    return this.serially(async () => {
      const elu = performance.eventLoopUtilization();
      const busyMs = Math.max(0, elu.active - this.lastActiveMs - this.lastBatchMs);
      const budget = this.limits.verifyShare * Math.max(busyMs, 20);
      const started = performance.now();
      await this.writeBatch(budget);
      this.lastBatchMs = performance.now() - started;
      this.lastActiveMs = elu.active;
      if (this.queue.length > 0) this.schedule();
    });
  }

  /** Verifies and writes everything queued so far, whatever it takes; resolves when it is written (or failed). */
  flush(): Promise<void> {
    return this.serially(async () => {
      while (this.queue.length > 0) await this.writeBatch(Infinity);
    });
  }

  /** One batch at a time; a call during a batch waits for it, then takes what queued meanwhile. */
  private serially(run: () => Promise<void>): Promise<void> {
    const next = (this.flushing ?? Promise.resolve()).then(run);
    const mine = next.finally(() => {
      if (this.flushing === mine) this.flushing = null;
    });
    this.flushing = mine;
    return mine;
  }

  /** Verifies and writes queued refusals for up to `budgetMs` of verification; the rest stays queued. */
  private async writeBatch(budgetMs: number): Promise<void> {
    const taken = this.queue;
    this.queue = [];
    this.inBatch = taken.length;
    try {
      await this.verifyAndWrite(taken, budgetMs);
    } finally {
      this.inBatch = 0;
    }
  }

  private async verifyAndWrite(taken: Pending[], budgetMs: number): Promise<void> {
    const rows: InterestRow[] = [];
    const credentials: string[] = [];
    const started = performance.now();
    for (let i = 0; i < taken.length; i++) {
      if (i > 0 && i % this.limits.batchSize === 0) {
        if (performance.now() - started >= budgetMs) {
          this.queue = taken.slice(i).concat(this.queue); // next batch's, first in line
          this.inBatch = i;
          break;
        }
        await yieldTurn(); // let the answers through
      }
      const p = taken[i];
      let userId: string;
      try {
        userId = this.d.auth.user(tokenOf(p.credential));
      } catch {
        this.stats.rejected++; // forged or expired: nothing recorded; the token stays known
        continue;
      }
      let recorded = this.users.get(p.saleId);
      if (recorded === undefined) {
        recorded = new Set();
        this.users.set(p.saleId, recorded);
      }
      if (recorded.has(userId)) continue;
      addBounded(recorded, userId, this.limits.usersPerSale);
      rows.push({ saleId: p.saleId, userId, quantity: p.quantity, at: p.at });
      credentials.push(p.credential);
    }
    if (rows.length === 0) return;
    try {
      await this.d.store.recordInterest(rows);
      this.stats.written += rows.length;
    } catch (err) {
      // Forgotten, so that the next refusal of these buyers queues them again.
      rows.forEach((r, i) => {
        this.users.get(r.saleId)?.delete(r.userId);
        this.seen.get(r.saleId)?.delete(credentials[i]);
      });
      this.stats.failed += rows.length;
      this.d.log.warn({ err, rows: rows.length }, 'intended purchases not recorded (database unavailable); kept for the next refusal');
    }
  }

  /**
   * The `sale.interest` summary, appended once per sale: when the sale has ended (its end time
   * passed or an operator ended it), or, for a sale without an end time, once it has stayed sold
   * out for `settleMs` (the refused rush is then counted). The event id is the sale's own, so
   * another process (or a restart) appending it again is the same event to the outbox and to the
   * receivers.
   */
  async summariseDue(now = Date.now()): Promise<void> {
    if (this.summarising || !this.d.appendEvents) return;
    this.summarising = true;
    try {
      for (const sale of this.d.sales.all()) {
        if (this.summarised.has(sale.id) || !this.due(sale, now)) continue;
        await this.flush();
        const { users, units } = await this.d.store.interestSummary(sale.id);
        await this.d.appendEvents([saleInterestEvent(sale.id, users, units, now)]);
        this.summarised.add(sale.id);
        this.stats.summaries++;
        this.d.log.info({ saleId: sale.id, users, units }, 'sale.interest summary appended');
      }
    } catch (err) {
      this.d.log.warn({ err }, 'sale.interest summary not appended yet; retrying');
    } finally {
      this.summarising = false;
    }
  }

  private due(sale: Sale, now: number): boolean {
    if (sale.endsAt !== null && windowRefusal(sale, now) === 'ended') {
      if (sale.endsAt < this.startedAt - this.limits.summaryGraceMs) {
        this.summarised.add(sale.id); // ended long before this process: summarised then
        return false;
      }
      return true;
    }
    if (sale.endsAt !== null || this.d.sales.available(sale.id) > 0) {
      this.soldOutSince.delete(sale.id);
      return false;
    }
    const since = this.soldOutSince.get(sale.id);
    if (since === undefined) this.soldOutSince.set(sale.id, now);
    return since !== undefined && now - since >= this.limits.settleMs;
  }

  /** A page of a sale's refused buyers, by user id (the admin route). */
  list(saleId: string, after: string | undefined, limit: number): Promise<InterestPage> {
    return this.d.store.listInterest(saleId, after, limit);
  }

  /** Every refused buyer of a sale, read in pages (the CSV export). */
  async *iterate(saleId: string): AsyncIterable<InterestRow> {
    let after: string | undefined;
    for (;;) {
      const page = await this.d.store.listInterest(saleId, after, 1000);
      yield* page.rows;
      if (page.next === null) return;
      after = page.next;
    }
  }

  summary(saleId: string): Promise<InterestSummary> {
    return this.d.store.interestSummary(saleId);
  }

  /** Writes what is queued, then stops. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.summaryTimer) clearInterval(this.summaryTimer);
    this.summaryTimer = null;
    await this.flush().catch(() => undefined);
  }
}
