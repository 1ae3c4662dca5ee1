// The waiting room's rules (issue 14), pure: the verifiable shuffle, the admission arithmetic and
// the estimated wait. The room's state and its clock live in src/services/waiting-room.ts.
import crypto from 'node:crypto';
import type { WaitingRoomSettings, QueueMethod } from './queue.js';

export type { Challenge, QueueAnswer, QueueMethod, QueueState, WaitingRoomSettings } from './queue.js';

/** stockFactor when the operator gives none: never more users out than units left. */
export const DEFAULT_STOCK_FACTOR = 1;
/** How long a pass stays good: long enough to ask for the path and buy, short enough not to hoard. */
export const PASS_TTL_MS = 60_000;
/** A place not polled for this long is dropped (the page polls every few seconds). */
export const ABANDON_AFTER_MS = 20_000;
/** The admission rate the estimate uses is measured over this many trailing seconds. */
export const RATE_WINDOW_SECONDS = 10;

// ---- The verifiable shuffle -------------------------------------------------------------------

/**
 * The sale's shuffle seed: 64 hex characters, fixed for the sale (derived from its server-side
 * secret, so a restart keeps it and nothing else needs storing), never shown before the open.
 * Knowing it reveals nothing of the secret (HMAC is one-way).
 */
export function roomSeed(saleId: string, saleSecret: string): string {
  return crypto.createHmac('sha256', saleSecret).update('seckill waiting-room seed\0').update(saleId).digest('hex');
}

/** Published before the open: SHA-256 of the seed's 64 characters (UTF-8), hex. */
export function seedHash(seed: string): string {
  return crypto.createHash('sha256').update(seed, 'utf8').digest('hex');
}

/**
 * A user's draw: HMAC-SHA256 with the seed's 64 characters (UTF-8) as key over the user id
 * (UTF-8), hex. Its rank is what orders the pre-queue (docs/waiting-room.md).
 */
export function shuffleKey(seed: string, userId: string): string {
  return crypto.createHmac('sha256', seed).update(userId, 'utf8').digest('hex');
}

/** Hex digits of the draw that make its rank: 13 × 4 = 52 bits, exact as a double (a Redis score). */
export const RANK_HEX_DIGITS = 13;

/**
 * A user's rank in the pre-queue: the draw's first 13 hex digits read as an integer (0 ≤ rank <
 * 2^52). Exactly representable as a Redis sorted-set score, so distributed mode orders the line
 * by it in Redis and every mode orders it the same way.
 */
export function shuffleRank(seed: string, userId: string): number {
  return parseInt(shuffleKey(seed, userId).slice(0, RANK_HEX_DIGITS), 16);
}

