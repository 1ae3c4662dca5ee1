import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { SeckillError } from '../domain/errors.js';
import type { Order } from '../domain/order.js';
import type { StockEngine } from '../engine/stock-engine.js';
import type { OrderRepository } from './repository.js';

/** Who asks: an operator (admin key) or a user. */
export type Actor = { kind: 'admin' } | { kind: 'user'; userId: string };

export interface OrderServiceHooks {
  /** Stock came back to a sale (expiry or cancel): clear sold-out flags and limit memos. */
  onRelease(saleId: string, userId: string): void;
}

/**
 * Every exit from `reserved` (pay, cancel, expire) goes through here. The repository's
 * conditional UPDATE picks exactly one winner; only the winner returns stock to the engine.
 */
export class OrderService {
  /** Emits `order.orderId` with the order after each status change. */
  readonly events = new EventEmitter();
  expiredCount = 0;

  constructor(
    private readonly repo: OrderRepository,
    private readonly engine: StockEngine,
    private readonly hooks: OrderServiceHooks,
    private readonly log: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  async get(orderId: string, actor: Actor): Promise<Order> {
    const order = await this.repo.getOrder(orderId);
    if (!order) throw new SeckillError('not_found', 'No such order.');
    if (actor.kind === 'user' && actor.userId !== order.userId) {
      throw new SeckillError('forbidden', 'This order belongs to another user.');
    }
    return order;
  }

  async pay(orderId: string, actor: Actor, paymentRef: string, now = Date.now()): Promise<Order> {
    const order = await this.get(orderId, actor);
    if (order.status === 'reserved') {
      if (order.expiresAt <= now) {
        await this.expire(order, now);
        throw new SeckillError('expired');
      }
      const paid = await this.repo.transition(orderId, { to: 'paid', paidAt: now, paymentRef }, now);
      if (paid) {
        this.engine.commit(paid.saleId, paid.userId, paid.quantity);
        this.changed(paid);
        return paid;
      }
      // Another transition won the race; answer from what it decided.
      return this.pay(orderId, actor, paymentRef, now);
    }
    if (order.status === 'paid') {
      if (order.paymentRef === paymentRef) return order; // idempotent replay
      throw new SeckillError('invalid_state', 'The order is already paid with another paymentRef.');
    }
    if (order.status === 'expired') throw new SeckillError('expired');
    throw new SeckillError('invalid_state', 'The order was cancelled.');
  }

  async cancel(orderId: string, actor: Actor, now = Date.now()): Promise<Order> {
    const order = await this.get(orderId, actor);
    if (order.status === 'cancelled') return order;
    if (order.status === 'paid') throw new SeckillError('invalid_state', 'A paid order cannot be cancelled here.');
    if (order.status === 'expired') throw new SeckillError('expired');
    if (order.expiresAt <= now) {
      await this.expire(order, now);
      throw new SeckillError('expired');
    }
    const cancelled = await this.repo.transition(orderId, { to: 'cancelled' }, now);
    if (cancelled) {
      this.released(cancelled);
      return cancelled;
    }
    return this.cancel(orderId, actor, now);
  }

  /** Expire every reservation past its window; returns how many this call expired. */
  async expireDue(now = Date.now(), limit = 1000): Promise<number> {
    const due = await this.repo.dueForExpiry(now, limit);
    let n = 0;
    for (const o of due) if (await this.expire(o, now)) n++;
    return n;
  }

  private async expire(order: Order, now: number): Promise<boolean> {
    const expired = await this.repo.transition(order.orderId, { to: 'expired' }, now);
    if (!expired) return false;
    this.expiredCount++;
    this.released(expired);
    return true;
  }

  private released(o: Order): void {
    this.engine.release(o.saleId, o.userId, o.quantity);
    this.hooks.onRelease(o.saleId, o.userId);
    this.changed(o);
  }

  private changed(o: Order): void {
    this.log.debug({ orderId: o.orderId, status: o.status }, 'order status changed');
    this.events.emit(o.orderId, o);
  }
}
