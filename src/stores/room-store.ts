// Where the waiting rooms' state lives (issue 14): in this process's memory (embedded and postgres
// modes: src/stores/memory-room-store.ts) or in Redis, shared by every process (distributed mode:
// src/stores/redis/room-store.ts). The rules are src/domain/waiting-room.ts; the timer, the sales
// and the answers the pages see are src/services/waiting-room.ts. Both stores pass
// test/conformance/room-store.test.ts.
import type { QueueMethod } from '../domain/queue.js';

/** What a store needs of a sale to run its room (the service reads it from the sale). */
export interface RoomSale {
  saleId: string;
  method: QueueMethod;
  admitPerSecond: number;
  stockFactor: number;
  startsAt: number;
  endsAt: number | null;
  /** The memory store's pause; the Redis store reads the stock engine's own record instead. */
  paused: boolean;
}

/** A user's visit (join or poll), as the store saw it. */
export type Visit =
  /** Not in line and not let out (poll only: a join always gives a place). */
  | { kind: 'absent' }
  /** Let out: the pass's nonce and expiry (the service signs the text); spent once an order was reserved with it. */
  | { kind: 'admitted'; nonce: string; expiresAt: number; spent: boolean }
  | {
      kind: 'waiting';
      /** 1 = next out. */
      position: number;
      opened: boolean;
      /** Users let out per second lately (0 before the open). */
      measuredRate: number;
      /** This place already has its first estimate after the open (for the estimate's error). */
      estimated: boolean;
      /** The store's clock at the visit (Redis: its TIME), epoch ms. */
      now: number;
    };

/** A user's place in the room's history, for the fairness report. */
export interface RoomRecord {
  userId: string;
  /** Epoch ms of the user's first join. */
  firstJoinedAt: number;
  /** The join that gave the current/last place (a re-join after abandonment moves to the back). */
  joinedAt: number;
  admittedAt: number | null;
}

/** A room's figures as the store holds them. */
export interface StoreStats {
  waiting: number;
  /** Let out since the room began. */
  admitted: number;
  /** Let out and not bought yet, pass still good (or a buy with it in flight). */
  outstanding: number;
  abandoned: number;
  admittedPerSecond: number;
  opened: boolean;
  /**
   * Mean absolute error (s) over recently admitted users of: admission time − (time of the user's
   * first estimate after the open + that etaSeconds). Null while none was admitted with one.
   */
  etaErrorSeconds: number | null;
}

export interface RoomStoreOptions {
  abandonAfterMs: number;
  passTtlMs: number;
  /** A buy holds a claimed pass at most this long (a crashed process does not hold it for ever). */
  claimTtlMs: number;
}

/**
 * One sale's room: places in line, the admission bucket, the passes given. Every operation is
 * atomic for the room (Redis: one Lua script), so any number of callers — every process's timer —
 * may run them at once. `now` is the caller's clock; the Redis store uses Redis's clock instead
 * unless it was built to take the caller's (tests).
 */
export interface RoomStore {
  /**
   * Join (`join`: take a place, or keep the one this user has — one per user; a user whose pass
   * ran out or was spent goes to the back) or poll (keeps the place). `rank`: the user's shuffle
   * rank in a random room (orders the pre-queue at the open), null in a fifo room.
   */
  visit(room: RoomSale, userId: string, o: { join: boolean; rank: number | null; now: number }): Promise<Visit>;
  /** The first estimate after the open for this user's place: admission expected at `expectedAt` (epoch ms). Kept once. */
  noteEstimate(saleId: string, userId: string, expectedAt: number): Promise<void>;
  /** One round: drop abandoned places and unused passes run out, open, let users out (bucket, stock cap, line). */
  tick(room: RoomSale, now: number): Promise<void>;
  /** A pass with this nonce was given to this user and is not spent. */
  checkPass(saleId: string, userId: string, nonce: string, now: number): Promise<boolean>;
  /** Take the pass for a buy: only when good and not taken (`settlePass` must follow). */
  claimPass(saleId: string, userId: string, nonce: string, now: number): Promise<boolean>;
  /** After the buy: reserved, the pass is spent; otherwise good again until it expires. */
  settlePass(saleId: string, userId: string, reserved: boolean, now: number): Promise<void>;
  /** Null: no room (nobody joined yet, or forgotten). */
  stats(saleId: string, now: number): Promise<StoreStats | null>;
  records(saleId: string): Promise<RoomRecord[]>;
  /** The sale ended or lost its room: what is kept of it may go. */
  forget(saleId: string): Promise<void>;
}

/** How many recent admissions the estimate's error is averaged over. */
export const ETA_ERROR_SAMPLES = 200;
/** Score base of the arrivals after the open in a random room: behind every rank (ranks are below 2^52). */
export const AFTER_OPEN_BASE = 2 ** 52;
