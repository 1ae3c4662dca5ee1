import type { ChallengeVerdict } from '../domain/challenge.js';
import { windowRefusal, type Sale } from '../domain/sale.js';
import { isOrderPath } from './order-path.js';

/**
 * The funnel (docs/design.md, "the funnel"): every check that may refuse a buy before the stock
 * engine decides, in the order they run. Cheapest and most public first: a request that cannot
 * succeed for a reason anyone may know (the switch, the window, sold out) is refused before its
 * token or order path is looked at. Pure: no I/O, no clock (the caller passes `now`); the raw fast
 * path (src/http/fast-refusals.ts) and the buy use case (src/services/buy.ts) both run these
 * functions, so no check is written twice.
 *
 * To add a refusal rule: add one entry to FUNNEL where it belongs, and a row to
 * test/unit/funnel.test.ts. A rule the engine must also enforce atomically (stock, the per-user
 * limit) goes into the engines as well; this list only refuses early what they would refuse too.
 */

/** The two requests of a buy: `POST …/path` (ask for the order path) and `POST …/buy/:path`. */
export type FunnelStep = 'path' | 'buy';

/** Refusals from public facts and the server clock: the same answer for every caller. */
export type PublicRefusal = 'busy' | 'not_found' | 'ended' | 'paused' | 'not_started' | 'sold_out';
/** Refusals that depend on who asks (after the token and the per-user rate limit). */
export type BuyerRefusal = 'no_pass' | 'challenge_required' | 'challenge_failed' | 'bad_path' | 'limit_reached';

/** The operators' switch the funnel reads. */
export interface FunnelSwitches {
  readonly refuseBuys: boolean;
}

/** The process's in-memory hints (src/gateway/local-refusals.ts): each only refuses what the engine would. */
export interface FunnelHints {
  isSoldOut(saleId: string): boolean;
  holdsLimit(saleId: string, userId: string): boolean;
}

/** A request before identity. `sale` is undefined when the id names no sale the caller could find. */
export interface PublicAsk {
  readonly step: FunnelStep;
  readonly sale: Sale | undefined;
  readonly now: number;
}

/** A buy after identity: the token gave `userId` and the per-user rate limit let it through. */
export interface BuyerAsk {
  readonly sale: Sale;
  readonly userId: string;
  readonly path: string;
  readonly quantity: number;
  /**
   * The caller found a good waiting-room pass (X-Seckill-Pass: genuine, this user's and sale's, not
   * expired, not spent); read only for a sale with a room.
   */
  readonly hasPass?: boolean;
  /** The path request's X-Seckill-Challenge, checked (not yet spent); read only for a sale with a challenge. */
  readonly challenge?: ChallengeVerdict;
}

interface PublicCheck {
  readonly stage: 'public';
  readonly name: string;
  readonly steps: readonly FunnelStep[];
  refuse(a: PublicAsk, switches: FunnelSwitches, hints: FunnelHints): PublicRefusal | null;
}

/** Buyer checks apply to the buy alone unless they say otherwise: the path request ends with identity. */
interface BuyerCheck {
  readonly stage: 'buyer';
  readonly name: string;
  /** Default: the buy alone. */
  readonly steps?: readonly FunnelStep[];
  refuse(a: BuyerAsk, hints: FunnelHints): BuyerRefusal | null;
}

export type FunnelCheck = PublicCheck | BuyerCheck;

const BOTH: readonly FunnelStep[] = ['path', 'buy'];

/** The checks, in order. Between the two stages the caller verifies the token and takes the per-user rate limit (async). */
export const FUNNEL: readonly FunnelCheck[] = [
  // Public: answered by the raw fast path when it can, else by the route, before any token work.
  { stage: 'public', name: 'refuse-all switch', steps: BOTH, refuse: (_a, sw) => (sw.refuseBuys ? 'busy' : null) },
  { stage: 'public', name: 'unknown sale', steps: BOTH, refuse: (a) => (a.sale ? null : 'not_found') },
  { stage: 'public', name: 'sale window', steps: BOTH, refuse: (a) => (a.sale ? windowRefusal(a.sale, a.now) : null) },
  // Buys only: the path request's contract has no sold_out (docs/http-api.md); the buy refuses it.
  { stage: 'public', name: 'sold-out hint', steps: ['buy'], refuse: (a, _sw, h) => (a.sale && h.isSoldOut(a.sale.id) ? 'sold_out' : null) },
  // Buyer: after the token and the per-user rate limit.
  // A sale with a waiting room: the path and the buy only with the pass the room gave this user.
  { stage: 'buyer', name: 'waiting-room pass', steps: BOTH, refuse: (a) => (a.sale.waitingRoom && !a.hasPass ? 'no_pass' : null) },
  // A sale with a challenge: the path only with one solved (the buy needs the path, so it is covered).
  { stage: 'buyer', name: 'challenge', steps: ['path'], refuse: (a) => challengeRefusal(a) },
  { stage: 'buyer', name: 'order path', refuse: (a) => (isOrderPath(a.sale, a.userId, a.path) ? null : 'bad_path') },
  { stage: 'buyer', name: 'at-limit memo', refuse: (a, h) => (h.holdsLimit(a.sale.id, a.userId) ? 'limit_reached' : null) },
  { stage: 'buyer', name: 'quantity over limit', refuse: (a) => (a.quantity > a.sale.perUserLimit ? 'limit_reached' : null) },
];

function challengeRefusal(a: BuyerAsk): 'challenge_required' | 'challenge_failed' | null {
  if (!a.sale.challenge || a.challenge === 'solved') return null;
  return a.challenge === 'failed' ? 'challenge_failed' : 'challenge_required';
}

// Each step's public checks, picked once: the fast path runs them on every refused request.
const publicChecks = (step: FunnelStep): PublicCheck[] =>
  FUNNEL.filter((c): c is PublicCheck => c.stage === 'public' && c.steps.includes(step));
const PUBLIC: Record<FunnelStep, readonly PublicCheck[]> = { path: publicChecks('path'), buy: publicChecks('buy') };
const buyerChecks = (step: FunnelStep): BuyerCheck[] =>
  FUNNEL.filter((c): c is BuyerCheck => c.stage === 'buyer' && (c.steps ?? ['buy']).includes(step));
const BUYER: Record<FunnelStep, readonly BuyerCheck[]> = { path: buyerChecks('path'), buy: buyerChecks('buy') };

/** The first public refusal for this request, or null: it may go on to identity. */
export function publicRefusal(a: PublicAsk, switches: FunnelSwitches, hints: FunnelHints): PublicRefusal | null {
  for (const check of PUBLIC[a.step]) {
    const code = check.refuse(a, switches, hints);
    if (code !== null) return code;
  }
  return null;
}

/** The first refusal that depends on the buyer, or null: the stock engine decides (the path: it is handed out). */
export function buyerRefusal(a: BuyerAsk, hints: FunnelHints, step: FunnelStep = 'buy'): BuyerRefusal | null {
  for (const check of BUYER[step]) {
    const code = check.refuse(a, hints);
    if (code !== null) return code;
  }
  return null;
}
