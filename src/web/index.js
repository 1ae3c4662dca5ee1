// seckill: the list of sales (/). Static page; the list comes from GET /api/sales.
(() => {
  'use strict';

  const list = document.getElementById('sales');
  const empty = document.getElementById('empty');
  const STATUS_TEXT = { upcoming: 'Upcoming', live: 'Live now', sold_out: 'Sold out', ended: 'Ended', paused: 'Paused' };
  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  /** "in 3 min", from the server's own time in the answer (not the device clock). */
  function relative(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `in ${s} s`;
    if (s < 3600) return `in ${Math.round(s / 60)} min`;
    if (s < 86400) return `in ${Math.round(s / 3600)} h`;
    return `in ${Math.round(s / 86400)} days`;
  }

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
    pill.dataset.status = s.status;
    pill.textContent = STATUS_TEXT[s.status] || s.status;
    line.append(name, pill);
    const meta = document.createElement('span');
    meta.className = 'meta';
    const startsIn = Date.parse(s.startsAt) - Date.parse(s.serverTime);
    const opens = new Date(s.startsAt).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
    meta.textContent = `${money.format(s.priceCents / 100)} · ${s.status === 'upcoming' ? `opens ${opens} (${relative(startsIn)})` : `opened ${opens}`}`;
    a.append(line, meta);
    li.append(a);
    return li;
  }

  async function load() {
    try {
      const res = await fetch('/api/sales');
      if (!res.ok) throw new Error(String(res.status));
      const { sales } = await res.json();
      sales.sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
      list.replaceChildren(...sales.map(item));
      empty.hidden = sales.length > 0;
    } catch {
      empty.textContent = 'Cannot reach the shop right now; trying again…';
      empty.hidden = false;
    }
    document.getElementById('main').setAttribute('aria-busy', 'false');
    setTimeout(load, 15_000 + Math.random() * 5000);
  }

  load();
})();
