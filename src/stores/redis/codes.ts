import { SeckillError } from '../../domain/errors.js';
import type { Refusal } from '../../engine/stock-engine.js';

/**
 * Every number a Lua script in lua/ answers, by script (its file name without the key count).
 * A number means something only for its script: -2 is `paused` to reserve and "not our lock"
 * to a rebuild step. Scripts that answer a count (rebuild-chunk, trim-stream) list only the
 * literal numbers they return. test/unit/redis-codes.test.ts checks each script's literal
 * `return`s and its entry here are the same set.
 */
export const LuaCode = {
  'reserve-many': { reserved: 1, notLoaded: -1, paused: -2, notStarted: -3, ended: -4, limitReached: -5, soldOut: -6, tooLate: -7 },
  transition: { changed: 1, unchanged: 0, notLoaded: -1, unknownOrder: -2, tooLate: -7 },
  // The same numbers as transition's, on purpose: the engine reads both replies alike.
  refund: { changed: 1, unchanged: 0, notLoaded: -1, unknownOrder: -2, tooLate: -7 },
  'reserve-outcome': {},
  'adopt-order': { adopted: 1, known: 0, notLoaded: -1 },
  'rebuild-begin': { begun: 1, loaded: 0, lockLost: -2 },
  'rebuild-chunk': { lockLost: -2 },
  'init-sale': { created: 1, loaded: 0, lockLost: -2, holdingsMismatch: -3 },
  'lock-extend': { renewed: 1, notOurs: 0 },
  'lock-release': { released: 1, notOurs: 0 },
  'prune-order': { removed: 1, kept: 0 },
  'trim-stream': { nothingToTrim: 0, noGroup: -1 },
  'update-sale': { updated: 1, notLoaded: -1, hasOrders: -2 },
  // The waiting room's (src/stores/redis/room-store.ts). room-visit answers a table: its first
  // element is the code; a waiting user's answer (2, then the figures) is built, not a literal.
  'room-visit': { absent: 0, admitted: 1 },
  'room-tick': { noRoom: 0 },
  'room-pass': { yes: 1, no: 0 },
} as const;

type CodeOf<S extends keyof typeof LuaCode> = (typeof LuaCode)[S][keyof (typeof LuaCode)[S]];
export type ReserveCode = CodeOf<'reserve-many'>;
export type TransitionCode = CodeOf<'transition'>;
export type InitSaleCode = CodeOf<'init-sale'>;
export type RebuildBeginCode = CodeOf<'rebuild-begin'>;
export type AdoptOrderCode = CodeOf<'adopt-order'>;

/** reserve-many's refusals (per buyer), as the engine reports them. */
const RESERVE_REFUSALS = new Map<number, Refusal>([
  [LuaCode['reserve-many'].paused, 'paused'],
  [LuaCode['reserve-many'].notStarted, 'not_started'],
  [LuaCode['reserve-many'].ended, 'ended'],
  [LuaCode['reserve-many'].limitReached, 'limit_reached'],
  [LuaCode['reserve-many'].soldOut, 'sold_out'],
]);

/** The refusal a reserve code stands for; undefined for a code that is not one. */
export function reserveRefusal(code: number): Refusal | undefined {
  return RESERVE_REFUSALS.get(code);
}

/** Redis is unreachable or slow: the buyer hears busy, and nothing was decided here. */
export function busy(err: unknown): SeckillError {
  return new SeckillError('busy', 'The stock service is unavailable; nothing was changed. Try again shortly.', 1, err);
}

/** Not answered in time, outcome unknown: honest about it, and the order (if made) is undone. */
export function unknownOutcome(err: unknown): SeckillError {
  return new SeckillError(
    'busy',
    'The stock service did not answer in time. If this buy was recorded after all, it is cancelled automatically, so nothing stays held. Try again shortly.',
    2,
    err,
  );
}

/** reserve or transition ran after its deadline (`tooLate`): it changed nothing. */
export function tooLate(script: 'reserve' | 'transition'): SeckillError {
  return busy(new Error(`the ${script} script ran after its deadline and changed nothing`));
}

/** A rebuild step found the rebuild lock no longer ours (`lockLost`). */
export function rebuildLockLost(): SeckillError {
  return new SeckillError('busy', 'The sale is being restored by another process; nothing was changed. Try again shortly.', 2);
}

/** init-sale's `holdingsMismatch`: the holdings written do not add up to what the database has held. */
export function holdingsMismatch(saleId: string, held: number): SeckillError {
  return busy(new Error(`rebuild of sale ${saleId}: the holdings written do not add up to ${held} units`));
}
