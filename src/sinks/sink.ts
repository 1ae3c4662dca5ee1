import type { OutboxEvent } from '../domain/events.js';

/**
 * Where the outbox relay sends events: a broker or a webhook. One small interface, so that the
 * relay and its tests do not care which (rate-limiter-flexible's stores are the model).
 */
export interface EventSink {
  /** Stable, short, used as the relay's lease name and in metrics: "amqp", "nats", "webhook:<n>". */
  readonly name: string;
  /**
   * Publish the events, each key's (order's) in the order given (different keys may go out side
   * by side), and resolve only when the sink has confirmed every one
   * (publisher confirms, JetStream acks, a 2xx). Rejects when any was not confirmed; the relay
   * then retries them all later (at least once: receivers de-duplicate by `event.id`).
   */
  publish(events: readonly OutboxEvent[]): Promise<void>;
  close(): Promise<void>;
}
