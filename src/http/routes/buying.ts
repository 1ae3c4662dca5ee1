import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SeckillError } from '../../domain/errors.js';
import { orderJson, type Order } from '../../domain/order.js';
import { iso } from '../../domain/sale.js';
import { Auth } from '../../gateway/auth.js';
import type { BuyRefusal, BuyService } from '../../services/buy.js';
import type { Actor } from '../../services/order-service.js';
import type { Services } from '../../wiring/services.js';
import { refuse } from '../errors.js';
import { SWITCH_RETRY_AFTER } from '../outcomes.js';
import { BuyBody, BuyParams, EmptyBody, EventsQuery, OrderIdParams, PayBody, RefundBody, SaleIdParams } from '../schemas.js';
import { openEventStream, StreamQuota } from '../sse.js';

/** What the buying routes use: the buy use case, identity, the orders, and two settings. */
export type BuyingDeps = Pick<Services, 'auth' | 'orders' | 'switches' | 'secrets' | 'config'> & {
  buying: Pick<BuyService, 'path' | 'buy'>;
};

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * iso(expiresAt), remembered for the last instant: the orders of one group commit share their
 * reservation time, so most 202s in a burst carry the same expiry and need no new Date.
 */
let lastExpiry = { ms: Number.NaN, iso: '' };
function expiresIso(ms: number): string {
  if (ms !== lastExpiry.ms) lastExpiry = { ms, iso: iso(ms) ?? '' };
  return lastExpiry.iso;
}

/** A refusal of the path or buy request; busy there comes from the operators' switch and says when to retry. */
function refuseBuy(req: FastifyRequest, reply: FastifyReply, code: BuyRefusal) {
  return refuse(req, reply, code, code === 'busy' ? SWITCH_RETRY_AFTER : undefined);
}

/** The waiting-room pass (a sale with a room needs it for the path and the buy). */
function passOf(req: FastifyRequest): string | null {
  const h = req.headers['x-seckill-pass'];
  return typeof h === 'string' ? h : null;
}

/** The solved challenge, `<challenge>:<answer>` (a sale with a challenge needs it for the path). */
function challengeOf(req: FastifyRequest): string | null {
  const h = req.headers['x-seckill-challenge'];
  return typeof h === 'string' ? h : null;
}

export function buyingRoutes(s: BuyingDeps): FastifyPluginAsyncTypebox {
  const bearer = (req: FastifyRequest) => Auth.bearer(req.headers.authorization);
  /** Open order-event streams per user. */
  const openStreams = new StreamQuota('order');

  return async (app) => {
    app.post('/api/sales/:saleId/path', { schema: { params: SaleIdParams, body: EmptyBody } }, async (req, reply) => {
      const result = await s.buying.path(req.params.saleId, bearer(req), passOf(req), challengeOf(req));
      if (!result.ok) return refuseBuy(req, reply, result.refusal);
      reply.header('cache-control', 'no-store').type(JSON_TYPE);
      return JSON.stringify({ path: result.path });
    });

    app.post('/api/sales/:saleId/buy/:path', { schema: { params: BuyParams, body: BuyBody } }, async (req, reply) => {
      const { saleId, path } = req.params;
      const result = await s.buying.buy({ saleId, path, token: bearer(req), quantity: req.body?.quantity ?? 1, pass: passOf(req) });
      if (!result.ok) return refuseBuy(req, reply, result.refusal);
      const { order } = result;
      // Serialized here, with the type fastify gives JSON: a string skips its serializer and hooks.
      reply.code(202).type(JSON_TYPE);
      return JSON.stringify({ orderId: order.orderId, status: order.status, quantity: order.quantity, expiresAt: expiresIso(order.expiresAt) });
    });

    app.get('/api/orders/:orderId', { schema: { params: OrderIdParams } }, async (req) => {
      const actor: Actor = s.auth.identify(bearer(req));
      return orderJson(await s.orders.get(req.params.orderId, actor));
    });

    app.get('/api/me/orders', async (req) => {
      const userId = s.auth.user(bearer(req));
      const orders = await s.orders.ofUser(userId);
      return { orders: orders.map(orderJson) };
    });

    app.post('/api/orders/:orderId/pay', { schema: { params: OrderIdParams, body: PayBody } }, async (req) => {
      const actor: Actor = s.auth.identify(bearer(req));
      // The shop's payment service pays with the admin key; users may pay only in demo mode.
      if (actor.kind === 'user' && !s.secrets.demo) {
        throw new SeckillError('forbidden', 'Payments are confirmed by the shop, not by users.');
      }
      return orderJson(await s.orders.pay(req.params.orderId, actor, req.body.paymentRef));
    });

    app.post('/api/orders/:orderId/refund', { schema: { params: OrderIdParams, body: RefundBody } }, async (req) => {
      const actor: Actor = s.auth.identify(bearer(req));
      // The shop's payment service refunds, after its provider returned the money; never a buyer (not even in demo mode).
      if (actor.kind === 'user') throw new SeckillError('forbidden', 'Refunds are made by the shop, not by users.');
      return orderJson(await s.orders.refund(req.params.orderId, actor, req.body?.reason ?? null));
    });

    app.post('/api/orders/:orderId/cancel', { schema: { params: OrderIdParams, body: EmptyBody } }, async (req) => {
      const actor: Actor = s.auth.identify(bearer(req));
      return orderJson(await s.orders.cancel(req.params.orderId, actor));
    });

    app.get('/api/orders/:orderId/events', { schema: { params: OrderIdParams, querystring: EventsQuery } }, async (req, reply) => {
      // EventSource cannot send headers, so a user token may also come as ?access_token= (never the admin key).
      const actor: Actor = s.auth.identifyStream(bearer(req), req.query.access_token);
      if (s.switches.degraded) {
        throw new SeckillError('busy', 'Degraded mode: order status by polling GET /api/orders/:orderId only.', 5);
      }
      const { orderId } = req.params;
      const order = await s.orders.get(orderId, actor);
      // Each open stream holds a connection: a user may keep only a few at once.
      const release = actor.kind === 'user' ? openStreams.take(actor.userId, s.config.ssePerUser) : () => {};
      streamOrderEvents(s, orderId, order, reply, release);
    });
  };
}

/**
 * Where an order's event stream ends. `paid` ends it although a refund may follow: a refund comes
 * much later, from the shop, and a page reads the order again (GET /api/orders/:orderId) when it
 * loads. `refunded` is listed for a stream opened on an order already refunded.
 */
const TERMINAL = new Set(['paid', 'expired', 'cancelled', 'refunded']);

/** Server-sent events: the current state at once, then one event per change; ends at a final state. */
function streamOrderEvents(s: Pick<Services, 'orders'>, orderId: string, current: Order, reply: FastifyReply, closed: () => void): void {
  let last = '';
  const send = (o: Order): boolean => {
    if (o.status !== last) {
      last = o.status;
      stream.event('status', orderJson(o));
    }
    return TERMINAL.has(o.status);
  };
  const heartbeat = setInterval(() => stream.keepAlive(), 15_000);
  const listener = (o: Order) => {
    if (send(o)) stream.end();
  };
  // Ended here at a final state, or the client left.
  const stream = openEventStream(reply, () => {
    closed();
    clearInterval(heartbeat);
    s.orders.events.off(orderId, listener);
  });
  s.orders.events.on(orderId, listener);
  if (send(current)) stream.end();
  // A change between the read and the subscription is caught by re-reading once, from the engine
  // (orders.find): its status is the authoritative one (the database of record may lag it in distributed mode).
  else void s.orders.find(orderId).then((o) => o && listener(o)).catch(() => stream.end());
}
