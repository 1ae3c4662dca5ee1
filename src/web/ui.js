// What the three pages show the same way: a sale's status in words, prices, and the elements
// they find by id. An ES module (no build step); types checked by tsconfig.web.json.

/** @typedef {import('../domain/sale.js').SaleStatus} SaleStatus */

/** A sale's status as buyers read it (the sale list and the sale page). */
export const SALE_STATUS_TEXT = /** @satisfies {Record<SaleStatus, string>} */ ({
  upcoming: 'Upcoming',
  live: 'Live now',
  sold_out: 'Sold out',
  ended: 'Ended',
  paused: 'Paused',
});

/** The dashboard's pills are narrower: "Live". */
export const SALE_STATUS_SHORT = /** @satisfies {Record<SaleStatus, string>} */ ({
  ...SALE_STATUS_TEXT,
  live: 'Live',
});

/**
 * A status pill: `data-status` picks the colour (CSS), the text says it in words. A status this
 * page does not know (a newer server) shows as the server spelled it.
 * @param {HTMLElement} el
 * @param {string} status
 * @param {Readonly<Record<string, string>>} [labels]
 * @param {string} [text] overrides the label
 */
export function setPill(el, status, labels = SALE_STATUS_TEXT, text) {
  el.dataset.status = status;
  el.textContent = text || labels[status] || status;
}

/**
 * The shop these pages sell for (SECKILL_SHOP_*, SECKILL_CURRENCY, …), written into every page by
 * the server as `<script type="application/json" id="shop-config">`: read without a request.
 * @typedef {{
 *   name: string | null, url: string | null, logoUrl: string | null, currency: string, locale: string,
 *   signInUrl: string | null, checkoutUrl: string | null,
 * }} ShopConfig
 */

/** @type {ShopConfig} */
const NO_SHOP = { name: null, url: null, logoUrl: null, currency: 'USD', locale: 'en-US', signInUrl: null, checkoutUrl: null };

/** @returns {ShopConfig} */
function readShop() {
  try {
    /** @type {Partial<ShopConfig>} */
    const given = JSON.parse(document.getElementById('shop-config')?.textContent || '{}');
    return { ...NO_SHOP, ...given };
  } catch {
    return NO_SHOP;
  }
}

export const shop = readShop();

/** @param {ShopConfig} s */
function moneyFormat(s) {
  try {
    return new Intl.NumberFormat(s.locale, { style: 'currency', currency: s.currency });
  } catch {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
  }
}

const money = moneyFormat(shop);

/** Digits of the currency's minor unit (2 for EUR or USD, 0 for JPY): prices are integers of it. */
export const minorDigits = money.resolvedOptions().maximumFractionDigits ?? 2;

/**
 * A price in the shop's currency and locale ("49,00 €", "¥4,900").
 * @param {number} minor the amount in the currency's minor unit (the API's `priceCents`)
 */
export const price = (minor) => money.format(minor / 10 ** minorDigits);

/** @param {number} n */
export const pad = (n) => String(n).padStart(2, '0');

/**
 * The element with this id, of this kind; a page whose HTML lacks it is broken, so say so at once.
 * @template {typeof HTMLElement} K
 * @param {string} id
 * @param {K} kind
 * @returns {InstanceType<K>}
 */
export function byId(id, kind) {
  const el = document.getElementById(id);
  if (!(el instanceof kind)) throw new Error(`The page has no #${id} (${kind.name})`);
  return /** @type {InstanceType<K>} */ (el);
}
