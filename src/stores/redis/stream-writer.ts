import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Order } from '../../domain/order.js';
import { parseStoredOrder } from './stored-order.js';
import type { RedisKeys } from './keys.js';
import { backlogOf, quarantineKey, trimAcknowledged, writerGroupInfo } from './writer-group.js';
import type { SharedRecordStore, WriterFenceHold } from '../record-store.js';

type Entry = [id: string, fields: string[]];
type StreamReply = Array<[stream: string, entries: Entry[]]>;
/** One readable entry of a batch. */
interface Item {
  stream: string;
  id: string;
  fields: string[];
  kind: 'new' | 'chg';
  order: Order;
  /** The order JSON exactly as stored (prune-order-2.lua compares it). */
  json: string;
}
/** An entry that cannot be written: unreadable, or refused by PostgreSQL for its data. */
interface Refused {
  stream: string;
  id: string;
  fields: string[];
  error: string;
}

export interface StreamWriterOptions {
  batch: number;
  /** Entries a consumer has held this long without acknowledging are taken over by another. */
  claimIdleMs: number;
  /** TEST-ONLY fault injection: wait this long between reading a batch and committing it. */
  testPauseBeforeCommitMs?: number;
  /** TEST-ONLY fault injection: wait this long between the commit and the XACK. */
  testPauseAfterCommitMs?: number;
}

/**
 * The distributed order writer: one consumer of the writers' group on every sale's stream.
 * Each read batch goes into PostgreSQL in ONE transaction (multi-row upserts), and is
 * acknowledged only after the commit; entries a dead consumer left pending are claimed by a
 * live one. Streams are trimmed only below what the group has acknowledged.
 */
export class StreamOrderWriter {
  readonly consumer = `${os.hostname()}-${process.pid}`;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastClaim = 0;
  private lastTrim = 0;
  ordersWritten = 0;
  batchesWritten = 0;
  /** Entries of all streams not yet written (undelivered + pending), refreshed by the trim pass. */
  backlog = 0;
  lastError: Error | null = null;
  private fence: WriterFenceHold | null = null;
  /** A batch read but not yet written (its commit failed): retried before anything new is read. */
  private held: StreamReply | null = null;
  /** Entries in the deployment's quarantine (all writers), refreshed with the backlog. */
  quarantined = 0;
  /** Entries this writer quarantined since it started. */
  quarantinedHere = 0;

  constructor(
    /** A connection of its own: XREADGROUP blocks it. */
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: SharedRecordStore,
    private readonly saleIds: () => string[],
    private readonly opts: StreamWriterOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    // First our own entries delivered before a restart of this consumer name, then new ones.
    let recovering = true;
    while (!this.stopped) {
      try {
        const streams = this.saleIds().map((id) => this.keys.stream(id));
        if (streams.length === 0) {
          await sleep(100);
          continue;
        }
        // Read → commit → acknowledge inside the rebuild fence (rebuild-fence.ts). A batch that
        // failed to commit is retried from memory, not read again: if Redis lost its streams in
        // between, this copy is the only one left; the fence stays up until it is written.
        const fence = (this.fence ??= this.repo.writerFence());
        const got = await fence.run(async () => {
          const reply =
            this.held ??
            ((await this.redis.xreadgroup(
              'GROUP', this.keys.writerGroup, this.consumer, 'COUNT', this.opts.batch, 'BLOCK', 100,
              'STREAMS', ...streams, ...streams.map(() => (recovering ? '0' : '>')),
            )) as StreamReply | null);
          if (!reply) return 0;
          this.held = reply;
          const n = await this.apply(reply);
          this.held = null;
          return n;
        }, () => this.held !== null);
        if (recovering && got === 0) recovering = false;
        const now = Date.now();
        if (now - this.lastClaim > Math.min(1000, this.opts.claimIdleMs)) {
          this.lastClaim = now;
          await fence.run(() => this.claim(streams));
        }
        if (now - this.lastTrim > 1000) {
          this.lastTrim = now;
          await this.trim(streams);
        }
        this.lastError = null;
      } catch (err) {
        if (this.stopped) return;
        this.lastError = err as Error;
        const msg = String((err as Error).message);
        if (msg.includes('NOGROUP')) await this.createGroups();
        else this.log.warn({ err: msg }, 'order writer: will retry');
        // While commits fail (the database down) the backlog grows: keep measuring it, so that
        // load shedding (SECKILL_MAX_WRITER_BACKLOG) and /readyz see it.
        await this.measureBacklog(this.saleIds().map((id) => this.keys.stream(id))).catch(() => undefined);
        recovering = true;
        await sleep(200);
      }
    }
  }

  /**
   * Insert the batch in one transaction, then acknowledge it; returns how many entries. An entry
   * PostgreSQL refuses for its data (a string it cannot store, say) must not stop the others:
   * the batch is split until the refused entries are alone, the rest is committed, and those
   * are quarantined (see `quarantine`) and acknowledged. Settled orders, once committed, are
   * pruned from Redis.
   */
  private async apply(reply: StreamReply): Promise<number> {
    const items: Item[] = [];
    const refused: Refused[] = [];
    let n = 0;
    for (const [stream, entries] of reply) {
      for (const [id, fields] of entries) {
        if (!fields) continue; // deleted entry still pending
        n++;
        const f = fieldMap(fields);
        const json = f.get('o') ?? '';
        try {
          items.push({ stream, id, fields, kind: f.get('k') === 'new' ? 'new' : 'chg', order: parseStoredOrder(json), json });
        } catch (err) {
          refused.push({ stream, id, fields, error: `unreadable order record: ${(err as Error).message}` });
        }
      }
    }
    if (n === 0) return reply.reduce((a, [, e]) => a + e.length, 0);
    if (this.opts.testPauseBeforeCommitMs) await this.testPause('before-commit', this.opts.testPauseBeforeCommitMs, n);
    refused.push(...(await this.commit(items)));
    if (this.opts.testPauseAfterCommitMs) await this.testPause('after-commit', this.opts.testPauseAfterCommitMs, n);
    if (refused.length > 0) await this.quarantine(refused);
    const p = this.redis.pipeline();
    for (const [stream, entries] of reply) if (entries.length > 0) p.xack(stream, this.keys.writerGroup, ...entries.map(([id]) => id));
    await p.exec();
    const bad = new Set(refused.map((r) => r.id));
    const written = items.filter((i) => !bad.has(i.id));
    this.ordersWritten += written.filter((i) => i.kind === 'new').length;
    this.batchesWritten++;
    await this.prune(written);
    return n;
  }

