import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { iso, salePublic } from '../../domain/sale.js';
import type { Services } from '../../services.js';
import { refuse } from '../errors.js';
import { SaleIdParams } from '../schemas.js';

export function publicRoutes(s: Services): FastifyPluginAsyncTypebox {
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
        .filter((sale) => sale.endsAt === null || sale.endsAt > now)
        .map((sale) => salePublic(sale, now, s.engine.available(sale.id)));
      return { sales };
    });

    app.get('/api/sales/:saleId', { schema: { params: SaleIdParams } }, async (req, reply) => {
      const sale = s.sales.get(req.params.saleId) ?? (await s.sales.find(req.params.saleId));
      if (!sale) return refuse(req, reply, 'not_found');
      reply.header('cache-control', 'public, max-age=1');
      return salePublic(sale, Date.now(), s.engine.available(sale.id));
    });
  };
}
