// seckill operators' dashboard. Plain JS (ES modules, no build step), type-checked from JSDoc;
// charts by uPlot (the global `uPlot`, loaded by its own script first).
// The admin key lives in sessionStorage only: it is gone when the tab closes.
import {
  ApiError, adminSales, asApiError, correctSale, createSale, endOrArchiveSale, liveFigures, pauseSale, saleAudit, saleOrders,
  saleInterestCsv, saleInterestSummary, saleOrdersCsv, saleQueueStats, eventsStatus, redriveEvents, deadLetters,
  saleFairness, saleFairnessCsv,
} from './api.js';
import { ServerClock } from './clock.js';
import { SALE_STATUS_SHORT, byId, minorDigits, pad, price, setPill } from './ui.js';

/** @typedef {import('./api.js').AdminSale} AdminSale */
/** @typedef {import('./api.js').CreateSale} CreateSale */
/** @typedef {import('./api.js').LiveFigures} LiveFigures */
/** @typedef {import('./api.js').OrderView} OrderView */
/** @typedef {import('./api.js').CorrectSale} CorrectSale */
/** @typedef {import('./api.js').AuditEntry} AuditEntry */

const KEY_STORE = 'seckill.adminKey';
const WINDOW_S = 300; // the charts' span: the last five minutes
const enc = encodeURIComponent;

const el = {
  announce: byId('announce', HTMLParagraphElement),
  app: byId('app', HTMLDivElement), logout: byId('logout', HTMLButtonElement),
  loginView: byId('login-view', HTMLElement), loginForm: byId('login-form', HTMLFormElement),
  key: byId('key', HTMLInputElement), keyError: byId('key-error', HTMLParagraphElement),
  saleList: byId('sale-list', HTMLUListElement), noSales: byId('no-sales', HTMLParagraphElement),
  create: byId('create', HTMLElement), newSale: byId('new-sale', HTMLButtonElement),
  createForm: byId('create-form', HTMLFormElement), createCancel: byId('create-cancel', HTMLButtonElement),
  createError: byId('create-error', HTMLParagraphElement),
  pick: byId('pick', HTMLParagraphElement), detail: byId('detail', HTMLElement),
  dName: byId('d-name', HTMLHeadingElement), dMeta: byId('d-meta', HTMLParagraphElement),
  dStatus: byId('d-status', HTMLSpanElement), pause: byId('pause', HTMLButtonElement), dLink: byId('d-link', HTMLAnchorElement),
  kStock: byId('k-stock', HTMLElement), kAvailable: byId('k-available', HTMLElement), kReserved: byId('k-reserved', HTMLElement),
  kPaid: byId('k-paid', HTMLElement), kExpired: byId('k-expired', HTMLElement), kRps: byId('k-rps', HTMLElement),
  kP50: byId('k-p50', HTMLElement), kP99: byId('k-p99', HTMLElement), kWritten: byId('k-written', HTMLElement),
  kBacklog: byId('k-backlog', HTMLElement), kQuarantined: byId('k-quarantined', HTMLElement),
  kSoldout: byId('k-soldout', HTMLElement), kNote: byId('k-note', HTMLParagraphElement),
  chartRequests: byId('chart-requests', HTMLDivElement), chartLatency: byId('chart-latency', HTMLDivElement),
  chartWriter: byId('chart-writer', HTMLDivElement),
  oStatus: byId('o-status', HTMLSelectElement), oRefresh: byId('o-refresh', HTMLButtonElement),
  oPrev: byId('o-prev', HTMLButtonElement), oNext: byId('o-next', HTMLButtonElement), oPage: byId('o-page', HTMLSpanElement),
  oEmpty: byId('o-empty', HTMLParagraphElement), oBody: byId('o-body', HTMLTableSectionElement), csv: byId('csv', HTMLAnchorElement),
  showArchived: byId('show-archived', HTMLInputElement),
  correct: byId('correct', HTMLButtonElement), end: byId('end', HTMLButtonElement), archive: byId('archive', HTMLButtonElement),
  actionError: byId('action-error', HTMLParagraphElement),
  correctSlot: byId('correct-slot', HTMLDivElement), correctTemplate: byId('correct-template', HTMLTemplateElement),
  hList: byId('h-list', HTMLOListElement), hEmpty: byId('h-empty', HTMLParagraphElement),
};

let key = sessionStorage.getItem(KEY_STORE);
/** @type {AdminSale[]} */
let sales = [];
/** @type {string | null} id of the sale shown */
let selected = null;
let salesTimer = 0;
let liveTimer = 0;
let liveGen = 0; // bumps on every selection, so a late answer for another sale is dropped
/** @type {AdminSale | null} the sale as the head shows it */
let shown = null;

// ---------------------------------------------------------------- helpers
/**
 * Build an element: h('td', { className: 'num' }, 'text', child…).
 * @template {keyof HTMLElementTagNameMap} T
 * @param {T} tag
 * @param {Partial<HTMLElementTagNameMap[T]>} [props]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElementTagNameMap[T]}
 */
function h(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

const nf = new Intl.NumberFormat();
/** @param {number | null | undefined} n */
const num = (n) => (n === null || n === undefined ? '—' : nf.format(n));
/** @param {string | null | undefined} iso */
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '—');
/** @param {string} iso */
const dateTime = (iso) => new Date(iso).toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });
/** @param {number | null | undefined} v */
const ms = (v) => (v === null || v === undefined ? '—' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);

/**
 * @param {string} status
 * @param {string} [text]
 */
function pill(status, text) {
  const p = h('span', { className: 'pill' });
  setPill(p, status, SALE_STATUS_SHORT, text);
  return p;
}

/** @param {string} text */
function announce(text) {
  el.announce.textContent = text;
}

/**
 * An admin API call with the key; a refused key sends the operator back to the login.
 * @template T
 * @param {(key: string) => Promise<T>} call
 * @returns {Promise<T>}
 */
