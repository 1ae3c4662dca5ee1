import fs from 'node:fs';
import type { Result } from 'ioredis';

type Reply = Array<string | number>;

/**
 * The TypeScript side of every Lua file in lua/ (the loader below defines them at run time;
 * test/unit/redis-scripts.test.ts checks both sides name the same commands). Keys first, in the
 * order of the script's KEYS, then its ARGV.
 */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** `buyers`: four per buyer, userId, quantity, now, orderId (see reserve-many-5.lua). */
    seckillReserveMany(sale: string, holdings: string, orders: string, stream: string, index: string, saleId: string, deadline: number, ...buyers: Array<string | number>): Result<Reply, Context>;
    seckillTransition(sale: string, holdings: string, orders: string, stream: string, orderId: string, to: string, now: number, paymentRef: string, deadline: number): Result<Reply, Context>;
    seckillRefund(sale: string, holdings: string, orders: string, stream: string, index: string, orderId: string, now: number, reason: string, deadline: number, json: string, saleId: string): Result<Reply, Context>;
    seckillInitSale(sale: string, lock: string, holdings: string, token: string, ...args: Array<string | number>): Result<number, Context>;
    seckillRebuildBegin(lock: string, sale: string, holdings: string, orders: string, token: string): Result<number, Context>;
    seckillRebuildChunk(lock: string, holdings: string, orders: string, index: string, token: string, saleId: string, ...entries: string[]): Result<number, Context>;
    seckillLockExtend(lock: string, token: string, ms: number): Result<number, Context>;
    seckillLockRelease(lock: string, token: string): Result<number, Context>;
    seckillAdoptOrder(sale: string, holdings: string, orders: string, index: string, orderId: string, json: string, userId: string, quantity: number, saleId: string): Result<number, Context>;
    seckillReserveOutcome(orders: string, sale: string, holdings: string, orderId: string, userId: string): Result<Reply, Context>;
    seckillTrimStream(stream: string, group: string): Result<number, Context>;
    seckillPruneOrder(orders: string, index: string, orderId: string, json: string): Result<number, Context>;
    /** room-visit-7.lua: keys meta, line, seen, adm, rec, est, meter; then userId, now ('' = TIME), join '1'|'0', rank ('' = fifo), key TTL ms. */
    seckillRoomVisit(meta: string, line: string, seen: string, adm: string, rec: string, est: string, meter: string, userId: string, now: string, join: string, rank: string, ttlMs: number): Result<Reply, Context>;
    /** room-tick-10.lua (see the file for the arguments). */
    seckillRoomTick(meta: string, line: string, seen: string, adm: string, out: string, meter: string, rec: string, est: string, err: string, sale: string, ...args: Array<string | number>): Result<Reply, Context>;
    seckillRoomPass(adm: string, out: string, op: 'check' | 'claim' | 'settle', userId: string, nonce: string, now: string, extra: string | number): Result<number, Context>;
    seckillUpdateSale(sale: string, holdings: string, orders: string, endsAt: number, fixedToo: 0 | 1, stock: number, limit: number, startsAt: number, price: number, window: number): Result<number, Context>;
  }
}

/** `name-N.lua`: N is how many of the script's arguments are keys (BullMQ's convention). */
const FILE_NAME = /^([a-z][a-z-]*[a-z])-(\d+)\.lua$/;
const LUA_DIR = new URL('./lua/', import.meta.url);

export interface LuaScript {
  file: string;
  /** The file name without its key count, e.g. `reserve-outcome`. */
  name: string;
  /** The ioredis command it becomes, e.g. `seckillReserveOutcome`. */
  command: string;
  numberOfKeys: number;
  lua: string;
}

/** `reserve-outcome` → `seckillReserveOutcome`. */
export function commandName(name: string): string {
  return `seckill${name.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}`;
}

/** Every `*.lua` of `dir`, its key count taken from its name; a name without one is an error. */
export function readScripts(dir: URL = LUA_DIR): LuaScript[] {
  return fs
    .readdirSync(dir)
    .filter((file) => file.endsWith('.lua'))
    .sort()
    .map((file) => {
      const m = FILE_NAME.exec(file);
      if (!m) throw new Error(`lua/${file}: a script's name must end in -N.lua, N its number of keys`);
      const name = m[1];
      return { file, name, command: commandName(name), numberOfKeys: Number(m[2]), lua: fs.readFileSync(new URL(file, dir), 'utf8') };
    });
}

let commands: Record<string, { numberOfKeys: number; lua: string }> | null = null;

/** The `scripts` option of every connection: one command per Lua file, read once; ioredis runs each by EVALSHA. */
export function scriptCommands(): Record<string, { numberOfKeys: number; lua: string }> {
  commands ??= Object.fromEntries(readScripts().map((s) => [s.command, { numberOfKeys: s.numberOfKeys, lua: s.lua }]));
  return commands;
}
