import pg from 'pg';
import type { Logger } from 'pino';
import { SeckillError } from '../../domain/errors.js';

// One seckill process per database in PostgreSQL mode: the memory engine of each process would
// otherwise sell the whole stock on its own. (Embedded mode's counterpart: sqlite/data-dir-lock.ts.)

/** Key of the instance lock (pg_advisory_lock's bigint space; 7411 guards the DDL, 7412 is the distributed writers' rebuild fence). */
const INSTANCE_KEY = 7413;
const RETRY_MS = 500;

/** `database "x" on host:port`, never the password. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `database "${decodeURIComponent(u.pathname.slice(1)) || '(default)'}" on ${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    return 'the database of DATABASE_URL';
  }
}

/**
 * PostgreSQL mode: a session-level advisory lock, held on a connection of its own for the life
 * of the process (distributed mode does not take it: its processes share one database by
 * design). When that connection drops (PostgreSQL restarted, the session terminated), buys are
 * refused with 503 busy until the lock is taken again on a new connection, retried every
 * 500 ms. If another process took it meanwhile, this process never sells again: its engine may
 * no longer match the database. It says so in its log and /readyz until it is stopped.
 */
export class DatabaseLock {
  private client: pg.Client | null = null;
  /** Backend of the last session that held the lock: after a drop it may linger, still holding it. */
  private lastPid: number | null = null;
  private held = false;
  /** Another process holds the lock: permanent for this process. */
  private lost = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  /** Not taken yet (`refusal` refuses until `hold` took it): what uses it can be built first. */
  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  /** Takes the lock or throws (another process holds it; the database is unreachable). */
  static async acquire(url: string, log: Logger): Promise<DatabaseLock> {
    const lock = new DatabaseLock(url, log);
    await lock.hold();
    return lock;
  }

  /** Takes the lock or throws (another process holds it; the database is unreachable). */
  async hold(): Promise<void> {
    if (!(await this.take())) {
      throw new Error(
        `Another seckill process in PostgreSQL mode is already running on ${describeDatabase(this.url)} (it holds advisory lock ${INSTANCE_KEY}). ` +
          'Two such processes would each sell the whole stock: stop the other process first, or give this one its own database ' +
          '(several processes on one database need distributed mode: REDIS_URL).',
      );
    }
  }

  /** Why buys must be refused now, or null while the lock is held. */
  refusal(): SeckillError | null {
    if (this.held) return null;
    return this.lost
      ? new SeckillError('busy', 'Another seckill process took over this database; this one no longer sells.', 60)
      : new SeckillError('busy', 'Reconnecting to the database; nothing was changed. Try again shortly.', 1);
  }

  /** For /readyz. */
  async check(): Promise<void> {
    if (!this.held) throw new Error(this.lost ? 'instance lock held by another process' : 'instance lock not held');
  }

  /** True when taken; false when another process holds it. Throws when the database cannot be reached. */
  private async take(): Promise<boolean> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000, keepAlive: true });
    c.on('error', () => this.dropped(c));
    c.on('end', () => this.dropped(c));
    try {
      await c.connect();
      const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [INSTANCE_KEY]);
      if (!r.rows[0]?.ok) {
        const stale = await this.endStaleSession(c);
        await c.end().catch(() => undefined);
        if (stale) throw new Error('the previous lock session was still there; terminated it');
        return false;
      }
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await c.end().catch(() => undefined);
      return true;
    }
    this.client = c;
    this.lastPid = (c as unknown as { processID: number | null }).processID;
    this.held = true;
    return true;
  }

  /**
   * Our own dropped session may still hold the lock (the server has not noticed the connection
   * is gone): terminate it, so that the next attempt can take the lock. True when it was ours.
   */
  private async endStaleSession(c: pg.Client): Promise<boolean> {
    if (this.lastPid === null) return false;
    const r = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1 AND objsubid = 1
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [INSTANCE_KEY],
    );
    if (r.rows[0]?.pid !== this.lastPid) return false;
    await c.query('SELECT pg_terminate_backend($1)', [this.lastPid]);
    return true;
  }

  private dropped(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = null;
    this.held = false;
    if (this.closed) return;
    this.log.error('lost the connection holding the instance lock; buys refused until it is taken again');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retry || this.closed || this.lost) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.take().then(
        (taken) => {
          if (taken) {
            if (!this.closed) this.log.warn('instance lock taken again; selling');
            return;
          }
          this.lost = true;
          this.log.fatal(`another seckill process holds the instance lock of ${describeDatabase(this.url)}; this process no longer sells. Stop it.`);
        },
        () => this.scheduleRetry(),
      );
    }, RETRY_MS);
    this.retry.unref();
  }

  async release(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const c = this.client;
    this.client = null;
    this.held = false;
    // Ending the session releases the lock.
    if (c) await c.end().catch(() => undefined);
  }
}
