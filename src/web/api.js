// The pages' one client of seckill's HTTP API: JSON in and out, the bearer token, and every
// refusal as an ApiError with the contract's code and message ({"error":{"code","message"}}).
// The answers' types are the server's own (JSDoc imports of src/domain and src/http/schemas.ts,
// checked by tsconfig.web.json; none of that code is loaded in the browser).

/**
 * A type with some of its fields known to be set: the server's `iso()` is typed `string | null`
 * for any time, but a sale always has a start and an order always has a deadline.
 * @template T
 * @template {keyof T} K
 * @typedef {Omit<T, K> & { [P in K]: NonNullable<T[P]> }} Present
 */

/** @typedef {import('../domain/sale.js').SaleStatus} SaleStatus */
/** @typedef {import('../domain/order.js').OrderStatus} OrderStatus */
/** @typedef {Present<ReturnType<typeof import('../domain/sale.js').salePublic>, 'startsAt' | 'serverTime'>} PublicSale */
/** @typedef {Present<ReturnType<typeof import('../domain/sale.js').saleAdmin>, 'startsAt' | 'serverTime' | 'createdAt'>} AdminSale */
/** @typedef {Present<ReturnType<typeof import('../domain/order.js').orderJson>, 'createdAt' | 'expiresAt'>} OrderView */
/** What a buy answers (202): the reservation. @typedef {Pick<OrderView, 'orderId' | 'status' | 'quantity' | 'expiresAt'>} Reservation */
/** @typedef {import('typebox').Static<typeof import('../http/schemas.js').CreateSaleBody>} CreateSale */
/** What joining or polling a waiting room answers. @typedef {import('../domain/queue.js').QueueAnswer} QueueAnswer */
/** @typedef {import('typebox').Static<typeof import('../http/schemas.js').CorrectSaleBody>} CorrectSale */
/** One recorded change of a sale (or of the switches). @typedef {ReturnType<typeof import('../domain/sale.js').auditJson>} AuditEntry */

/**
 * The dashboard's live figures (src/http/routes/page-api.ts). Written out here: the series type
 * lives in a server module that needs Node's types.
 * @typedef {{
 *   sale: AdminSale,
 *   serverTime: string,
 *   stats: { stock: number, reserved: number, paid: number, expired: number, cancelled: number, refunded?: number,
 *            available: number, pendingWrites: number, requests: Record<string, number> },
 *   writer: { ordersWritten: number, backlog: number, quarantined: number },
 *   soldOutAt: string | null,
 *   series: {
 *     t: number[], requests: Record<string, number[]>, p50Ms: Array<number | null>,
 *     p99Ms: Array<number | null>, ordersWritten: number[], backlog: Array<number | null>,
 *   },
 * }} LiveFigures
 */

/** @typedef {import('../domain/errors.js').ErrorCode | 'network' | 'http'} ApiErrorCode */

/** A refusal by the server (its code), or `network` when no answer came, or `http` for an answer without a code. */
export class ApiError extends Error {
  /**
   * @param {ApiErrorCode} code
   * @param {string} message
   * @param {number} status the HTTP status; 0 without an answer
   * @param {number} retryAfter seconds (the Retry-After header; 1 when absent)
   */
  constructor(code, message, status, retryAfter = 1) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * @typedef {object} CallOptions
 * @property {unknown} [body] sent as JSON
 * @property {string | null} [token] the buyer's token or the admin key (`authorization: Bearer …`)
 * @property {string} [accept]
 * @property {RequestCache} [cache] `no-store` unless the answer may come from a cache
 * @property {string | null} [pass] the waiting room's pass (header X-Seckill-Pass)
 * @property {string | null} [challenge] a solved challenge, `<challenge>:<answer>` (header X-Seckill-Challenge)
 */

/**
 * One call; a successful answer is returned as is, anything else throws an ApiError.
 * @param {string} method
 * @param {string} url
 * @param {CallOptions} [options]
 * @returns {Promise<Response>}
 */
async function call(method, url, { body, token, accept, cache = 'no-store', pass, challenge } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (pass) headers['x-seckill-pass'] = pass;
  if (challenge) headers['x-seckill-challenge'] = challenge;
  if (accept) headers.accept = accept;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache });
  } catch {
    throw new ApiError('network', 'The network failed; check your connection.', 0);
  }
  if (res.ok) return res;
  /** @type {{ error?: { code?: ApiErrorCode, message?: string } } | null} */
  const data = await res.json().catch(() => null);
  throw new ApiError(
    data?.error?.code || 'http',
    data?.error?.message || `HTTP ${res.status}`,
    res.status,
    Number(res.headers.get('retry-after')) || 1,
  );
}

