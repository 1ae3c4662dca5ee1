import { createHmac, timingSafeEqual } from 'node:crypto';

// The webhook signature, both sides in one place: seckill signs with `signWebhook`, and
// `verifyWebhook` is the very code docs/integrating.md gives shops to check it (the contract test
// verifies every delivery with it, and checks that the document still quotes it verbatim).
//
// Seckill-Timestamp: <unix seconds>
// Seckill-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>

export const SIGNATURE_HEADER = 'seckill-signature';
export const TIMESTAMP_HEADER = 'seckill-timestamp';
export const EVENT_ID_HEADER = 'seckill-event-id';
export const EVENT_TYPE_HEADER = 'seckill-event-type';

/** The shortest SECKILL_WEBHOOK_SECRET accepted (HMAC-SHA256 wants a key of 32 bytes or more). */
export const WEBHOOK_SECRET_MIN_LENGTH = 32;

/** The headers that carry the signature of `body` sent at `unixSeconds`. */
export function signWebhook(secret: string, body: string, unixSeconds: number): { timestamp: string; signature: string } {
  const timestamp = String(Math.floor(unixSeconds));
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return { timestamp, signature: `v1=${mac}` };
}

// --- verification snippet (quoted in docs/integrating.md) ---
/**
 * True when `signature` (the Seckill-Signature header) is a valid v1 HMAC of
 * `timestamp + "." + body` under `secret`, and `timestamp` (the Seckill-Timestamp header,
 * unix seconds) is within `toleranceSeconds` of now: an old request replayed is refused.
 * `body` must be the raw request body, exactly as received (not parsed and re-serialized).
 */
export function verifyWebhook(
  secret: string,
  body: string,
  timestamp: string | undefined,
  signature: string | undefined,
  toleranceSeconds = 300,
  nowSeconds = Date.now() / 1000,
): boolean {
  if (!timestamp || !signature || !/^[0-9]{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest();
  // Several "v1=" entries may come, comma-separated: any one matching is enough.
  return signature.split(',').some((part) => {
    const [scheme, hex] = part.trim().split('=', 2);
    if (scheme !== 'v1' || !hex || !/^[0-9a-f]{64}$/.test(hex)) return false;
    return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
  });
}
// --- end of verification snippet ---
