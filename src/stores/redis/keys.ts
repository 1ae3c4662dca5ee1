// Every Redis key seckill uses is built here. The `{…}` hash tag keeps all keys of one sale in
// one cluster slot, so each Lua script touches a single slot.

/** The waiting room's keys (issue 14). */
export type RoomKeyPart = 'meta' | 'line' | 'seen' | 'adm' | 'out' | 'meter' | 'rec' | 'est' | 'err';

export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** Hash: available, stock, limit, startsAt, endsAt, paused, price, window. */
  sale(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:sale`;
  }

  /** Hash: userId → units held (reserved + paid). */
  holdings(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:held`;
  }

  /** Hash: orderId → the order as JSON; its status is the authoritative one. */
  orders(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:orders`;
  }

  /** Stream of order records for the order writer: k = new | chg, o = order JSON. */
  stream(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:stream`;
  }

  /** Hash: buy outcome → requests answered with it, summed over all processes (admin stats). */
  requests(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:requests`;
  }

  /** String, set once with an expiry: this challenge (by its nonce) was used to get a path. */
  challengeSpent(saleId: string, nonce: string): string {
    return `${this.prefix}:{s:${saleId}}:ch:${nonce}`;
  }

  /** The sale's waiting room, one key per part (src/stores/redis/room-store.ts lists what each holds). */
  room(saleId: string, part: RoomKeyPart): string {
    return `${this.prefix}:{s:${saleId}}:room:${part}`;
  }

  /** Lock held while one process rebuilds a sale's state from the database. */
  rebuildLock(saleId: string): string {
    return `${this.prefix}:{s:${saleId}}:rebuild`;
  }

  /** Hash: orderId → saleId, to find an order's sale from its id alone. */
  orderIndex(): string {
    return `${this.prefix}:order-sale`;
  }

  /** Pub/sub channel of sale signals between processes. */
  signals(): string {
    return `${this.prefix}:signals`;
  }

  /** Hash: the operators' switches (refuseBuys, degraded), for processes that start later. */
  switches(): string {
    return `${this.prefix}:switches`;
  }

  rateLimitPrefix(): string {
    return `${this.prefix}:rl`;
  }

  /** The consumer group of the order writers. */
  readonly writerGroup = 'order-writers';
}
