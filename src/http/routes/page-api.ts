import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SeckillError } from '../../domain/errors.js';
import { iso, saleAdmin } from '../../domain/sale.js';
import { Auth, signUserToken } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';
import { SaleIdParams } from '../schemas.js';

// The two API routes that exist for the pages: the dashboard's live figures and the demo sign-in.

const LiveQuery = Type.Object(
  // Epoch seconds: only the points after it are sent (the dashboard asks for what it lacks).
  { since: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$' })) },
  { additionalProperties: false },
);

/** `GET /api/admin/sales/:saleId/live`: the sale's figures now and per second over the last 5 minutes. */
export type LiveDeps = Pick<Services, 'auth' | 'sales' | 'totals' | 'metrics' | 'writer'>;

export function liveRoutes(s: LiveDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', async (req) => {
      s.auth.requireAdmin(Auth.bearer(req.headers.authorization));
    });

    app.get('/api/admin/sales/:saleId/live', { schema: { params: SaleIdParams, querystring: LiveQuery } }, async (req, reply) => {
      const sale = s.sales.get(req.params.saleId) ?? (await s.sales.find(req.params.saleId));
      if (!sale) throw new SeckillError('not_found', 'No such sale.');
      const [totals, available, pendingWrites, requests] = await Promise.all([
        s.totals.read(sale.id),
        s.sales.availableNow(sale.id),
        s.sales.pendingWrites(sale.id),
        s.metrics.allSaleRequests(sale.id),
      ]);
      const now = Date.now();
      reply.header('cache-control', 'no-store');
      return {
        sale: saleAdmin(sale, now, s.sales.available(sale.id)),
        serverTime: iso(now),
        stats: { stock: sale.stock, ...totals, available, pendingWrites, requests },
        // quarantined: order records PostgreSQL refused, waiting for an operator (distributed mode).
        writer: { ordersWritten: s.writer.ordersWritten, backlog: s.writer.backlog, quarantined: s.writer.quarantined ?? 0 },
        soldOutAt: iso(s.metrics.live.soldOutAt(sale.id, available)),
        // Per-second series of this process (distributed mode: of the process that answers).
        series: s.metrics.live.series(sale.id, now, req.query.since === undefined ? 0 : Number(req.query.since)),
      };
    });
  };
}

const DemoTokenBody = Type.Object(
  {
    // A display name: letters, digits, spaces inside, and . _ @ -
    userId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\p{L}\\p{N}_.@-](?:[\\p{L}\\p{N} _.@-]*[\\p{L}\\p{N}_.@-])?$' }),
  },
  { additionalProperties: false },
);

const DEMO_TOKEN_TTL_SECONDS = 8 * 3600;

/**
 * `POST /api/demo/token {userId}` → `{token, userId, expiresAt}`: the sale page's demo sign-in.
 * Registered only in demo mode (seckill generated its own user secret); otherwise the route does not
 * exist and the shop's own login issues the tokens.
 */
export type DemoDeps = Pick<Services, 'userLimit' | 'secrets' | 'config'>;

export function demoRoutes(s: DemoDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/api/demo/token', { schema: { body: DemoTokenBody } }, async (req, reply) => {
      const { userId } = req.body;
      await s.userLimit.take(userId);
      reply.header('cache-control', 'no-store');
      return {
        // With SECKILL_TOKEN_AUDIENCE set, a token without it would be refused by this very service.
        token: signUserToken(s.secrets.userSecret, userId, DEMO_TOKEN_TTL_SECONDS, s.config.tokenAudience),
        userId,
        expiresAt: iso(Date.now() + DEMO_TOKEN_TTL_SECONDS * 1000),
      };
    });
  };
}
