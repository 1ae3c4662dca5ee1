import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { iso, salePublic } from '../../domain/sale.js';
import type { Services } from '../../wiring/services.js';
import { refuse } from '../errors.js';
import { SaleIdParams } from '../schemas.js';

export type PublicDeps = Pick<Services, 'sales' | 'refusals'>;

export function publicRoutes(s: PublicDeps): FastifyPluginAsyncTypebox {
  // Units left as this process knows them. The sold-out flag counts too: distributed, it comes at
  // once from the process that sold the last unit (pub/sub), while the engine's local figure only
  // follows at its next refresh; buys are already refused by that flag, the status must agree.
  const left = (saleId: string) => (s.refusals.isSoldOut(saleId) ? 0 : s.sales.available(saleId));

  return async (app) => {
    app.get('/api/time', async (_req, reply) => {
      reply.header('cache-control', 'no-store');
      return { serverTime: iso(Date.now()) };
    });

    app.get('/api/sales', async (_req, reply) => {
      const now = Date.now();
      reply.header('cache-control', 'public, max-age=1');
      const sales = s.sales
        .all()
        .filter((sale) => !sale.archivedAt && (sale.endsAt === null || sale.endsAt > now))
        .map((sale) => salePublic(sale, now, left(sale.id)));
      return { sales };
    });

    app.get('/api/sales/:saleId', { schema: { params: SaleIdParams } }, async (req, reply) => {
      const sale = s.sales.get(req.params.saleId) ?? (await s.sales.find(req.params.saleId));
      if (!sale) return refuse(req, reply, 'not_found');
      reply.header('cache-control', 'public, max-age=1');
      return salePublic(sale, Date.now(), left(sale.id));
    });
  };
}
