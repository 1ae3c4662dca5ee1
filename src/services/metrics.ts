import client from 'prom-client';
import { SeckillError } from '../domain/errors.js';
import type { OutboxSinkStats, PendingEvent, StatusTotals } from '../stores/record-store.js';
import { ClusterScrape } from './cluster-metrics.js';
import { LiveStats } from './live-stats.js';
import type { RelayObserver } from './outbox-relay.js';

export interface MetricsSources {
  /** Available stock per sale id. */
  available(): Array<[string, number]>;
  /** Units per status per sale id. */
  totals(): Promise<ReadonlyArray<readonly [string, Readonly<StatusTotals>]>>;
  writerBacklog(): number;
  /** Orders the order writer has committed since the start (for the dashboard's orders per second). */
  ordersWritten(): number;
  /** Operators' switches, on = 1. */
  switches?(): Record<string, boolean>;
  /** Circuit breakers of the backing stores: name → closed | open | half-open. */
  breakers?(): Array<[string, string]>;
  /** Order records PostgreSQL refused, kept in the quarantine (distributed: all processes). */
  writerQuarantined?(): number;
  /** The outbox relay's view per sink (backlog, oldest pending, dead letters). */
  outbox?(): Promise<OutboxSinkStats[]>;
  /** The intended-purchase recorder's counts since start (queued, dropped, rejected, written, failed). */
  interest?(): Record<string, number>;
}

type Counts = Record<string, number>;

/** Where several processes add up their per-sale buy outcomes (distributed mode: RedisCounts, src/stores/redis/request-counts.ts). */
export interface SharedCounts {
  add(deltas: Map<string, Counts>): Promise<void>;
  read(saleId: string): Promise<Counts>;
}