async function admin(call) {
  try {
    return await call(key ?? '');
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      logout('The admin key was refused. Enter it again.');
      throw new ApiError('unauthorized', 'unauthorized', err.status);
    }
    throw err;
  }
}

/** The server's clock, for the "in 10 s" buttons. */
const clock = new ServerClock();

// ---------------------------------------------------------------- login
/** @param {string} message */
function showLogin(message) {
  el.app.hidden = true;
  el.logout.hidden = true;
  el.loginView.hidden = false;
  el.keyError.textContent = message || '';
  el.key.setAttribute('aria-invalid', message ? 'true' : 'false');
  el.key.focus();
}

/** @param {string} message */
function logout(message) {
  key = null;
  sessionStorage.removeItem(KEY_STORE);
  clearTimeout(salesTimer);
  clearTimeout(liveTimer);
  clearTimeout(orders.timer);
  selected = null;
  showLogin(message);
}

el.loginForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const candidate = el.key.value.trim();
  if (!candidate) return showLogin('Enter the admin key.');
  key = candidate;
  try {
    await admin(adminSales);
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') showLogin(`Could not check the key: ${err.message}`);
    return;
  }
  sessionStorage.setItem(KEY_STORE, candidate);
  el.key.value = '';
  enter();
});

el.logout.addEventListener('click', () => logout(''));

// ---------------------------------------------------------------- sales list
async function enter() {
  el.loginView.hidden = true;
  el.app.hidden = false;
  el.logout.hidden = false;
  clock.sync().catch(() => {});
  await loadSales();
  const fromHash = /^#sale=([\w-]+)$/.exec(location.hash)?.[1];
  const first = sales.find((s) => s.id === fromHash) || sales.find((s) => s.status === 'live' && !s.archivedAt) || sales.find((s) => s.status === 'live') || sales.find((s) => s.status === 'upcoming') || sales[sales.length - 1];
  if (first) select(first.id, false);
}

async function loadSales() {
  clearTimeout(salesTimer);
  try {
    sales = (await admin(adminSales)).sales;
    sales.sort((a, b) => Date.parse(b.startsAt) - Date.parse(a.startsAt));
    renderSales();
  } catch (err) {
    if (asApiError(err).code === 'unauthorized') return;
  }
  salesTimer = setTimeout(loadSales, 5000);
}

let salesShown = '';
function renderSales() {
  // Archived sales only on request (the one shown stays listed).
  const list = sales.filter((s) => !s.archivedAt || el.showArchived.checked || s.id === selected);
  const sig = JSON.stringify(list.map((s) => [s.id, s.name, s.status, s.stock, s.archivedAt])) + selected;
  if (sig === salesShown) return; // keep the focus where it is when nothing changed
  salesShown = sig;
  el.noSales.hidden = list.length > 0;
  el.saleList.replaceChildren(...list.map((s) => {
    const p = pill(s.status, s.archivedAt ? 'Archived' : undefined);
    const b = h('button', { type: 'button' },
      h('span', { className: 'line' }, h('span', { className: 'name', textContent: s.name }), p),
      h('span', { className: 'meta', textContent: `${num(s.stock)} units · ${dateTime(s.startsAt)}` }));
    b.setAttribute('aria-current', String(s.id === selected));
    b.addEventListener('click', () => select(s.id, true));
    return h('li', {}, b);
  }));
}

// ---------------------------------------------------------------- create a sale
// Prices are typed in the shop's currency and kept in its minor unit (cents; yen have none).
const PRICE_PATTERN = minorDigits > 0 ? new RegExp(`^\\d{1,10}(\\.\\d{1,${minorDigits}})?$`) : /^\d{1,10}$/;
const PRICE_HINT = minorDigits > 0 ? `Enter a price such as 9.99 (at most ${minorDigits} decimals).` : 'Enter a whole price such as 4900.';
/** @param {string} typed a price that matched PRICE_PATTERN */
const toMinor = (typed) => Math.round(Number(typed) * 10 ** minorDigits);

const FIELDS = /** @type {const} */ (['name', 'description', 'price', 'stock', 'starts', 'duration', 'limit', 'window']);
/** @typedef {typeof FIELDS[number]} Field */

/**
 * The form's input (or text area) for a field.
 * @param {Field} name
 */
function field(name) {
  const e = document.getElementById(`f-${name}`);
  if (!(e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement)) throw new Error(`The page has no field f-${name}`);
  return e;
}

/** @param {boolean} open */
function openCreate(open) {
  el.create.hidden = !open;
  el.newSale.setAttribute('aria-expanded', String(open));
  if (open) {
    if (!field('starts').value) setStartsIn(60);
    field('name').focus();
  }
}
el.newSale.addEventListener('click', () => openCreate(el.create.hidden));
el.createCancel.addEventListener('click', () => {
  openCreate(false);
  el.newSale.focus();
});

/**
 * The datetime-local value for the server's now + `s` seconds, in local time.
 * @param {number} s
 */
function setStartsIn(s) {
  field('starts').value = localInput(clock.now() + s * 1000);
  fieldError('starts', '');
}

/**
 * A time as a datetime-local input shows it (local time, to the second).
 * @param {number} t epoch ms
 */
