import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { decodeSwitches, type RedisSwitchStore } from './switch-store.js';
import type { Sale } from '../../domain/sale.js';
import type { LocalRefusals } from '../../gateway/local-refusals.js';
import type { Switches } from '../../gateway/switches.js';

/**
 * Distributed mode: the hints a process keeps from pub/sub signals (switches, each sale's paused
 * state, the at-limit memo) must not stay wrong when a message is lost. Two repairs:
 * - `refresh`, every `everyMs`: the switches and every sale's `paused` are read from Redis (one
 *   round trip); a sale whose paused state differs is reloaded from the database;
 * - `resync`, when the subscriber (re)connects — every message since it dropped is lost: the
 *   switches again, every sale reloaded, and the refusal memos dropped (they are rebuilt from
 *   the engine's answers; the sold-out flags by the engine's stock refresh).
 */
/** The sales this process serves (the sale service): listed, and read again from the database. */
export interface KnownSales {
  all(): Sale[];
  reload(saleId: string): Promise<unknown>;
}

export class HintRefresher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly switchStore: RedisSwitchStore,
    private readonly switches: Switches,
    private readonly sales: KnownSales,
    private readonly refusals: LocalRefusals,
    private readonly log: Logger,
  ) {}

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      if (this.running) return; // a slow Redis: never pile refreshes up
      this.running = this.refresh()
        .catch((err: unknown) => this.log.debug({ err }, 'hint refresh failed; next round retries'))
        .finally(() => {
          this.running = null;
        });
    }, everyMs);
    this.timer.unref();
  }

  /** Switches and paused states from Redis; reload the sales whose paused state is not what Redis says. */
  async refresh(): Promise<void> {
    const sales = this.sales.all();
    const p = this.redis.pipeline();
    this.switchStore.queueRead(p);
    for (const s of sales) p.hget(this.keys.sale(s.id), 'paused');
    const results = (await p.exec()) ?? [];
    const [switchesErr, stored] = results[0] ?? [new Error('no reply'), null];
    if (!switchesErr) this.switches.set(decodeSwitches(stored as Record<string, string>));
    const stale: string[] = [];
    sales.forEach((s, i) => {
      const [err, v] = results[i + 1] ?? [new Error('no reply'), null];
      // No record (Redis lost the sale): the engine's refresh rebuilds it; nothing to compare.
      if (err || v === null || v === undefined) return;
      if ((v === '1') !== s.paused) stale.push(s.id);
    });
    for (const id of stale) {
      this.log.warn({ saleId: id }, 'sale paused state differed from Redis (a signal was lost); reloaded');
      await this.sales.reload(id);
    }
  }

  /** Everything again, after the subscriber reconnected: no signal since it dropped was heard. */
  async resync(): Promise<void> {
    this.refusals.clear();
    this.switches.set(await this.switchStore.read());
    for (const s of this.sales.all()) await this.sales.reload(s.id);
    this.log.info({ sales: this.sales.all().length }, 'signals resubscribed: switches, sales and refusal memos resynchronised');
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
