import http from 'node:http';
import { ERROR_STATUS, PRESERIALIZED, type ErrorCode } from '../domain/errors.js';
import { windowRefusal } from '../domain/sale.js';
import type { Services } from '../wiring/services.js';

const BUY = /^\/api\/sales\/([A-Za-z0-9_-]{1,64})\/buy\/[^/?#]{1,256}$/;
const PATH = /^\/api\/sales\/([A-Za-z0-9_-]{1,64})\/path$/;
const BUY_ROUTE = '/api/sales/:saleId/buy/:path';
const PATH_ROUTE = '/api/sales/:saleId/path';
/** Larger bodies go through fastify, which refuses them with 413 before reading them all. */
const MAX_DRAINED_BODY = 16 * 1024;

/** Head and body of each refusal, built once. */
const PREBUILT = new Map<ErrorCode, { status: number; headers: http.OutgoingHttpHeaders; body: Buffer }>(
  (['sold_out', 'not_started', 'ended', 'paused', 'busy'] as const).map((code) => {
    const body = Buffer.from(PRESERIALIZED[code]);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
      'x-content-type-options': 'nosniff',
    };
    if (code === 'busy') headers['retry-after'] = '5';
    return [code, { status: ERROR_STATUS[code], headers, body }];
  }),
);

/**
 * The cheapest refusal first (docs/design.md, "the funnel"): during a flash sale nearly every
 * request is a buy that cannot succeed — the sale is sold out, not started, over or paused, or
 * the operators refuse all buys. Those facts are public and known in memory, so such a request
 * is answered here, from the raw request line, before fastify parses or validates anything,
 * with a body built once. Everything else (and anything odd: unknown sale, large body) goes on
 * to fastify unchanged.
 */
export function fastRefusal(s: Services, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  let route: string;
  let m = BUY.exec(url);
  if (m) route = BUY_ROUTE;
  else if ((m = PATH.exec(url))) route = PATH_ROUTE;
  else return false;
  if (Number(req.headers['content-length'] ?? 0) > MAX_DRAINED_BODY) return false;
  const sale = s.sales.get(m[1]);
  if (!sale) return false;
  let code: ErrorCode | null = s.switches.refuseBuys ? 'busy' : windowRefusal(sale, Date.now());
  if (!code && route === BUY_ROUTE && s.refusals.isSoldOut(sale.id)) code = 'sold_out';
  if (!code) return false;

  const answer = PREBUILT.get(code)!;
  req.resume(); // drain the (small) body; keep-alive goes on
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
  s.metrics.countRequest(route, code);
  if (route === BUY_ROUTE) s.metrics.countBuy(sale.id, code, 0);
  return true;
}
