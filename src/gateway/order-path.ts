import crypto from 'node:crypto';
import type { Sale } from '../domain/sale.js';

/**
 * The dynamic order path: HMAC-SHA256(saleSecret, saleId ‖ userId), base64url. The secret
 * lives only on the server and the path is handed out only once the sale is live, so the
 * buy URL cannot be known before the start, and one user's path is useless to another.
 */
export function orderPath(sale: Sale, userId: string): string {
  return crypto.createHmac('sha256', sale.secret).update(sale.id).update('\0').update(userId).digest('base64url');
}

export function isOrderPath(sale: Sale, userId: string, candidate: string): boolean {
  const expected = Buffer.from(orderPath(sale, userId));
  const given = Buffer.from(candidate);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
