import type { JetStreamClient, JetStreamManager, NatsConnection, StreamConfig } from 'nats';
import type { Logger } from 'pino';
import type { EventType, OutboxEvent } from '../domain/events.js';
import type { EventSink } from './sink.js';
import { Reconnecting } from './reconnecting.js';
import { SinkError, messageOf, within } from './sink-error.js';

/** Every event goes to `<prefix>.<type>` (by default seckill.order.paid, …); the stream takes `<prefix>.>`. */
export const NATS_SUBJECT_PREFIX = 'seckill';
export const natsSubject = (type: EventType, prefix = NATS_SUBJECT_PREFIX): string => `${prefix}.${type}`;

export interface NatsSinkOptions {
  /** One server URL, or several comma-separated (a cluster). */
  servers: string;
  /** The JetStream stream seckill declares (subjects `<subjectPrefix>.>`). */
  stream: string;
  /**
   * `seckill` unless several deployments (or test runs) share one NATS account: two streams
   * cannot take the same subjects.
   */
  subjectPrefix?: string;
  log: Logger;
  name?: string;
  connectTimeoutMs?: number;
  /** Each PubAck, and the whole batch. */
  publishTimeoutMs?: number;
  /**
   * How long the server remembers a Nats-Msg-Id: a re-publish of the same event within it is
   * stored once. Longer than the relay's usual retry horizon.
   */
  duplicateWindowMs?: number;
  /** After a failed connect, publishes reject at once for this long (doubling up to the max). */
  retryDelayMs?: { min: number; max: number };
}

interface Live {
  nc: NatsConnection;
  js: JetStreamClient;
  /** False from a disconnect until the client has reconnected (it reconnects by itself). */
  connected: boolean;
}

/**
 * NATS JetStream: the stream is declared (created, or updated to take `seckill.>` and the
 * duplicate window) on connect; each event is published to `seckill.<type>` with Nats-Msg-Id =
 * event id and its PubAck awaited. A batch is sent in order on one connection, so the stream
 * stores it in order; the server drops a re-published id within the duplicate window.
 */
export class NatsSink implements EventSink {
  readonly name: string;
  private readonly live: Reconnecting<Live>;
  private closed = false;
  private readonly connectTimeoutMs: number;
  private readonly publishTimeoutMs: number;
  private readonly duplicateWindowMs: number;
  private readonly subjectPrefix: string;

  constructor(private readonly opts: NatsSinkOptions) {
    this.name = opts.name ?? 'nats';
    this.subjectPrefix = opts.subjectPrefix ?? NATS_SUBJECT_PREFIX;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 10_000;
    this.duplicateWindowMs = opts.duplicateWindowMs ?? 10 * 60_000;
    this.live = new Reconnecting(this.name, 'NATS', opts.retryDelayMs ?? { min: 250, max: 5000 }, opts.log, () => this.connect());
  }