/**
 * A call whose answer is JSON of a known shape (the server's; see the typedefs above).
 * @param {string} method
 * @param {string} url
 * @param {CallOptions} [options]
 * @returns {Promise<any>} typed by each endpoint below
 */
async function json(method, url, options) {
  const res = await call(method, url, options);
  try {
    return await res.json();
  } catch {
    throw new ApiError('http', 'The shop sent an answer this page cannot read.', res.status);
  }
}

const enc = encodeURIComponent;
/** The dashboard asks for JSON explicitly: the orders route also speaks CSV. */
const JSON_TYPE = 'application/json';

// ---------------------------------------------------------------- public
/** @returns {Promise<{ serverTime: string }>} never from a cache */
export const serverTime = () => json('GET', '/api/time');

/** @returns {Promise<{ sales: PublicSale[] }>} */
export const listSales = () => json('GET', '/api/sales', { cache: 'default' });

/**
 * A sale's public status, which a cache may keep up to a second: no token goes with it. `version`
 * (the server's time in quarter seconds) makes buyers of the same quarter share one cached answer.
 * @param {string} saleId
 * @param {number} [version]
 * @returns {Promise<PublicSale>}
 */
export const getSale = (saleId, version) =>
  json('GET', `/api/sales/${enc(saleId)}${version === undefined ? '' : `?v=${version}`}`, { cache: 'default' });

// ---------------------------------------------------------------- buyers
/**
 * @param {string | null} token
 * @param {string} saleId
 * @param {string | null} [pass] the waiting room's pass, for a sale with a room
 * @param {string | null} [challenge] the solved challenge `<challenge>:<answer>`, for a sale with one
 * @returns {Promise<{ path: string }>} the buyer's own order path for this sale
 */
export const orderPath = (token, saleId, pass = null, challenge = null) =>
  json('POST', `/api/sales/${enc(saleId)}/path`, { token, body: {}, pass, challenge });

/**
 * A new challenge for this buyer, to solve before asking for the path (docs/challenges.md).
 * @param {string} token
 * @param {string} saleId
 * @returns {Promise<import('../domain/challenge-task.js').ChallengeTask>}
 */
export const getChallenge = (token, saleId) => json('POST', `/api/sales/${enc(saleId)}/challenge`, { token, body: {} });

/**
 * @param {string | null} token
 * @param {string} saleId
 * @param {string} path
 * @param {number} quantity
 * @param {string | null} [pass] the waiting room's pass, for a sale with a room
 * @returns {Promise<Reservation>}
 */
export const buy = (token, saleId, path, quantity, pass = null) =>
  json('POST', `/api/sales/${enc(saleId)}/buy/${enc(path)}`, { token, body: { quantity }, pass });

/**
 * Take a place in the sale's waiting room (or keep the one this user has).
 * @param {string} token
 * @param {string} saleId
 * @returns {Promise<QueueAnswer>}
 */
export const joinQueue = (token, saleId) => json('POST', `/api/sales/${enc(saleId)}/queue`, { token, body: {} });

/**
 * Where this user is in the waiting room; polling keeps the place.
 * @param {string} token
 * @param {string} saleId
 * @returns {Promise<QueueAnswer>}
 */
export const pollQueue = (token, saleId) => json('GET', `/api/sales/${enc(saleId)}/queue`, { token });

/**
 * @param {string | null} token
 * @param {string} orderId
 * @returns {Promise<OrderView>}
 */
export const getOrder = (token, orderId) => json('GET', `/api/orders/${enc(orderId)}`, { token });

/**
 * @param {string | null} token
 * @returns {Promise<{ orders: OrderView[] }>}
 */
export const myOrders = (token) => json('GET', '/api/me/orders', { token });

/**
 * Paying is idempotent for the same `paymentRef`.
 * @param {string | null} token
 * @param {string} orderId
 * @param {string} paymentRef
 * @returns {Promise<OrderView>}
 */
export const payOrder = (token, orderId, paymentRef) =>
  json('POST', `/api/orders/${enc(orderId)}/pay`, { token, body: { paymentRef } });

/**
 * @param {string | null} token
 * @param {string} orderId
 * @returns {Promise<OrderView>}
 */
