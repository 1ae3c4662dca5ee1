import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { EmptyBody, SaleIdParams } from '../schemas.js';

/** What the waiting-room routes use: identity and the rooms. */
export type QueueDeps = Pick<Services, 'auth' | 'room'>;

const USER = [{ userToken: [] }];

/**
 * The waiting room (issue 14, docs/waiting-room.md): join, poll (keeps the place), and the shuffle's
 * seed (its hash before the open, the seed after). One place per user: the token's user id.
 */
export function queueRoutes(s: QueueDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const user = (authorization: string | undefined) => s.auth.user(Auth.bearer(authorization));

    app.post('/api/sales/:saleId/queue', { schema: { params: SaleIdParams, body: EmptyBody, security: USER } }, async (req, reply) => {
      const answer = await s.room.join(req.params.saleId, user(req.headers.authorization));
      reply.header('cache-control', 'no-store');
      return answer;
    });

    app.get('/api/sales/:saleId/queue', { schema: { params: SaleIdParams, security: USER } }, async (req, reply) => {
      const answer = await s.room.poll(req.params.saleId, user(req.headers.authorization));
      reply.header('cache-control', 'no-store');
      return answer;
    });

    // Operators: the room's figures (the dashboard's queue length, admitted per second, abandonment).
    app.get('/api/admin/sales/:saleId/queue', { schema: { params: SaleIdParams } }, async (req) => {
      s.auth.requireScope(Auth.bearer(req.headers.authorization), 'admin');
      return { room: await s.room.stats(req.params.saleId) };
    });

    app.get('/api/sales/:saleId/queue/seed', { schema: { params: SaleIdParams } }, async (req, reply) => {
      const seed = await s.room.seed(req.params.saleId);
      // The seed appears at the open: no cache may keep the answer without it past that moment.
      reply.header('cache-control', 'no-store');
      return seed;
    });
  };
}
