import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../../services.js';

export function opsRoutes(s: Services): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));

    app.get('/readyz', async (_req, reply) => {
      const checks = await s.ping();
      const ready = Object.values(checks).every((v) => v === 'ok');
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store');
      return { status: ready ? 'ok' : 'unavailable', checks };
    });

    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', s.metrics.registry.contentType);
      return s.metrics.registry.metrics();
    });
  };
}
