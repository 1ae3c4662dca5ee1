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

const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** @param {number} cents */
export const price = (cents) => money.format(cents / 100);

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
