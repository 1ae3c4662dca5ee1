import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Order } from '../../domain/order.js';
import type { LocalRefusals } from '../../gateway/local-refusals.js';
import type { SwitchValues } from '../../gateway/switches.js';

/** What another process signalled, for this process to act on (relayed by the wiring to the services). */
export interface SignalReceiver {
  /** A sale was created or changed: read it again. */
  saleChanged(saleId: string): void;
  /** An order changed status in another process. */
  orderChanged(order: Order): void;
  /** An operator changed a switch on some process. */
  switchesChanged(values: SwitchValues): void;
  /**
   * The subscriber reconnected and subscribed again: every message published while it was away
   * is lost, so every hint must be read again (see HintRefresher.resync).
   */
  resubscribed(): void;
}

type Message =
  | { t: 'soldout'; s: string }
  | { t: 'released'; s: string; u: string }
  | { t: 'sale'; s: string }
  | { t: 'order'; o: Order; from: string }
  | { t: 'switches'; v: SwitchValues };

/**
 * Signals over Redis pub/sub. Each is applied locally at once and published; every process
 * (this one too) applies what it receives. A lost message only delays a hint: the engine's
 * periodic stock refresh sets and clears the sold-out flag from Redis itself, HintRefresher
 * re-reads switches and paused states every second, and a reconnect of the subscriber (when
 * messages are lost) resynchronises every hint. It is the SaleSignals of distributed mode
 * (src/services/signals.ts; matched by shape: a store does not import the services above it).
 */
export class RedisSignals {
  /** This process, to skip its own order messages (it emitted those already). */
  private readonly id = crypto.randomBytes(8).toString('hex');
  private started = false;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly channel: string,
    private readonly refusals: LocalRefusals,
    /** Where what the other processes signal goes. */
    private readonly heard: SignalReceiver,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.sub.on('message', (_channel: string, text: string) => this.receive(text));
    // 'ready' again means a reconnect (ioredis resubscribes by itself just before it).
    this.sub.on('ready', () => {
      if (this.started) void this.resubscribed();
    });
    await this.sub.subscribe(this.channel);
    this.started = true;
  }

  /** After a reconnect: make sure the subscription holds, then read every hint again. */
  private async resubscribed(): Promise<void> {
    try {
      await this.sub.subscribe(this.channel);
      this.log.warn('signals subscriber reconnected: messages may have been lost; resynchronising');
      this.heard.resubscribed();
    } catch (err) {
      // The periodic refresh (and the next reconnect) still corrects the hints.
      this.log.warn({ err }, 'signals resync failed');
    }
  }

  soldOut(saleId: string): void {
    if (this.refusals.isSoldOut(saleId)) return;
    this.refusals.markSoldOut(saleId);
    this.publish({ t: 'soldout', s: saleId });
  }

  released(saleId: string, userId: string): void {
    this.refusals.released(saleId, userId);
    this.publish({ t: 'released', s: saleId, u: userId });
  }

  saleChanged(saleId: string): void {
    this.publish({ t: 'sale', s: saleId });
  }

  orderChanged(order: Order): void {
    this.publish({ t: 'order', o: order, from: this.id });
  }

  switchesChanged(values: SwitchValues): void {
    this.publish({ t: 'switches', v: values });
  }

  private publish(m: Message): void {
    this.pub.publish(this.channel, JSON.stringify(m)).catch((err: unknown) => this.log.warn({ err }, 'signal not published'));
  }

  private receive(text: string): void {
    let m: Message;
    try {
      m = JSON.parse(text) as Message;
    } catch {
      return;
    }
    if (m.t === 'soldout') this.refusals.markSoldOut(m.s);
    else if (m.t === 'released') this.refusals.released(m.s, m.u);
    else if (m.t === 'sale') this.heard.saleChanged(m.s);
    else if (m.t === 'order' && m.from !== this.id) this.heard.orderChanged(m.o);
    else if (m.t === 'switches') this.heard.switchesChanged(m.v);
  }

  async close(): Promise<void> {
    this.started = false;
    await this.sub.unsubscribe().catch(() => undefined);
  }
}
