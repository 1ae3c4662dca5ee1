import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { SeckillError } from '../../domain/errors.js';
import { holds } from '../../domain/order.js';
import type { Sale } from '../../domain/sale.js';
import type { SharedRecordStore } from '../record-store.js';
import { LuaCode, holdingsMismatch, rebuildLockLost } from './codes.js';
import type { RedisKeys } from './keys.js';
import { storedOrder } from './stored-order.js';
import { createWriterGroup, writerGroupInfo } from './writer-group.js';

/** The rebuild lock's lifetime; a watchdog renews it every third of that while the rebuild runs. */
const REBUILD_LOCK_MS = 15_000;
/** A caller waiting for another process's rebuild gives up (503, nothing changed) after this. */
const REBUILD_WAIT_MS = 8000;
/** A rebuild waits this long for the writers to put the sale's stream into PostgreSQL. */
const DRAIN_WAIT_MS = 20_000;
/** Orders per rebuild-chunk script. */
const REBUILD_CHUNK = 500;

/** TEST-ONLY hooks into the rebuild (set by unit tests on their own engine; never in production). */
export interface RebuildTestHooks {
  /** After the database was read, before the first chunk is written. */
  afterRead?: (saleId: string) => Promise<void>;
  /** After every chunk is written, before the stock record is created. */
  beforeFinish?: (saleId: string) => Promise<void>;
}

/** Process-wide queue of rebuild reads: one fenced PostgreSQL read at a time per process. */
let fenceQueue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const p = fenceQueue.then(fn, fn);
  fenceQueue = p.catch(() => undefined);
  return p;
}

/**
 * Puts a sale back into Redis from the database of record when Redis lost it (restarted without
 * its data) or an operator's repair dropped it (`seckill reconcile --repair`). The engine asks
 * before a sale sells; reconcile asks after a repair. Needs of the record store only the fenced
 * read of the sale's open orders.
 */
