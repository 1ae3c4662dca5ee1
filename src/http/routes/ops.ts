import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Auth } from '../../gateway/auth.js';
import type { Services } from '../../wiring/services.js';

export type OpsDeps = Pick<Services, 'auth' | 'ping' | 'breakers' | 'metrics' | 'config' | 'writer' | 'switches'>;

export function opsRoutes(s: OpsDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));

    app.get('/readyz', async (_req, reply) => {
      const checks = await s.ping();
      for (const b of s.breakers) checks[`breaker ${b.name}`] = b.state === 'closed' ? 'ok' : b.state;
      const ready = Object.values(checks).every((v) => v === 'ok');
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store');
      const p = s.metrics.pressure();
      return {
        status: ready ? 'ok' : 'unavailable',
        checks,
        pressure: {
          eventLoopDelayMs: Number.isFinite(p.eventLoopDelayMs) ? p.eventLoopDelayMs : null,
          maxEventLoopDelayMs: s.config.maxEventLoopDelayMs,
          heapUsedMb: Math.round(p.heapUsedBytes / 1e6),
          maxHeapMb: s.config.maxHeapMb,
          writerBacklog: s.writer.backlog,
          maxWriterBacklog: s.config.maxWriterBacklog,
        },
        switches: s.switches.values(),
      };
    });

    // Not public: the metrics token (SECKILL_METRICS_TOKEN) or the admin key, as a bearer token;
    // anything else is 401 before a single metric is collected. Also under the per-address limit.
    const metricsAuth = { onRequest: async (req: { headers: { authorization?: string } }) => s.auth.requireMetrics(Auth.bearer(req.headers.authorization)) };
    app.get('/metrics', metricsAuth, async (_req, reply) => {
      reply.header('content-type', s.metrics.registry.contentType);
      return s.metrics.scrape(); // under --workers: every worker's, added up
    });
  };
}