  async publish(events: readonly OutboxEvent[]): Promise<void> {
    if (this.closed) throw new SinkError(this.name, 'closed');
    if (events.length === 0) return;
    const live = await this.live.get();
    if (!live.connected) throw new SinkError(this.name, 'disconnected from NATS; the client is reconnecting');
    // All sent before any ack is awaited: one round trip per batch, in order on the wire.
    const acks = events.map((ev) =>
      live.js.publish(natsSubject(ev.type, this.subjectPrefix), Buffer.from(ev.body), {
        msgID: ev.id,
        timeout: this.publishTimeoutMs,
        expect: { streamName: this.opts.stream },
      }));
    try {
      await within(this.name, `acks of ${events.length} event(s)`, this.publishTimeoutMs + 1000, Promise.all(acks));
    } catch (err) {
      for (const a of acks) a.catch(() => undefined);
      // No responders: nothing took the subject (the stream was deleted, a server lost its
      // state). Reconnecting declares the stream again.
      if ((err as { code?: string }).code === '503') this.forget(live, 'no stream answered');
      throw err instanceof SinkError ? err : new SinkError(this.name, `JetStream did not ack: ${messageOf(err)}`, false, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const live = this.live.current;
    this.live.current = null;
    const l = await live?.catch(() => null);
    if (!l) return;
    try {
      await within(this.name, 'close', 2000, l.nc.close());
    } catch (err) {
      this.opts.log.warn({ sink: this.name, err: messageOf(err) }, 'event sink: NATS close');
    }
  }

  private async connect(): Promise<Live> {
    const nats = await import('nats');
    const nc = await within(this.name, 'connect', this.connectTimeoutMs + 1000, nats.connect({
      servers: this.opts.servers.split(',').map((s) => s.trim()),
      name: `seckill event sink ${this.name}`,
      timeout: this.connectTimeoutMs,
      // Once connected, the client reconnects by itself, for ever; publishes meanwhile reject.
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      pingInterval: 10_000,
      maxPingOut: 3,
    }));
    try {
      const jsm = await within(this.name, 'JetStream', this.connectTimeoutMs, nc.jetstreamManager({ timeout: this.connectTimeoutMs }));
      await within(this.name, 'stream declaration', this.connectTimeoutMs, this.declareStream(jsm, nats.nanos, nats.StorageType.File));
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err instanceof SinkError ? err : new SinkError(this.name, `cannot declare stream ${this.opts.stream}: ${messageOf(err)}`, true, { cause: err });
    }
    const live: Live = { nc, js: nc.jetstream({ timeout: this.publishTimeoutMs }), connected: true };
    void this.watch(live);
    this.opts.log.info({ sink: this.name, stream: this.opts.stream, subjects: `${this.subjectPrefix}.>` }, 'event sink: connected to NATS JetStream');
    return live;
  }

  /** Drop this connection: the next publish connects and declares the stream again. */
  private forget(live: Live, why: string): void {
    void this.live.forget(live).then((was) => {
      if (!was) return;
      this.opts.log.warn({ sink: this.name, why }, 'event sink: NATS connection dropped; the next publish reconnects');
      void live.nc.close().catch(() => undefined);
    });
  }

  /** Create the stream, or bring an existing one to take our subjects with our duplicate window. */
  private async declareStream(jsm: JetStreamManager, nanos: (ms: number) => number, file: StreamConfig['storage']): Promise<void> {
    const subjects = [`${this.subjectPrefix}.>`];
    const window = nanos(this.duplicateWindowMs);
    try {
      await jsm.streams.add({ name: this.opts.stream, subjects, storage: file, duplicate_window: window });
      return;
    } catch (err) {
      // Exists with another configuration (an operator's limits, an older window): keep theirs, add ours.
      const info = await jsm.streams.info(this.opts.stream).catch(() => null);
      if (!info) throw err;
      const merged = [...new Set([...(info.config.subjects ?? []), ...subjects])];
      if (merged.length === (info.config.subjects ?? []).length && info.config.duplicate_window >= window) return;
      await jsm.streams.update(this.opts.stream, { ...info.config, subjects: merged, duplicate_window: Math.max(window, info.config.duplicate_window) });
    }
  }

  /** Follow the connection: publishes reject while it is down; a closed one is replaced. */
  private async watch(live: Live): Promise<void> {
    void live.nc.closed().then((err) => {
      live.connected = false;
      if (this.closed) return;
      this.forget(live, err ? err.message : 'connection closed');
    });
    for await (const s of live.nc.status()) {
      if (s.type === 'disconnect') {
        live.connected = false;
        this.opts.log.warn({ sink: this.name, server: String(s.data) }, 'event sink: disconnected from NATS');
      } else if (s.type === 'reconnect') {
        live.connected = true;
        this.opts.log.info({ sink: this.name, server: String(s.data) }, 'event sink: reconnected to NATS');
      }
    }
  }
}