function localInput(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
for (const b of document.querySelectorAll('[data-starts-in]')) {
  if (b instanceof HTMLElement) b.addEventListener('click', () => setStartsIn(Number(b.dataset.startsIn)));
}

/**
 * @param {Field} name
 * @param {string} message
 */
function fieldError(name, message) {
  byId(`f-${name}-error`, HTMLParagraphElement).textContent = message;
  field(name).setAttribute('aria-invalid', message ? 'true' : 'false');
}

/**
 * @param {string} v
 * @param {number} lo
 * @param {number} hi
 */
const intIn = (v, lo, hi) => /^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi;

/**
 * Check the form; returns the API body, or null after showing the messages.
 * @returns {CreateSale | null}
 */
function readForm() {
  /** @param {Field} n */
  const v = (n) => field(n).value.trim();
  /** @type {Partial<Record<Field, string>>} */
  const errors = {};
  if (!v('name')) errors.name = 'Enter a name.';
  else if (v('name').length > 200) errors.name = 'At most 200 characters.';
  if (v('description').length > 4000) errors.description = 'At most 4,000 characters.';
  if (!PRICE_PATTERN.test(v('price'))) errors.price = PRICE_HINT;
  if (!intIn(v('stock'), 1, 10_000_000)) errors.stock = 'Enter a whole number of units from 1 to 10,000,000.';
  const startsAt = v('starts') ? new Date(v('starts')) : null;
  if (!startsAt || Number.isNaN(startsAt.getTime())) errors.starts = 'Choose when the sale starts.';
  if (v('duration') && !intIn(v('duration'), 1, 525_600)) errors.duration = 'Enter whole minutes (at least 1), or leave empty for no end.';
  if (!intIn(v('limit'), 1, 1000)) errors.limit = 'Enter a whole number from 1 to 1,000.';
  if (!intIn(v('window'), 1, 10_080)) errors.window = 'Enter whole minutes from 1 to 10,080 (a week).';
  for (const f of FIELDS) fieldError(f, errors[f] || '');
  const bad = FIELDS.find((f) => errors[f]);
  // (No start always comes with its message: `bad` is set then.)
  if (bad || !startsAt) {
    if (bad) field(bad).focus();
    return null;
  }
  /** @type {CreateSale} */
  const body = {
    name: v('name'),
    priceCents: toMinor(v('price')),
    stock: Number(v('stock')),
    startsAt: startsAt.toISOString(),
    perUserLimit: Number(v('limit')),
    paymentWindowSeconds: Number(v('window')) * 60,
  };
  if (v('description')) body.description = v('description');
  if (v('duration')) body.endsAt = new Date(startsAt.getTime() + Number(v('duration')) * 60_000).toISOString();
  return body;
}

el.createForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  el.createError.textContent = '';
  const body = readForm();
  if (!body) return;
  const submit = el.createForm.querySelector('[type="submit"]');
  if (!(submit instanceof HTMLButtonElement)) return;
  submit.disabled = true;
  try {
    const sale = await admin((k) => createSale(k, body));
    el.createForm.reset();
    openCreate(false);
    announce(`Sale "${sale.name}" created.`);
    await loadSales();
    select(sale.id, true);
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') el.createError.textContent = `The sale was not created: ${err.message}`;
  } finally {
    submit.disabled = false;
  }
});

// ---------------------------------------------------------------- the selected sale
/** Outcomes of a buy, in the chart's order: [code, legend, colour]. @type {Array<[string, string, string]>} */
const OUTCOMES = [
  ['ok', 'reserved (202)', '#15803d'],
  ['sold_out', 'sold out', '#71717a'],
  ['limit_reached', 'limit reached', '#7c3aed'],
  ['busy', 'busy (503)', '#dc2626'],
  ['rate_limited', 'rate limited', '#ea580c'],
  ['not_started', 'not started', '#2563eb'],
  ['other', 'other refusals', '#a8a29e'],
];
const KNOWN = new Set(OUTCOMES.map((o) => o[0]));

/**
 * The last five minutes, one point per second: [t, ...series] arrays as uPlot takes them.
 * @typedef {{ t: number[], req: number[][], p50: Array<number | null>, p99: Array<number | null>, written: number[], backlog: Array<number | null> }} Store
 */
/** @returns {Store} */
const emptyStore = () => ({ t: [], req: OUTCOMES.map(() => []), p50: [], p99: [], written: [], backlog: [] });
let store = emptyStore();
/** @type {ReturnType<typeof makeCharts>} */
let charts = null;

/**
 * @param {string} id
 * @param {boolean} focus
 */
function select(id, focus) {
  selected = id;
  liveGen++;
  history.replaceState(null, '', `#sale=${id}`);
  store = emptyStore();
  el.pick.hidden = true;
  el.detail.hidden = false;
  renderSales();
  const s = sales.find((x) => x.id === id);
  if (s) renderHead(s);
  if (focus) el.dName.focus();
  orders.reset();
  closeCorrect();
  el.actionError.textContent = '';
  loadHistory();
  refreshFairness(true);
  clearTimeout(liveTimer);
  live(id, liveGen);
}

/** @param {AdminSale} s */
function renderHead(s) {
  el.dName.textContent = s.name;
  const parts = [
    `Opens ${dateTime(s.startsAt)}`,
    s.endsAt ? `ends ${dateTime(s.endsAt)}` : 'no end',
    `price ${price(s.priceCents)}`,
    `limit ${s.perUserLimit} per person`,
    `payment window ${Math.round(s.paymentWindowSeconds / 60)} min`,
    `id ${s.id}`,
  ];
  if (s.archivedAt) parts.unshift(`Archived ${dateTime(s.archivedAt)}`);
  el.dMeta.textContent = parts.join(' · ');
  setPill(el.dStatus, s.status, SALE_STATUS_SHORT, s.archivedAt ? 'Archived' : undefined);
  shown = s;
  // What can still be done: an archived sale changes no more; only an ended sale or one that
  // has not opened can be archived.
  const ended = s.status === 'ended';
  const opened = Date.parse(s.startsAt) <= clock.now();
  el.correct.hidden = Boolean(s.archivedAt);
  el.pause.hidden = Boolean(s.archivedAt);
  el.end.hidden = ended || Boolean(s.archivedAt);
  el.archive.hidden = Boolean(s.archivedAt) || (opened && !ended);
  el.pause.textContent = s.paused ? 'Resume sale' : 'Pause sale';
  el.pause.className = s.paused ? 'btn btn-primary' : 'btn btn-warn';
  el.pause.dataset.paused = String(s.paused);
  el.dLink.href = `/sales/${enc(s.id)}`;
}

