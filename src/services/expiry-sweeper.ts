import type { Logger } from 'pino';
import type { OrderService } from './order-service.js';

/** Background loop that returns the stock of unpaid reservations past their window. */
export class ExpirySweeper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly orders: OrderService,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  async sweep(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      let total = 0;
      // Each batch sets aside the orders it could not expire, so a full batch of failures
      // still moves the sweep on to the orders behind them.
      for (;;) {
        const r = await this.orders.expireDueBatch(Date.now(), 1000);
        total += r.expired;
        if (!r.more) break;
      }
      if (total > 0) this.log.info({ expired: total }, 'reservations expired; stock returned');
      return total;
    } catch (err) {
      this.log.error({ err }, 'expiry sweep failed; will retry');
      return 0;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
