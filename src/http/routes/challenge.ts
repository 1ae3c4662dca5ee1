import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { refuse } from '../errors.js';
import { SWITCH_RETRY_AFTER } from '../outcomes.js';
import { EmptyBody, SaleIdParams } from '../schemas.js';

/** What the challenge route uses: the challenges. */
export type ChallengeDeps = Pick<Services, 'challenges'>;

const USER = [{ userToken: [] }];

/**
 * The challenge before the path (docs/challenges.md): a new proof-of-work or quiz challenge for
 * this user and sale; its answer goes with `POST …/path` as header X-Seckill-Challenge.
 */
export function challengeRoutes(s: ChallengeDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/sales/:saleId/challenge', { schema: { params: SaleIdParams, body: EmptyBody, security: USER } }, async (req, reply) => {
      const result = await s.challenges.issue(req.params.saleId, Auth.bearer(req.headers.authorization));
      if (!result.ok) return refuse(req, reply, result.refusal, result.refusal === 'busy' ? SWITCH_RETRY_AFTER : undefined);
      // Each answer is this user's alone, and single use.
      reply.header('cache-control', 'no-store');
      return result.task;
    });
  };
}