el.pause.addEventListener('click', async () => {
  const b = el.pause;
  const action = b.dataset.paused === 'true' ? 'resume' : 'pause';
  const saleId = selected;
  if (saleId === null) return;
  b.disabled = true;
  try {
    const s = await admin((k) => pauseSale(k, saleId, action));
    renderHead(s);
    announce(action === 'pause' ? 'Sale paused.' : 'Sale resumed.');
    loadSales();
    loadHistory();
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') announce(`Could not ${action}: ${err.message}`);
  } finally {
    b.disabled = false;
  }
});

/**
 * Every second: the figures now, and the per-second points the charts do not have yet.
 * @param {string} saleId
 * @param {number} gen
 */
async function live(saleId, gen) {
  const since = store.t.length ? store.t[store.t.length - 1] : undefined;
  try {
    const d = await admin((k) => liveFigures(k, saleId, since));
    if (gen !== liveGen) return;
    merge(d.series);
    renderLive(d);
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code === 'unauthorized' || gen !== liveGen) return;
    el.kNote.textContent = `Live figures paused: ${err.message}. Retrying…`;
  }
  if (gen === liveGen) liveTimer = setTimeout(() => live(saleId, gen), 1000);
}

/** @param {LiveFigures['series']} series */
function merge(series) {
  for (let i = 0; i < series.t.length; i++) {
    store.t.push(series.t[i]);
    let other = 0;
    for (const [name, counts] of Object.entries(series.requests)) if (!KNOWN.has(name)) other += counts[i];
    OUTCOMES.forEach(([name], k) => store.req[k].push(name === 'other' ? other : series.requests[name]?.[i] ?? 0));
    store.p50.push(series.p50Ms[i]);
    store.p99.push(series.p99Ms[i]);
    store.written.push(series.ordersWritten[i]);
    store.backlog.push(series.backlog[i]);
  }
  // Keep the last five minutes.
  const cut = store.t.findIndex((t) => t > store.t[store.t.length - 1] - WINDOW_S);
  if (cut > 0) {
    store.t.splice(0, cut);
    for (const a of [...store.req, store.p50, store.p99, store.written, store.backlog]) a.splice(0, cut);
  }
}

/**
 * The latest of the last three points that has a value.
 * @param {Array<number | null>} arr
 */
function last(arr) {
  for (let i = arr.length - 1; i >= Math.max(0, arr.length - 3); i--) if (arr[i] !== null) return arr[i];
  return null;
}

/** @param {LiveFigures} d */
function renderLive(d) {
  const { stats, sale } = d;
  const i = store.t.length - 1;
  renderHead(sale);
  const idx = sales.findIndex((x) => x.id === sale.id);
  if (idx >= 0 && sales[idx].status !== sale.status) {
    sales[idx] = sale;
    renderSales();
  }
  el.kStock.textContent = num(stats.stock);
  el.kAvailable.textContent = num(stats.available);
  el.kReserved.textContent = num(stats.reserved);
  el.kPaid.textContent = num(stats.paid);
  el.kExpired.textContent = num(stats.expired);
  el.kRps.textContent = i >= 0 ? num(store.req.reduce((sum, a) => sum + a[i], 0)) : '—';
  el.kP50.textContent = ms(last(store.p50));
  el.kP99.textContent = ms(last(store.p99));
  el.kWritten.textContent = i >= 0 ? num(store.written[i]) : '—';
  el.kBacklog.textContent = num(d.writer.backlog);
  // Records the database refused: an operator must repair them (README, distributed mode).
  const quarantined = d.writer.quarantined ?? 0;
  el.kQuarantined.textContent = num(quarantined);
  el.kQuarantined.style.color = quarantined > 0 ? '#b91c1c' : '';
  if (d.soldOutAt) {
    const after = ((Date.parse(d.soldOutAt) - Date.parse(sale.startsAt)) / 1000).toFixed(1);
    el.kSoldout.replaceChildren(time(d.soldOutAt), h('span', { className: 'sub', textContent: `${after} s after the start` }));
  } else {
    el.kSoldout.textContent = sale.status === 'sold_out' ? 'yes' : 'not yet';
  }
  const total = Object.values(stats.requests).reduce((a, b) => a + b, 0);
  el.kNote.textContent = `${num(total)} buy requests so far · cancelled ${num(stats.cancelled)}` +
    (stats.refunded ? ` · refunded ${num(stats.refunded)}` : '') +
    (stats.pendingWrites ? ` · ${num(stats.pendingWrites)} decided orders not yet in the database` : '') +
    ` · updated ${time(d.serverTime)}`;
  refreshInterest(sale.id);
  refreshRoom(sale);
  refreshFairness(false);
  refreshEvents();
  drawCharts();
}

// ---------------------------------------------------------------- waiting room
// A sale with a waiting room: its figures under the live ones, read with them (every second).
const room = {
  kpis: byId('room-kpis', HTMLElement), waiting: byId('k-room-waiting', HTMLElement), rate: byId('k-room-rate', HTMLElement),
  admitted: byId('k-room-admitted', HTMLElement), outstanding: byId('k-room-outstanding', HTMLElement),
  abandoned: byId('k-room-abandoned', HTMLElement), etaError: byId('k-room-eta-error', HTMLElement),
  configured: byId('k-room-configured', HTMLElement),
};
/** @param {AdminSale} sale */
function refreshRoom(sale) {
  room.kpis.hidden = !sale.waitingRoom;
  if (!sale.waitingRoom) return;
  const saleId = sale.id;
  admin((k) => saleQueueStats(k, saleId)).then(({ room: r }) => {
    if (selected !== saleId) return;
    // No room yet: nobody has joined it.
    room.waiting.textContent = num(r?.waiting ?? 0);
    // Measured against the configured rate: an overshoot shows here.
    const configured = r?.configuredPerSecond ?? sale.waitingRoom?.admitPerSecond;
    room.rate.textContent = r?.opened ? r.admittedPerSecond.toFixed(1) : 'not open';
    room.configured.textContent = configured === undefined ? '' : `(of ${num(configured)})`;
    room.etaError.textContent = r?.etaErrorSeconds === null || r?.etaErrorSeconds === undefined ? '—' : `${r.etaErrorSeconds.toFixed(1)} s`;
    room.admitted.textContent = num(r?.admitted ?? 0);
    room.outstanding.textContent = num(r?.outstanding ?? 0);
    room.abandoned.textContent = num(r?.abandoned ?? 0);
  }, () => undefined);
}

