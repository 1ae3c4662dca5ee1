import crypto from 'node:crypto';
import type { Sale } from '../domain/sale.js';

/** How many order paths are remembered: a buyer asks for the path and buys right after. */
const REMEMBERED_PATHS = 10_000;

/**
 * Order paths computed lately, by sale secret, sale id and user id: everything the HMAC depends
 * on, so a hit is exactly the HMAC's result. The buy that follows a path request then costs a
 * lookup instead of a second HMAC. Bounded, least recently used out first (a hit moves its
 * entry to the end of the Map's order).
 */
const remembered = new Map<string, string>();

/**
 * The dynamic order path: HMAC-SHA256(saleSecret, saleId ‖ userId), base64url. The secret
 * lives only on the server and the path is handed out only once the sale is live, so the
 * buy URL cannot be known before the start, and one user's path is useless to another.
 */
export function orderPath(sale: Sale, userId: string): string {
  const key = `${sale.secret}\0${sale.id}\0${userId}`;
  let path = remembered.get(key);
  if (path !== undefined) {
    remembered.delete(key);
  } else {
    path = crypto.createHmac('sha256', sale.secret).update(sale.id).update('\0').update(userId).digest('base64url');
    if (remembered.size >= REMEMBERED_PATHS) {
      const oldest = remembered.keys().next();
      if (!oldest.done) remembered.delete(oldest.value);
    }
  }
  remembered.set(key, path);
  return path;
}

export function isOrderPath(sale: Sale, userId: string, candidate: string): boolean {
  const expected = Buffer.from(orderPath(sale, userId));
  const given = Buffer.from(candidate);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
