import http from 'node:http';
import { ERROR_STATUS, PRESERIALIZED } from '../domain/errors.js';
import type { FunnelStep, PublicRefusal } from '../gateway/funnel.js';
import type { BuyService } from '../services/buy.js';
import type { InterestRecorder } from '../services/interest-recorder.js';
import { BUY_ROUTE, PATH_ROUTE, SWITCH_RETRY_AFTER, countAnswer, type OutcomeDeps } from './outcomes.js';
import { corsRefusalHeaders } from './cors.js';

const BUY = /^\/api\/sales\/([A-Za-z0-9_-]{1,64})\/buy\/[^/?#]{1,256}$/;
const PATH = /^\/api\/sales\/([A-Za-z0-9_-]{1,64})\/path$/;
/** Larger bodies go through fastify, which refuses them with 413 before reading them all. */
const MAX_DRAINED_BODY = 16 * 1024;

/** The refusals this path may give: the funnel's public ones for a sale known here. */
type FastCode = Exclude<PublicRefusal, 'not_found'>;
interface Prebuilt {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

function prebuilt(code: FastCode): Prebuilt {
  const body = Buffer.from(PRESERIALIZED[code]);
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
    'x-content-type-options': 'nosniff',
  };
  if (code === 'busy') headers['retry-after'] = String(SWITCH_RETRY_AFTER);
  return { status: ERROR_STATUS[code], headers, body };
}

/** Head and body of each refusal, built once. */
const PREBUILT: Record<FastCode, Prebuilt> = {
  sold_out: prebuilt('sold_out'),
  not_started: prebuilt('not_started'),
  ended: prebuilt('ended'),
  paused: prebuilt('paused'),
  busy: prebuilt('busy'),
};

export interface FastPathDeps extends OutcomeDeps {
  buying: Pick<BuyService, 'localRefusal'>;
  /** Intended purchases: a sold-out refusal's Authorization header and body, verified and written later. */
  interest?: Pick<InterestRecorder, 'soldOut'>;
  /** SECKILL_CORS_ORIGINS: a refusal to a page on one of them carries the CORS headers too. */
  corsOrigins?: ReadonlySet<string>;
}

/**
 * The cheapest refusal first (docs/design.md, "the funnel"): during a flash sale nearly every
 * request is a buy that cannot succeed — the sale is sold out, not started, over or paused, or
 * the operators refuse all buys. Those facts are public and known in memory, so such a request
 * is answered here, from the raw request line, before fastify parses or validates anything,
 * with a body built once. The checks are the funnel's public ones (src/gateway/funnel.ts), the
 * same the routes run. Everything else (and anything odd: unknown sale, large body) goes on to
 * fastify unchanged.
 */
export function fastRefusal(d: FastPathDeps, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  let step: FunnelStep;
  let m = BUY.exec(url);
  if (m) step = 'buy';
  else if ((m = PATH.exec(url))) step = 'path';
  else return false;
  if (Number(req.headers['content-length'] ?? 0) > MAX_DRAINED_BODY) return false;
  const saleId = m[1];
  const code = d.buying.localRefusal(step, saleId, Date.now());
  if (code === null) return false;

  const answer = PREBUILT[code];
  req.resume(); // drain the (small) body; keep-alive goes on
  const cors = corsRefusalHeaders(d.corsOrigins, req.headers);
  res.writeHead(answer.status, cors ? { ...answer.headers, ...cors } : answer.headers);
  res.end(answer.body);
  countAnswer(d, step === 'buy' ? BUY_ROUTE : PATH_ROUTE, saleId, code, 0);
  if (code === 'sold_out') d.interest?.soldOut(saleId, req.headers.authorization, req);
  return true;
}
