import pg from 'pg';
import type { Logger } from 'pino';
import type { RelayLease } from '../record-store.js';

/** The advisory-lock class of relay leases (the object id is the hash of the sink's name). */
const RELAY_LOCK_CLASS = 7413;
/** How often a held lease checks that its connection still answers. */
const CONFIRM_MS = 2000;

const noop = () => undefined;

/**
 * One sink's relay lease across processes: a session-level advisory lock held by a connection of
 * its own. The lock goes with the connection: a process that dies (kill -9 included) loses it when
 * its socket closes, and a hung or unreachable one when the server's TCP keep-alives give up on it
 * (about 11 s), so another process takes over within seconds.
 */
export class PgRelayLease implements RelayLease {
  private client: pg.Client | null = null;
  private holding = false;
  private confirmedAt = 0;

  constructor(
    private readonly connectionString: string,
    private readonly sink: string,
    private readonly log?: Logger,
  ) {}

  held(): boolean {
    return this.holding;
  }

  async acquire(): Promise<boolean> {
    try {
      const c = await this.connection();
      if (this.holding) {
        if (Date.now() - this.confirmedAt < CONFIRM_MS) return true;
        await c.query('SELECT 1');
      } else {
        const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [RELAY_LOCK_CLASS, this.sink]);
        this.holding = r.rows[0]?.ok === true;
        if (this.holding) this.log?.info({ sink: this.sink }, 'outbox relay lease taken');
      }
      this.confirmedAt = Date.now();
      return this.holding;
    } catch (err) {
      this.lost(err);
      return false;
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = new pg.Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      statement_timeout: 5000,
      query_timeout: 10_000,
    });
    c.on('error', (err) => this.lost(err));
    await c.connect().catch(async (err: unknown) => {
      await c.end().catch(noop);
      throw err;
    });
    // The server drops the session (and the lock) of a client that stopped answering.
    await c.query('SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3');
    this.client = c;
    return c;
  }

  private lost(err: unknown): void {
    if (this.holding) this.log?.warn({ err, sink: this.sink }, 'outbox relay lease lost');
    this.holding = false;
    const c = this.client;
    this.client = null;
    if (c) void c.end().catch(noop);
  }

  async release(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.holding = false;
    if (!c) return;
    // Closing the session releases its locks anyway; the unlock only makes it immediate.
    await c.query('SELECT pg_advisory_unlock_all()').catch(noop);
    await c.end().catch(noop);
  }
}