/** Equal ranks (one chance in about 2^52 per pair) by user id, in UTF-8 byte order (as Redis orders equal scores). */
function byUserId(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The pre-queue's order at the open: ascending rank; equal ranks by user id (UTF-8 bytes). */
export function shuffled(seed: string, userIds: Iterable<string>): string[] {
  const keyed = [...userIds].map((u) => ({ u, k: shuffleRank(seed, u) }));
  keyed.sort((a, b) => a.k - b.k || byUserId(a.u, b.u));
  return keyed.map((x) => x.u);
}

/** Order of user ids by rank then id, for a store that holds (userId, rank) pairs. */
export function byRank(a: { userId: string; rank: number }, b: { userId: string; rank: number }): number {
  return a.rank - b.rank || byUserId(a.userId, b.userId);
}

// ---- Admission --------------------------------------------------------------------------------

/**
 * How many users the stock still allows out: remaining units × factor, less the users already
 * out who have not bought yet (each of them may still take units). Never negative.
 */
export function stockCap(available: number, stockFactor: number, outstanding: number): number {
  if (available <= 0) return 0;
  return Math.max(0, Math.floor(available * stockFactor) - outstanding);
}

/**
 * The most admission credit carried from one tick to the next: a quarter second's worth (≥ 1 user).
 * Credit saved while the line was empty or the stock held admission goes out at once when that
 * ends; a quarter second keeps that burst small (the complaint: rooms overshoot their rate).
 */
export const CARRY_SECONDS = 0.25;

export function maxCarry(admitPerSecond: number): number {
  return Math.max(1, admitPerSecond * CARRY_SECONDS);
}

/** The admission budget between ticks: a token bucket filled at the rate, carrying at most maxCarry(). */
export interface Admission {
  /** Users to let out now. */
  admit: number;
  /** Credit carried to the next tick. */
  credit: number;
}

/**
 * One tick's admission: the bucket fills by rate × elapsed, then lets out as many as the credit,
 * the stock and the line allow; at most maxCarry() is carried (a long pause, or a line held by the
 * stock, does not save up a burst), so in any window of T seconds at most rate × T + maxCarry(rate)
 * users go out, and from an empty bucket at most rate × T.
 */
export function admission(a: { credit: number; admitPerSecond: number; elapsedMs: number; cap: number; waiting: number }): Admission {
  const credit = a.credit + (a.admitPerSecond * Math.max(0, a.elapsedMs)) / 1000;
  const admit = Math.max(0, Math.min(Math.floor(credit), a.cap, a.waiting));
  // The carry is capped, not the fill: a tick that crosses a whole user keeps its fraction.
  return { admit, credit: Math.min(maxCarry(a.admitPerSecond), credit - admit) };
}

/**
 * Admissions per second over the trailing window, counted in whole-second buckets (the caller
 * passes the time). From the room's open until the window is full, divided by the time elapsed.
 */
export class RateMeter {
  private readonly buckets: number[];
  private readonly seconds: number[];

  constructor(private readonly windowSeconds = RATE_WINDOW_SECONDS) {
    this.buckets = new Array<number>(windowSeconds).fill(0);
    this.seconds = new Array<number>(windowSeconds).fill(-1);
  }

  add(n: number, now: number): void {
    const s = Math.floor(now / 1000);
    const i = s % this.windowSeconds;
    if (this.seconds[i] !== s) {
      this.seconds[i] = s;
      this.buckets[i] = 0;
    }
    this.buckets[i] += n;
  }

  /** Users per second over the last window, counting only since `since` (the open). */
  rate(now: number, since: number): number {
    return windowRate(this.seconds.map((second, i) => [second, this.buckets[i]] as const), now, since, this.windowSeconds);
  }
}

/**
 * The same measure from whole-second counts kept elsewhere (Redis: second → users let out):
 * users per second over the trailing window, counting only since `since` (the open).
 */
export function windowRate(counts: Iterable<readonly [second: number, n: number]>, now: number, since: number, windowSeconds = RATE_WINDOW_SECONDS): number {
  const s = Math.floor(now / 1000);
  let total = 0;
  for (const [second, n] of counts) if (second > s - windowSeconds && second <= s) total += n;
  const sinceOpen = (now - since) / 1000;
  // A few ticks' admissions are not yet a rate: in the first second the estimate takes the
  // configured one (the bucket starts empty at the open, so that is what the room does then).
  if (sinceOpen < MIN_RATE_SPAN_S) return 0;
  // The buckets counted span the window's whole seconds before this one and this one so far; and
  // never more than the time since the open.
  const counted = windowSeconds - 1 + (now - s * 1000) / 1000;
  return total / Math.min(counted, sinceOpen);
}

/** The shortest span a rate is measured over. */
const MIN_RATE_SPAN_S = 1;

/** Mean absolute error (seconds) of the estimates, or null when none was checked yet. */
export function meanAbsError(errorsMs: readonly number[]): number | null {
  if (errorsMs.length === 0) return null;
  return errorsMs.reduce((sum, e) => sum + Math.abs(e), 0) / errorsMs.length / 1000;
}

/**
 * Estimated wait: people ahead ÷ the admission rate measured lately, or the configured rate
 * while nothing was measured yet (the first seconds). Whole seconds, to the nearest (rounding up
 * made every estimate half a second long on average), at least 1 while anyone is ahead.
 */
export function etaSeconds(ahead: number, measuredRate: number, configuredRate: number): number {
  if (ahead <= 0) return 0;
  const rate = measuredRate > 0 ? measuredRate : configuredRate;
  return Math.max(1, Math.round(ahead / rate));
}

// ---- Settings ---------------------------------------------------------------------------------

/** The room as the operator gave it, checked; a message for a 400 otherwise. */
export function roomSettings(input: { method: QueueMethod; admitPerSecond: number; stockFactor?: number }): WaitingRoomSettings | string {
  if (input.method !== 'random' && input.method !== 'fifo') return 'waitingRoom.method must be "random" or "fifo".';
  if (!Number.isFinite(input.admitPerSecond) || input.admitPerSecond <= 0 || input.admitPerSecond > 100_000) {
    return 'waitingRoom.admitPerSecond must be a number above 0 and at most 100000.';
  }
  const stockFactor = input.stockFactor ?? DEFAULT_STOCK_FACTOR;
  if (!Number.isFinite(stockFactor) || stockFactor < 1 || stockFactor > 100) return 'waitingRoom.stockFactor must be between 1 and 100.';
  return { method: input.method, admitPerSecond: input.admitPerSecond, stockFactor };
}
