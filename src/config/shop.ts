import { ConfigError, shownValue } from './errors.js';

/**
 * What the pages need to know about the shop they sell for (SECKILL_SHOP_*, SECKILL_CURRENCY,
 * SECKILL_LOCALE, SECKILL_SIGN_IN_URL, SECKILL_CHECKOUT_URL), and who may call the API from another
 * origin or frame the pages (SECKILL_CORS_ORIGINS, SECKILL_FRAME_ANCESTORS). Checked here, beyond
 * what the env schema can say, so that a wrong value stops the start with the variable, the value
 * and what is allowed.
 */
export interface ShopConfig {
  /** Shown in the pages' header and titles; null: "seckill". */
  name: string | null;
  /** Where the header leads back to (the shop's home); null: the list of sales. */
  url: string | null;
  /** The header's logo; null: none. */
  logoUrl: string | null;
  /** ISO 4217, upper case; prices are integers in its minor unit. */
  currency: string;
  /** BCP 47, canonical form. */
  locale: string;
  /** The shop's login; `{returnTo}` in it is replaced, else `returnTo=` is added. null: no link. */
  signInUrl: string | null;
  /** After a reservation, "Pay now" leads here, with `{orderId}` and `{saleId}` filled in. null: no link. */
  checkoutUrl: string | null;
}

export interface WebConfig {
  shop: ShopConfig;
  /** Exact origins (scheme://host[:port]) that may call /api/ from a browser; empty: CORS off. */
  corsOrigins: string[];
  /** CSP frame-ancestors sources of the buyers' pages; empty: no framing (as before). */
  frameAncestors: string[];
}

export interface WebEnv {
  SECKILL_SHOP_NAME?: string;
  SECKILL_SHOP_URL?: string;
  SECKILL_SHOP_LOGO_URL?: string;
  SECKILL_CURRENCY: string;
  SECKILL_LOCALE: string;
  SECKILL_SIGN_IN_URL?: string;
  SECKILL_CHECKOUT_URL?: string;
  SECKILL_CORS_ORIGINS?: string;
  SECKILL_FRAME_ANCESTORS?: string;
}

const LINK = 'an https:// URL or a path on this server starting with / (not //)';

/** An https URL, or a path on this server; a protocol-relative `//host` is neither. */
export function isLink(v: string): boolean {
  if (v.startsWith('/')) return !v.startsWith('//') && !/[\s\\]/.test(v);
  try {
    const u = new URL(v);
    return u.protocol === 'https:' && u.host !== '' && !/\s/.test(v);
  } catch {
    return false;
  }
}

/** An exact origin as a browser sends it in `Origin`: scheme://host[:port], nothing after. */
export function isOrigin(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === v;
  } catch {
    return false;
  }
}

const list = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);

export function parseWebEnv(e: WebEnv): WebConfig {
  const problems: string[] = [];
  const bad = (name: keyof WebEnv, value: string | undefined, allowed: string) =>
    problems.push(`${name}=${shownValue(name, value)} is not allowed: ${name} takes ${allowed}.`);
  const link = (name: keyof WebEnv): string | null => {
    const v = e[name]?.trim();
    if (!v) return null;
    if (!isLink(v)) bad(name, e[name], LINK);
    return v;
  };

  const name = e.SECKILL_SHOP_NAME?.trim() || null;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (name !== null && (name.length > 80 || /[\u0000-\u001f\u007f]/.test(name))) {
    bad('SECKILL_SHOP_NAME', e.SECKILL_SHOP_NAME, 'text of 1 to 80 characters, without control characters');
  }

  const currency = e.SECKILL_CURRENCY.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency) || !Intl.supportedValuesOf('currency').includes(currency)) {
    bad('SECKILL_CURRENCY', e.SECKILL_CURRENCY, 'an ISO 4217 currency code such as USD, EUR, GBP or JPY');
  }

  let locale = 'en-US';
  try {
    const [canonical] = Intl.getCanonicalLocales(e.SECKILL_LOCALE.trim());
    if (!canonical) throw new RangeError('empty');
    locale = canonical;
  } catch {
    bad('SECKILL_LOCALE', e.SECKILL_LOCALE, 'a BCP 47 language tag such as en-US, de-DE or ja-JP');
  }

  const signInUrl = link('SECKILL_SIGN_IN_URL');
  const checkoutUrl = e.SECKILL_CHECKOUT_URL?.trim() || null;
  if (checkoutUrl !== null) {
    const placeholders = checkoutUrl.match(/\{[^}]*\}/g) ?? [];
    const filled = checkoutUrl.replace(/\{(orderId|saleId)\}/g, 'x');
    if (!checkoutUrl.includes('{orderId}') || placeholders.some((p) => p !== '{orderId}' && p !== '{saleId}') || !isLink(filled)) {
      bad('SECKILL_CHECKOUT_URL', e.SECKILL_CHECKOUT_URL, `${LINK}, with {orderId} in it (and {saleId} if wanted), e.g. https://shop.example/checkout?order={orderId}`);
    }
  }

  const corsOrigins = list(e.SECKILL_CORS_ORIGINS);
  if (corsOrigins.some((o) => !isOrigin(o))) {
    bad('SECKILL_CORS_ORIGINS', e.SECKILL_CORS_ORIGINS, 'comma-separated exact origins such as https://shop.example,https://www.shop.example (scheme and host, no path, no *)');
  }
  const frameAncestors = list(e.SECKILL_FRAME_ANCESTORS);
  if (frameAncestors.some((o) => o !== "'self'" && !isOrigin(o))) {
    bad('SECKILL_FRAME_ANCESTORS', e.SECKILL_FRAME_ANCESTORS, "comma-separated exact origins such as https://shop.example, or 'self'");
  }

  const shop: ShopConfig = {
    name,
    url: link('SECKILL_SHOP_URL'),
    logoUrl: link('SECKILL_SHOP_LOGO_URL'),
    currency,
    locale,
    signInUrl,
    checkoutUrl,
  };
  if (problems.length) throw new ConfigError(problems);
  return { shop, corsOrigins: [...new Set(corsOrigins)], frameAncestors: [...new Set(frameAncestors)] };
}
