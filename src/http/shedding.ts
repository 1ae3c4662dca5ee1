import underPressure from '@fastify/under-pressure';
import type { FastifyRequest } from 'fastify';
import { PRESERIALIZED } from '../domain/errors.js';
import type { Services } from '../wiring/services.js';
import type { App } from './app.js';

/** Routes that start work (a reservation); everything else — reads of orders, status — keeps being served. */
const SHEDDABLE = new Set(['/api/sales/:saleId/buy/:path', '/api/sales/:saleId/path']);

/**
 * Load shedding (@fastify/under-pressure): when the event loop lags, the heap grows or the order
 * writer's backlog passes its bound, new buys get 503 busy with Retry-After before any work is
 * done, so the backlog cannot grow without limit and accepted requests keep a bounded latency.
 */
export function registerShedding(app: App, s: Pick<Services, 'config' | 'writer' | 'metrics'>): void {
  const c = s.config;
  app.register(underPressure, {
    sampleInterval: 100,
    maxEventLoopDelay: c.maxEventLoopDelayMs,
    maxHeapUsedBytes: c.maxHeapMb > 0 ? c.maxHeapMb * 1024 * 1024 : 0,
    healthCheck: async () => s.writer.backlog <= c.maxWriterBacklog,
    healthCheckInterval: 250,
    // Answering here ends the request: fastify runs nothing more for a reply already sent.
    pressureHandler: (request: FastifyRequest, reply, type: string, value: number | undefined) => {
      if (!SHEDDABLE.has(request.routeOptions.url ?? '')) return; // served as usual
      // Before its first sample under-pressure reports an infinite delay: that is no measure.
      if (value !== undefined && !Number.isFinite(value)) return;
      s.metrics.shed(type);
      request.outcome = 'busy';
      reply.code(503).header('content-type', 'application/json; charset=utf-8').header('retry-after', '1').send(PRESERIALIZED.busy);
    },
  });
  app.after(() => {
    // under-pressure decorates the instance with its readings; /metrics and /readyz show them.
    const usage = (app as unknown as { memoryUsage(): { eventLoopDelay: number; heapUsed: number } }).memoryUsage.bind(app);
    s.metrics.pressure = () => {
      const m = usage();
      return { eventLoopDelayMs: Math.round(m.eventLoopDelay * 10) / 10, heapUsedBytes: m.heapUsed };
    };
  });
}