  /**
   * Commit `items` in one transaction; when PostgreSQL refuses it for its data, commit each half
   * (in stream order, so an order's creation goes before its change) down to single entries.
   * Returns the entries refused alone. Any other error (connection, timeout) is thrown: the
   * whole batch is read again and retried (every write here is idempotent).
   */
  private async commit(items: Item[]): Promise<Refused[]> {
    if (items.length === 0) return [];
    const created = new Map<string, Order>();
    const changed = new Map<string, Order>();
    for (const i of items) (i.kind === 'new' ? created : changed).set(i.order.orderId, i.order);
    try {
      await this.repo.applyBatch([...created.values()], [...changed.values()]);
      return [];
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (items.length === 1) return [{ ...items[0], error: `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim() }];
      const half = Math.ceil(items.length / 2);
      return [...(await this.commit(items.slice(0, half))), ...(await this.commit(items.slice(half)))];
    }
  }

  /**
   * Keep the entries PostgreSQL refused in the deployment's quarantine stream, before they are
   * acknowledged. Their orders were answered (202, or the change was) and Redis keeps them:
   * the stock stays held until an operator repairs the record (see README). At least once: a
   * crash between this and the XACK quarantines an entry twice.
   */
  private async quarantine(refused: Refused[]): Promise<void> {
    const key = quarantineKey(this.keys.prefix);
    const at = new Date().toISOString();
    const p = this.redis.pipeline();
    for (const r of refused) p.xadd(key, '*', 'stream', r.stream, 'id', r.id, 'error', r.error, 'at', at, ...r.fields);
    for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    this.quarantinedHere += refused.length;
    for (const r of refused) this.log.error({ stream: r.stream, entry: r.id, error: r.error }, 'order writer: PostgreSQL refused an order record; quarantined');
  }

  /**
   * Settled orders (paid, cancelled, expired) are in PostgreSQL now: drop them from the sale's
   * orders hash and the order index, if unchanged since (prune-order-2.lua). A hint of space only:
   * a failure leaves them for reconcile to see, nothing else. Refunded orders stay: they are the
   * record refund-5.lua reads to refund once (refunds are rare, so they cost little room).
   */
  private async prune(written: Item[]): Promise<void> {
    const settled = written.filter((i) => i.order.status !== 'reserved' && i.order.status !== 'refunded');
    if (settled.length === 0) return;
    const p = this.redis.pipeline();
    for (const i of settled) p.seckillPruneOrder(this.keys.orders(i.order.saleId), this.keys.orderIndex(), i.order.orderId, i.json);
    await p.exec().catch((err: unknown) => this.log.warn({ err }, 'order writer: settled orders not pruned from Redis'));
  }

  /** Fault injection for crash tests only (see config.ts); logged so that a stray setting shows. */
  private async testPause(at: string, ms: number, entries: number): Promise<void> {
    this.log.warn({ at, ms, entries }, 'order writer: TEST fault-injection pause');
    await sleep(ms);
  }

  private async claim(streams: string[]): Promise<void> {
    for (const stream of streams) {
      const r = (await this.redis.xautoclaim(stream, this.keys.writerGroup, this.consumer, this.opts.claimIdleMs, '0-0', 'COUNT', this.opts.batch)) as [string, Entry[], string[]?];
      const entries = r[1] ?? [];
      if (entries.length > 0) {
        this.log.warn({ stream, entries: entries.length }, 'order writer: claimed entries of a silent consumer');
        await this.apply([[stream, entries]]);
      }
    }
  }

  /** Drop entries every consumer acknowledged: below the oldest pending one, or below the last delivered (atomically). */
  private async trim(streams: string[]): Promise<void> {
    for (const stream of streams) await trimAcknowledged(this.redis, stream, this.keys.writerGroup);
    await this.measureBacklog(streams);
  }

  /** Entries not yet written: delivered but unacknowledged (pending) plus not yet delivered (lag). */
  private async measureBacklog(streams: string[]): Promise<void> {
    let backlog = 0;
    for (const stream of streams) backlog += backlogOf(await writerGroupInfo(this.redis, stream, this.keys.writerGroup));
    this.backlog = backlog;
    this.quarantined = await this.redis.xlen(quarantineKey(this.keys.prefix));
  }

  private async createGroups(): Promise<void> {
    for (const id of this.saleIds()) {
      await this.redis.xgroup('CREATE', this.keys.stream(id), this.keys.writerGroup, '0', 'MKSTREAM').catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.fence?.close();
  }
}

function fieldMap(fields: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) m.set(fields[i], fields[i + 1]);
  return m;
}


/**
 * PostgreSQL refused the data itself (SQLSTATE class 22 data exception, e.g. 22021 a NUL byte
 * in text; class 23 integrity constraint): the same entries would be refused forever. Anything
 * else (connection lost, timeout, server shutting down) is worth retrying as it is.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}
