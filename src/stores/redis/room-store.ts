// The waiting rooms in Redis (distributed mode, issue 14): every process sees one line per sale and
// any of them may tick it. One Lua script per operation (lua/room-*.lua), all keys of a sale in
// its slot (RedisKeys.room). What each key holds:
//   meta  hash: opened, openedAt, credit, lastTick (the bucket), seq (arrivals), admitted, abandoned
//   line  zset: users waiting, by place (fifo: arrival seq; random: shuffle rank before the open,
//         2^52 + seq after it)
//   seen  zset: users waiting, by last visit (abandonment)
//   adm   hash: users let out → "state|nonce|expiresAt|claimUntil" (L live, C claimed, S spent)
//   out   zset: users let out whose pass counts against the stock, by when it stops counting
//   meter hash: second → users let out in it (the measured rate)
//   rec   hash: user → "firstJoinedAt|joinedAt|admittedAt" (the fairness report)
//   est   hash: user → when the first estimate after the open expected the place out
//   err   list: recent admissions' estimate errors (ms)
// Every key gets a TTL (refreshed while the room ticks): the sale's end plus a day, or a day.
import type { Redis } from 'ioredis';
import { passNonce } from '../../domain/pass.js';
import { RATE_WINDOW_SECONDS, maxCarry, meanAbsError, windowRate } from '../../domain/waiting-room.js';
import { ETA_ERROR_SAMPLES, type RoomRecord, type RoomSale, type RoomStore, type RoomStoreOptions, type StoreStats, type Visit } from '../room-store.js';
import type { RedisKeys, RoomKeyPart } from './keys.js';
import { LuaCode } from './codes.js';

/** Room keys outlive the sale's end by this much (the fairness report reads the records after it). */
const KEEP_AFTER_END_MS = 24 * 3600_000;

export interface RedisRoomOptions {
  /** Tests: use the caller's `now` instead of Redis's clock (TIME). */
  callerClock?: boolean;
}

export class RedisRoomStore implements RoomStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly o: RoomStoreOptions,
    private readonly extra: RedisRoomOptions = {},
  ) {}

  async visit(room: RoomSale, userId: string, v: { join: boolean; rank: number | null; now: number }): Promise<Visit> {
    const k = (part: RoomKeyPart) => this.keys.room(room.saleId, part);
    const r = await this.redis.seckillRoomVisit(
      k('meta'), k('line'), k('seen'), k('adm'), k('rec'), k('est'), k('meter'),
      userId, this.now(v.now), v.join ? '1' : '0', v.rank === null ? '' : String(v.rank), this.ttl(room, v.now),
    );
    const kind = Number(r[0]);
    if (kind === LuaCode['room-visit'].absent) return { kind: 'absent' };
    if (kind === LuaCode['room-visit'].admitted) return { kind: 'admitted', nonce: String(r[1]), expiresAt: Number(r[2]), spent: Number(r[3]) === 1 };
    const opened = Number(r[2]) === 1;
    const now = Number(r[5]);
    const counts: Array<[number, number]> = [];
    for (let i = 6; i + 1 < r.length; i += 2) counts.push([Number(r[i]), Number(r[i + 1])]);
    return {
      kind: 'waiting',
      position: Number(r[1]),
      opened,
      measuredRate: opened ? windowRate(counts, now, Number(r[3])) : 0,
      estimated: Number(r[4]) === 1,
      now,
    };
  }

  async noteEstimate(saleId: string, userId: string, expectedAt: number): Promise<void> {
    await this.redis.hsetnx(this.keys.room(saleId, 'est'), userId, String(Math.round(expectedAt)));
  }

  async tick(room: RoomSale, now: number): Promise<void> {
    const k = (part: RoomKeyPart) => this.keys.room(room.saleId, part);
    await this.redis.seckillRoomTick(
      k('meta'), k('line'), k('seen'), k('adm'), k('out'), k('meter'), k('rec'), k('est'), k('err'), this.keys.sale(room.saleId),
      this.now(now), room.startsAt, room.admitPerSecond, room.stockFactor, this.o.abandonAfterMs, this.o.passTtlMs,
      // 96 random bits per call; the i-th user let out gets this followed by i: unique nonces without randomness in Lua.
      `${passNonce()}.`, this.ttl(room, now), ETA_ERROR_SAMPLES, RATE_WINDOW_SECONDS, maxCarry(room.admitPerSecond),
    );
  }

  async checkPass(saleId: string, userId: string, nonce: string, now: number): Promise<boolean> {
    return (await this.pass(saleId, 'check', userId, nonce, now, 0)) === LuaCode['room-pass'].yes;
  }

  async claimPass(saleId: string, userId: string, nonce: string, now: number): Promise<boolean> {
    return (await this.pass(saleId, 'claim', userId, nonce, now, this.o.claimTtlMs)) === LuaCode['room-pass'].yes;
  }

  async settlePass(saleId: string, userId: string, reserved: boolean, now: number): Promise<void> {
    await this.pass(saleId, 'settle', userId, '', now, reserved ? '1' : '0');
  }

  async stats(saleId: string, now: number): Promise<StoreStats | null> {
    const k = (part: RoomKeyPart) => this.keys.room(saleId, part);
    const at = this.extra.callerClock ? now : await this.redisNow();
    const r = await this.redis
      .multi()
      .hgetall(k('meta'))
      .zcard(k('line'))
      .zcount(k('out'), `(${at}`, '+inf')
      .hgetall(k('meter'))
      .lrange(k('err'), 0, -1)
      .exec();
    if (!r) return null;
    const [meta, waiting, outstanding, meter, errs] = r.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [Record<string, string>, number, number, Record<string, string>, string[]];
    if (Object.keys(meta).length === 0) return null;
    const opened = meta.opened === '1';
    return {
      waiting,
      admitted: Number(meta.admitted ?? 0),
      outstanding,
      abandoned: Number(meta.abandoned ?? 0),
      admittedPerSecond: opened ? windowRate(Object.entries(meter).map(([s, n]) => [Number(s), Number(n)] as const), at, Number(meta.openedAt)) : 0,
      opened,
      etaErrorSeconds: meanAbsError(errs.map(Number)),
    };
  }

  async records(saleId: string): Promise<RoomRecord[]> {
    const all = await this.redis.hgetall(this.keys.room(saleId, 'rec'));
    return Object.entries(all).map(([userId, v]) => {
      const [first, joined, admitted] = v.split('|');
      return { userId, firstJoinedAt: Number(first), joinedAt: Number(joined), admittedAt: admitted ? Number(admitted) : null };
    });
  }

  /** The keys expire by themselves (KEEP_AFTER_END_MS): the records stay for the fairness report. */
  async forget(): Promise<void> {}

  private pass(saleId: string, op: 'check' | 'claim' | 'settle', userId: string, nonce: string, now: number, extra: string | number): Promise<number> {
    return this.redis.seckillRoomPass(this.keys.room(saleId, 'adm'), this.keys.room(saleId, 'out'), op, userId, nonce, this.now(now), extra);
  }

  /** The scripts' `now`: '' makes them read Redis's clock, the one clock of every process. */
  private now(now: number): string {
    return this.extra.callerClock ? String(now) : '';
  }

  private async redisNow(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  private ttl(room: RoomSale, now: number): number {
    return Math.max(0, (room.endsAt ?? now) - now) + KEEP_AFTER_END_MS;
  }
}
