import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Order } from '../domain/order.js';
import { parseStoredOrder } from '../engine/redis-engine.js';
import type { RedisKeys } from '../engine/redis-keys.js';
import { backlogOf, writerGroupInfo } from '../engine/writer-group.js';
import type { PgOrderRepository } from './pg-repository.js';

type Entry = [id: string, fields: string[]];
type StreamReply = Array<[stream: string, entries: Entry[]]>;

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

  constructor(
    /** A connection of its own: XREADGROUP blocks it. */
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly repo: PgOrderRepository,
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
        const reply = (await this.redis.xreadgroup(
          'GROUP', this.keys.writerGroup, this.consumer, 'COUNT', this.opts.batch, 'BLOCK', 100,
          'STREAMS', ...streams, ...streams.map(() => (recovering ? '0' : '>')),
        )) as StreamReply | null;
        const got = reply ? await this.apply(reply) : 0;
        if (recovering && got === 0) recovering = false;
        const now = Date.now();
        if (now - this.lastClaim > Math.min(1000, this.opts.claimIdleMs)) {
          this.lastClaim = now;
          await this.claim(streams);
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

  /** Insert the batch in one transaction, then acknowledge it; returns how many entries. */
  private async apply(reply: StreamReply): Promise<number> {
    const created = new Map<string, Order>();
    const changed = new Map<string, Order>();
    let n = 0;
    for (const [, entries] of reply) {
      for (const [, fields] of entries) {
        if (!fields) continue; // deleted entry still pending
        n++;
        const f = fieldMap(fields);
        const order = parseStoredOrder(f.get('o') ?? '{}');
        if (f.get('k') === 'new') created.set(order.orderId, order);
        else changed.set(order.orderId, order);
      }
    }
    if (n === 0) return reply.reduce((a, [, e]) => a + e.length, 0);
    if (this.opts.testPauseBeforeCommitMs) await this.testPause('before-commit', this.opts.testPauseBeforeCommitMs, n);
    await this.repo.applyBatch([...created.values()], [...changed.values()]);
    if (this.opts.testPauseAfterCommitMs) await this.testPause('after-commit', this.opts.testPauseAfterCommitMs, n);
    const p = this.redis.pipeline();
    for (const [stream, entries] of reply) if (entries.length > 0) p.xack(stream, this.keys.writerGroup, ...entries.map(([id]) => id));
    await p.exec();
    this.ordersWritten += created.size;
    this.batchesWritten++;
    return n;
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

  /** Drop entries every consumer acknowledged: below the oldest pending one, or below the last delivered. */
  private async trim(streams: string[]): Promise<void> {
    for (const stream of streams) {
      const pending = (await this.redis.xpending(stream, this.keys.writerGroup)) as [number, string | null, string | null, unknown];
      let minId: string | null = pending[0] > 0 ? pending[1] : null;
      if (!minId) minId = (await writerGroupInfo(this.redis, stream, this.keys.writerGroup))?.lastDeliveredId ?? null;
      if (minId && minId !== '0-0') await this.redis.xtrim(stream, 'MINID', minId);
    }
    await this.measureBacklog(streams);
  }

  /** Entries not yet written: delivered but unacknowledged (pending) plus not yet delivered (lag). */
  private async measureBacklog(streams: string[]): Promise<void> {
    let backlog = 0;
    for (const stream of streams) backlog += backlogOf(await writerGroupInfo(this.redis, stream, this.keys.writerGroup));
    this.backlog = backlog;
  }

  private async createGroups(): Promise<void> {
    for (const id of this.saleIds()) {
      await this.redis.xgroup('CREATE', this.keys.stream(id), this.keys.writerGroup, '0', 'MKSTREAM').catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

function fieldMap(fields: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < fields.length; i += 2) m.set(fields[i], fields[i + 1]);
  return m;
}

