// seckill: the list of sales (/). Static page; the list comes from GET /api/sales.
import { listSales } from './api.js';
import { SALE_STATUS_TEXT, byId, price, setPill } from './ui.js';

/** @typedef {import('./api.js').PublicSale} PublicSale */

const list = byId('sales', HTMLUListElement);
const empty = byId('empty', HTMLParagraphElement);

/**
 * "in 3 min", from the server's own time in the answer (not the device clock).
 * @param {number} ms
 */
function relative(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.round(s / 60)} min`;
  if (s < 86400) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} days`;
}

/** @param {PublicSale} s */
function item(s) {
  const li = document.createElement('li');
  const a = document.createElement('a');
  a.href = `/sales/${encodeURIComponent(s.id)}`;
  const line = document.createElement('span');
  line.className = 'line';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = s.name;
  const pill = document.createElement('span');
  pill.className = 'pill';
  setPill(pill, s.status, SALE_STATUS_TEXT);
  line.append(name, pill);
  const meta = document.createElement('span');
  meta.className = 'meta';
  const startsIn = Date.parse(s.startsAt) - Date.parse(s.serverTime);
  const opens = new Date(s.startsAt).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
  meta.textContent = `${price(s.priceCents)} · ${s.status === 'upcoming' ? `opens ${opens} (${relative(startsIn)})` : `opened ${opens}`}`;
  a.append(line, meta);
  li.append(a);
  return li;
}

async function load() {
  try {
    const { sales } = await listSales();
    sales.sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
    list.replaceChildren(...sales.map(item));
    empty.hidden = sales.length > 0;
  } catch {
    empty.textContent = 'Cannot reach the shop right now; trying again…';
    empty.hidden = false;
  }
  byId('main', HTMLElement).setAttribute('aria-busy', 'false');
  setTimeout(load, 15_000 + Math.random() * 5000);
}

load();
