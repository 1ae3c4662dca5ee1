// seckill sale page. Plain JS (ES modules, no framework, no build step), type-checked from JSDoc.
// The HTML is the same for every visitor and every moment (a CDN may keep it); who the buyer is
// (a token in sessionStorage) and what time it is (the server's clock) are worked out here.
import {
  ApiError, asApiError, buy as buyOrder, cancelOrder, demoToken, getOrder, getSale, myOrders, orderEventsUrl,
  orderPath as fetchOrderPath, payOrder, joinQueue, pollQueue, queueEventsUrl,
  getChallenge,
} from './api.js';
import { ServerClock } from './clock.js';
import { SALE_STATUS_TEXT, byId, pad, price, setPill, shop } from './ui.js';

/** @typedef {import('./api.js').PublicSale} PublicSale */
/** @typedef {import('./api.js').OrderView} OrderView */
/** @typedef {import('./api.js').SaleStatus} SaleStatus */
/** The order this buyer holds: what the buy answered, and more once the order has been read. @typedef {import('./api.js').Reservation & Partial<OrderView>} Held */

const ui = {
  main: byId('main', HTMLElement), status: byId('status', HTMLSpanElement), name: byId('name', HTMLHeadingElement),
  desc: byId('desc', HTMLParagraphElement), price: byId('price', HTMLSpanElement), limit: byId('limit', HTMLSpanElement),
  cdLabel: byId('cd-label', HTMLParagraphElement), cd: byId('countdown', HTMLParagraphElement),
  starts: byId('starts', HTMLParagraphElement), form: byId('buy-form', HTMLFormElement),
  qtyRow: byId('qty-row', HTMLParagraphElement), qty: byId('qty', HTMLInputElement), buy: byId('buy', HTMLButtonElement),
  hint: byId('buy-hint', HTMLParagraphElement), result: byId('result', HTMLElement), signin: byId('signin', HTMLElement),
  signinForm: byId('signin-form', HTMLFormElement), user: byId('user', HTMLInputElement),
  userError: byId('user-error', HTMLParagraphElement), shopSignin: byId('shop-signin', HTMLParagraphElement),
  who: byId('who', HTMLParagraphElement), whoName: byId('who-name', HTMLElement),
  signout: byId('signout', HTMLButtonElement), clock: byId('clock', HTMLParagraphElement),
  mine: byId('mine', HTMLElement), signinText: byId('shop-signin-text', HTMLSpanElement),
  signinLink: byId('signin-link', HTMLAnchorElement), queue: byId('queue', HTMLParagraphElement),
};

const saleId = decodeURIComponent(location.pathname.split('/')[2] || '');
const DEMO = document.querySelector('meta[name="seckill-demo"]')?.getAttribute('content') === 'on';
const TOKEN_KEY = 'seckill.token';
const ORDER_KEY = `seckill.order.${saleId}`;
const MAX_BUSY_RETRIES = 3;
/** @type {ReadonlySet<string>} */
const FINAL = new Set(['paid', 'expired', 'cancelled']);
const NAME_RE = /^[\p{L}\p{N}_.@-](?:[\p{L}\p{N} _.@-]*[\p{L}\p{N}_.@-])?$/u;

/** @type {PublicSale | null} the public sale, as last read */
let sale = null;
/** @type {string | null} */
let token = null;
let userName = '';
/** @type {string | null} per user and sale; fetched at the first click */
let orderPath = null;
/** @type {string | null} the waiting room's pass (a sale with a room), once let through */
let pass = null;
/** Joined the waiting room and polling it. */
let inQueue = false;
/** @type {Held | null} the order this buyer holds, once reserved */
let order = null;
/** What the demo's Pay button sends for the held order: the same on a retry (paying is idempotent). */
let paymentRef = '';
let buying = false;
const timers = { tick: 0, poll: 0, deadline: 0, retry: 0, order: 0, queue: 0 };
/** @type {EventSource | null} status changes of the held order */
let events = null;

// ---------------------------------------------------------------- server clock
const clock = new ServerClock();

async function syncClock() {
  await clock.sync();
  showClock();
}

function showClock() {
  const off = Date.now() - clock.now();
  ui.clock.textContent = Math.abs(off) < 1000
    ? `Times follow the shop's clock (synced to ±${Math.max(1, Math.round(clock.rtt / 2))} ms).`
    : `Your device clock is ${duration(Math.abs(off))} ${off > 0 ? 'fast' : 'slow'}; the countdown follows the shop's clock.`;
}

// ---------------------------------------------------------------- API
/**
 * The sale's public status (cached up to 1 s upstream). `versioned` adds the server time in
 * quarter seconds, so every buyer in the same quarter shares one cached answer, and an answer
 * from before the start is never reused after it.
 * @param {boolean} versioned
 */
