// The one registry of refusal codes: every refusal the API gives is a SeckillError,
// and its HTTP status is decided here and nowhere else.

export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  bad_path: 403,
  // A sale with a waiting room: the path and the buy need the pass the room gave (X-Seckill-Pass).
  no_pass: 403,
  // A sale with a challenge (docs/challenges.md): the path needs X-Seckill-Challenge, solved.
  challenge_required: 403,
  challenge_failed: 403,
  not_started: 425,
  ended: 410,
  paused: 423,
  sold_out: 409,
  limit_reached: 409,
  expired: 409,
  // Paying an order whose payment window has passed: the order stays expired (its units went
  // back to stock), and the shop refunds the payment through its own provider.
  payment_late: 409,
  // Not in the original contract: paying a cancelled order, cancelling a paid one,
  // paying twice with a different paymentRef, refunding an order that was never paid.
  invalid_state: 409,
  // Correcting a sale after it opened (anything but name, description and end time), archiving
  // an open sale.
  sale_open: 409,
  rate_limited: 429,
  busy: 503,
  payload_too_large: 413,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const DEFAULT_MESSAGE: Record<ErrorCode, string> = {
  bad_request: 'The request is malformed.',
  unauthorized: 'A valid user token is required.',
  forbidden: 'You are not allowed to do this.',
  not_found: 'No such resource.',
  bad_path: 'This order path was not issued to you for this sale.',
  no_pass: 'This sale has a waiting room: a valid pass (header X-Seckill-Pass) from POST /api/sales/:saleId/queue is required.',
  challenge_required: 'This sale has a challenge: solve one from POST /api/sales/:saleId/challenge and send it as header X-Seckill-Challenge: <challenge>:<answer>.',
  challenge_failed: 'The challenge was not accepted (wrong, expired, already used, or not yours): get a new one from POST /api/sales/:saleId/challenge.',
  not_started: 'The sale has not started yet.',
  ended: 'The sale is over.',
  paused: 'The sale is paused by an operator.',
  sold_out: 'Sold out.',
  limit_reached: 'You already hold the per-user limit for this sale.',
  expired: 'The payment window of this order has passed.',
  payment_late: 'The payment came after the order\'s payment window: the order stays expired and its units went back to stock. Refund this payment through your payment provider.',
  invalid_state: 'The order is not in a state that allows this.',
  sale_open: 'The sale has opened: only name, description and end time can change.',
  rate_limited: 'Too many requests; slow down.',
  busy: 'The service is busy; nothing was changed. Try again shortly.',
  payload_too_large: 'The request body is too large.',
  internal: 'Internal error.',
};

export class SeckillError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds, for 429 and 503. */
  readonly retryAfter?: number;

  /** `cause`: the underlying failure (e.g. the database's), logged but never shown. */
  constructor(code: ErrorCode, message?: string, retryAfter?: number, cause?: unknown) {
    super(message ?? DEFAULT_MESSAGE[code], cause === undefined ? undefined : { cause });
    this.name = 'SeckillError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
    else if (code === 'busy' || code === 'rate_limited') this.retryAfter = 1;
  }
}

export function errorBody(code: ErrorCode, message?: string): string {
  return JSON.stringify({ error: { code, message: message ?? DEFAULT_MESSAGE[code] } });
}

/** Pre-serialized bodies of the common refusals: the cheap path does no JSON work. */
export const PRESERIALIZED: Record<ErrorCode, string> = Object.fromEntries(
  (Object.keys(ERROR_STATUS) as ErrorCode[]).map((c) => [c, errorBody(c)]),
) as Record<ErrorCode, string>;
