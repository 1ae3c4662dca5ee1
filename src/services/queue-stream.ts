import type { Logger } from 'pino';
import { SeckillError } from '../domain/errors.js';
import type { QueueAnswer } from '../domain/queue.js';
import type { SaleService } from './sale-service.js';
import type { RoomStats, WaitingRoomService } from './waiting-room.js';

/** Where one open stream's events go (the route writes them as server-sent events). */
export interface QueueStreamSink {
  /** `queue`: an answer as the poll gives it; `refused`: the user is no longer in line (`{error}`), the stream ends after it. */
  event(name: 'queue' | 'refused', data: unknown): void;
  /** A comment line, so that proxies and browsers keep an idle stream open. */
  keepAlive(): void;
  end(): void;
}

export interface QueueStreamOptions {
  /** How often the shared timer looks at the rooms with open streams (ms). */
  tickMs?: number;
  /** How often each stream's answer is read again with `poll` (which also keeps the place). */
  refreshMs?: number;
  /** A comment after this long without an event. */
  keepAliveMs?: number;
  log?: Pick<Logger, 'warn'>;
}

/** One open stream. */
interface Sub {
  readonly saleId: string;
  readonly userId: string;
  readonly sink: QueueStreamSink;
  /** What was sent last, and as JSON (an event goes out only when it differs). */
  last: QueueAnswer;
  lastJson: string;
  polledAt: number;
  /** The room's count of users let out when `last` was read: once `position` more are out, this user is. */
  admittedAtPoll: number;
  polling: boolean;
  wroteAt: number;
  closed: boolean;
}

/** The room's figures this service reads: sync in process, possibly async with a shared store. */
type Stats = Pick<RoomStats, 'admitted' | 'opened'> | null;

/**
 * The waiting room's event streams (`GET /api/sales/:saleId/queue/events`): the subscribers per
 * sale and one timer for all of them (not one per connection). At each tick, per sale with streams:
 * - sold out is `available <= 0`, read in memory: every waiting subscriber hears `sold_out` at
 *   once, from its last answer (no poll per user: thousands may be waiting);
 * - the room's count of users let out: a subscriber whose last position is now covered was let
 *   out, and is polled at once (its answer carries the pass);
 * - every subscriber is polled again once `refreshMs` has passed, which refreshes position, ahead
 *   and the estimate and keeps the place (a held stream counts as polling).
 * Uses only the room's public `poll` and `stats`, so it works whatever store holds the room.
 */
