import { randomFillSync } from 'node:crypto';

/**
 * Order ids: UUID version 7 (RFC 9562 §5.7), laid out as
 *   48 bits unix time in ms | 4 bits version (7) | 12 bits rand_a | 2 bits variant (10) | 62 bits rand_b.
 * rand_a and the top 30 bits of rand_b are one 42-bit counter (RFC 9562 §6.2, method 1): seeded
 * at random at each new millisecond with its top bit clear, then incremented, so the ids of one
 * process sort in the order they were made. The low 32 bits of rand_b are fresh random per id.
 *
 * Why not the uuid package: its v7 asks the CSPRNG for 16 bytes per id (one getRandomValues call,
 * ~8 µs each under load, the profile in bench/profile-buy.md). Here the random bytes come from a
 * pool filled by one randomFillSync per POOL_BYTES; they are the same CSPRNG's bytes.
 */

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolAt = POOL_BYTES;

/** The next `n` random bytes' offset in `pool`, refilling it when it runs out. */
function take(n: number): number {
  if (poolAt + n > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const at = poolAt;
  poolAt += n;
  return at;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

const TWO_30 = 2 ** 30;
const TWO_32 = 2 ** 32;
const COUNTER_MAX = 2 ** 42 - 1;

let lastMs = -1;
let counter = 0;

/** Seeds the counter from 41 random bits: the top bit clear leaves 2^41 ids before it could wrap. */
function seedCounter(): void {
  const at = take(6);
  counter = (pool[at] & 0x01) * TWO_32 * 256 + pool.readUInt32BE(at + 1) * 256 + pool[at + 5];
}

/** A new order id, later (as a string, and as a UUID v7) than every id this process made before. */
export function newOrderId(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    seedCounter();
  } else if (counter < COUNTER_MAX) {
    // Same millisecond, or the clock went back: stay on the last millisecond and count on.
    counter++;
  } else {
    // 2^41 ids in one millisecond: borrow the next one (still ordered; the clock catches up).
    lastMs++;
    seedCounter();
  }
  const ms = lastMs;
  const hi16 = Math.floor(ms / TWO_32);
  const lo32 = ms >>> 0;
  const randA = Math.floor(counter / TWO_30); // 12 bits
  const low30 = counter % TWO_30;
  const at = take(4);
  return (
    HEX[(hi16 >>> 8) & 0xff] +
    HEX[hi16 & 0xff] +
    HEX[lo32 >>> 24] +
    HEX[(lo32 >>> 16) & 0xff] +
    '-' +
    HEX[(lo32 >>> 8) & 0xff] +
    HEX[lo32 & 0xff] +
    '-' +
    HEX[0x70 | (randA >>> 8)] +
    HEX[randA & 0xff] +
    '-' +
    HEX[0x80 | (low30 >>> 24)] +
    HEX[(low30 >>> 16) & 0xff] +
    '-' +
    HEX[(low30 >>> 8) & 0xff] +
    HEX[low30 & 0xff] +
    HEX[pool[at]] +
    HEX[pool[at + 1]] +
    HEX[pool[at + 2]] +
    HEX[pool[at + 3]]
  );
}
