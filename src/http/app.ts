import http from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Services } from '../wiring/services.js';
import { errorHandler, notFoundHandler, refuse } from './errors.js';
import { adminRoutes } from './routes/admin.js';
import { interestRoutes } from './routes/interest.js';
import { fairnessRoutes } from './routes/fairness.js';
import { eventsRoutes } from './routes/events.js';
import { buyingRoutes } from './routes/buying.js';
import { challengeRoutes } from './routes/challenge.js';
import { opsRoutes } from './routes/ops.js';
import { queueRoutes } from './routes/queue.js';
import { queueEventsRoutes } from './routes/queue-events.js';
import { pagesRoutes } from './routes/pages.js';
import { publicRoutes } from './routes/public.js';
import { SeckillError } from '../domain/errors.js';
import { registerShedding } from './shedding.js';
import { fastRefusal } from './fast-refusals.js';
import cors from '@fastify/cors';
import { corsOptions } from './cors.js';
import { BUY_ROUTE, countAnswer } from './outcomes.js';
import { BuyService } from '../services/buy.js';
import swagger from '@fastify/swagger';
import { openApiOptions, openApiRoute } from './openapi.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** ok, or the error code this request was answered with; counted in /metrics. */
    outcome: string;
  }
}

export type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fastify's server generics are not ours to pin

/**
 * Routes outside the per-address limit: health probes (a balancer's checks come from one
 * address) and the static pages and assets (prebuilt buffers, cacheable by a CDN). Every other
 * request is limited, unknown paths (404) included.
 */
const UNLIMITED_ROUTES = new Set(['/healthz', '/readyz', '/', '/admin', '/sales/:saleId', '/assets/:file']);

export function buildApp(services: Services): App {
  // The buy use case, shared by the raw fast path and the buying routes.
  const buying = new BuyService(services);
  const corsOrigins = new Set(services.config.web.corsOrigins);
  const fastPath = { buying, metrics: services.metrics, sales: services.sales, corsOrigins, interest: services.interest };
  const app = Fastify({
    loggerInstance: services.log,
    // Per-request log lines would cost more than the refusals they describe.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // SECKILL_TRUST_PROXY: behind a balancer, request.ip (the per-address limit) is the client's
    // address from X-Forwarded-For as far as the trusted proxies vouch for it; off by default.
    trustProxy: trustProxyOption(services.config.trustProxy),
    return503OnClosing: true,
    // Buys that cannot succeed (sold out, not started, over, paused) are answered before fastify.
    serverFactory: (handler) => {
      const server = http.createServer((req, res) => {
        if (!fastRefusal(fastPath, req, res)) handler(req, res);
      });
      // A custom server skips fastify's keep-alive default, leaving Node's 5 s: a balancer that
      // keeps idle connections for 60 s would then meet closed sockets (sporadic 502s).
      server.keepAliveTimeout = 72_000;
      server.headersTimeout = 75_000;
      return server;
    },
    // The router's own refusals (an undecodable URL, a parameter over its 100-character limit)
    // would otherwise answer with fastify's body (and a 414), not the contract's error shape.
    frameworkErrors: (err, request, reply) => {
      const bad = err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      refuse(request, reply, bad ? 'bad_request' : 'internal');
    },
    ajv: {
      // Strict input: refuse unknown fields instead of dropping them, never coerce types.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('outcome', '');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  // First of the hooks (registered before the others): refusals and preflights carry CORS too.
  const corsOpts = corsOptions(services.config.web.corsOrigins);
  if (corsOpts) app.register(cors, corsOpts);

  // Every answer (JSON, refusals, 404s, metrics) is served as its declared type, never sniffed.
  // First hook, callback style and one constant header: no measurable cost on the buy path.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff');
    done();
  });

  // Per-address limit, before anything else is looked at. Decided by the route the router
  // matched, never by the raw request target: `POST http://host/api/…` (absolute form) or a
  // percent-encoded path reaches the same route as `/api/…` and used to skip the limit.
  if (services.ipLimit.enabled) {
    app.addHook('onRequest', async (request, reply) => {
      const route = request.routeOptions.url;
      if (route !== undefined && UNLIMITED_ROUTES.has(route)) return;
      try {
        await services.ipLimit.take(request.ip);
      } catch (err) {
        if (err instanceof SeckillError) return refuse(request, reply, err.code, err.retryAfter);
        throw err;
      }
    });
  }

  // Callback style: an async hook would cost every answer a promise and a microtask.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const outcome = request.outcome || (reply.statusCode < 400 ? 'ok' : String(reply.statusCode));
    const saleId = route === BUY_ROUTE ? (request.params as { saleId?: string }).saleId : undefined;
    countAnswer(services, route, saleId, outcome, reply.elapsedTime);
    done();
  });

  registerShedding(app, services);
  // Before the routes: it collects them as they are added (GET /api/openapi.json).
  app.register(swagger, openApiOptions());
  app.register(openApiRoute);
  app.register(publicRoutes(services));
  const { auth, orders, switches, secrets, config } = services;
  app.register(buyingRoutes({ auth, orders, switches, secrets, config, buying }));
  app.register(adminRoutes(services));
  app.register(queueRoutes(services));
  app.register(challengeRoutes(services));
  app.register(queueEventsRoutes(services));
  app.register(interestRoutes(services));
  app.register(fairnessRoutes(services));
  app.register(eventsRoutes(services));
  app.register(opsRoutes(services));
  app.register(pagesRoutes(services));
  return app;
}

/**
 * A hop count becomes a function: this fastify trusts no hop for a plain number (a direct client
 * could then add hops of its own). Here n means "the n nearest hops are our proxies": the
 * operator's statement, documented with that caveat; addresses/CIDRs are the safer form.
 */
function trustProxyOption(tp: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof tp !== 'number') return tp;
  return (_address, hop) => hop < tp;
}
