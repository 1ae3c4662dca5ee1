import type { Socket } from 'node:net';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import type { OutboxEvent } from '../domain/events.js';
import type { EventSink } from './sink.js';
import { Reconnecting } from './reconnecting.js';
import { SinkError, messageOf, within } from './sink-error.js';

export interface AmqpSinkOptions {
  /** amqp:// or amqps:// URL (credentials, vhost, `?heartbeat=`) */
  url: string;
  /** The durable topic exchange seckill declares and publishes to. */
  exchange: string;
  log: Logger;
  name?: string;
  /** TCP connect + AMQP handshake + exchange declaration. */
  connectTimeoutMs?: number;
  /** From the first message of a batch to the broker's last confirm. */
  publishTimeoutMs?: number;
  /** After a failed connect, publishes reject at once for this long (doubling up to the max). */
  retryDelayMs?: { min: number; max: number };
}

interface Live {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Rejects when the connection or the channel goes away: what is waiting stops waiting. */
  lost: Promise<never>;
}

/**
 * RabbitMQ over AMQP 0-9-1: a confirm channel on one connection, a durable topic exchange, one
 * persistent message per event (routing key = event type, message_id = event id). `publish`
 * resolves once the broker has confirmed every message of the batch (for a persistent message
 * routed to a durable queue, RabbitMQ confirms after writing it to disk).
 *
 * The connection is opened on the first publish and again on the publish after it dropped; while
 * the broker cannot be reached, publishes reject at once (the relay keeps its events and retries).
 */
export class AmqpSink implements EventSink {
  readonly name: string;
  private readonly live: Reconnecting<Live>;
  private closed = false;
  private readonly connectTimeoutMs: number;
  private readonly publishTimeoutMs: number;

  constructor(private readonly opts: AmqpSinkOptions) {
    this.name = opts.name ?? 'amqp';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
    this.live = new Reconnecting(this.name, 'the AMQP broker', opts.retryDelayMs ?? { min: 250, max: 5000 }, opts.log, () => this.connect());
  }

  async publish(events: readonly OutboxEvent[]): Promise<void> {
    if (this.closed) throw new SinkError(this.name, 'closed');
    if (events.length === 0) return;
    const live = await this.live.get();
    try {
      await within(this.name, `confirms of ${events.length} event(s)`, this.publishTimeoutMs, Promise.race([this.send(live, events), live.lost]));
    } catch (err) {
      // A batch that was not confirmed in time leaves the connection in doubt: start afresh.
      this.drop(live, messageOf(err));
      throw err instanceof SinkError ? err : new SinkError(this.name, messageOf(err), false, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const live = this.live.current;
    this.live.current = null;
    if (!live) return;
    const l = await live.catch(() => null);
    if (l) await this.shut(l);
  }

  /** Messages in the order given; waits for the socket to drain when its buffer is full. */
  private async send({ channel }: Live, events: readonly OutboxEvent[]): Promise<void> {
    const confirms: Promise<void>[] = [];
    for (const ev of events) {
      let roomLeft = true;
      confirms.push(new Promise<void>((resolve, reject) => {
        roomLeft = channel.publish(this.opts.exchange, ev.type, Buffer.from(ev.body), {
          persistent: true,
          messageId: ev.id,
          contentType: 'application/json',
          type: ev.type,
          timestamp: Math.floor(ev.at / 1000),
          appId: 'seckill',
        }, (err: unknown) => (err ? reject(new SinkError(this.name, `the broker did not confirm event ${ev.id} (${messageOf(err)})`)) : resolve()));
      }));
      if (!roomLeft) await new Promise<void>((resolve) => channel.once('drain', () => resolve()));
    }
    await Promise.all(confirms);
  }

  private async connect(): Promise<Live> {
    const amqp = await import('amqplib');
    let abandoned = false;
    let opened: ChannelModel | null = null;
    const opening = (async () => {
      const model = await amqp.connect(this.opts.url, {
        timeout: this.connectTimeoutMs,
        clientProperties: { connection_name: `seckill event sink ${this.name}` },
      });
      opened = model;
      if (abandoned) {
        destroySocket(model);
        throw new Error('abandoned');
      }
      try {
        const channel = await model.createConfirmChannel();
        await channel.assertExchange(this.opts.exchange, 'topic', { durable: true });
        return { model, channel };
      } catch (err) {
        destroySocket(model);
        throw err;
      }
    })();
    const { model, channel } = await within(this.name, 'connect', this.connectTimeoutMs, opening, () => {
      abandoned = true;
      if (opened) destroySocket(opened); // timed out declaring the exchange
    });
    let markLost: (reason: Error) => void = () => undefined;
    const lost = new Promise<never>((_, reject) => {
      markLost = reject;
    });
    lost.catch(() => undefined); // only ever raced against; never left unhandled
    const live: Live = { model, channel, lost };
    const gone = (what: string) => (err?: Error) => {
      markLost(new SinkError(this.name, `${what}${err ? `: ${err.message}` : ''}`));
      if (!this.closed) this.drop(live, what);
    };
    // Without 'error' listeners a broker's close would crash the process.
    model.on('error', (err: Error) => this.opts.log.warn({ sink: this.name, err: err.message }, 'event sink: AMQP connection error'));
    channel.on('error', (err: Error) => this.opts.log.warn({ sink: this.name, err: err.message }, 'event sink: AMQP channel error'));
    model.on('close', gone('connection closed'));
    channel.on('close', gone('channel closed'));
    model.on('blocked', (reason: string) => this.opts.log.warn({ sink: this.name, reason }, 'event sink: the AMQP broker blocked publishing'));
    this.opts.log.info({ sink: this.name, exchange: this.opts.exchange }, 'event sink: connected to the AMQP broker');
    return live;
  }

  /** Forget this connection (the next publish opens a new one) and close it. */
  private drop(live: Live, why: string): void {
    void this.live.forget(live).then((was) => {
      if (!was) return;
      this.opts.log.warn({ sink: this.name, why }, 'event sink: AMQP connection dropped; the next publish reconnects');
      void this.shut(live);
    });
  }

  private async shut(live: Live): Promise<void> {
    try {
      await within(this.name, 'close', 1000, live.model.close());
    } catch {
      destroySocket(live.model); // closed already, or a broker that does not answer
    }
  }
}

/** The TCP socket under amqplib's connection (not in its types): closing it never waits. */
function destroySocket(model: ChannelModel): void {
  (model.connection as unknown as { stream?: Socket }).stream?.destroy();
}
