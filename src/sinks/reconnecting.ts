import type { Logger } from 'pino';
import { SinkError, messageOf } from './sink-error.js';

/**
 * A broker sink's one connection, opened on demand: by the first publish, and by the first one
 * after it was forgotten (dropped). After a failed attempt the next waits a delay that doubles
 * from `delays.min` to `delays.max`; publishes meanwhile reject at once (the relay keeps their
 * events and retries), so a broker that is down costs no time on every batch.
 */
export class Reconnecting<T> {
  /** The connection being opened or open, or null. */
  current: Promise<T> | null = null;
  private failedUntil = 0;
  private lastFailure: Error | null = null;
  private delay: number;

  constructor(
    private readonly sink: string,
    /** What is connected to, for the log: "the AMQP broker", "NATS". */
    private readonly peer: string,
    private readonly delays: { min: number; max: number },
    private readonly log: Logger,
    private readonly open: () => Promise<T>,
  ) {
    this.delay = delays.min;
  }

  get(): Promise<T> {
    if (this.current) return this.current;
    if (Date.now() < this.failedUntil) {
      return Promise.reject(new SinkError(this.sink, `not connected (last attempt: ${this.lastFailure?.message ?? 'failed'}); next attempt in ${this.failedUntil - Date.now()} ms`));
    }
    const attempt = this.open().then(
      (conn) => {
        this.delay = this.delays.min;
        return conn;
      },
      (err: unknown) => {
        if (this.current === attempt) this.current = null;
        const e = err instanceof SinkError ? err : new SinkError(this.sink, `cannot connect: ${messageOf(err)}`, false, { cause: err });
        this.lastFailure = e;
        this.failedUntil = Date.now() + this.delay;
        this.delay = Math.min(this.delays.max, this.delay * 2);
        this.log.warn({ sink: this.sink, err: e.message }, `event sink: cannot connect to ${this.peer}`);
        throw e;
      },
    );
    this.current = attempt;
    return attempt;
  }

  /** Forget `conn` if it is the current one (the next get() opens a new one); true when it was. */
  async forget(conn: T): Promise<boolean> {
    const current = await this.current?.catch(() => null);
    if (current !== conn) return false;
    this.current = null;
    return true;
  }
}