export class QueueStreamService {
  private readonly bySale = new Map<string, Set<Sub>>();
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;
  private readonly refreshMs: number;
  private readonly keepAliveMs: number;
  private ticking = false;
  private readonly log: Pick<Logger, 'warn'> | undefined;
  /** A store that is down fails every tick and every poll: one warning per 10 s, not thousands. */
  private warnedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly room: Pick<WaitingRoomService, 'poll'> & { stats(saleId: string): Stats | Promise<Stats> },
    private readonly sales: Pick<SaleService, 'available'>,
    /** The operators' switches: in degraded mode no stream stays open (the pages poll). */
    private readonly switches: { readonly degraded: boolean },
    o: QueueStreamOptions = {},
  ) {
    this.tickMs = o.tickMs ?? 100;
    this.refreshMs = o.refreshMs ?? 1000;
    this.keepAliveMs = o.keepAliveMs ?? 15_000;
    this.log = o.log;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(Date.now()), this.tickMs);
    this.timer.unref();
  }

  /** Stops the timer and ends every stream (shutdown). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closeAll();
  }

  /** Ends every open stream: at shutdown, and when the degraded switch turns on (the pages fall back to polling). */
  closeAll(): void {
    for (const subs of this.bySale.values()) for (const sub of subs) this.close(sub);
  }

  /** Open streams (all sales). */
  get open(): number {
    let n = 0;
    for (const subs of this.bySale.values()) n += subs.size;
    return n;
  }

  /**
   * A stream for this user, whose answer `first` the route has just read (and the sink already
   * sent). Returns the function that ends it from the route's side (the connection closed).
   */
  subscribe(saleId: string, userId: string, sink: QueueStreamSink, first: QueueAnswer, now = Date.now()): () => void {
    const sub: Sub = {
      saleId, userId, sink, last: first, lastJson: JSON.stringify(first), polledAt: now,
      admittedAtPoll: Number.POSITIVE_INFINITY, polling: false, wroteAt: now, closed: false,
    };
    let subs = this.bySale.get(saleId);
    if (!subs) this.bySale.set(saleId, (subs = new Set()));
    subs.add(sub);
    // The room's count at this moment is read at the next tick (it may need the store).
    return () => this.close(sub);
  }

  /** One round over the sales with open streams. Public for the tests' clock. */
  async tick(now: number): Promise<void> {
    if (this.ticking) return; // a slow store: never two rounds at once
    this.ticking = true;
    try {
      if (this.switches.degraded) return this.closeAll();
      for (const [saleId, subs] of this.bySale) {
        if (subs.size === 0) {
          this.bySale.delete(saleId);
          continue;
        }
        // One sale's failing store does not hold up the others.
        await this.tickSale(saleId, subs, now).catch((err: unknown) => this.warn(err, saleId, 'queue stream tick failed'));
      }
    } finally {
      this.ticking = false;
    }
  }

  private async tickSale(saleId: string, subs: Set<Sub>, now: number): Promise<void> {
    const stats = await this.room.stats(saleId);
    // Sold out only once the room is open (before the open nobody is told anything but their place).
    const soldOut = stats !== null && stats.opened && this.sales.available(saleId) <= 0;
    for (const sub of subs) {
      if (sub.closed) continue;
      if (soldOut && sub.last.state === 'waiting') {
        // Everyone at once, from what each was last told: the place is unchanged, nobody is let out.
        this.send(sub, { state: 'sold_out', position: sub.last.position, ahead: sub.last.ahead, etaSeconds: null }, now);
      }
      // New since the last tick: its first answer came before the room's count was read here, so it
      // is read again now, against this count (someone let out in between is then told at once).
      const fresh = stats !== null && sub.admittedAtPoll === Number.POSITIVE_INFINITY;
      const letOut = stats !== null && sub.last.state === 'waiting' && sub.last.position !== null &&
        stats.admitted - sub.admittedAtPoll >= sub.last.position;
      // Stock came back: the waiting are told at once too (admission resumes).
      const restocked = !soldOut && sub.last.state === 'sold_out';
      if (fresh || letOut || restocked || now - sub.polledAt >= this.refreshMs) this.refresh(sub, stats?.admitted ?? 0, now);
      if (now - sub.wroteAt >= this.keepAliveMs) {
        sub.wroteAt = now;
        sub.sink.keepAlive();
      }
    }
  }

  /** Polls for this subscriber (keeping the place) and sends the answer if it changed. */
  private refresh(sub: Sub, admitted: number, now: number): void {
    if (sub.polling) return;
    sub.polling = true;
    sub.polledAt = now;
    sub.admittedAtPoll = admitted;
    this.room.poll(sub.saleId, sub.userId, now).then(
      (answer) => {
        sub.polling = false;
        this.send(sub, answer, Date.now());
      },
      (err: unknown) => {
        sub.polling = false;
        if (sub.closed) return;
        if (err instanceof SeckillError && (err.code === 'not_found' || err.code === 'ended')) {
          // Dropped from the line (a pass unused, the room restarted) or the sale is over: say so and end.
          sub.sink.event('refused', { error: { code: err.code, message: err.message } });
          this.close(sub);
          return;
        }
        // A store that failed: tried again at the next refresh.
        this.warn(err, sub.saleId, 'queue stream poll failed');
      },
    );
  }

  private warn(err: unknown, saleId: string, msg: string): void {
    const now = Date.now();
    if (now - this.warnedAt < 10_000) return;
    this.warnedAt = now;
    this.log?.warn({ err, saleId }, msg);
  }

  private send(sub: Sub, answer: QueueAnswer, now: number): void {
    if (sub.closed) return;
    const json = JSON.stringify(answer);
    if (json !== sub.lastJson) {
      sub.last = answer;
      sub.lastJson = json;
      sub.wroteAt = now;
      sub.sink.event('queue', answer);
    }
    // Let out: the page goes on with its pass; the stream has nothing more to say.
    if (answer.state === 'admitted') this.close(sub);
  }

  private close(sub: Sub): void {
    if (sub.closed) return;
    sub.closed = true;
    const subs = this.bySale.get(sub.saleId);
    subs?.delete(sub);
    if (subs?.size === 0) this.bySale.delete(sub.saleId);
    sub.sink.end();
  }
}