export const cancelOrder = (token, orderId) => json('POST', `/api/orders/${enc(orderId)}/cancel`, { token, body: {} });

/**
 * The order's status changes as server-sent events (`status`, an OrderView). EventSource cannot
 * send headers, so the token goes in the query.
 * @param {string} token
 * @param {string} orderId
 */
export const orderEventsUrl = (token, orderId) => `/api/orders/${enc(orderId)}/events?access_token=${enc(token)}`;

/**
 * The waiting room's answers as server-sent events (`queue`, a QueueAnswer; `refused`, an error:
 * no longer in line). Holding it keeps the place. The token goes in the query, as for orderEventsUrl.
 * @param {string} token
 * @param {string} saleId
 */
export const queueEventsUrl = (token, saleId) => `/api/sales/${enc(saleId)}/queue/events?access_token=${enc(token)}`;

/**
 * The demo sign-in (demo mode only; `not_found` elsewhere).
 * @param {string} userId
 * @returns {Promise<{ token: string, userId: string, expiresAt: string }>}
 */
export const demoToken = (userId) => json('POST', '/api/demo/token', { body: { userId } });

// ---------------------------------------------------------------- operators (the admin key)
/**
 * @param {string} key
 * @returns {Promise<{ sales: AdminSale[] }>}
 */
export const adminSales = (key) => json('GET', '/api/admin/sales', { token: key, accept: JSON_TYPE });

/**
 * @param {string} key
 * @param {CreateSale} sale
 * @returns {Promise<AdminSale>}
 */
export const createSale = (key, sale) => json('POST', '/api/admin/sales', { token: key, accept: JSON_TYPE, body: sale });

/**
 * @param {string} key
 * @param {string} saleId
 * @param {'pause' | 'resume'} action
 * @returns {Promise<AdminSale>}
 */
export const pauseSale = (key, saleId, action) =>
  json('POST', `/api/admin/sales/${enc(saleId)}/${action}`, { token: key, accept: JSON_TYPE, body: {} });

/**
 * Correct a sale (only the fields that change): before it opens any of them, then name,
 * description and end time only (`sale_open` otherwise).
 * @param {string} key
 * @param {string} saleId
 * @param {CorrectSale} fields
 * @returns {Promise<AdminSale>}
 */
export const correctSale = (key, saleId, fields) =>
  json('PATCH', `/api/admin/sales/${enc(saleId)}`, { token: key, accept: JSON_TYPE, body: fields });

/**
 * End the sale now, or archive it (an ended sale, or one that never opened).
 * @param {string} key
 * @param {string} saleId
 * @param {'end' | 'archive'} action
 * @returns {Promise<AdminSale>}
 */
export const endOrArchiveSale = (key, saleId, action) =>
  json('POST', `/api/admin/sales/${enc(saleId)}/${action}`, { token: key, accept: JSON_TYPE, body: {} });

/**
 * Every recorded change of a sale, oldest first.
 * @param {string} key
 * @param {string} saleId
 * @returns {Promise<{ entries: AuditEntry[] }>}
 */
export const saleAudit = (key, saleId) => json('GET', `/api/admin/sales/${enc(saleId)}/audit`, { token: key, accept: JSON_TYPE });

/**
 * @param {string} key
 * @param {string} saleId
 * @param {number} [since] epoch seconds: only the points after it
 * @returns {Promise<LiveFigures>}
 */
export const liveFigures = (key, saleId, since) =>
  json('GET', `/api/admin/sales/${enc(saleId)}/live${since === undefined ? '' : `?since=${since}`}`, { token: key, accept: JSON_TYPE });

/**
 * One page of a sale's orders, newest first; `next` is the `after` of the following page.
 * @param {string} key
 * @param {string} saleId
 * @param {URLSearchParams} query limit, status, after
 * @returns {Promise<{ orders: OrderView[], next: string | null }>}
 */
export const saleOrders = (key, saleId, query) =>
  json('GET', `/api/admin/sales/${enc(saleId)}/orders?${query}`, { token: key, accept: JSON_TYPE });

/**
 * Every order of a sale as CSV.
 * @param {string} key
 * @param {string} saleId
 * @param {string} status empty for all
 * @returns {Promise<Blob>}
 */
export async function saleOrdersCsv(key, saleId, status) {
  const res = await call('GET', `/api/admin/sales/${enc(saleId)}/orders${status ? `?status=${enc(status)}` : ''}`, { token: key, accept: 'text/csv' });
  return res.blob();
}

