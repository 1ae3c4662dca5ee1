// The waiting room's types (issue 14), apart from its rules: the pages type-check against them
// (tsconfig.web.json) without Node's crypto, which the rules in waiting-room.ts use.

/** How a room orders its users: `random` shuffles the pre-queue at the open, `fifo` keeps arrival order. */
export type QueueMethod = 'random' | 'fifo';

/** A sale's waiting room, as the operator set it. */
export interface WaitingRoomSettings {
  method: QueueMethod;
  /** Users let out per second (at most). */
  admitPerSecond: number;
  /**
   * Admitted users not yet bought never exceed the remaining units × this factor (≥ 1: it covers
   * admitted users who will not buy).
   */
  stockFactor: number;
}

/** The challenge before the path (issue 14); none is implemented yet, the field is stored. */
export type Challenge = 'pow' | 'quiz';

export type QueueState = 'waiting' | 'admitted' | 'sold_out';

/** What join and poll answer (GET/POST /api/sales/:saleId/queue). */
export interface QueueAnswer {
  state: QueueState;
  /** 1 = next out; null while the random pre-queue is not yet shuffled (before the open). */
  position: number | null;
  ahead: number | null;
  etaSeconds: number | null;
  /** The signed pass, while admitted and not yet spent. */
  pass?: string;
}
