import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EventSink } from '../sinks/sink.js';
import { SinkError } from '../sinks/sink-error.js';
import type { DeadLetter, OutboxRecords, OutboxSinkStats, PendingEvent, RelayLease } from '../stores/record-store.js';

// The outbox relay (issue 13): one loop per sink publishes the outbox's pending events, oldest
// first, and marks them sent only once the sink confirmed them: at least once (receivers
// de-duplicate by event id). Per-order order comes from the store: an event is pending for a
// sink only once its predecessor was sent to that sink, so a batch never holds two events of one
// order and seq n never leaves before seq n − 1 was confirmed.
//
// One relay per sink across processes: each loop publishes only while it holds its lease
// (PostgreSQL: an advisory lock per sink on a connection of its own, lost with that connection;
// embedded: the data-dir lock already makes this process the only one).
//
// Failures: a failed batch is retried smaller (halved, down to the oldest event alone) after an
// exponential backoff with jitter; only failures of an event sent alone count as its attempts,
// and after `maxAttempts` of them (3 when the sink calls the refusal permanent) it becomes a dead letter. A dead event holds its order's later
// events (they stay pending behind it) until it is redriven: an order's events are never
// delivered out of order, not even by skipping one.

export interface RelaySettings {
  /** Most events per publish. */
  batch: number;
  /** Pause when nothing is pending, ms. */
  idleMs: number;
  /** Attempts of one event sent alone before it is a dead letter. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Sent events are kept this long, ms, then pruned. */
  retentionMs: number;
  /** How often pruning runs, ms. */
  pruneEveryMs: number;
  /** Pause before trying again for a lease another process holds, ms. */
  leaseRetryMs: number;
}

/** How often a relay reads from its sink's cursor rather than from its last batch, ms. */
const RESCAN_MS = 2000;

/** Attempts of an event the sink refused as permanent (SinkError.permanent) before it is dead. */
const PERMANENT_ATTEMPTS = 3;

export const DEFAULT_RELAY_SETTINGS: RelaySettings = {
  batch: 200,
  idleMs: 200,
  maxAttempts: 20,
  backoffBaseMs: 250,
  backoffMaxMs: 30_000,
  retentionMs: 7 * 24 * 3600_000,
  pruneEveryMs: 60_000,
  leaseRetryMs: 1000,
};

/** What the relay reports as it goes (Metrics implements it). */
export interface RelayObserver {
  sent(sink: string, events: readonly PendingEvent[], now: number): void;
  dead(sink: string): void;
}

/** The delay before retry number `failures` (1, 2, …): exponential, capped, half of it random. */
export function backoffMs(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Why a publish failed, short enough for the dead-letter row. */
function reason(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.slice(0, 500);
}

class SinkLoop {
  private stopped = false;
  private wake: AbortController = new AbortController();
  readonly done: Promise<void>;
  /** Failed attempts of the oldest event sent alone, by event id (reset when it goes). */
  private readonly attempts = new Map<string, number>();

  constructor(
    private readonly sink: EventSink,
    private readonly store: OutboxRecords,
    private readonly lease: RelayLease,
    private readonly s: RelaySettings,
    private readonly log: Logger,
    private readonly observer: RelayObserver | undefined,
  ) {
    this.done = this.run();
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.wake.signal }).catch(() => undefined);
  }

  private async run(): Promise<void> {
    const name = this.sink.name;
    let size = this.s.batch;
    let failures = 0;
    // Where reads start: just below the last batch's oldest event. Every event the last batch
    // unblocked (its orders' next events) was written after its predecessor, so lies above it;
    // what committed late below it (PostgreSQL) or was redriven is found by a read from the
    // sink's cursor every RESCAN_MS. Reads then cost about one batch, not the whole kept window.
    let from = 0;
    let rescanAt = 0;
    while (!this.stopped) {
      if (!(await this.lease.acquire())) {
        await this.pause(this.s.leaseRetryMs);
        continue;
      }
      let events: PendingEvent[];
      try {
        const rescan = Date.now() >= rescanAt;
        if (rescan) rescanAt = Date.now() + RESCAN_MS;
        events = await this.store.pendingEvents(name, size, rescan ? 0 : from);
      } catch (err) {
        this.log.warn({ err, sink: name }, 'outbox relay: could not read the outbox');
        await this.pause(backoffMs(++failures, this.s.backoffBaseMs, this.s.backoffMaxMs));
        continue;
      }
      if (events.length === 0) {
        await this.pause(this.s.idleMs);
        continue;
      }
      try {
        await this.sink.publish(events);
      } catch (err) {
        if (events.length > 1) {
          // Narrow down first, with short pauses: the backoff grows with the failures of one event alone.
          size = Math.max(1, Math.floor(events.length / 2));
          this.log.warn({ err, sink: name, events: events.length }, 'outbox relay: publish failed; retrying fewer');
          await this.pause(backoffMs(1, this.s.backoffBaseMs, this.s.backoffMaxMs));
          continue;
        }
        failures++;
        const head = events[0];
        const n = (this.attempts.get(head.id) ?? 0) + 1;
        this.attempts.set(head.id, n);
        // A refusal the sink calls permanent (a webhook's 4xx) is not retried for long.
        const permanent = err instanceof SinkError && err.permanent;
        if (n >= (permanent ? Math.min(PERMANENT_ATTEMPTS, this.s.maxAttempts) : this.s.maxAttempts)) {
          const dead = await this.store.markDead(name, head.id, n, reason(err), Date.now()).then(
            () => true,
            (e: unknown) => {
              this.log.warn({ err: e, sink: name }, 'outbox relay: could not record a dead letter');
              return false;
            },
          );
          if (dead) {
            this.attempts.delete(head.id);
            this.observer?.dead(name);
            this.log.error({ err, sink: name, eventId: head.id, attempts: n }, 'outbox relay: event moved to dead letters');
            failures = 0;
            continue;
          }
        }
        this.log.warn({ err, sink: name, eventId: head.id, attempt: n, failures }, 'outbox relay: publish failed; retrying');
        await this.pause(backoffMs(failures, this.s.backoffBaseMs, this.s.backoffMaxMs));
        continue;
      }
      const now = Date.now();
      try {
        await this.store.markSent(name, events.map((e) => e.id), now);
      } catch (err) {
        // Published but not recorded: they go again (at least once), after a pause.
        this.log.warn({ err, sink: name }, 'outbox relay: could not mark events sent; they will be published again');
        await this.pause(backoffMs(++failures, this.s.backoffBaseMs, this.s.backoffMaxMs));
        continue;
      }
      from = events[0].pos - 1;
      for (const e of events) this.attempts.delete(e.id);
      this.observer?.sent(name, events, now);
      failures = 0;
      size = Math.min(this.s.batch, size * 2);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.abort();
    await this.done;
    await this.lease.release();
  }
}

