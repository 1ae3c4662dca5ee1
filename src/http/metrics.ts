import client from 'prom-client';

export interface MetricsSources {
  /** Available stock per sale id. */
  available(): Array<[string, number]>;
  /** Units per status per sale id. */
  totals(): Promise<Array<[string, Record<string, number>]>>;
  writerBacklog(): number;
}

/** Prometheus metrics of one process; request outcomes per sale are also kept for the admin API. */
export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'route' | 'outcome'>;
  readonly reservations: client.Counter<'sale'>;
  /** Buy outcomes per sale, for GET /api/admin/sales/:id. */
  private readonly saleOutcomes = new Map<string, Record<string, number>>();

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    this.requests = new client.Counter({
      name: 'seckill_http_requests_total',
      help: 'HTTP requests by route and outcome (ok or error code)',
      labelNames: ['route', 'outcome'],
      registers,
    });
    this.reservations = new client.Counter({
      name: 'seckill_reservations_total',
      help: 'Reservations accepted (202) by sale',
      labelNames: ['sale'],
      registers,
    });
    new client.Gauge({
      name: 'seckill_stock_available',
      help: 'Units available per sale, as the stock engine sees them',
      labelNames: ['sale'],
      registers,
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
      async collect() {
        this.reset();
        let totals: Array<[string, Record<string, number>]>;
        try {
          totals = await sources.totals();
        } catch {
          return; // the database down must not take /metrics with it; /readyz tells
        }
        for (const [sale, t] of totals) for (const [status, n] of Object.entries(t)) this.set({ sale, status }, n);
      },
    });
    new client.Gauge({
      name: 'seckill_writer_backlog',
      help: 'Reservations waiting for their group commit',
      registers,
      collect() {
        this.set(sources.writerBacklog());
      },
    });
  }

  countBuy(saleId: string, outcome: string): void {
    let m = this.saleOutcomes.get(saleId);
    if (!m) this.saleOutcomes.set(saleId, (m = {}));
    m[outcome] = (m[outcome] ?? 0) + 1;
  }

  saleRequests(saleId: string): Record<string, number> {
    return { ...(this.saleOutcomes.get(saleId) ?? {}) };
  }
}
