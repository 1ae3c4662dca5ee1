import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { SeckillError } from '../domain/errors.js';
import { isStorableLine } from '../domain/stored-text.js';
import type { Order, OrderStatus } from '../domain/order.js';
import type { StockEngine } from '../engine/stock-engine.js';
import type { OrderPage, RecordStore } from '../stores/record-store.js';
import type { Transition } from '../domain/transition.js';

/** The expiry sweep sets an order it could not expire aside for this long (failed / not changed). */
const EXPIRY_RETRY_FAILED_MS = 10_000;
const EXPIRY_RETRY_UNCHANGED_MS = 5000;
/** Bound on the orders set aside at once (each costs a row in the sweep's query). */
const MAX_SET_ASIDE = 50_000;

/** Who asks: an operator (admin key) or a user. */
export type Actor = { kind: 'admin' } | { kind: 'user'; userId: string };

export interface OrderServiceHooks {
  /** Stock came back to a sale (expiry or cancel): clear sold-out flags and limit memos. */
  onRelease(saleId: string, userId: string): void;
  /** An order changed status here (after the local event): distributed, tell the other processes. */
  onChange?(order: Order): void;
}

/**
 * Every exit from `reserved` (pay, cancel, expire) and from `paid` (refund) goes through here. The engine decides
 * (a conditional UPDATE embedded, a Lua script on Redis): exactly one transition wins, and
 * only the winner's step returns stock.
 */
export class OrderService {
  /** Emits `order.orderId` with the order after each status change. */
  readonly events = new EventEmitter();
  expiredCount = 0;