async function fetchSale(versioned) {
  try {
    return await getSale(saleId, versioned ? Math.floor(clock.now() / 250) : undefined);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) throw new ApiError('not_found', 'No such sale.', err.status);
    throw err;
  }
}

// ---------------------------------------------------------------- formatting
/**
 * Time left as [d] hh:mm:ss, rounded up to the second.
 * @param {number} ms
 */
function left(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const hms = `${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return d > 0 ? `${d}d ${hms}` : hms;
}

/** @param {number} ms */
function duration(ms) {
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** @param {string} iso */
const when = (iso) => new Date(iso).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });

// ---------------------------------------------------------------- rendering
/** @param {string} state */
function setState(state) {
  ui.main.dataset.state = state;
}

/** @param {SaleStatus} status */
function setStatus(status) {
  setPill(ui.status, status, SALE_STATUS_TEXT);
}

/** @param {PublicSale} s */
function renderSale(s) {
  sale = s;
  document.title = `${s.name} · ${shop.name ?? 'flash sale'}`;
  ui.name.textContent = s.name;
  ui.desc.textContent = s.description || '';
  ui.price.textContent = price(s.priceCents);
  ui.limit.textContent = `Limit ${s.perUserLimit} per person`;
  ui.starts.textContent = `Opens ${when(s.startsAt)} (your time)`;
  ui.qtyRow.hidden = s.perUserLimit <= 1;
  ui.qty.max = String(s.perUserLimit);
  setStatus(s.status);
  ui.main.setAttribute('aria-busy', 'false');
}

/**
 * Replace the result box: a heading, lines of text, optional buttons.
 * @param {string} kind
 * @param {string} title
 * @param {Array<string | Node[]>} [lines]
 * @param {HTMLElement[]} [actions]
 * @param {boolean} [focus]
 */
function showResult(kind, title, lines = [], actions = [], focus = false) {
  ui.result.dataset.kind = kind;
  const h = document.createElement('h2');
  h.textContent = title;
  h.tabIndex = -1;
  /** @type {HTMLElement[]} */
  const parts = [h];
  for (const line of lines) {
    const p = document.createElement('p');
    if (typeof line === 'string') p.textContent = line;
    else p.append(...line);
    parts.push(p);
  }
  if (actions.length) {
    const div = document.createElement('div');
    div.className = 'actions';
    div.append(...actions);
    parts.push(div);
  }
  ui.result.replaceChildren(...parts);
  // The buy button the buyer pressed is disabled now: keep the keyboard focus somewhere useful.
  if (focus) h.focus();
}

function clearResult() {
  delete ui.result.dataset.kind;
  ui.result.replaceChildren();
}

/**
 * @param {string} text
 * @param {string} cls
 * @param {(b: HTMLButtonElement) => void} onClick given the button pressed
 */
function button(text, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `btn ${cls}`;
  b.textContent = text;
  b.addEventListener('click', () => onClick(b));
  return b;
}

/**
 * @param {string} text
 * @param {string} [cls]
 * @param {string} [id]
 */
function span(text, cls, id) {
  const s = document.createElement('span');
  s.textContent = text;
  if (cls) s.className = cls;
  if (id) s.id = id;
  return s;
}

/** @param {string} text */
function code(text) {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

/**
 * The button off, with a reason.
 * @param {string} label
 */
function dark(label) {
  ui.buy.disabled = true;
  ui.buy.classList.remove('lit');
  ui.buy.textContent = label;
}

// ---------------------------------------------------------------- the sale's course
/**
 * Act on a fresh public status of the sale.
 * @param {PublicSale} s
 */
function follow(s) {
  renderSale(s);
  if (s.waitingRoom && token && !inQueue && !pass && !order && s.status !== 'ended') void queue(true);
  clearTimeout(timers.poll);
  clearTimeout(timers.tick);
  if (buying || order) return; // the buyer's own result matters more than the sale's
  switch (s.status) {
    case 'upcoming':
      return countdown(s);
    case 'live':
      return light();
    case 'sold_out':
      setState('sold_out');
      ui.cdLabel.textContent = 'Sold out';
      dark('Sold out');
      if (ui.result.dataset.kind !== 'sold_out') soldOutResult(false);
      return poll(15_000); // units come back when reservations expire
    case 'paused':
      setState('paused');
      ui.cdLabel.textContent = 'Paused';
      dark('Paused');
      showResult('paused', 'Paused', ['The shop has paused this sale for a moment. This page goes on by itself when it resumes.']);
      return poll(5_000);
    default:
      setState('ended');
      ui.cdLabel.textContent = 'Ended';
      dark('Sale ended');
      showResult('ended', 'This sale is over', ['Thank you for your interest.']);
  }
}

/** @param {PublicSale} s */
function countdown(s) {
  clearTimeout(timers.tick);
  setState('upcoming');
  ui.cdLabel.textContent = 'Starts in';
  dark('Not started yet');
  const start = Date.parse(s.startsAt);
  const tick = () => {
    const ms = start - clock.now();
    ui.cd.textContent = left(ms);
    if (ms <= 0) return void opening(0);
    // Before the start, measure the offset again if the last measure is more than a minute old.
    if (ms < 30_000 && clock.age() > 60_000) syncClock().catch(() => {});
    // Wake when the shown second changes.
    timers.tick = setTimeout(tick, (ms % 1000 || 1000) + 1);
  };
  tick();
}

/**
 * The server clock says it is time: confirm with the server's status, then light.
 * @param {number} attempt
 */
async function opening(attempt) {
  setState('opening');
  ui.buy.textContent = 'Opening…';
  let s;
  try {
    s = await fetchSale(true);
  } catch {
    timers.tick = setTimeout(() => opening(attempt + 1), 500 + Math.random() * 500);
    return;
  }
  if (s.status === 'upcoming') {
    // An answer cached a moment before the start, or this page's clock a little ahead.
    if (attempt === 3) await syncClock().catch(() => {});
    renderSale(s);
    const upcoming = s;
    timers.tick = setTimeout(() => (Date.parse(upcoming.startsAt) - clock.now() > 1000 ? countdown(upcoming) : opening(attempt + 1)), 200 + Math.random() * 200);
    return;
  }
  follow(s);
}

function light() {
  const wasLit = ui.main.dataset.state === 'live';
  setState('live');
  ui.cdLabel.textContent = 'The sale is live';
  ui.cd.textContent = '00:00:00';
  ui.hint.textContent = token ? 'One click reserves; you pay afterwards.' : DEMO ? 'Sign in below first: any name works.' : `Sign in at ${shopName()} first.`;
  // Without a token and without the demo sign-in, the button leads to the shop's login when there is one.
  ui.buy.disabled = !token && !DEMO && !shop.signInUrl;
  ui.buy.textContent = token ? 'Buy now' : 'Sign in to buy';
  // A sale with a waiting room: the button waits for this buyer's turn (the pass).
  if (token && sale?.waitingRoom && !pass) {
    ui.buy.disabled = true;
    ui.buy.textContent = 'Waiting for your turn';
    ui.hint.textContent = 'The button lights when the waiting room lets you through.';
  }
  if (!wasLit) {
    ui.buy.classList.add('lit');
    if (ui.result.dataset.kind === 'paused' || ui.result.dataset.kind === 'sold_out' || ui.result.dataset.kind === 'not_started') clearResult();
  }
  poll(5_000); // notice a sell-out before the buyer clicks
}

/**
 * Read the status again after about `ms` (with jitter, and not while the tab is hidden).
 * @param {number} ms
 */
function poll(ms) {
  clearTimeout(timers.poll);
  timers.poll = setTimeout(async () => {
    if (document.hidden) return poll(ms);
    try {
      follow(await fetchSale(true));
    } catch {
      poll(ms * 2);
    }
  }, ms * (0.8 + Math.random() * 0.4));
}

// ---------------------------------------------------------------- waiting room
/** @type {EventSource | null} the waiting room's answers, pushed, while in line */
let queueEvents = null;
/** After the stream failed (degraded mode, a proxy that cuts it): poll, and try it again from this moment. */
let queueStreamAfter = 0;
/** @type {string} the state of the room's last answer */
let queueState = '';

/**
 * A sale with a waiting room: join, then follow the room's event stream (or poll every 2 s when it
 * fails; either keeps the place) until this buyer's turn, showing the place, the people ahead and
 * the estimated wait, and the sell-out the moment the room knows it.
 * @param {boolean} joining
 */
async function queue(joining) {
  clearTimeout(timers.queue);
  unwatchQueue();
  if (!token || !sale?.waitingRoom || pass || order) {
    inQueue = false;
    return;
  }
  inQueue = true;
  try {
    const r = await (joining ? joinQueue(token, saleId) : pollQueue(token, saleId));
    if (queueAnswer(r)) return;
  } catch (err) {
    const e = asApiError(err);
    // Dropped (the page slept, or the room restarted): join again, at the back.
    if (e.code === 'not_found' && !joining) return void queue(true);
    if (e.code !== 'network' && e.code !== 'busy' && e.code !== 'rate_limited') {
      inQueue = false;
      ui.queue.hidden = true;
      return;
    }
  }
  if (Date.now() >= queueStreamAfter && watchQueue()) return;
  timers.queue = setTimeout(() => void queue(false), 2000);
}

/**
 * Show a waiting-room answer (polled or pushed) and act on it; true once this buyer's turn came.
 * @param {import('./api.js').QueueAnswer} r
 */
function queueAnswer(r) {
  const was = queueState;
  queueState = r.state;
  showQueue(r);
  // The room reads the stock as it is now: the page shows the sell-out without waiting for its own status poll.
  if (r.state === 'sold_out' && sale?.status === 'live' && !buying && !order) follow({ ...sale, status: 'sold_out' });
  // Stock came back (and perhaps this buyer's turn with it): the sale's status, read again, says so.
  else if (was === 'sold_out' && r.state !== 'sold_out') void fetchSale(true).then(follow, () => {});
  if (r.state !== 'admitted') return false;
  unwatchQueue();
  clearTimeout(timers.queue);
  inQueue = false;
  pass = r.pass ?? null;
  if (pass && ui.main.dataset.state === 'live') light();
  return true;
}

/**
 * The room's event stream (GET …/queue/events): an answer whenever it changes. False when the
 * browser has no EventSource; when the stream fails, the page polls.
 */
function watchQueue() {
  unwatchQueue();
  if (!('EventSource' in window) || !token) return false;
  const es = new EventSource(queueEventsUrl(token, saleId));
  queueEvents = es;
  es.addEventListener('queue', (e) => {
    if (queueEvents !== es) return;
    queueAnswer(JSON.parse(/** @type {MessageEvent<string>} */ (e).data));
  });
  // No longer in line (dropped, or the sale ended): the poll says which, and joins again if it can.
  es.addEventListener('refused', () => {
    if (queueEvents !== es) return;
    unwatchQueue();
    void queue(false);
  });
  es.onerror = () => {
    if (queueEvents !== es) return;
    // Refused (degraded mode, too many streams) or cut: poll, and try the stream again later.
    unwatchQueue();
    queueStreamAfter = Date.now() + 30_000;
    timers.queue = setTimeout(() => void queue(false), 2000);
  };
  return true;
}

function unwatchQueue() {
  queueEvents?.close();
  queueEvents = null;
}

/** @param {import('./api.js').QueueAnswer} r */
function showQueue(r) {
  ui.queue.hidden = false;
  if (r.state === 'admitted') ui.queue.textContent = r.pass ? 'Your turn: you may buy now (within a minute).' : 'You have had your turn in this sale.';
  else if (r.state === 'sold_out') ui.queue.textContent = 'Sold out for now. You keep your place in case units come back.';
  else if (r.position === null) ui.queue.textContent = 'You are in the waiting room. Places are drawn at random when the sale opens; keep this page open.';
  else ui.queue.textContent = `Waiting room: number ${r.position} in line, ${r.ahead} ahead of you, about ${duration((r.etaSeconds ?? 0) * 1000)} to wait. Keep this page open.`;
}

// ---------------------------------------------------------------- challenge (docs/challenges.md)
/** The quiz's answer is held back this long after the question came: the server refuses sooner (SECKILL_QUIZ_MIN_MS). */
const QUIZ_MIN_MS = 1600;

/**
 * The order path. A sale with a challenge: one solved first, sent with the path request; a refused
 * one (expired, already used, a slow page) once more with a new challenge.
 * @param {string} t the token
 * @returns {Promise<string>}
 */
async function askPath(t) {
  let solved = sale?.challenge ? await solveChallenge(t) : null;
  for (let retried = false; ; retried = true) {
    try {
      return (await fetchOrderPath(t, saleId, pass, solved)).path;
    } catch (err) {
      const code = asApiError(err).code;
      // challenge_required: the sale got a challenge after this page read it.
      if (retried || (code !== 'challenge_failed' && code !== 'challenge_required')) throw err;
      solved = await solveChallenge(t);
    } finally {
      if (ui.result.dataset.kind === 'challenge') clearResult();
    }
  }
}

/**
 * A new challenge, solved: `<challenge>:<answer>` for header X-Seckill-Challenge.
 * @param {string} t the token
 * @returns {Promise<string>}
 */
async function solveChallenge(t) {
  const task = await getChallenge(t, saleId);
  if (task.kind === 'pow') {
    dark('Checking you are not a robot\u2026');
    return `${task.challenge}:${await proofOfWork(task.challenge, task.bits)}`;
  }
  const shown = Date.now();
  /** @type {number} */
  const choice = await new Promise((resolve) => {
    const choices = task.choices.map((text, i) => button(text, 'btn-secondary choice', () => resolve(i)));
    showResult('challenge', task.question, ['A quick question before you buy (it keeps robots out).'], choices, true);
    dark('Answer below');
  });
  dark('Checking\u2026');
  const early = QUIZ_MIN_MS - (Date.now() - shown);
  if (early > 0) await new Promise((r) => setTimeout(r, early));
  return `${task.challenge}:${choice}`;
}

/**
 * The nonce, found by the page's worker (src/web/pow-worker.js) off the main thread.
 * @param {string} challenge
 * @param {number} bits
 * @returns {Promise<string>}
 */
function proofOfWork(challenge, bits) {
  const url = document.querySelector('meta[name="seckill-pow-worker"]')?.getAttribute('content') ?? '';
  return new Promise((resolve, reject) => {
    const worker = new Worker(url);
    worker.onmessage = (e) => {
      worker.terminate();
      const r = /** @type {{ nonce?: string, error?: string }} */ (e.data);
      if (r.nonce !== undefined) resolve(r.nonce);
      else reject(new Error(r.error ?? 'The check could not run.'));
    };
    worker.onerror = () => {
      worker.terminate();
      reject(new Error('The check could not run in this browser.'));
    };
    worker.postMessage({ challenge, bits });
  });
}

// ---------------------------------------------------------------- buying
/** @param {PublicSale} s */
function quantity(s) {
  const q = Number(ui.qty.value);
  return Number.isInteger(q) && q >= 1 && q <= s.perUserLimit ? q : 1;
}

/** @param {number} attempt */
async function buy(attempt) {
  if (!token) return askSignIn();
  if (!sale) return;
  clearTimeout(timers.poll);
  buying = true;
  setState('buying');
  dark('Reserving…');
  ui.main.setAttribute('aria-busy', 'true');
  try {
    if (!orderPath) orderPath = await askPath(token);
    const r = await buyOrder(token, saleId, orderPath, quantity(sale), pass);
    buying = false;
    pass = null; // spent by the reservation
    ui.queue.hidden = true;
    hold({ orderId: r.orderId, status: r.status, quantity: r.quantity, expiresAt: r.expiresAt }, true);
  } catch (err) {
    buying = false;
    refused(asApiError(err), attempt);
  } finally {
    ui.main.setAttribute('aria-busy', 'false');
  }
}

/**
 * @param {ApiError} err
 * @param {number} attempt
 */
function refused(err, attempt) {
  switch (err.code) {
    case 'busy':
    case 'rate_limited': {
      if (attempt >= MAX_BUSY_RETRIES) {
        showResult('busy', 'Still busy', ['The shop is very busy right now. Please try again in a moment.'], [], true);
        return light();
      }
      // Wait what the server asked, plus up to half again, so that buyers do not return together.
      const wait = err.retryAfter * 1000 * (1 + Math.random() * 0.5);
      setState('busy');
      dark('Waiting…');
      showResult('busy', 'Busy, trying again', [`Many people are buying. Trying again in ${Math.ceil(wait / 1000)} s (attempt ${attempt + 2} of ${MAX_BUSY_RETRIES + 1}).`], [], true);
      timers.retry = setTimeout(() => buy(attempt + 1), wait);
      return;
    }
    case 'no_pass':
      // The pass ran out, was used, or the room restarted: back in line.
      pass = null;
      showResult('waiting', 'Back in the waiting room', ['Your turn to buy has passed. You have a new place in line; this page lets you know when it is your turn.'], [], true);
      void queue(true);
      return light();
    case 'challenge_required':
    case 'challenge_failed':
      // Refused twice (askPath tried a new one): the buyer tries again by hand.
      showResult('error', 'Check not passed', ['The check before buying was not accepted. Please try again.'], [], true);
      return light();
    case 'sold_out':
      setStatus('sold_out');
      setState('sold_out');
      dark('Sold out');
      soldOutResult(true);
      return poll(15_000);
    case 'limit_reached':
      setState('limit');
      dark('Limit reached');
      showResult('limit', 'Limit reached', [`You already hold the limit for this sale (${sale?.perUserLimit} per person).`], [], true);
      return void findMyOrder();
    case 'not_started':
      showResult('not_started', 'Not started yet', ['The sale has not opened yet on the shop\u2019s clock. The button lights by itself at the start.'], [], true);
      orderPath = null;
      return void syncClock().catch(() => {}).then(() => fetchSale(true)).then(follow, () => sale && countdown(sale));
    case 'paused':
    case 'ended':
      return sale ? follow({ ...sale, status: err.code }) : undefined;
    case 'unauthorized':
      signOut();
      showResult('error', 'Please sign in again', ['Your sign-in has expired.'], [], true);
      return light();
    default:
      showResult('error', 'That did not work', [`${err.message} Please try again.`], [], true);
      return light();
  }
}

/** @param {boolean} focus */
function soldOutResult(focus) {
  showResult('sold_out', 'Sold out', ['Every unit is taken. Units come back if a reservation is not paid in time; this page will show it.'], [], focus);
}

/** After limit_reached: show the order this buyer already holds, so it can be paid. */
async function findMyOrder() {
  try {
    const { orders } = await myOrders(token);
    const mine = orders.filter((o) => o.saleId === saleId && (o.status === 'reserved' || o.status === 'paid'));
    const o = mine.find((x) => x.status === 'reserved') || mine[0];
    if (o) hold(o, false);
  } catch {
    // the message above stands
  }
}

// ---------------------------------------------------------------- the held order
/**
 * @param {Held} o
 * @param {boolean} focus
 * @param {boolean} [restored] found again on loading the page (not just now bought or paid)
 */
function hold(o, focus, restored = false) {
  const first = !order || order.orderId !== o.orderId;
  if (first) paymentRef = `demo-${randomHex()}`;
  const held = { ...(first ? {} : order), ...o };
  order = held;
  clearTimeout(timers.poll);
  clearTimeout(timers.deadline);
  if (o.status === 'reserved') sessionStorage.setItem(ORDER_KEY, o.orderId);
  else sessionStorage.removeItem(ORDER_KEY);
  ui.qtyRow.hidden = true;
  const what = `${held.quantity} × ${sale?.name}`;
  switch (o.status) {
    case 'reserved': {
      setState('reserved');
      dark('Reserved');
      ui.hint.textContent = 'Your unit is held until the payment deadline.';
      /** @type {HTMLElement[]} */
      const actions = [];
      const checkout = checkoutHref(held.orderId);
      if (checkout) actions.push(link('Pay now', 'btn btn-pay', checkout, 'checkout'));
      else if (DEMO) actions.push(button('Pay now (demo)', 'btn-pay', pay));
      actions.push(button('Cancel reservation', 'btn-secondary', cancel));
      showResult('reserved', 'Reserved!', [
        `${what} is held for you.`,
        [document.createTextNode('Pay within '), span('--:--', 'deadline', 'deadline')],
        DEMO && !checkout ? 'Demo mode: the button below stands in for the shop\u2019s payment.' : `Complete the payment at ${shopName()} before ${when(held.expiresAt)}.`,
        [span('Order ', 'small'), code(held.orderId)],
      ], actions, focus);
      deadline(held);
      if (first || !events) watch(held);
      return;
    }
    case 'paid':
      setState('paid');
      dark('Bought');
      ui.hint.textContent = 'Thank you for your order.';
      showResult('paid', restored ? 'You bought this' : 'Paid: it\u2019s yours!', [`${what} for ${price(held.priceCents ?? sale?.priceCents ?? 0)} each.`, [span('Order ', 'small'), code(held.orderId)]], [], focus);
      return unwatch();
    default: {
      const expired = o.status === 'expired';
      unwatch();
      order = null;
      showResult(expired ? 'expired' : 'cancelled', expired ? 'Reservation expired' : 'Reservation cancelled', [
        expired ? 'The payment window passed and the unit went back on sale.' : 'The unit went back on sale.',
      ], [], focus);
      fetchSale(true).then(follow, () => {});
    }
  }
}

function randomHex() {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * The payment deadline, on the server's clock.
 * @param {Held} held
 */
function deadline(held) {
  const end = Date.parse(held.expiresAt);
  const tick = () => {
    const el = document.getElementById('deadline');
    if (!el || !order || order.status !== 'reserved') return;
    const ms = end - clock.now();
    el.textContent = left(ms).replace(/^00:/, '');
    if (ms > 0) timers.deadline = setTimeout(tick, (ms % 1000 || 1000) + 1);
    else el.textContent = 'time is up';
  };
  tick();
}

/**
 * Status changes of the held order: server-sent events, or polling when they fail.
 * @param {Held} held
 */
function watch(held) {
  unwatch();
  if (!('EventSource' in window) || !token) return pollOrder();
  const es = new EventSource(orderEventsUrl(token, held.orderId));
  events = es;
  es.addEventListener('status', (e) => {
    /** @type {OrderView} */
    const o = JSON.parse(/** @type {MessageEvent<string>} */ (e).data);
    if (FINAL.has(o.status)) es.close(); // the server ends the stream: do not reconnect
    if (order && o.orderId === order.orderId && o.status !== order.status) hold(o, false);
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED || events !== es) return;
    es.close();
    events = null;
    pollOrder();
  };
}

function unwatch() {
  events?.close();
  events = null;
  clearTimeout(timers.order);
}

function pollOrder() {
  clearTimeout(timers.order);
  timers.order = setTimeout(async () => {
    if (!order || order.status !== 'reserved') return;
    try {
      const o = await getOrder(token, order.orderId);
      if (o.status !== order.status) return hold(o, false);
    } catch {
      // try again below
    }
    pollOrder();
  }, 2000 + Math.random() * 1000);
}

/** @param {HTMLButtonElement} b */
async function pay(b) {
  if (!order) return;
  const held = order;
  b.disabled = true;
  b.textContent = 'Paying…';
  try {
    hold(await payOrder(token, held.orderId, paymentRef), true);
  } catch (caught) {
    const err = asApiError(caught);
    if (err.code === 'payment_late' || err.code === 'expired') return hold({ ...held, status: 'expired' }, true);
    b.disabled = false;
    b.textContent = 'Pay now (demo)';
    showInline(err.message);
  }
}

/** @param {HTMLButtonElement} b */
async function cancel(b) {
  if (!order) return;
  b.disabled = true;
  try {
    hold(await cancelOrder(token, order.orderId), true);
  } catch (err) {
    b.disabled = false;
    showInline(asApiError(err).message);
  }
}

/** @param {string} message */
function showInline(message) {
  let p = ui.result.querySelector('.field-error');
  if (!p) {
    p = document.createElement('p');
    p.className = 'field-error';
    ui.result.append(p);
  }
  p.textContent = message;
}

// ---------------------------------------------------------------- sign-in
function loadToken() {
  // The shop may hand a token over in the fragment (never sent to any server): keep it for this tab.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  setToken(sessionStorage.getItem(TOKEN_KEY));
}

/** @param {string | null} t */
function setToken(t) {
  token = t;
  userName = t ? subject(t) : '';
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  ui.who.hidden = !t;
  ui.whoName.textContent = userName;
  ui.signin.hidden = !DEMO || !!t;
  ui.shopSignin.hidden = DEMO || !!t;
  if (!t) ui.mine.hidden = true;
  // Signed in on a sale with a waiting room: take a place at once (before the open too).
  if (t && sale?.waitingRoom && !inQueue && !pass && !order) void queue(true);
  if (ui.main.dataset.state === 'live') light();
}

/**
 * The user id in a token, for display only (the server verifies it).
 * @param {string} t
 * @returns {string}
 */
function subject(t) {
  try {
    const b64 = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)).sub || '';
  } catch {
    return '';
  }
}

function signOut() {
  unwatch();
  clearTimeout(timers.deadline);
  clearTimeout(timers.retry);
  order = null;
  orderPath = null;
  pass = null;
  inQueue = false;
  clearTimeout(timers.queue);
  unwatchQueue();
  ui.queue.hidden = true;
  sessionStorage.removeItem(ORDER_KEY);
  setToken(null);
}

function askSignIn() {
  // The shop's login returns here with the token in the fragment (#token=…): see loadToken.
  if (!DEMO) return void (shop.signInUrl && ui.signinLink.click());
  fieldError('Enter a name to sign in, then press Buy.');
  ui.user.focus();
}

/** @param {string} message */
function fieldError(message) {
  ui.userError.textContent = message;
  ui.user.setAttribute('aria-invalid', message ? 'true' : 'false');
}

/** @param {SubmitEvent} e */
async function signIn(e) {
  e.preventDefault();
  const name = ui.user.value.trim();
  if (!name) return fieldError('Enter a name.'), ui.user.focus();
  if (name.length > 64 || !NAME_RE.test(name)) {
    return fieldError('Use up to 64 letters, digits, spaces and . _ @ - (not at the ends).'), ui.user.focus();
  }
  fieldError('');
  try {
    const r = await demoToken(name);
    setToken(r.token);
    ui.user.value = '';
    (ui.buy.disabled ? ui.signout : ui.buy).focus();
  } catch (caught) {
    const err = asApiError(caught);
    fieldError(err.code === 'not_found' ? 'Demo sign-in is off on this server.' : err.message);
    ui.user.focus();
  }
}

// ---------------------------------------------------------------- start
async function resume() {
  if (!token) return;
  // A reservation made earlier in this tab: show it again after a reload.
  const id = sessionStorage.getItem(ORDER_KEY);
  if (id) {
    try {
      const o = await getOrder(token, id);
      if (o.saleId === saleId && o.status === 'reserved') return hold(o, false, true);
    } catch {
      // gone or not readable: the list below says what there is
    }
    sessionStorage.removeItem(ORDER_KEY);
  }
  // Otherwise this buyer's own orders of this sale (paid, from another tab or device, or at the
  // shop): a buyer who paid and reloads sees the order, not only "Sold out".
  try {
    const { orders } = await myOrders(token);
    const mine = orders.filter((o) => o.saleId === saleId).sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    const o = mine.find((x) => x.status === 'reserved') || mine.find((x) => x.status === 'paid') || mine[0];
    if (!o) return;
    if (o.status === 'reserved' || o.status === 'paid') return hold(o, false, true);
    showMine(o);
  } catch {
    // the sale's own state still shows
  }
}

/**
 * An earlier order of this buyer that holds nothing now (expired, cancelled, refunded): said
 * above the sale's state, which goes on as usual below (a live sale can be bought again).
 * @param {OrderView} o
 */
function showMine(o) {
  const what = { expired: 'Your reservation expired', cancelled: 'Your reservation was cancelled', refunded: 'Your order was refunded' };
  const title = document.createElement('p');
  const strong = document.createElement('strong');
  strong.textContent = o.status in what ? what[/** @type {keyof typeof what} */ (o.status)] : `Your order is ${o.status}`;
  title.append(strong);
  ui.mine.replaceChildren(title, paragraph([span('Order ', 'small'), code(o.orderId)]));
  ui.mine.dataset.status = o.status;
  ui.mine.hidden = false;
}

/** @param {Node[]} nodes */
function paragraph(nodes) {
  const p = document.createElement('p');
  p.append(...nodes);
  return p;
}

// ---------------------------------------------------------------- the shop
/** The shop's name in a sentence. */
function shopName() {
  return shop.name ?? 'the shop';
}

/**
 * Where "Pay now" leads for this order (SECKILL_CHECKOUT_URL), or null without a checkout.
 * @param {string} orderId
 */
function checkoutHref(orderId) {
  if (!shop.checkoutUrl) return null;
  return shop.checkoutUrl.replace(/\{orderId\}/g, encodeURIComponent(orderId)).replace(/\{saleId\}/g, encodeURIComponent(saleId));
}

/**
 * The shop's login (SECKILL_SIGN_IN_URL), told where to come back to: `{returnTo}` in it is
 * replaced, else a `returnTo` parameter is added. The shop sends the buyer back to that address
 * with `#token=<user token>` appended.
 * @param {string} signInUrl
 */
function signInHref(signInUrl) {
  const back = location.origin + location.pathname;
  if (signInUrl.includes('{returnTo}')) return signInUrl.replace(/\{returnTo\}/g, encodeURIComponent(back));
  const u = new URL(signInUrl, location.href);
  u.searchParams.append('returnTo', back);
  return u.href;
}

/**
 * A link styled as a button; `_top` so that it leaves a frame too (a shop may embed this page).
 * @param {string} text
 * @param {string} cls
 * @param {string} href
 * @param {string} id
 */
function link(text, cls, href, id) {
  const a = document.createElement('a');
  a.className = cls;
  a.href = href;
  a.target = '_top';
  a.id = id;
  a.textContent = text;
  return a;
}

function showShopSignIn() {
  if (shop.name) ui.signinText.textContent = `Sign in at ${shop.name} to take part in this sale.`;
  if (shop.signInUrl) {
    ui.signinLink.href = signInHref(shop.signInUrl);
    ui.signinLink.hidden = false;
  }
}

async function start() {
  try {
    const [s] = await Promise.all([fetchSale(false), syncClock()]);
    renderSale(s);
    await resume();
    follow(s);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found') {
      document.title = 'No such sale · seckill';
      ui.name.textContent = 'No such sale';
      ui.desc.textContent = 'This sale does not exist. See the sales on the home page.';
      ui.status.hidden = true;
      ui.form.hidden = true;
      if (ui.price.parentElement) ui.price.parentElement.hidden = true;
      ui.signin.hidden = true;
      const countdownBox = ui.main.querySelector('.countdown');
      if (countdownBox instanceof HTMLElement) countdownBox.hidden = true;
      ui.main.setAttribute('aria-busy', 'false');
      setState('not_found');
      return;
    }
    ui.clock.textContent = 'Cannot reach the shop; trying again…';
    setTimeout(start, 2000 + Math.random() * 2000);
  }
}

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!ui.buy.disabled && !buying) buy(0);
});
ui.signinForm.addEventListener('submit', signIn);
ui.signout.addEventListener('click', () => {
  signOut();
  clearResult();
  if (sale) follow(sale);
  ui.user.focus();
});
// A computer that slept may have paused the monotonic clock: measure again on return.
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && sale && ui.main.dataset.state === 'upcoming') syncClock().then(() => sale && countdown(sale), () => {});
});

showShopSignIn();
loadToken();
start();
