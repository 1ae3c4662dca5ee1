// seckill sale page. Plain JS, no framework, no build step.
// The HTML is the same for every visitor and every moment (a CDN may keep it); who the buyer is
// (a token in sessionStorage) and what time it is (the server's clock) are worked out here.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ui = {
    main: $('main'), status: $('status'), name: $('name'), desc: $('desc'), price: $('price'),
    limit: $('limit'), cdLabel: $('cd-label'), cd: $('countdown'), starts: $('starts'),
    form: $('buy-form'), qtyRow: $('qty-row'), qty: $('qty'), buy: $('buy'), hint: $('buy-hint'),
    result: $('result'), signin: $('signin'), signinForm: $('signin-form'), user: $('user'),
    userError: $('user-error'), shopSignin: $('shop-signin'), who: $('who'), whoName: $('who-name'),
    signout: $('signout'), clock: $('clock'),
  };

  const saleId = decodeURIComponent(location.pathname.split('/')[2] || '');
  const enc = encodeURIComponent;
  const DEMO = document.querySelector('meta[name="seckill-demo"]')?.content === 'on';
  const TOKEN_KEY = 'seckill.token';
  const ORDER_KEY = `seckill.order.${saleId}`;
  const MAX_BUSY_RETRIES = 3;
  const FINAL = new Set(['paid', 'expired', 'cancelled']);
  const NAME_RE = /^[\p{L}\p{N}_.@-](?:[\p{L}\p{N} _.@-]*[\p{L}\p{N}_.@-])?$/u;

  let sale = null; // the public sale, as last read
  let token = null;
  let userName = '';
  let orderPath = null; // per user and sale; fetched at the first click
  let order = null; // the order this buyer holds, once reserved
  let buying = false;
  const timers = { tick: 0, poll: 0, deadline: 0, retry: 0, order: 0 };
  let events = null; // EventSource of the held order

  // ---------------------------------------------------------------- server clock
  // The server's time at one instant of the monotonic clock (performance.now). The device's wall
  // clock (Date.now) is never used for timing, so a device set an hour wrong changes nothing.
  const clock = { server: 0, mono: 0, rtt: Infinity, at: -Infinity };

  async function syncClock() {
    const t0 = performance.now();
    const res = await fetch('/api/time', { cache: 'no-store' });
    const t1 = performance.now();
    if (!res.ok) throw new Error(`time: HTTP ${res.status}`);
    const { serverTime } = await res.json();
    const rtt = t1 - t0;
    // Keep the sample with the shortest round trip, unless it has grown old.
    if (rtt <= clock.rtt + 20 || t1 - clock.at > 60_000) {
      // The server read its clock about half-way through the round trip.
      Object.assign(clock, { server: Date.parse(serverTime), mono: t0 + rtt / 2, rtt, at: t1 });
    }
    showClock();
  }

  const serverNow = () => clock.server + (performance.now() - clock.mono);

  function showClock() {
    const off = Date.now() - serverNow();
    ui.clock.textContent = Math.abs(off) < 1000
      ? `Times follow the shop's clock (synced to ±${Math.max(1, Math.round(clock.rtt / 2))} ms).`
      : `Your device clock is ${duration(Math.abs(off))} ${off > 0 ? 'fast' : 'slow'}; the countdown follows the shop's clock.`;
  }

  // ---------------------------------------------------------------- API
  /** JSON call with the buyer's token; a refusal throws an Error with the contract's code. */
  async function api(method, url, body) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch {
      throw Object.assign(new Error('The network failed; check your connection.'), { code: 'network' });
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      throw Object.assign(new Error(data?.error?.message || `HTTP ${res.status}`), {
        code: data?.error?.code || `http_${res.status}`,
        retryAfter: Number(res.headers.get('retry-after')) || 1,
      });
    }
    return data;
  }

  /**
   * The sale's public status (cached up to 1 s upstream). `versioned` adds the server time in
   * quarter seconds, so every buyer in the same quarter shares one cached answer, and an answer
   * from before the start is never reused after it.
   */
  async function fetchSale(versioned) {
    const v = versioned ? `?v=${Math.floor(serverNow() / 250)}` : '';
    const res = await fetch(`/api/sales/${enc(saleId)}${v}`);
    if (res.status === 404 || res.status === 400) throw Object.assign(new Error('No such sale.'), { code: 'not_found' });
    if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { code: 'http' });
    return res.json();
  }

  // ---------------------------------------------------------------- formatting
  const pad = (n) => String(n).padStart(2, '0');

  /** Time left as [d] hh:mm:ss, rounded up to the second. */
  function left(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const d = Math.floor(s / 86400);
    const hms = `${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
    return d > 0 ? `${d}d ${hms}` : hms;
  }

  function duration(ms) {
    if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
    if (ms >= 60_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
    return `${(ms / 1000).toFixed(1)} s`;
  }

  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const price = (cents) => money.format(cents / 100);
  const when = (iso) => new Date(iso).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });

  // ---------------------------------------------------------------- rendering
  const STATUS_TEXT = { upcoming: 'Upcoming', live: 'Live now', sold_out: 'Sold out', ended: 'Ended', paused: 'Paused' };

  function setState(state) {
    ui.main.dataset.state = state;
  }

  function setStatus(status) {
    ui.status.dataset.status = status;
    ui.status.textContent = STATUS_TEXT[status] || status;
  }

  function renderSale(s) {
    sale = s;
    document.title = `${s.name} · flash sale`;
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

  /** Replace the result box: a heading, lines of text, optional buttons. */
  function showResult(kind, title, lines = [], actions = [], focus = false) {
    ui.result.dataset.kind = kind;
    const h = document.createElement('h2');
    h.textContent = title;
    h.tabIndex = -1;
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

  function button(text, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `btn ${cls}`;
    b.textContent = text;
    b.addEventListener('click', onClick);
    return b;
  }

  function span(text, cls, id) {
    const s = document.createElement('span');
    s.textContent = text;
    if (cls) s.className = cls;
    if (id) s.id = id;
    return s;
  }

  /** The button off, with a reason. */
  function dark(label) {
    ui.buy.disabled = true;
    ui.buy.classList.remove('lit');
    ui.buy.textContent = label;
  }

  // ---------------------------------------------------------------- the sale's course
  /** Act on a fresh public status of the sale. */
  function follow(s) {
    renderSale(s);
    clearTimeout(timers.poll);
    clearTimeout(timers.tick);
    if (buying || order) return; // the buyer's own result matters more than the sale's
    switch (s.status) {
      case 'upcoming':
        return countdown();
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

  function countdown() {
    clearTimeout(timers.tick);
    setState('upcoming');
    ui.cdLabel.textContent = 'Starts in';
    dark('Not started yet');
    const start = Date.parse(sale.startsAt);
    const tick = () => {
      const ms = start - serverNow();
      ui.cd.textContent = left(ms);
      if (ms <= 0) return opening(0);
      // Before the start, measure the offset again if the last measure is more than a minute old.
      if (ms < 30_000 && performance.now() - clock.at > 60_000) syncClock().catch(() => {});
      // Wake when the shown second changes.
      timers.tick = setTimeout(tick, (ms % 1000 || 1000) + 1);
    };
    tick();
  }

  /** The server clock says it is time: confirm with the server's status, then light. */
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
      timers.tick = setTimeout(() => (Date.parse(s.startsAt) - serverNow() > 1000 ? countdown() : opening(attempt + 1)), 200 + Math.random() * 200);
      return;
    }
    follow(s);
  }

  function light() {
    const wasLit = ui.main.dataset.state === 'live';
    setState('live');
    ui.cdLabel.textContent = 'The sale is live';
    ui.cd.textContent = '00:00:00';
    ui.hint.textContent = token ? 'One click reserves; you pay afterwards.' : DEMO ? 'Sign in below first: any name works.' : 'Sign in at the shop first.';
    ui.buy.disabled = !token && !DEMO;
    ui.buy.textContent = token ? 'Buy now' : 'Sign in to buy';
    if (!wasLit) {
      ui.buy.classList.add('lit');
      if (ui.result.dataset.kind === 'paused' || ui.result.dataset.kind === 'sold_out' || ui.result.dataset.kind === 'not_started') clearResult();
    }
    poll(5_000); // notice a sell-out before the buyer clicks
  }

  /** Read the status again after about `ms` (with jitter, and not while the tab is hidden). */
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

  // ---------------------------------------------------------------- buying
  function quantity() {
    const q = Number(ui.qty.value);
    return Number.isInteger(q) && q >= 1 && q <= sale.perUserLimit ? q : 1;
  }

  async function buy(attempt) {
    if (!token) return askSignIn();
    clearTimeout(timers.poll);
    buying = true;
    setState('buying');
    dark('Reserving…');
    ui.main.setAttribute('aria-busy', 'true');
    try {
      if (!orderPath) orderPath = (await api('POST', `/api/sales/${enc(saleId)}/path`, {})).path;
      const r = await api('POST', `/api/sales/${enc(saleId)}/buy/${enc(orderPath)}`, { quantity: quantity() });
      buying = false;
      hold({ orderId: r.orderId, status: r.status, quantity: r.quantity, expiresAt: r.expiresAt }, true);
    } catch (err) {
      buying = false;
      refused(err, attempt);
    } finally {
      ui.main.setAttribute('aria-busy', 'false');
    }
  }

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
      case 'sold_out':
        setStatus('sold_out');
        setState('sold_out');
        dark('Sold out');
        soldOutResult(true);
        return poll(15_000);
      case 'limit_reached':
        setState('limit');
        dark('Limit reached');
        showResult('limit', 'Limit reached', [`You already hold the limit for this sale (${sale.perUserLimit} per person).`], [], true);
        return findMyOrder();
      case 'not_started':
        showResult('not_started', 'Not started yet', ['The sale has not opened yet on the shop\u2019s clock. The button lights by itself at the start.'], [], true);
        orderPath = null;
        return void syncClock().catch(() => {}).then(() => fetchSale(true)).then(follow, () => countdown());
      case 'paused':
      case 'ended':
        return follow({ ...sale, status: err.code });
      case 'unauthorized':
        signOut();
        showResult('error', 'Please sign in again', ['Your sign-in has expired.'], [], true);
        return light();
      default:
        showResult('error', 'That did not work', [`${err.message} Please try again.`], [], true);
        return light();
    }
  }

  function soldOutResult(focus) {
    showResult('sold_out', 'Sold out', ['Every unit is taken. Units come back if a reservation is not paid in time; this page will show it.'], [], focus);
  }

  /** After limit_reached: show the order this buyer already holds, so it can be paid. */
  async function findMyOrder() {
    try {
      const { orders } = await api('GET', '/api/me/orders');
      const mine = orders.filter((o) => o.saleId === saleId && (o.status === 'reserved' || o.status === 'paid'));
      const o = mine.find((x) => x.status === 'reserved') || mine[0];
      if (o) hold(o, false);
    } catch {
      // the message above stands
    }
  }

  // ---------------------------------------------------------------- the held order
  function hold(o, focus) {
    const first = !order || order.orderId !== o.orderId;
    order = { ...(first ? { paymentRef: `demo-${randomHex()}` } : order), ...o };
    clearTimeout(timers.poll);
    clearTimeout(timers.deadline);
    if (o.status === 'reserved') sessionStorage.setItem(ORDER_KEY, o.orderId);
    else sessionStorage.removeItem(ORDER_KEY);
    ui.qtyRow.hidden = true;
    const what = `${order.quantity} × ${sale.name}`;
    switch (o.status) {
      case 'reserved': {
        setState('reserved');
        dark('Reserved');
        ui.hint.textContent = 'Your unit is held until the payment deadline.';
        const actions = [];
        if (DEMO) actions.push(button('Pay now (demo)', 'btn-pay', pay));
        actions.push(button('Cancel reservation', 'btn-secondary', cancel));
        showResult('reserved', 'Reserved!', [
          `${what} is held for you.`,
          [document.createTextNode('Pay within '), span('--:--', 'deadline', 'deadline')],
          DEMO ? 'Demo mode: the button below stands in for the shop\u2019s payment.' : `Complete the payment at the shop before ${when(order.expiresAt)}.`,
          [span('Order ', 'small'), code(order.orderId)],
        ], actions, focus);
        deadline();
        if (first || !events) watch();
        return;
      }
      case 'paid':
        setState('paid');
        dark('Bought');
        ui.hint.textContent = 'Thank you for your order.';
        showResult('paid', 'Paid: it\u2019s yours!', [`${what} for ${price(order.priceCents ?? sale.priceCents)} each.`, [span('Order ', 'small'), code(order.orderId)]], [], focus);
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

  function code(text) {
    const c = document.createElement('code');
    c.textContent = text;
    return c;
  }

  function randomHex() {
    const b = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  /** The payment deadline, on the server's clock. */
  function deadline() {
    const end = Date.parse(order.expiresAt);
    const tick = () => {
      const el = $('deadline');
      if (!el || !order || order.status !== 'reserved') return;
      const ms = end - serverNow();
      el.textContent = left(ms).replace(/^00:/, '');
      if (ms > 0) timers.deadline = setTimeout(tick, (ms % 1000 || 1000) + 1);
      else el.textContent = 'time is up';
    };
    tick();
  }

  /** Status changes of the held order: server-sent events, or polling when they fail. */
  function watch() {
    unwatch();
    if (!('EventSource' in window)) return pollOrder();
    const es = new EventSource(`/api/orders/${enc(order.orderId)}/events?access_token=${enc(token)}`);
    events = es;
    es.addEventListener('status', (e) => {
      const o = JSON.parse(e.data);
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
        const o = await api('GET', `/api/orders/${enc(order.orderId)}`);
        if (o.status !== order.status) return hold(o, false);
      } catch {
        // try again below
      }
      pollOrder();
    }, 2000 + Math.random() * 1000);
  }

  async function pay(e) {
    const b = e.currentTarget;
    b.disabled = true;
    b.textContent = 'Paying…';
    try {
      // The same paymentRef on a retry: paying is idempotent.
      hold(await api('POST', `/api/orders/${enc(order.orderId)}/pay`, { paymentRef: order.paymentRef }), true);
    } catch (err) {
      if (err.code === 'expired') return hold({ ...order, status: 'expired' }, true);
      b.disabled = false;
      b.textContent = 'Pay now (demo)';
      showInline(err.message);
    }
  }

  async function cancel(e) {
    const b = e.currentTarget;
    b.disabled = true;
    try {
      hold(await api('POST', `/api/orders/${enc(order.orderId)}/cancel`, {}), true);
    } catch (err) {
      b.disabled = false;
      showInline(err.message);
    }
  }

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

  function setToken(t) {
    token = t;
    userName = t ? subject(t) : '';
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    ui.who.hidden = !t;
    ui.whoName.textContent = userName;
    ui.signin.hidden = !DEMO || !!t;
    ui.shopSignin.hidden = DEMO || !!t;
    if (ui.main.dataset.state === 'live') light();
  }

  /** The user id in a token, for display only (the server verifies it). */
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
    sessionStorage.removeItem(ORDER_KEY);
    setToken(null);
  }

  function askSignIn() {
    if (!DEMO) return;
    fieldError('Enter a name to sign in, then press Buy.');
    ui.user.focus();
  }

  function fieldError(message) {
    ui.userError.textContent = message;
    ui.user.setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  async function signIn(e) {
    e.preventDefault();
    const name = ui.user.value.trim();
    if (!name) return fieldError('Enter a name.'), ui.user.focus();
    if (name.length > 64 || !NAME_RE.test(name)) {
      return fieldError('Use up to 64 letters, digits, spaces and . _ @ - (not at the ends).'), ui.user.focus();
    }
    fieldError('');
    try {
      const r = await api('POST', '/api/demo/token', { userId: name });
      setToken(r.token);
      ui.user.value = '';
      (ui.buy.disabled ? ui.signout : ui.buy).focus();
    } catch (err) {
      fieldError(err.code === 'not_found' ? 'Demo sign-in is off on this server.' : err.message);
      ui.user.focus();
    }
  }

  // ---------------------------------------------------------------- start
  async function resume() {
    // A reservation made earlier in this tab: show it again after a reload.
    const id = sessionStorage.getItem(ORDER_KEY);
    if (!id || !token) return;
    try {
      const o = await api('GET', `/api/orders/${enc(id)}`);
      if (o.saleId === saleId) hold(o, false);
    } catch {
      sessionStorage.removeItem(ORDER_KEY);
    }
  }

  async function start() {
    try {
      const [s] = await Promise.all([fetchSale(false), syncClock()]);
      renderSale(s);
      await resume();
      follow(s);
    } catch (err) {
      if (err.code === 'not_found') {
        document.title = 'No such sale · seckill';
        ui.name.textContent = 'No such sale';
        ui.desc.textContent = 'This sale does not exist. See the sales on the home page.';
        ui.status.hidden = true;
        ui.form.hidden = true;
        ui.price.parentElement.hidden = true;
        ui.signin.hidden = true;
        ui.main.querySelector('.countdown').hidden = true;
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
    if (!document.hidden && sale && ui.main.dataset.state === 'upcoming') syncClock().then(countdown, () => {});
  });

  loadToken();
  start();
})();