/** The relay of one process: a loop per sink, and the pruning of events every sink was sent. */
export class OutboxRelay {
  private readonly loops: SinkLoop[] = [];
  private readonly pruner: NodeJS.Timeout;
  private pruning: Promise<void> = Promise.resolve();
  private stats: { at: number; value: Promise<OutboxSinkStats[]> } | null = null;
  readonly settings: RelaySettings;

  constructor(
    private readonly store: OutboxRecords,
    readonly sinks: readonly EventSink[],
    leaseOf: (sink: string) => RelayLease,
    private readonly log: Logger,
    settings: Partial<RelaySettings> = {},
    observer?: RelayObserver,
  ) {
    this.settings = { ...DEFAULT_RELAY_SETTINGS, ...settings };
    for (const sink of sinks) this.loops.push(new SinkLoop(sink, store, leaseOf(sink.name), this.settings, log, observer));
    this.pruner = setInterval(() => {
      this.pruning = this.prune().then(
        () => undefined,
        (err: unknown) => log.warn({ err }, 'outbox prune failed'),
      );
    }, this.settings.pruneEveryMs);
    this.pruner.unref();
  }

  /** Delete events older than the retention that every sink here was sent (no sink: by age). */
  async prune(now = Date.now()): Promise<number> {
    const names = this.sinks.map((s) => s.name);
    let total = 0;
    for (;;) {
      const n = await this.store.pruneEvents(now - this.settings.retentionMs, names, 1000);
      total += n;
      if (n < 1000) return total;
    }
  }

  /** Each sink's backlog, sent and dead counts (read at most every 2 s: scrapes and the admin API share it). */
  status(): Promise<OutboxSinkStats[]> {
    const now = Date.now();
    if (!this.stats || now - this.stats.at > 2000) {
      const value = this.store.outboxStats(this.sinks.map((s) => s.name));
      value.catch(() => {
        if (this.stats?.value === value) this.stats = null;
      });
      this.stats = { at: now, value };
    }
    return this.stats.value;
  }

  sinkNames(): string[] {
    return this.sinks.map((s) => s.name);
  }

  /** A configured sink's dead letters, oldest first. */
  deadLetters(sink: string, limit: number): Promise<DeadLetter[]> {
    return this.store.deadLetters(sink, limit);
  }

  /** Make dead letters pending again: of one sink or of every sink here, all or those ids. Returns how many, per sink. */
  async redrive(sink: string | undefined, ids: string[] | undefined): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const name of sink === undefined ? this.sinkNames() : [sink]) out[name] = await this.store.redrive(name, ids);
    this.stats = null;
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.pruner);
    await Promise.all(this.loops.map((l) => l.stop()));
    await this.pruning;
    await Promise.all(this.sinks.map((s) => s.close().catch((err: unknown) => this.log.warn({ err, sink: s.name }, 'sink close failed'))));
  }
}

/** Embedded mode: the data-dir lock makes this process the only relay already. */
export const HELD_LEASE: RelayLease = {
  acquire: async () => true,
  held: () => true,
  release: async () => undefined,
};
