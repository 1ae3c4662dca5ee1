import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SeckillError } from '../../domain/errors.js';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { EventsQuery, SaleIdParams } from '../schemas.js';
import { openEventStream, StreamQuota } from '../sse.js';

/** What the waiting room's event stream uses. */
export type QueueEventsDeps = Pick<Services, 'auth' | 'room' | 'queueStream' | 'switches' | 'config'>;

const USER = [{ userToken: [] }];

/**
 * `GET /api/sales/:saleId/queue/events`: the waiting room's answers pushed as server-sent events
 * (event `queue`, the poll's JSON) instead of polled; holding the stream keeps the place. The
 * conventions of the order stream (routes/buying.ts): `?access_token=` since EventSource sends no
 * headers, `503 busy` in degraded mode, at most `SECKILL_SSE_PER_USER` streams per user, a comment
 * every 15 s. What is sent when: src/services/queue-stream.ts.
 */
export function queueEventsRoutes(s: QueueEventsDeps): FastifyPluginAsyncTypebox {
  /** Open queue streams per user (apart from the order streams' count). */
  const quota = new StreamQuota('waiting-room');

  return async (app) => {
    // Hijacked streams would hold app.close() until their clients leave: ended first.
    app.addHook('preClose', (done) => {
      s.queueStream.closeAll();
      done();
    });

    app.get('/api/sales/:saleId/queue/events', { schema: { params: SaleIdParams, querystring: EventsQuery, security: USER } }, async (req, reply) => {
      // A user token only, in the header or (EventSource) in the query.
      const userId = s.auth.user(Auth.bearer(req.headers.authorization) ?? req.query.access_token ?? null);
      if (s.switches.degraded) {
        throw new SeckillError('busy', 'Degraded mode: the waiting room by polling GET /api/sales/:saleId/queue only.', 5);
      }
      const { saleId } = req.params;
      // Not in line (never joined, dropped), no room, ended: the poll's refusal, as an HTTP answer.
      const first = await s.room.poll(saleId, userId);
      const release = quota.take(userId, s.config.ssePerUser);
      let unsubscribe = () => {};
      const sink = openEventStream(reply, () => {
        release();
        unsubscribe();
      });
      sink.event('queue', first);
      if (first.state === 'admitted') return sink.end();
      unsubscribe = s.queueStream.subscribe(saleId, userId, sink, first);
      // The client left before the subscription: end now (the stream's close has run already).
      if (reply.raw.destroyed) unsubscribe();
    });
  };
}