// ---------------------------------------------------------------- fairness
// The selected sale's fairness report (docs/fairness.md): read when the sale is picked, on Refresh,
// when the bot prefix changes, and with the live figures at most every 15 s (it reads every order).
const fair = {
  prefix: byId('f-bot-prefix', HTMLInputElement), refresh: byId('f-refresh', HTMLButtonElement),
  csv: byId('f-csv', HTMLAnchorElement), figures: byId('f-figures', HTMLElement), note: byId('f-note', HTMLElement),
  asked: { saleId: '', at: 0 },
};
/** @param {number | null} x a share, 0–1 */
const share = (x) => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);
/** @param {boolean} now read it now, not only when the last reading is 15 s old */
function refreshFairness(now) {
  const saleId = selected;
  if (saleId === null) return;
  const t = Date.now();
  if (!now && fair.asked.saleId === saleId && t - fair.asked.at < 15_000) return;
  if (fair.asked.saleId !== saleId) fair.figures.replaceChildren();
  fair.asked = { saleId, at: t };
  const prefix = fair.prefix.value;
  admin((k) => saleFairness(k, saleId, prefix)).then((r) => {
    if (selected !== saleId) return;
    /** @param {string} label @param {string} value @param {string} [title] */
    const fig = (label, value, title) => h('div', title ? { title } : {}, h('dt', { textContent: label }), h('dd', { textContent: value }));
    /** @param {{ users: number, units: number }} x */
    const tally = (x) => `${num(x.units)} units to ${num(x.users)} users`;
    const figs = [fig('Units won', `${num(r.units)} by ${num(r.users)} users seen`, 'Orders reserved or paid (refunded too when the sale does not restock)')];
    if (r.arrival) {
      figs.push(fig('Arrived before the open', tally(r.arrival.beforeOpen)), fig('Arrived after the open', tally(r.arrival.afterOpen)));
      if (r.arrival.unknown.users > 0) figs.push(fig('Arrival unknown', tally(r.arrival.unknown), 'Buyers the room has no record of (a restart forgot the room)'));
    } else {
      figs.push(fig('Arrival', 'unknown (no waiting room)', r.arrivalUnknown ?? ''));
    }
    if (r.fifoInversions) {
      figs.push(fig('FIFO inversions', `${num(r.fifoInversions.inversions)} of ${num(r.fifoInversions.pairs)} pairs`,
        'Pairs of admitted users where the one who joined earlier was let out later'));
    }
    figs.push(fig(`Bots (${r.bots.prefix ? `"${r.bots.prefix}…"` : 'no prefix'})`,
      `${share(r.bots.shareOfUnits)} of units, ${share(r.bots.shareOfUsers)} of users`, `${num(r.bots.units)} units, ${num(r.bots.users)} users`));
    fair.figures.replaceChildren(...figs);
  }, (caught) => {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized' && selected === saleId) fair.note.textContent = `Fairness: ${err.message}`;
  });
}
fair.refresh.addEventListener('click', () => refreshFairness(true));
fair.prefix.addEventListener('change', () => refreshFairness(true));
fair.csv.addEventListener('click', async (e) => {
  e.preventDefault();
  const saleId = selected;
  if (saleId === null) return;
  const prefix = fair.prefix.value;
  await downloadCsv(() => admin((k) => saleFairnessCsv(k, saleId, prefix)), `fairness-${saleId}.csv`);
});

// ---------------------------------------------------------------- intended purchases
// Buyers refused because the sale sold out (each once), under the live figures, with their CSV.
const interestCount = h('span', { textContent: '—' });
const interestCsv = h('a', { href: '#', textContent: 'CSV' });
el.kNote.after(h('p', { className: 'muted small' }, 'Intended purchases: ', interestCount, ' buyers refused as sold out · ', interestCsv));
let interestAsked = { saleId: '', at: 0 };
/**
 * The count, read at most every 5 s (the live figures come every second).
 * @param {string} saleId
 */
function refreshInterest(saleId) {
  const now = Date.now();
  if (interestAsked.saleId === saleId && now - interestAsked.at < 5000) return;
  if (interestAsked.saleId !== saleId) interestCount.textContent = '—';
  interestAsked = { saleId, at: now };
  admin((k) => saleInterestSummary(k, saleId)).then((s) => {
    if (selected === saleId) interestCount.textContent = `${num(s.users)} (${num(s.units)} units)`;
  }, () => undefined);
}
interestCsv.addEventListener('click', async (e) => {
  e.preventDefault();
  const saleId = selected;
  if (saleId === null) return;
  await downloadCsv(() => admin((k) => saleInterestCsv(k, saleId)), `interest-${saleId}.csv`);
});

