/**
 * The fairness report of one sale (issue 14): who won the units, against when they came and how
 * the room let them out. Pure: the caller gathers the room's records and the units per user
 * (src/services/fairness.ts) and passes the sale's open time.
 */

/** One user as the report sees them: the room's times (null: not in the room's records) and the units won. */
export interface FairnessUser {
  userId: string;
  /** First join (epoch ms); null when the room has no record of this user. */
  firstJoinedAt: number | null;
  /** The join that gave the current (or last) place. */
  joinedAt: number | null;
  /** When the room last let this user out; null: never. */
  admittedAt: number | null;
  /** Units won (see docs/fairness.md: the orders that hold stock). */
  units: number;
}

/** Users and the units they won. */
export interface Tally {
  users: number;
  units: number;
}

export interface FairnessReport {
  /** Every user seen: in the room's records or holding an order. */
  users: number;
  units: number;
  /**
   * Arrival against the open, by first join. `unknown` counts users with units but no room record
   * (a restart forgot the room, or they bought before it existed). Null for a sale without a room.
   */
  arrival: { beforeOpen: Tally; afterOpen: Tally; unknown: Tally } | null;
  /** Why `arrival` is null. */
  arrivalUnknown: string | null;
  /**
   * fifo rooms only (else null): pairs of admitted users where the one who joined earlier was let
   * out later, out of all pairs of admitted users.
   */
  fifoInversions: { inversions: number; pairs: number; admitted: number } | null;
  /** Users whose id starts with `prefix` (the bench's bots). Shares are null when there is nothing to share. */
  bots: { prefix: string; users: number; units: number; shareOfUsers: number | null; shareOfUnits: number | null };
}

export interface FairnessInput {
  /** The sale's open (epoch ms). */
  opensAt: number;
  /** The sale's room method; null: the sale has no room. */
  method: 'random' | 'fifo' | null;
  users: readonly FairnessUser[];
  botPrefix: string;
}

export const NO_ROOM_ARRIVAL = 'arrival unknown: this sale has no waiting room, and only the room records when users came';

export function fairnessReport(i: FairnessInput): FairnessReport {
  const tally = (): Tally => ({ users: 0, units: 0 });
  const arrival = { beforeOpen: tally(), afterOpen: tally(), unknown: tally() };
  const bots = tally();
  let units = 0;
  for (const u of i.users) {
    units += u.units;
    const t = u.firstJoinedAt === null ? arrival.unknown : u.firstJoinedAt < i.opensAt ? arrival.beforeOpen : arrival.afterOpen;
    t.users++;
    t.units += u.units;
    if (i.botPrefix !== '' && u.userId.startsWith(i.botPrefix)) {
      bots.users++;
      bots.units += u.units;
    }
  }
  const share = (part: number, whole: number) => (whole > 0 ? part / whole : null);
  const admitted = i.method === 'fifo' ? i.users.filter((u) => u.admittedAt !== null && u.joinedAt !== null) : [];
  return {
    users: i.users.length,
    units,
    arrival: i.method === null ? null : arrival,
    arrivalUnknown: i.method === null ? NO_ROOM_ARRIVAL : null,
    fifoInversions: i.method !== 'fifo' ? null : {
      inversions: fifoInversions(admitted.map((u) => ({ joinedAt: u.joinedAt as number, admittedAt: u.admittedAt as number }))),
      pairs: (admitted.length * (admitted.length - 1)) / 2,
      admitted: admitted.length,
    },
    bots: { prefix: i.botPrefix, ...bots, shareOfUsers: share(bots.users, i.users.length), shareOfUnits: share(bots.units, units) },
  };
}

/**
 * Pairs (a, b) with a.joinedAt < b.joinedAt and a.admittedAt > b.admittedAt, in O(n log n): sort by
 * join (ties by admission, so that equal joins never count), then count the strict inversions of
 * the admission times with a merge sort. Users let out in the same tick (equal times) are in order.
 */
export function fifoInversions(admitted: readonly { joinedAt: number; admittedAt: number }[]): number {
  const times = [...admitted].sort((a, b) => a.joinedAt - b.joinedAt || a.admittedAt - b.admittedAt).map((u) => u.admittedAt);
  let buf = new Array<number>(times.length);
  let src = times;
  let inversions = 0;
  // Bottom-up merge sort: runs of width w merged into buf, then the roles swap.
  for (let w = 1; w < src.length; w *= 2) {
    for (let lo = 0; lo < src.length; lo += 2 * w) {
      const mid = Math.min(lo + w, src.length);
      const hi = Math.min(lo + 2 * w, src.length);
      let l = lo;
      let r = mid;
      let k = lo;
      while (l < mid && r < hi) {
        if (src[l] <= src[r]) buf[k++] = src[l++];
        else {
          // src[r] is smaller than every element left in the left run: each is one inversion.
          inversions += mid - l;
          buf[k++] = src[r++];
        }
      }
      while (l < mid) buf[k++] = src[l++];
      while (r < hi) buf[k++] = src[r++];
    }
    [src, buf] = [buf, src];
  }
  return inversions;
}

/** The CSV's columns, one row per user (src/http/routes/fairness.ts). */
export const FAIRNESS_CSV_COLUMNS = ['userId', 'firstJoinedAt', 'joinedAt', 'admittedAt', 'units', 'bot'] as const;
