import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { FastifyCorsOptions } from '@fastify/cors';

/**
 * CORS for a shop with its own front end (SECKILL_CORS_ORIGINS; off when empty): pages on those
 * exact origins may call /api/ with a bearer token. No cookies are involved, so no credentials;
 * Retry-After is exposed because the pages wait what a busy or rate-limited answer asks.
 */
const MAX_AGE_S = 600;
const EXPOSED = 'Retry-After';

/** @fastify/cors's options for these origins; null: CORS off (the plugin is not registered). */
export function corsOptions(origins: readonly string[]): FastifyCorsOptions | null {
  if (origins.length === 0) return null;
  const allowed = new Set(origins);
  const api: FastifyCorsOptions = {
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Seckill-Pass', 'X-Seckill-Challenge'],
    exposedHeaders: [EXPOSED],
    credentials: false,
    maxAge: MAX_AGE_S,
  };
  const off: FastifyCorsOptions = { origin: false };
  // The API only: the pages and /metrics are not for other origins' scripts.
  return { delegator: (req, cb) => cb(null, req.url.startsWith('/api/') ? api : off) };
}

/**
 * The headers a refusal answered before fastify (fast-refusals.ts) needs for a browser on an
 * allowed origin to read it; null for any other request.
 */
export function corsRefusalHeaders(allowed: ReadonlySet<string> | undefined, headers: IncomingHttpHeaders): OutgoingHttpHeaders | null {
  const origin = headers.origin;
  if (!allowed || origin === undefined || !allowed.has(origin)) return null;
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSED, vary: 'Origin' };
}