/**
 * Intended purchases: how many buyers were refused because the sale sold out (each once), and the units they asked for.
 * @param {string} key
 * @param {string} saleId
 * @returns {Promise<{ users: number, units: number }>}
 */
export const saleInterestSummary = (key, saleId) =>
  json('GET', `/api/admin/sales/${enc(saleId)}/interest/summary`, { token: key, accept: JSON_TYPE });

/**
 * Every intended purchase of a sale as CSV (userId, quantity, at).
 * @param {string} key
 * @param {string} saleId
 * @returns {Promise<Blob>}
 */
export async function saleInterestCsv(key, saleId) {
  const res = await call('GET', `/api/admin/sales/${enc(saleId)}/interest`, { token: key, accept: 'text/csv' });
  return res.blob();
}

/**
 * A sale's waiting room as operators see it (null: nobody has joined it yet).
 * @param {string} key
 * @param {string} saleId
 * Written out here (as RoomStats in src/services/waiting-room.ts): that module needs Node's types.
 * @returns {Promise<{ room: { waiting: number, admitted: number, outstanding: number, abandoned: number,
 *   admittedPerSecond: number, opened: boolean, etaErrorSeconds?: number | null, configuredPerSecond?: number } | null }>}
 */
export const saleQueueStats = (key, saleId) =>
  json('GET', `/api/admin/sales/${enc(saleId)}/queue`, { token: key, accept: JSON_TYPE });

/** Users and the units they won. @typedef {{ users: number, units: number }} Tally */

/**
 * A sale's fairness report (docs/fairness.md). Written out here (as FairnessReply in src/http/routes/fairness.ts).
 * @param {string} key
 * @param {string} saleId
 * @param {string} botPrefix
 * @returns {Promise<{ saleId: string, opensAt: string, method: 'random' | 'fifo' | null, users: number, units: number,
 *   arrival: { beforeOpen: Tally, afterOpen: Tally, unknown: Tally } | null, arrivalUnknown: string | null,
 *   fifoInversions: { inversions: number, pairs: number, admitted: number } | null,
 *   bots: { prefix: string, users: number, units: number, shareOfUsers: number | null, shareOfUnits: number | null } }>}
 */
export const saleFairness = (key, saleId, botPrefix) =>
  json('GET', `/api/admin/sales/${enc(saleId)}/fairness?botPrefix=${enc(botPrefix)}`, { token: key, accept: JSON_TYPE });

/**
 * The fairness report's rows, one per user, as CSV (userId, firstJoinedAt, joinedAt, admittedAt, units, bot).
 * @param {string} key
 * @param {string} saleId
 * @param {string} botPrefix
 * @returns {Promise<Blob>}
 */
export async function saleFairnessCsv(key, saleId, botPrefix) {
  const res = await call('GET', `/api/admin/sales/${enc(saleId)}/fairness?botPrefix=${enc(botPrefix)}`, { token: key, accept: 'text/csv' });
  return res.blob();
}

/**
 * The outbox relay per sink: events waiting, sent, dead letters, the oldest waiting one's age.
 * @param {string} key
 * @returns {Promise<{ retentionHours: number, sinks: Array<{ sink: string, backlog: number, sent: number, dead: number,
 *   oldestPendingAt: string | null, oldestPendingAgeSeconds: number | null }> }>}
 */
export const eventsStatus = (key) => json('GET', '/api/admin/events', { token: key, accept: JSON_TYPE });

/**
 * A sink's dead letters (events it refused too often), oldest first.
 * @param {string} key
 * @param {string} sink
 * @returns {Promise<{ sink: string, dead: Array<{ id: string, type: string, key: string, seq: number, at: string,
 *   deadAt: string, attempts: number, error: string }> }>}
 */
export const deadLetters = (key, sink) => json('GET', `/api/admin/events/dead?sink=${enc(sink)}&limit=50`, { token: key, accept: JSON_TYPE });

/**
 * Send a sink's dead letters again.
 * @param {string} key
 * @param {string} sink
 * @returns {Promise<{ redriven: number }>}
 */
export const redriveEvents = (key, sink) => json('POST', '/api/admin/events/redrive', { token: key, accept: JSON_TYPE, body: { sink } });

/**
 * Anything a call's caller caught, as an ApiError (a bug in the page shows as its message).
 * @param {unknown} err
 */
export function asApiError(err) {
  return err instanceof ApiError ? err : new ApiError('http', err instanceof Error ? err.message : String(err), 0);
}