// ---------------------------------------------------------------- events to the shop
// The outbox relay per sink (src/services/outbox-relay.ts): what waits, what was sent, dead letters
// (with a redrive button). Service-wide, shown under the sale's figures.
const eventsLine = h('p', { className: 'muted small', id: 'events-line' }, 'Events to the shop: —');
el.kNote.after(eventsLine);
let eventsAskedAt = 0;
/** Read at most every 5 s. */
function refreshEvents() {
  const now = Date.now();
  if (now - eventsAskedAt < 5000) return;
  eventsAskedAt = now;
  admin((k) => eventsStatus(k)).then(({ sinks }) => {
    if (sinks.length === 0) {
      eventsLine.replaceChildren('Events to the shop: no sink configured (SECKILL_AMQP_URL, SECKILL_NATS_URL, SECKILL_WEBHOOK_URLS).');
      return;
    }
    const parts = sinks.map((st) => {
      const age = st.oldestPendingAgeSeconds === null ? '' : `, oldest ${Math.round(st.oldestPendingAgeSeconds)} s`;
      const item = h('span', { className: 'events-sink' }, `${st.sink}: ${num(st.sent)} sent, ${num(st.backlog)} waiting${age}, ${num(st.dead)} dead`);
      if (st.dead > 0) {
        // The dead letters themselves, read when opened.
        const list = h('ul', { className: 'small' });
        const details = h('details', { className: 'dead-letters' }, h('summary', { textContent: 'list' }), list);
        details.addEventListener('toggle', () => {
          if (!details.open) return;
          admin((k) => deadLetters(k, st.sink)).then(({ dead }) => {
            list.replaceChildren(...dead.map((d) => h('li', { textContent: `${d.type} ${d.key} (seq ${d.seq}), ${d.attempts} attempts: ${d.error}` })));
          }, (caught) => list.replaceChildren(h('li', { textContent: `Could not read them: ${asApiError(caught).message}` })));
        });
        item.append(' ', details);
        const redrive = h('button', { type: 'button', textContent: 'redrive' });
        redrive.addEventListener('click', () => {
          admin((k) => redriveEvents(k, st.sink)).then(({ redriven }) => {
            announce(`${num(redriven)} dead letters of ${st.sink} sent again`);
            eventsAskedAt = 0;
            refreshEvents();
          }, (caught) => announce(`Redrive failed: ${asApiError(caught).message}`));
        });
        item.append(' ', redrive);
      }
      return item;
    });
    eventsLine.replaceChildren('Events to the shop: ', ...parts.flatMap((p, i) => (i === 0 ? [p] : [' · ', p])));
  }, () => undefined);
}

// ---------------------------------------------------------------- charts (uPlot)
/**
 * Ticks as 14:03:05 (or 14:03 on whole minutes), in local time.
 * @param {uPlot} _u
 * @param {number[]} splits
 */
const tickTime = (_u, splits) => splits.map((s) => {
  const d = new Date(s * 1000);
  return d.getSeconds() ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
});

/**
 * @param {HTMLElement} box
 * @param {uPlot.Series[]} series
 * @param {uPlot.Axis[]} axes
 * @param {number} [height]
 */
function chart(box, series, axes, height = 220) {
  const u = new uPlot({
    width: Math.max(280, box.clientWidth),
    height,
    series: [{ label: 'time' }, ...series],
    axes,
    scales: { x: { time: true } },
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
  }, [[], ...series.map(() => [])], box);
  new ResizeObserver(() => u.setSize({ width: Math.max(280, box.clientWidth), height })).observe(box);
  return u;
}

/**
 * @param {string} label
 * @param {string} stroke
 * @param {uPlot.Series} [extra]
 * @returns {uPlot.Series}
 */
const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, points: { show: false }, ...extra });
/**
 * @param {string} label
 * @param {uPlot.Axis} [extra]
 * @returns {uPlot.Axis}
 */
const axis = (label, extra = {}) => ({ label, size: 56, labelSize: 18, stroke: '#52525b', grid: { stroke: '#e4e4e7' }, ticks: { stroke: '#e4e4e7' }, ...extra });
/** @type {uPlot.Axis} */
const timeAxis = { stroke: '#52525b', grid: { stroke: '#e4e4e7' }, ticks: { stroke: '#e4e4e7' }, values: tickTime, space: 70 };

function makeCharts() {
  if (typeof uPlot === 'undefined') return null;
  return {
    requests: chart(el.chartRequests,
      OUTCOMES.map(([, label, color], k) => line(label, color, k === 0 ? { fill: 'rgba(21,128,61,.12)' } : {})),
      [timeAxis, axis('requests / s')], 240),
    latency: chart(el.chartLatency,
      [line('p50', '#2563eb'), line('p99', '#dc2626')],
      [timeAxis, axis('ms')]),
    writer: chart(el.chartWriter,
      [line('orders written / s', '#15803d', { fill: 'rgba(21,128,61,.12)' }), line('backlog', '#ea580c', { scale: 'backlog' })],
      [timeAxis, axis('orders / s'), axis('backlog', { scale: 'backlog', side: 1, grid: { show: false } })]),
  };
}

/**
 * The charts show the last five minutes, but start 15 s before the first activity when that is
 * later (and show at least a minute): a sale that opened 20 s ago is not a sliver at the edge.
 */
function visibleFrom() {
  const n = store.t.length;
  let first = n;
  for (let i = 0; i < n; i++) {
    if (store.req.some((a) => a[i] > 0) || store.written[i] > 0) {
      first = i;
      break;
    }
  }
  return Math.max(0, Math.min(first - 15, n - 60));
}

function drawCharts() {
  charts ??= makeCharts();
  if (!charts) return;
  const from = visibleFrom();
  /**
   * @template V
   * @param {V[]} a
   */
  const cut = (a) => a.slice(from);
  const t = cut(store.t);
  /** @type {Array<[uPlot, uPlot.AlignedData]>} */
  const views = [
    [charts.requests, [t, ...store.req.map(cut)]],
    [charts.latency, [t, cut(store.p50), cut(store.p99)]],
    [charts.writer, [t, cut(store.written), cut(store.backlog)]],
  ];
  for (const [u, data] of views) {
    u.setData(data);
    // Outside the cursor, the legend shows the latest second.
    if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idx: t.length - 1 });
  }
}

