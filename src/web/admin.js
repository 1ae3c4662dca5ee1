// seckill operators' dashboard. Plain JS, no build step; charts by uPlot (global `uPlot`).
// The admin key lives in sessionStorage only: it is gone when the tab closes.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const KEY_STORE = 'seckill.adminKey';
  const WINDOW_S = 300; // the charts' span: the last five minutes
  const enc = encodeURIComponent;

  let key = sessionStorage.getItem(KEY_STORE);
  let sales = [];
  let selected = null; // id of the sale shown
  let salesTimer = 0;
  let liveTimer = 0;
  let liveGen = 0; // bumps on every selection, so a late answer for another sale is dropped

  // ---------------------------------------------------------------- helpers
  /** Build an element: h('td', { className: 'num' }, 'text', child…). */
  function h(tag, props = {}, ...children) {
    const el = Object.assign(document.createElement(tag), props);
    el.append(...children.filter((c) => c !== null && c !== undefined));
    return el;
  }

  const nf = new Intl.NumberFormat();
  const num = (n) => (n === null || n === undefined ? '—' : nf.format(n));
  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '—');
  const dateTime = (iso) => new Date(iso).toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const ms = (v) => (v === null || v === undefined ? '—' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
  const STATUS_TEXT = { upcoming: 'Upcoming', live: 'Live', sold_out: 'Sold out', ended: 'Ended', paused: 'Paused' };
  function setPill(el, status, text) {
    el.dataset.status = status;
    el.textContent = text || STATUS_TEXT[status] || status;
  }

  function pill(status, text) {
    const p = h('span', { className: 'pill' });
    setPill(p, status, text);
    return p;
  }

  function announce(text) {
    $('announce').textContent = text;
  }

  /** Admin API call; a refused key sends the operator back to the login. */
  async function api(method, url, body, accept = 'application/json') {
    const headers = { authorization: `Bearer ${key}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch {
      throw Object.assign(new Error('The network failed.'), { code: 'network' });
    }
    if (accept !== 'application/json' && res.ok) return res;
    const data = await res.json().catch(() => null);
    if (res.status === 401 || res.status === 403) {
      logout('The admin key was refused. Enter it again.');
      throw Object.assign(new Error('unauthorized'), { code: 'unauthorized' });
    }
    if (!res.ok) throw Object.assign(new Error(data?.error?.message || `HTTP ${res.status}`), { code: data?.error?.code || 'http' });
    return data;
  }

  // Server clock (for the "in 10 s" buttons): offset measured from /api/time, corrected for the round trip.
  let clockOffset = 0;
  async function syncClock() {
    const t0 = performance.now();
    const res = await fetch('/api/time', { cache: 'no-store' });
    const t1 = performance.now();
    const { serverTime } = await res.json();
    clockOffset = Date.parse(serverTime) - (performance.timeOrigin + (t0 + t1) / 2);
  }
  const serverNow = () => performance.timeOrigin + performance.now() + clockOffset;

  // ---------------------------------------------------------------- login
  function showLogin(message) {
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login-view').hidden = false;
    $('key-error').textContent = message || '';
    $('key').setAttribute('aria-invalid', message ? 'true' : 'false');
    $('key').focus();
  }

  function logout(message) {
    key = null;
    sessionStorage.removeItem(KEY_STORE);
    clearTimeout(salesTimer);
    clearTimeout(liveTimer);
    clearTimeout(orders.timer);
    selected = null;
    showLogin(message);
  }

  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('key');
    const candidate = input.value.trim();
    if (!candidate) return showLogin('Enter the admin key.');
    key = candidate;
    try {
      await api('GET', '/api/admin/sales');
    } catch (err) {
      if (err.code !== 'unauthorized') showLogin(`Could not check the key: ${err.message}`);
      return;
    }
    sessionStorage.setItem(KEY_STORE, key);
    input.value = '';
    enter();
  });

  $('logout').addEventListener('click', () => logout(''));

  // ---------------------------------------------------------------- sales list
  async function enter() {
    $('login-view').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    syncClock().catch(() => {});
    await loadSales();
    const fromHash = /^#sale=([\w-]+)$/.exec(location.hash)?.[1];
    const first = sales.find((s) => s.id === fromHash) || sales.find((s) => s.status === 'live') || sales.find((s) => s.status === 'upcoming') || sales[sales.length - 1];
    if (first) select(first.id, false);
  }

  async function loadSales() {
    clearTimeout(salesTimer);
    try {
      sales = (await api('GET', '/api/admin/sales')).sales;
      sales.sort((a, b) => Date.parse(b.startsAt) - Date.parse(a.startsAt));
      renderSales();
    } catch (err) {
      if (err.code === 'unauthorized') return;
    }
    salesTimer = setTimeout(loadSales, 5000);
  }

  let salesShown = '';
  function renderSales() {
    const sig = JSON.stringify(sales.map((s) => [s.id, s.name, s.status, s.stock])) + selected;
    if (sig === salesShown) return; // keep the focus where it is when nothing changed
    salesShown = sig;
    $('no-sales').hidden = sales.length > 0;
    $('sale-list').replaceChildren(...sales.map((s) => {
      const p = pill(s.status);
      const b = h('button', { type: 'button' },
        h('span', { className: 'line' }, h('span', { className: 'name', textContent: s.name }), p),
        h('span', { className: 'meta', textContent: `${num(s.stock)} units · ${dateTime(s.startsAt)}` }));
      b.setAttribute('aria-current', String(s.id === selected));
      b.addEventListener('click', () => select(s.id, true));
      return h('li', {}, b);
    }));
  }

  // ---------------------------------------------------------------- create a sale
  const form = $('create-form');
  const fields = ['name', 'description', 'price', 'stock', 'starts', 'duration', 'limit', 'window'];

  function openCreate(open) {
    $('create').hidden = !open;
    $('new-sale').setAttribute('aria-expanded', String(open));
    if (open) {
      if (!$('f-starts').value) setStartsIn(60);
      $('f-name').focus();
    }
  }
  $('new-sale').addEventListener('click', () => openCreate($('create').hidden));
  $('create-cancel').addEventListener('click', () => {
    openCreate(false);
    $('new-sale').focus();
  });

  /** The datetime-local value for the server's now + `s` seconds, in local time. */
  function setStartsIn(s) {
    const d = new Date(serverNow() + s * 1000);
    const p = (n) => String(n).padStart(2, '0');
    $('f-starts').value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    fieldError('starts', '');
  }
  for (const b of document.querySelectorAll('[data-starts-in]')) {
    b.addEventListener('click', () => setStartsIn(Number(b.dataset.startsIn)));
  }

  function fieldError(name, message) {
    $(`f-${name}-error`).textContent = message;
    $(`f-${name}`).setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  const intIn = (v, lo, hi) => /^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi;

  /** Check the form; returns the API body, or null after showing the messages. */
  function readForm() {
    const v = (n) => $(`f-${n}`).value.trim();
    const errors = {};
    if (!v('name')) errors.name = 'Enter a name.';
    else if (v('name').length > 200) errors.name = 'At most 200 characters.';
    if (v('description').length > 4000) errors.description = 'At most 4,000 characters.';
    if (!/^\d{1,10}(\.\d{1,2})?$/.test(v('price'))) errors.price = 'Enter a price such as 9.99 (at most two decimals).';
    if (!intIn(v('stock'), 1, 10_000_000)) errors.stock = 'Enter a whole number of units from 1 to 10,000,000.';
    const startsAt = v('starts') ? new Date(v('starts')) : null;
    if (!startsAt || Number.isNaN(startsAt.getTime())) errors.starts = 'Choose when the sale starts.';
    if (v('duration') && !intIn(v('duration'), 1, 525_600)) errors.duration = 'Enter whole minutes (at least 1), or leave empty for no end.';
    if (!intIn(v('limit'), 1, 1000)) errors.limit = 'Enter a whole number from 1 to 1,000.';
    if (!intIn(v('window'), 1, 10_080)) errors.window = 'Enter whole minutes from 1 to 10,080 (a week).';
    for (const f of fields) fieldError(f, errors[f] || '');
    const bad = fields.find((f) => errors[f]);
    if (bad) {
      $(`f-${bad}`).focus();
      return null;
    }
    const body = {
      name: v('name'),
      priceCents: Math.round(Number(v('price')) * 100),
      stock: Number(v('stock')),
      startsAt: startsAt.toISOString(),
      perUserLimit: Number(v('limit')),
      paymentWindowSeconds: Number(v('window')) * 60,
    };
    if (v('description')) body.description = v('description');
    if (v('duration')) body.endsAt = new Date(startsAt.getTime() + Number(v('duration')) * 60_000).toISOString();
    return body;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    $('create-error').textContent = '';
    const body = readForm();
    if (!body) return;
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      const sale = await api('POST', '/api/admin/sales', body);
      form.reset();
      openCreate(false);
      announce(`Sale "${sale.name}" created.`);
      await loadSales();
      select(sale.id, true);
    } catch (err) {
      if (err.code !== 'unauthorized') $('create-error').textContent = `The sale was not created: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  // ---------------------------------------------------------------- the selected sale
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

  /** The last five minutes, one point per second: [t, ...series] arrays as uPlot takes them. */
  let store = null;
  const emptyStore = () => ({ t: [], req: OUTCOMES.map(() => []), p50: [], p99: [], written: [], backlog: [] });
  let charts = null;

  function select(id, focus) {
    selected = id;
    liveGen++;
    history.replaceState(null, '', `#sale=${id}`);
    store = emptyStore();
    $('pick').hidden = true;
    $('detail').hidden = false;
    renderSales();
    const s = sales.find((x) => x.id === id);
    if (s) renderHead(s);
    if (focus) $('d-name').focus();
    orders.reset();
    clearTimeout(liveTimer);
    live(liveGen);
  }

  function renderHead(s) {
    $('d-name').textContent = s.name;
    const parts = [
      `Opens ${dateTime(s.startsAt)}`,
      s.endsAt ? `ends ${dateTime(s.endsAt)}` : 'no end',
      `price ${money.format(s.priceCents / 100)}`,
      `limit ${s.perUserLimit} per person`,
      `payment window ${Math.round(s.paymentWindowSeconds / 60)} min`,
      `id ${s.id}`,
    ];
    $('d-meta').textContent = parts.join(' · ');
    setPill($('d-status'), s.status);
    $('pause').textContent = s.paused ? 'Resume sale' : 'Pause sale';
    $('pause').className = s.paused ? 'btn btn-primary' : 'btn btn-warn';
    $('pause').dataset.paused = String(s.paused);
    $('d-link').href = `/sales/${enc(s.id)}`;
  }

  $('pause').addEventListener('click', async () => {
    const b = $('pause');
    const action = b.dataset.paused === 'true' ? 'resume' : 'pause';
    b.disabled = true;
    try {
      const s = await api('POST', `/api/admin/sales/${enc(selected)}/${action}`, {});
      renderHead(s);
      announce(action === 'pause' ? 'Sale paused.' : 'Sale resumed.');
      loadSales();
    } catch (err) {
      if (err.code !== 'unauthorized') announce(`Could not ${action}: ${err.message}`);
    } finally {
      b.disabled = false;
    }
  });

  /** Every second: the figures now, and the per-second points the charts do not have yet. */
  async function live(gen) {
    const since = store.t.length ? `?since=${store.t[store.t.length - 1]}` : '';
    try {
      const d = await api('GET', `/api/admin/sales/${enc(selected)}/live${since}`);
      if (gen !== liveGen) return;
      merge(d.series);
      renderLive(d);
    } catch (err) {
      if (err.code === 'unauthorized' || gen !== liveGen) return;
      $('k-note').textContent = `Live figures paused: ${err.message}. Retrying…`;
    }
    if (gen === liveGen) liveTimer = setTimeout(() => live(gen), 1000);
  }

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

  function last(arr) {
    for (let i = arr.length - 1; i >= Math.max(0, arr.length - 3); i--) if (arr[i] !== null) return arr[i];
    return null;
  }

  function renderLive(d) {
    const { stats, sale } = d;
    const i = store.t.length - 1;
    renderHead(sale);
    const idx = sales.findIndex((x) => x.id === sale.id);
    if (idx >= 0 && sales[idx].status !== sale.status) {
      sales[idx] = sale;
      renderSales();
    }
    $('k-stock').textContent = num(stats.stock);
    $('k-available').textContent = num(stats.available);
    $('k-reserved').textContent = num(stats.reserved);
    $('k-paid').textContent = num(stats.paid);
    $('k-expired').textContent = num(stats.expired);
    $('k-rps').textContent = i >= 0 ? num(store.req.reduce((sum, a) => sum + a[i], 0)) : '—';
    $('k-p50').textContent = ms(last(store.p50));
    $('k-p99').textContent = ms(last(store.p99));
    $('k-written').textContent = i >= 0 ? num(store.written[i]) : '—';
    $('k-backlog').textContent = num(d.writer.backlog);
    // Records the database refused: an operator must repair them (README, distributed mode).
    const quarantined = d.writer.quarantined ?? 0;
    $('k-quarantined').textContent = num(quarantined);
    $('k-quarantined').style.color = quarantined > 0 ? '#b91c1c' : '';
    if (d.soldOutAt) {
      const after = ((Date.parse(d.soldOutAt) - Date.parse(sale.startsAt)) / 1000).toFixed(1);
      $('k-soldout').replaceChildren(time(d.soldOutAt), h('span', { className: 'sub', textContent: `${after} s after the start` }));
    } else {
      $('k-soldout').textContent = sale.status === 'sold_out' ? 'yes' : 'not yet';
    }
    const total = Object.values(stats.requests).reduce((a, b) => a + b, 0);
    $('k-note').textContent = `${num(total)} buy requests so far · cancelled ${num(stats.cancelled)}` +
      (stats.pendingWrites ? ` · ${num(stats.pendingWrites)} decided orders not yet in the database` : '') +
      ` · updated ${time(d.serverTime)}`;
    drawCharts();
  }

  // ---------------------------------------------------------------- charts (uPlot)
  /** Ticks as 14:03:05 (or 14:03 on whole minutes), in local time. */
  const tickTime = (u, splits) => splits.map((s) => {
    const d = new Date(s * 1000);
    const p = (n) => String(n).padStart(2, '0');
    return d.getSeconds() ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` : `${p(d.getHours())}:${p(d.getMinutes())}`;
  });

  function chart(el, series, axes, height = 220) {
    const u = new uPlot({
      width: Math.max(280, el.clientWidth),
      height,
      series: [{ label: 'time' }, ...series],
      axes,
      scales: { x: { time: true } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    }, [[], ...series.map(() => [])], el);
    new ResizeObserver(() => u.setSize({ width: Math.max(280, el.clientWidth), height })).observe(el);
    return u;
  }

  const line = (label, stroke, extra = {}) => ({ label, stroke, width: 2, points: { show: false }, ...extra });
  const axis = (label, extra = {}) => ({ label, size: 56, labelSize: 18, stroke: '#52525b', grid: { stroke: '#e4e4e7' }, ticks: { stroke: '#e4e4e7' }, ...extra });
  const timeAxis = { stroke: '#52525b', grid: { stroke: '#e4e4e7' }, ticks: { stroke: '#e4e4e7' }, values: tickTime, space: 70 };

  function makeCharts() {
    if (typeof uPlot === 'undefined') return null;
    return {
      requests: chart($('chart-requests'),
        OUTCOMES.map(([, label, color], k) => line(label, color, k === 0 ? { fill: 'rgba(21,128,61,.12)' } : {})),
        [timeAxis, axis('requests / s')], 240),
      latency: chart($('chart-latency'),
        [line('p50', '#2563eb'), line('p99', '#dc2626')],
        [timeAxis, axis('ms')]),
      writer: chart($('chart-writer'),
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
    const cut = (a) => a.slice(from);
    const t = cut(store.t);
    for (const [u, data] of [
      [charts.requests, [t, ...store.req.map(cut)]],
      [charts.latency, [t, cut(store.p50), cut(store.p99)]],
      [charts.writer, [t, cut(store.written), cut(store.backlog)]],
    ]) {
      u.setData(data);
      // Outside the cursor, the legend shows the latest second.
      if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idx: t.length - 1 });
    }
  }

  // ---------------------------------------------------------------- orders table
  const orders = {
    cursors: [null], // the `after` of each page seen
    page: 0,
    next: null,
    timer: 0,
    reset() {
      this.cursors = [null];
      this.page = 0;
      this.load();
    },
    async load() {
      const status = $('o-status').value;
      const q = new URLSearchParams({ limit: '10' });
      if (status) q.set('status', status);
      const after = this.cursors[this.page];
      if (after) q.set('after', after);
      const sale = selected;
      try {
        const d = await api('GET', `/api/admin/sales/${enc(sale)}/orders?${q}`);
        if (sale !== selected) return;
        this.next = d.next;
        renderOrders(d.orders);
      } catch (err) {
        if (err.code !== 'unauthorized') announce(`Orders: ${err.message}`);
      }
      $('o-prev').disabled = this.page === 0;
      $('o-next').disabled = !this.next;
      $('o-page').textContent = `Page ${this.page + 1}`;
      // The first page follows new orders by itself; later pages stay put while being read.
      clearTimeout(this.timer);
      if (this.page === 0 && sale === selected) this.timer = setTimeout(() => this.page === 0 && this.load(), 5000);
    },
  };

  function renderOrders(list) {
    $('o-empty').hidden = list.length > 0;
    $('o-body').replaceChildren(...list.map((o) => {
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

  $('o-status').addEventListener('change', () => orders.reset());
  $('o-refresh').addEventListener('click', () => orders.load());
  $('o-prev').addEventListener('click', () => {
    if (orders.page > 0) orders.page--;
    orders.load();
  });
  $('o-next').addEventListener('click', () => {
    if (!orders.next) return;
    orders.cursors[orders.page + 1] = orders.next;
    orders.page++;
    orders.load();
  });

  // CSV of every order of the sale (the key goes in a header, so the download is fetched here).
  $('csv').addEventListener('click', async (e) => {
    e.preventDefault();
    const status = $('o-status').value;
    try {
      const res = await api('GET', `/api/admin/sales/${enc(selected)}/orders${status ? `?status=${status}` : ''}`, undefined, 'text/csv');
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `orders-${selected}${status ? `-${status}` : ''}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      if (err.code !== 'unauthorized') announce(`CSV export failed: ${err.message}`);
    }
  });

  // ---------------------------------------------------------------- start
  if (key) enter();
  else showLogin('');
})();