/**
 * Prometheus metrics of one process; request outcomes per sale are also kept for the admin API.
 * Under `--workers N` a scrape shows the workers' metrics added up (cluster-metrics.ts): each
 * metric says how (`aggregator`). Counters, and figures each process has its own share of, are
 * summed (prom-client's default); figures every process reads from the same shared source are
 * taken once (`first`: the scraped worker's reading); per-process states where the worst one
 * matters take the `max`.
 * With shared counts (distributed mode) each process adds its outcomes to them every
 * `flushMs`, with no I/O on the request path; the admin API reads the sum of all processes.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'route' | 'outcome'>;
  readonly reservations: client.Counter<'sale'>;
  private readonly shedTotal: client.Counter<'reason'>;
  /** route \0 outcome → requests answered since the last scrape. */
  private readonly fastCounts = new Map<string, number>();
  private readonly reservedCounts = new Map<string, number>();
  /** Load-shedding inputs (set by the HTTP layer, which measures them). */
  pressure: () => { eventLoopDelayMs: number; heapUsedBytes: number } = () => ({ eventLoopDelayMs: 0, heapUsedBytes: 0 });
  /** Per-second figures of the last five minutes, for the operators' dashboard. */
  readonly live: LiveStats;
  /** Buy outcomes per sale, for GET /api/admin/sales/:id. */
  private readonly saleOutcomes = new Map<string, Counts>();
  /** Outcomes counted here and not yet added to the shared counts. */
  private unshared = new Map<string, Counts>();
  private shared: SharedCounts | null = null;
  private flusher: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private readonly outboxSent: client.Counter<'sink'>;
  private readonly outboxDelay: client.Histogram<'sink'>;
  private readonly outboxDead: client.Counter<'sink'>;
  /** What the outbox relay reports as it publishes. */
  readonly relayObserver: RelayObserver = {
    sent: (sink: string, events: readonly PendingEvent[], now: number) => {
      this.outboxSent.inc({ sink }, events.length);
      for (const e of events) this.outboxDelay.observe({ sink }, Math.max(0, now - e.at) / 1000);
    },
    dead: (sink: string) => this.outboxDead.inc({ sink }),
  };
  /** In a node:cluster worker: scrapes are answered with every worker's metrics. */
  private readonly cluster = ClusterScrape.inWorker(this.registry);

  /** `shared`: distributed mode, where each process adds its counts every `flushMs`. */
  constructor(sources: MetricsSources, shared?: { counts: SharedCounts; flushMs: number }) {
    const registers = [this.registry];
    if (shared) {
      this.shared = shared.counts;
      this.flusher = setInterval(() => void this.flush(), shared.flushMs);
      this.flusher.unref();
    }
    this.live = new LiveStats({ ordersWritten: () => sources.ordersWritten(), backlog: () => sources.writerBacklog() });
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    const fast = this.fastCounts;
    this.requests = new client.Counter({
      name: 'seckill_http_requests_total',
      help: 'HTTP requests by route and outcome (ok or error code)',
      labelNames: ['route', 'outcome'],
      registers,
      collect() {
        // Requests are counted in a plain map (countRequest) and added here, at scrape time.
        for (const [key, n] of fast) {
          const [route, outcome] = key.split('\0');
          this.inc({ route, outcome }, n);
        }
        fast.clear();
      },
    });
    const reserved = this.reservedCounts;
    this.reservations = new client.Counter({
      name: 'seckill_reservations_total',
      help: 'Reservations accepted (202) by sale',
      labelNames: ['sale'],
      registers,
      collect() {
        for (const [sale, n] of reserved) this.inc({ sale }, n);
        reserved.clear();
      },
    });
    new client.Gauge({
      name: 'seckill_stock_available',
      help: 'Units available per sale, as the stock engine sees them',
      labelNames: ['sale'],
      registers,
      // Workers: one sale's stock, each reading it from Redis (its own latest hint): once, not per worker.
      aggregator: 'first',
      collect() {
        this.reset();
        for (const [sale, n] of sources.available()) this.set({ sale }, n);
      },
    });
    new client.Gauge({
      name: 'seckill_order_units',
      help: 'Units per order status and sale, from the database of record',
      labelNames: ['sale', 'status'],
      registers,
      // Workers: each reads the same database; one worker's snapshot keeps a sale's statuses consistent.
      aggregator: 'first',
      async collect() {
        this.reset();
        let totals: ReadonlyArray<readonly [string, Readonly<StatusTotals>]>;
        try {
          totals = await sources.totals();
        } catch {
          return; // the database down must not take /metrics with it; /readyz tells
        }
        for (const [sale, t] of totals) for (const [status, n] of Object.entries(t)) this.set({ sale, status }, n);
      },
    });
    this.shedTotal = new client.Counter({
      name: 'seckill_shed_total',
      help: 'Buy requests refused with 503 busy by load shedding, by reason',
      labelNames: ['reason'],
      registers,
    });
    new client.Gauge({
      name: 'seckill_switch',
      help: "Operators' switches (1 = on): refuseBuys, degraded",
      labelNames: ['name'],
      registers,
      // Workers: shared switches, each worker applying its copy: 1 while any worker still has it on.
      aggregator: 'max',
      collect() {
        for (const [name, on] of Object.entries(sources.switches?.() ?? {})) this.set({ name }, on ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'seckill_breaker_open',
      help: 'Circuit breaker of a backing store: 0 closed, 0.5 half-open (probing), 1 open',
      labelNames: ['store'],
      registers,
      // Workers: each has its own breakers; the worst state shows (sum would leave the 0–1 scale).
      aggregator: 'max',
      collect() {
        for (const [store, state] of sources.breakers?.() ?? []) this.set({ store }, state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0);
      },
    });
    const pressure = () => this.pressure();
    new client.Gauge({
      name: 'seckill_pressure_event_loop_delay_ms',
      help: 'Event-loop delay as load shedding sees it',
      registers,
      // Workers: each sheds on its own delay; the most loaded one is what matters.
      aggregator: 'max',
      collect() {
        this.set(pressure().eventLoopDelayMs);
      },
    });
    new client.Gauge({
      name: 'seckill_interest_refusals',
      help: 'Sold-out refusals seen by the intended-purchase recorder since start, by what became of them: queued, dropped (queue full or verification budget spent), rejected (forged or expired token), written, failed; summaries: sale.interest events appended',
      labelNames: ['outcome'],
      registers,
      collect() {
        for (const [outcome, n] of Object.entries(sources.interest?.() ?? {})) this.set({ outcome }, n);
      },
    });
    new client.Gauge({
      name: 'seckill_writer_backlog',
      help: 'Reservations waiting for their group commit',
      registers,
      // Workers (distributed mode only): each writer measures the whole deployment's backlog (the
      // writers' group on every sale's stream), so it is counted once, not once per worker.
      aggregator: 'first',
      collect() {
        this.set(sources.writerBacklog());
      },
    });
    new client.Gauge({
      name: 'seckill_writer_quarantined',
      help: 'Order records PostgreSQL refused, set aside in the quarantine for an operator (stock stays held)',
      registers,
      // Workers: the deployment's one quarantine stream, as each worker last measured it: once.
      aggregator: 'first',
      collect() {
        this.set(sources.writerQuarantined?.() ?? 0);
      },
    });
    // The outbox relay (issue 13): one relay per sink in the deployment, so the counters add up
    // across processes; the backlog is read from the shared outbox: once.
    this.outboxSent = new client.Counter({
      name: 'seckill_outbox_events_sent_total',
      help: 'Outbox events a sink confirmed, by sink (rate: events/s)',
      labelNames: ['sink'],
      registers,
    });
    this.outboxDelay = new client.Histogram({
      name: 'seckill_outbox_delivery_delay_seconds',
      help: "From an event's time (the order's change) to its sink's confirmation, by sink",
      labelNames: ['sink'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.outboxDead = new client.Counter({
      name: 'seckill_outbox_dead_letters_total',
      help: 'Events moved to a sink\'s dead letters by this process, by sink',
      labelNames: ['sink'],
      registers,
    });
    const outboxGauge = (name: string, help: string, value: (s: OutboxSinkStats) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers,
        aggregator: 'first',
        async collect() {
          this.reset();
          const stats = await sources.outbox?.().catch(() => null); // the database down must not take /metrics with it
          for (const st of stats ?? []) this.set({ sink: st.sink }, value(st));
        },
      });
    outboxGauge('seckill_outbox_backlog', 'Outbox events not yet sent to a sink (nor dead), by sink', (st) => st.backlog);
    outboxGauge('seckill_outbox_dead_letters', "Events in a sink's dead letters now, by sink", (st) => st.dead);
    outboxGauge('seckill_outbox_oldest_pending_seconds', "Age of a sink's oldest pending event, by sink", (st) =>
      st.oldestPendingAt === null ? 0 : Math.max(0, Date.now() - st.oldestPendingAt) / 1000);
  }

  /** The metrics in the Prometheus text format: this process's, or under `--workers` every worker's added up. */
  async scrape(): Promise<string> {
    if (!this.cluster) return this.registry.metrics();
    try {
      return await this.cluster.scrape();
    } catch (err) {
      // One worker's share would be a wrong answer (counters going back): no answer is better.
      throw new SeckillError('busy', 'The metrics of the other workers are unavailable; try again shortly.', 1, err);
    }
  }

  /** A 202 of a sale: counted in a plain map, added to the counter at scrape time. */
  countReservation(saleId: string): void {
    this.reservedCounts.set(saleId, (this.reservedCounts.get(saleId) ?? 0) + 1);
  }

  /**
   * One answered request by route and outcome. Counted in a plain map and added to the
   * Prometheus counter at scrape time: no label hashing on the request path.
   */
  countRequest(route: string, outcome: string): void {
    const key = `${route}\0${outcome}`;
    this.fastCounts.set(key, (this.fastCounts.get(key) ?? 0) + 1);
  }

  shed(reason: string): void {
    this.shedTotal.inc({ reason });
  }

  /** One answered buy request; with its latency, it also goes into the dashboard's live figures. */
  countBuy(saleId: string, outcome: string, latencyMs?: number): void {
    if (latencyMs !== undefined) this.live.recordBuy(saleId, outcome, latencyMs);
    increment(this.saleOutcomes, saleId, outcome, 1);
    if (this.shared) increment(this.unshared, saleId, outcome, 1);
  }

  /** This process's buy outcomes for a sale. */
  saleRequests(saleId: string): Counts {
    return { ...(this.saleOutcomes.get(saleId) ?? {}) };
  }

  /** Buy outcomes of a sale over all processes (this one's up to now); this process's alone without shared counts. */
  async allSaleRequests(saleId: string): Promise<Counts> {
    if (!this.shared) return this.saleRequests(saleId);
    await this.flush();
    try {
      return await this.shared.read(saleId);
    } catch (err) {
      throw new SeckillError('busy', 'The request counts are unavailable; try again shortly.', 1, err);
    }
  }

  /** Hand the unshared counts over, one flush at a time; what fails is kept for the next one. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.shared || this.unshared.size === 0) return;
      const deltas = this.unshared;
      this.unshared = new Map();
      try {
        await this.shared.add(deltas);
      } catch {
        // Redis away: keep the counts (HINCRBY is not idempotent; a pipeline that failed part-way may count some twice, a hint only).
        for (const [saleId, counts] of deltas) for (const [outcome, n] of Object.entries(counts)) increment(this.unshared, saleId, outcome, n);
      }
    });
    return this.flushing;
  }

  /** Stop sharing, after handing over what is left. */
  async close(): Promise<void> {
    this.cluster?.close();
    if (this.flusher) clearInterval(this.flusher);
    this.flusher = null;
    await this.flush();
  }
}

function increment(m: Map<string, Counts>, saleId: string, outcome: string, n: number): void {
  let c = m.get(saleId);
  if (!c) m.set(saleId, (c = {}));
  c[outcome] = (c[outcome] ?? 0) + n;
}