// ---------------------------------------------------------------- orders table
const orders = {
  /** @type {Array<string | null>} the `after` of each page seen */
  cursors: [null],
  page: 0,
  /** @type {string | null} */
  next: null,
  timer: 0,
  reset() {
    this.cursors = [null];
    this.page = 0;
    this.load();
  },
  async load() {
    const status = el.oStatus.value;
    const q = new URLSearchParams({ limit: '10' });
    if (status) q.set('status', status);
    const after = this.cursors[this.page];
    if (after) q.set('after', after);
    const sale = selected;
    if (sale === null) return;
    try {
      const d = await admin((k) => saleOrders(k, sale, q));
      if (sale !== selected) return;
      this.next = d.next;
      renderOrders(d.orders);
    } catch (caught) {
      const err = asApiError(caught);
      if (err.code !== 'unauthorized') announce(`Orders: ${err.message}`);
    }
    el.oPrev.disabled = this.page === 0;
    el.oNext.disabled = !this.next;
    el.oPage.textContent = `Page ${this.page + 1}`;
    // The first page follows new orders by itself; later pages stay put while being read.
    clearTimeout(this.timer);
    if (this.page === 0 && sale === selected) this.timer = setTimeout(() => this.page === 0 && this.load(), 5000);
  },
};

/** @param {OrderView[]} list */
function renderOrders(list) {
  el.oEmpty.hidden = list.length > 0;
  el.oBody.replaceChildren(...list.map((o) => {
    const p = pill(o.status, o.status);
    return h('tr', {},
      h('td', {}, h('code', { textContent: o.orderId })),
      h('td', { textContent: o.userId }),
      h('td', { className: 'num', textContent: String(o.quantity) }),
      h('td', {}, p),
      h('td', { textContent: time(o.createdAt) }),
      h('td', { textContent: o.paidAt ? `paid ${time(o.paidAt)}` : time(o.expiresAt) }));
  }));
}

el.oStatus.addEventListener('change', () => orders.reset());
el.oRefresh.addEventListener('click', () => orders.load());
el.oPrev.addEventListener('click', () => {
  if (orders.page > 0) orders.page--;
  orders.load();
});
el.oNext.addEventListener('click', () => {
  if (!orders.next) return;
  orders.cursors[orders.page + 1] = orders.next;
  orders.page++;
  orders.load();
});

// CSV of every order of the sale (the key goes in a header, so the download is fetched here).
el.csv.addEventListener('click', async (e) => {
  e.preventDefault();
  const status = el.oStatus.value;
  const saleId = selected;
  if (saleId === null) return;
  await downloadCsv(() => admin((k) => saleOrdersCsv(k, saleId, status)), `orders-${saleId}${status ? `-${status}` : ''}.csv`);
});

/**
 * Save a CSV the admin API made (fetched here, as the key goes in a header) under `name`.
 * @param {() => Promise<Blob>} fetchCsv
 * @param {string} name
 */
async function downloadCsv(fetchCsv, name) {
  try {
    const url = URL.createObjectURL(await fetchCsv());
    const a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') announce(`CSV export failed: ${err.message}`);
  }
}

// ---------------------------------------------------------------- correct, end, archive
el.showArchived.addEventListener('change', () => renderSales());

/** The correction form's controls, once it is open. */
function correctForm() {
  /** @param {string} id */
  const input = (id) => {
    const e = document.getElementById(id);
    if (!(e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement)) throw new Error(`The page has no field ${id}`);
    return e;
  };
  return {
    form: byId('correct-form', HTMLFormElement), note: byId('c-note', HTMLParagraphElement), error: byId('correct-error', HTMLParagraphElement),
    name: input('c-name'), description: input('c-description'), price: input('c-price'), stock: input('c-stock'),
    starts: input('c-starts'), ends: input('c-ends'), limit: input('c-limit'), window: input('c-window'),
  };
}
/** @typedef {ReturnType<typeof correctForm>} CorrectForm */
/** @typedef {Exclude<keyof CorrectForm, 'form' | 'note' | 'error'>} CorrectField */
/** @type {Record<CorrectField, string>} the values the form opened with: only what differs is sent */
let prefill = { name: '', description: '', price: '', stock: '', starts: '', ends: '', limit: '', window: '' };

function closeCorrect() {
  el.correctSlot.replaceChildren();
  el.correct.setAttribute('aria-expanded', 'false');
}

function openCorrect() {
  const s = shown;
  if (!s) return;
  el.correctSlot.replaceChildren(el.correctTemplate.content.cloneNode(true));
  el.correct.setAttribute('aria-expanded', 'true');
  const f = correctForm();
  prefill = {
    name: s.name, description: s.description, price: (s.priceCents / 10 ** minorDigits).toFixed(minorDigits), stock: String(s.stock),
    starts: localInput(Date.parse(s.startsAt)), ends: s.endsAt ? localInput(Date.parse(s.endsAt)) : '',
    limit: String(s.perUserLimit), window: String(Math.round(s.paymentWindowSeconds / 60)),
  };
  for (const k of /** @type {CorrectField[]} */ (Object.keys(prefill))) f[k].value = prefill[k];
  // Once open, only name, description and end time may change (the server says so too: sale_open).
  const opened = Date.parse(s.startsAt) <= clock.now();
  for (const k of /** @type {const} */ (['price', 'stock', 'starts', 'limit', 'window'])) f[k].disabled = opened;
  f.note.textContent = opened
    ? 'The sale has opened: only its name, description and end time can change.'
    : 'The sale has not opened yet: every field can change. Only what you change is sent.';
  f.form.addEventListener('submit', (e) => {
    e.preventDefault();
    void submitCorrect(s.id, f);
  });
  byId('correct-cancel', HTMLButtonElement).addEventListener('click', () => {
    closeCorrect();
    el.correct.focus();
  });
  f.name.focus();
}

/**
 * Send the fields that differ from what the form opened with.
 * @param {string} saleId
 * @param {CorrectForm} f
 */