export class SaleRebuilder {
  /** TEST-ONLY: see RebuildTestHooks. */
  testHooks: RebuildTestHooks = {};
  private readonly rebuilding = new Map<string, Promise<void>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: Pick<SharedRecordStore, 'openOrdersFenced'>,
    private readonly log: Logger,
  ) {}

  /**
   * The sale's stream has the writers' group, and Redis holds the sale's complete record:
   * rebuilt now if it does not (one rebuild per sale at a time in this process).
   */
  async ensureLoaded(sale: Sale): Promise<void> {
    await createWriterGroup(this.redis, this.keys.stream(sale.id), this.keys.writerGroup);
    if (!(await this.isLoaded(sale.id))) await this.rebuildOnce(sale);
  }

  /**
   * Whether Redis holds the sale's complete stock record: its `ready` field, written by
   * init-sale together with the rest, is the test. A key with only some fields (a pause written
   * while Redis had lost the sale, a rebuild under way) is not a loaded sale.
   */
  async isLoaded(saleId: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.sale(saleId), 'ready')) === '1';
  }

  /** One rebuild of a sale at a time in this process; callers share it. */
  private rebuildOnce(sale: Sale): Promise<void> {
    let p = this.rebuilding.get(sale.id);
    if (!p) {
      p = this.rebuild(sale).finally(() => this.rebuilding.delete(sale.id));
      this.rebuilding.set(sale.id, p);
    }
    return p;
  }

  /**
   * Rebuild a sale's Redis state from the database of record, under a lock so one process does
   * it. While the record is not `ready`, no script writes into the sale, so the stream gets
   * nothing new for it: first every order already in the stream is let into PostgreSQL (the
   * writers drain it), then PostgreSQL is read inside the rebuild fence (no writer holds a batch
   * it read and has not committed: see rebuild-fence.ts), then orders and holdings are written
   * in chunks and, last, the record in one step. The lock is renewed while this runs, every
   * write checks it is still ours, and it is released by compare-and-delete.
   */
  private async rebuild(sale: Sale): Promise<void> {
    const lock = this.keys.rebuildLock(sale.id);
    const token = crypto.randomBytes(8).toString('hex');
    const giveUp = Date.now() + REBUILD_WAIT_MS;
    while (!(await this.redis.set(lock, token, 'PX', REBUILD_LOCK_MS, 'NX'))) {
      if (await this.isLoaded(sale.id)) return;
      if (Date.now() > giveUp) throw new SeckillError('busy', 'The sale is being restored; nothing was changed. Try again shortly.', 2);
      await sleep(100);
    }
    let lost = false;
    const watchdog = setInterval(() => {
      this.redis.seckillLockExtend(lock, token, REBUILD_LOCK_MS).then(
        (ok) => {
          if (Number(ok) !== LuaCode['lock-extend'].renewed) lost = true;
        },
        () => undefined, // Redis away: the next renewal (or the writes' own checks) will tell
      );
    }, REBUILD_LOCK_MS / 3);
    watchdog.unref();
    const sk = this.keys;
    try {
      const begun = Number(await this.redis.seckillRebuildBegin(lock, sk.sale(sale.id), sk.holdings(sale.id), sk.orders(sale.id), token));
      if (begun === LuaCode['rebuild-begin'].loaded) return;
      if (begun !== LuaCode['rebuild-begin'].begun) throw rebuildLockLost();
      await this.drained(sale.id);
      const open = await oneAtATime(() => this.repo.openOrdersFenced(sale.id));
      await this.testHooks.afterRead?.(sale.id);
      if (lost) throw rebuildLockLost();
      let held = 0;
      for (let i = 0; i < open.length; i += REBUILD_CHUNK) {
        const args: string[] = [];
        for (const o of open.slice(i, i + REBUILD_CHUNK)) {
          // A refunded order holds its units only when its sale does not restock on refund.
          const units = holds(o.status, sale.restockOnRefund) ? o.quantity : 0;
          held += units;
          args.push(o.orderId, o.userId, String(units), storedOrder(o));
        }
        const n = Number(await this.redis.seckillRebuildChunk(lock, sk.holdings(sale.id), sk.orders(sale.id), sk.orderIndex(), token, sale.id, ...args));
        if (n === LuaCode['rebuild-chunk'].lockLost) throw rebuildLockLost();
      }
      await this.testHooks.beforeFinish?.(sale.id);
      const created = Number(
        await this.redis.seckillInitSale(
          sk.sale(sale.id), lock, sk.holdings(sale.id), token,
          sale.stock, sale.stock - held, sale.perUserLimit, sale.startsAt, sale.endsAt ?? 0,
          sale.paused ? 1 : 0, sale.priceCents, sale.paymentWindowSeconds, held, sale.restockOnRefund ? 1 : 0,
        ),
      );
      if (created === LuaCode['init-sale'].lockLost) throw rebuildLockLost();
      if (created === LuaCode['init-sale'].holdingsMismatch) throw holdingsMismatch(sale.id, held);
      if (open.length > 0 || sale.createdAt < Date.now() - 60_000) {
        this.log.warn({ saleId: sale.id, openOrders: open.length, held, created }, 'sale state rebuilt in Redis from the database');
      }
    } finally {
      clearInterval(watchdog);
      await this.redis.seckillLockRelease(lock, token).catch(() => undefined); // else it expires
    }
  }

  /**
   * Wait until every record in the sale's stream is in PostgreSQL: nothing pending (delivered,
   * not acknowledged — writers acknowledge after their commit) and nothing undelivered.
   */
  private async drained(saleId: string): Promise<void> {
    const stream = this.keys.stream(saleId);
    const giveUp = Date.now() + DRAIN_WAIT_MS;
    for (;;) {
      const info = await writerGroupInfo(this.redis, stream, this.keys.writerGroup);
      let left = 0;
      if (info) {
        // XINFO's lag is null when Redis cannot compute it: compare the last ids instead.
        const s = (await this.redis.xinfo('STREAM', stream)) as Array<string | number>;
        const lastId = String(s[s.indexOf('last-generated-id') + 1]);
        left = info.pending + (Number.isFinite(info.lag) ? info.lag : lastId === info.lastDeliveredId ? 0 : 1);
      }
      if (left === 0) return;
      if (Date.now() > giveUp) {
        throw new SeckillError('busy', `The sale is being restored and ${left} of its order records are still being written; nothing was changed. Try again shortly.`, 2);
      }
      await sleep(100);
    }
  }
}