  constructor(
    private readonly repo: RecordStore,
    private readonly engine: StockEngine,
    private readonly hooks: OrderServiceHooks,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  async get(orderId: string, actor: Actor): Promise<Order> {
    const order = await this.engine.getOrder(orderId);
    if (!order) throw new SeckillError('not_found', 'No such order.');
    if (actor.kind === 'user' && actor.userId !== order.userId) {
      throw new SeckillError('forbidden', 'This order belongs to another user.');
    }
    return order;
  }

  /** The order with its authoritative status (the engine's), or null; no owner check: the caller made it. */
  find(orderId: string): Promise<Order | null> {
    return this.engine.getOrder(orderId);
  }

  /** A user's orders, from the database of record. */
  ofUser(userId: string): Promise<Order[]> {
    return this.repo.ordersOfUser(userId);
  }

  /** Operators: one page of a sale's orders. */
  list(saleId: string, status: OrderStatus | undefined, after: string | undefined, limit: number): Promise<OrderPage> {
    return this.repo.listOrders(saleId, status, after, limit);
  }

  /** Operators: every order of a sale, streamed (the CSV export). */
  iterate(saleId: string, status: OrderStatus | undefined): AsyncIterable<Order> {
    return this.repo.iterateOrders(saleId, status);
  }

  async pay(orderId: string, actor: Actor, paymentRef: string, now = Date.now(), attempt = 0): Promise<Order> {
    if (!isStorableLine(paymentRef)) {
      throw new SeckillError('bad_request', 'paymentRef must not contain control characters or unpaired surrogates.');
    }
    const order = await this.get(orderId, actor);
    if (order.status === 'reserved') {
      if (order.expiresAt <= now) {
        // A late payment: the order expires (its units go back to stock), the shop refunds the money.
        await this.end(order, { to: 'expired' }, now);
        throw new SeckillError('payment_late');
      }
      const paid = await this.engine.transition(order, { to: 'paid', paidAt: now, paymentRef }, now);
      if (paid) {
        this.changed(paid);
        return paid;
      }
      // Another transition won the race; answer from what it decided.
      if (attempt >= 3) throw new SeckillError('busy', 'The order could not be settled; try again.');
      return this.pay(orderId, actor, paymentRef, now, attempt + 1);
    }
    if (order.status === 'paid') {
      if (order.paymentRef === paymentRef) return order; // idempotent replay
      throw new SeckillError('invalid_state', 'The order is already paid with another paymentRef.');
    }
    if (order.status === 'expired') throw new SeckillError('payment_late');
    if (order.status === 'refunded') throw new SeckillError('invalid_state', 'The order was paid and then refunded.');
    throw new SeckillError('invalid_state', 'The order was cancelled.');
  }

  /**
   * Refund a paid order (the shop's payment service, after it refunded the money). Once: a
   * refunded order is answered as it is. The engine returns the units to stock (and the buyer's
   * holding) when the sale restocks on refund; otherwise they stay sold and held.
   */
  async refund(orderId: string, actor: Actor, reason: string | null, now = Date.now(), attempt = 0): Promise<Order> {
    if (reason !== null && !isStorableLine(reason)) {
      throw new SeckillError('bad_request', 'reason must not contain control characters or unpaired surrogates.');
    }
    const order = await this.get(orderId, actor);
    if (order.status === 'refunded') return order; // idempotent replay
    if (order.status !== 'paid') throw new SeckillError('invalid_state', `Only a paid order can be refunded; this one is ${order.status}.`);
    const refunded = await this.engine.transition(order, { to: 'refunded', refundedAt: now, reason }, now);
    if (refunded) {
      // The units may be back (restockOnRefund): clear the sold-out flags and limit memos. When
      // they are not, the next refusal sets them again.
      this.hooks.onRelease(refunded.saleId, refunded.userId);
      this.changed(refunded);
      return refunded;
    }
    // Another refund won the race: answer what it decided.
    if (attempt >= 3) throw new SeckillError('busy', 'The order could not be settled; try again.');
    return this.refund(orderId, actor, reason, now, attempt + 1);
  }

  async cancel(orderId: string, actor: Actor, now = Date.now(), attempt = 0): Promise<Order> {
    const order = await this.get(orderId, actor);
    if (order.status === 'cancelled') return order;
    if (order.status === 'paid') throw new SeckillError('invalid_state', 'A paid order cannot be cancelled here.');
    if (order.status === 'refunded') throw new SeckillError('invalid_state', 'A refunded order cannot be cancelled.');
    if (order.status === 'expired') throw new SeckillError('expired');
    if (order.expiresAt <= now) {
      await this.end(order, { to: 'expired' }, now);
      throw new SeckillError('expired');
    }
    const cancelled = await this.end(order, { to: 'cancelled' }, now);
    if (cancelled) return cancelled;
    if (attempt >= 3) throw new SeckillError('busy', 'The order could not be settled; try again.');
    return this.cancel(orderId, actor, now, attempt + 1);
  }

  /** Expire reservations past their window (one batch); returns how many this call expired. */
  async expireDue(now = Date.now(), limit = 1000): Promise<number> {
    return (await this.expireDueBatch(now, limit)).expired;
  }

  /**
   * One batch of the expiry sweep: up to `limit` due reservations, each on its own. An order
   * that fails (its store refuses, or it cannot be settled yet) is logged and set aside for a
   * while, so that the next batch reaches the orders behind it instead of retrying the same
   * ones forever. `more`: the batch was full, ask again.
   */
  async expireDueBatch(now = Date.now(), limit = 1000): Promise<{ expired: number; more: boolean }> {
    const t = Date.now();
    for (const [id, retryAt] of this.expiryBackoff) if (retryAt <= t) this.expiryBackoff.delete(id);
    const due = await this.repo.dueForExpiry(now, limit + this.expiryBackoff.size);
    let expired = 0;
    let tried = 0;
    let failedInARow = 0;
    let firstError: unknown = null;
    let failed = 0;
    for (const o of due) {
      if (this.expiryBackoff.has(o.orderId)) continue;
      if (tried >= limit) break;
      tried++;
      try {
        if (await this.end(o, { to: 'expired' }, now)) expired++;
        // Not changed: settled elsewhere and the database not caught up yet (the order writer).
        else this.setAside(o.orderId, EXPIRY_RETRY_UNCHANGED_MS);
        failedInARow = 0;
      } catch (err) {
        failed++;
        firstError ??= err;
        this.setAside(o.orderId, EXPIRY_RETRY_FAILED_MS);
        // A store that is down fails every order: stop here, the next sweep tries again.
        if (++failedInARow >= 10) break;
      }
    }
    if (failed > 0) this.log.warn({ failed, expired, err: firstError }, 'expiry: some reservations could not be expired; set aside, retried later');
    return { expired, more: tried >= limit && failedInARow < 10 };
  }

  /** Orders the sweep set aside, and when to try each again (an in-process hint that expires). */
  private readonly expiryBackoff = new Map<string, number>();

  private setAside(orderId: string, ms: number): void {
    if (this.expiryBackoff.size < MAX_SET_ASIDE) this.expiryBackoff.set(orderId, Date.now() + ms);
  }

  /** Cancel or expire: the winner's order comes back, its stock already returned by the engine. */
  private async end(order: Order, t: Transition, now: number): Promise<Order | null> {
    const ended = await this.engine.transition(order, t, now);
    if (!ended) return null;
    if (ended.status === 'expired') this.expiredCount++;
    this.hooks.onRelease(ended.saleId, ended.userId);
    this.changed(ended);
    return ended;
  }

  private changed(o: Order): void {
    this.log.debug({ orderId: o.orderId, status: o.status }, 'order status changed');
    this.events.emit(o.orderId, o);
    this.hooks.onChange?.(o);
  }
}