async function submitCorrect(saleId, f) {
  /** @param {CorrectField} k */
  const changed = (k) => !f[k].disabled && f[k].value.trim() !== prefill[k].trim();
  /** @type {CorrectSale} */
  const body = {};
  f.error.textContent = '';
  if (changed('name')) body.name = f.name.value.trim();
  if (changed('description')) body.description = f.description.value;
  if (changed('price')) {
    if (!PRICE_PATTERN.test(f.price.value.trim())) return void (f.error.textContent = PRICE_HINT);
    body.priceCents = toMinor(f.price.value.trim());
  }
  if (changed('stock')) body.stock = Number(f.stock.value);
  if (changed('limit')) body.perUserLimit = Number(f.limit.value);
  if (changed('window')) body.paymentWindowSeconds = Number(f.window.value) * 60;
  if (changed('starts')) {
    const t = new Date(f.starts.value);
    if (Number.isNaN(t.getTime())) return void (f.error.textContent = 'Choose when the sale starts.');
    body.startsAt = t.toISOString();
  }
  if (changed('ends')) {
    const t = f.ends.value ? new Date(f.ends.value) : null;
    if (t && Number.isNaN(t.getTime())) return void (f.error.textContent = 'Choose when the sale ends, or leave it empty for no end.');
    body.endsAt = t ? t.toISOString() : null;
  }
  if (Object.keys(body).length === 0) return void (f.error.textContent = 'Nothing changed.');
  try {
    const s = await admin((k) => correctSale(k, saleId, body));
    if (saleId !== selected) return;
    renderHead(s);
    closeCorrect();
    announce('Sale corrected.');
    el.correct.focus();
    loadSales();
    loadHistory();
    liveNow();
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') f.error.textContent = `Not saved: ${err.message}`;
  }
}

el.correct.addEventListener('click', () => (el.correctSlot.childElementCount ? closeCorrect() : openCorrect()));

/**
 * End now or archive, after the operator confirms.
 * @param {'end' | 'archive'} action
 */
async function endOrArchive(action) {
  const s = shown;
  if (!s) return;
  const question = action === 'end'
    ? `End "${s.name}" now? Every buy is refused from now on; its orders stay payable.`
    : `Archive "${s.name}"? It leaves the public list for good; its page and orders stay.`;
  if (!confirm(question)) return;
  el.actionError.textContent = '';
  const b = action === 'end' ? el.end : el.archive;
  b.disabled = true;
  try {
    const after = await admin((k) => endOrArchiveSale(k, s.id, action));
    if (s.id !== selected) return;
    renderHead(after);
    closeCorrect();
    announce(action === 'end' ? 'Sale ended.' : 'Sale archived.');
    loadSales();
    loadHistory();
    liveNow();
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') el.actionError.textContent = `Could not ${action === 'end' ? 'end' : 'archive'} the sale: ${err.message}`;
  } finally {
    b.disabled = false;
  }
}
el.end.addEventListener('click', () => void endOrArchive('end'));
el.archive.addEventListener('click', () => void endOrArchive('archive'));

/** The figures now rather than at the next second (a late answer of the running poll is dropped). */
function liveNow() {
  if (selected === null) return;
  clearTimeout(liveTimer);
  liveGen++;
  live(selected, liveGen);
}

// ---------------------------------------------------------------- history (the audit trail)
/** @type {Record<string, string>} */
const ACTION_TEXT = { create: 'Created', correct: 'Corrected', pause: 'Paused', resume: 'Resumed', end: 'Ended', archive: 'Archived' };
/** @type {Record<string, string>} */
const FIELD_TEXT = {
  name: 'name', description: 'description', priceCents: 'price', stock: 'stock', startsAt: 'start', endsAt: 'end',
  perUserLimit: 'limit per person', paymentWindowSeconds: 'payment window', paused: 'paused', archivedAt: 'archived',
  restockOnRefund: 'restock on refund', waitingRoom: 'waiting room',
};

/**
 * A recorded value as an operator reads it.
 * @param {string} field
 * @param {unknown} v
 */
function shownValue(field, v) {
  if (v === null || v === undefined) return field === 'endsAt' ? 'no end' : '—';
  if (typeof v === 'number' && (field === 'startsAt' || field === 'endsAt' || field === 'archivedAt')) return dateTime(new Date(v).toISOString());
  if (typeof v === 'number' && field === 'priceCents') return price(v);
  if (typeof v === 'number' && field === 'paymentWindowSeconds') return `${Math.round(v / 60)} min`;
  if (typeof v === 'string') return v.length > 60 ? `“${v.slice(0, 57)}…”` : `“${v}”`;
  // The waiting room's settings: {method, admitPerSecond, stockFactor}.
  if (typeof v === 'object' && 'admitPerSecond' in v) {
    const r = /** @type {{ method?: string, admitPerSecond: number, stockFactor?: number }} */ (v);
    return `${r.method ?? ''} ${r.admitPerSecond}/s${r.stockFactor && r.stockFactor !== 1 ? ` × ${r.stockFactor} stock` : ''}`.trim();
  }
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** @param {AuditEntry} e */
function historyItem(e) {
  // A creation lists what the sale was created with (empty text and unset values left out).
  const given = Object.entries(e.changes).filter(([, [, after]]) => e.action !== 'create' || (after !== null && after !== ''));
  const changes = given.map(([f, [before, after]]) =>
    e.action === 'create' ? `${FIELD_TEXT[f] ?? f} ${shownValue(f, after)}` : `${FIELD_TEXT[f] ?? f}: ${shownValue(f, before)} → ${shownValue(f, after)}`);
  return h('li', {},
    h('span', { className: 'line' },
      h('strong', { textContent: ACTION_TEXT[e.action] ?? e.action }),
      h('span', { className: 'muted', textContent: ` · ${e.at ? dateTime(e.at) : '—'} · by ` }),
      h('code', { textContent: e.actor })),
    changes.length ? h('span', { className: 'meta', textContent: changes.join(' · ') }) : null);
}

async function loadHistory() {
  const saleId = selected;
  if (saleId === null) return;
  try {
    const { entries } = await admin((k) => saleAudit(k, saleId));
    if (saleId !== selected) return;
    el.hEmpty.hidden = entries.length > 0;
    // Newest first: the change just made is on top.
    el.hList.replaceChildren(...entries.slice().reverse().map(historyItem));
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code !== 'unauthorized') announce(`History: ${err.message}`);
  }
}

// ---------------------------------------------------------------- start
if (key) enter();
else showLogin('');
