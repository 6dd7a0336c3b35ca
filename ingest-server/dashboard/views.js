// The views: overview, funnel, live, events, share links (share tracking is in shares.js).
import { api, query, stream } from './api.js';
import { h, clear, num, pct, delta, time, loading, failure, card, table, csvButton, toast } from './dom.js';
import { lineChart } from './chart.js';
import { shares } from './shares.js';

const METRICS = [['pv', 'Pageviews'], ['uv', 'Visitors'], ['registrations', 'Registrations'], ['checkins', 'Check-ins'],
  ['shares', 'Shares'], ['share_conversions', 'Share conversions']];
const metricLabel = m => (METRICS.find(x => x[0] == m) || [m, m])[1];
const PANELS = [
  { title: 'Top pages', col: 'Page', dim: 'properties.url', metrics: ['pv', 'uv'], cols: ['Views', 'Visitors'] },
  { title: 'Referrers', col: 'Source', dim: 'context.referrer_host', metrics: ['visitors', 'events'], cols: ['Visitors', 'Events'], none: 'Direct / none' },
  { title: 'UTM sources', col: 'utm_source', dim: 'context.utm_source', metrics: ['visitors', 'events'], cols: ['Visitors', 'Events'], none: '(no UTM source)' },
  { title: 'Browsers', col: 'Browser', dim: 'context.browser', metrics: ['visitors', 'events'], cols: ['Visitors', 'Events'], none: '(unknown)' },
  { title: 'Operating systems', col: 'OS', dim: 'context.os', metrics: ['visitors', 'events'], cols: ['Visitors', 'Events'], none: '(unknown)' },
  { title: 'Event types', col: 'Type', dim: 'type', metrics: ['events', 'visitors'], cols: ['Events', 'Visitors'] },
];

// Bucket labels: `2026-06-20T13:00`, `2026-06-20`, a week's Monday, `2026-06`.
const fmtDate = (d, o) => { const t = Date.parse(d.length == 7 ? d + '-01T00:00Z' : d.slice(0, 10) + 'T00:00Z'); return Number.isNaN(t) ? d : new Date(t).toLocaleDateString('en-GB', { timeZone: 'UTC', ...o }); };
const fmtBucket = interval => (x, short) => {
  if (x == null) return '';
  if (interval == 'hour') return short ? x.slice(11, 16) : `${fmtDate(x, { weekday: 'short', day: 'numeric', month: 'short' })}, ${x.slice(11, 16)}`;
  if (interval == 'month') return fmtDate(x, { month: short ? 'short' : 'long', year: 'numeric' });
  if (short) return fmtDate(x, { day: 'numeric', month: 'short' });
  return (interval == 'week' ? 'Week of ' : '') + fmtDate(x, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
};

/** What a new user does first: send an event, or run the quickstart. */
export function onboarding() {
  const base = location.origin;
  const ev = `{"events":[{"event_id":"${crypto.randomUUID()}","type":"page_view","distinct_id":"u1","properties":{"conference_id":"c1","url":"/agenda"}}]}`;
  return h('section.card.empty', { 'aria-label': 'Getting started' },
    h('h1', 'No data yet'),
    h('p', 'Nothing has been recorded for this project. Send a first event with the ingest key:'),
    h('pre', `curl -X POST ${base}/api/analytics/events \\\n  -H 'Content-Type: application/json' -H 'X-API-Key: <ingest key>' \\\n  -d '${ev}'`),
    h('p', 'or fill the project with a realistic demo conference:'),
    h('pre', `cargo run -p empmix-quickstart -- ${base} <ingest key>`),
    h('p', 'then reload this page.'));
}

async function overview(root, ctx) {
  performance.clearMarks('overview-start');
  performance.mark('overview-start');
  const { signal } = ctx, range = ctx.dateRange(), interval = ctx.interval(), metric = ctx.state.metric;
  const base = { date_range: range, filters: ctx.filters() };
  const cards = h('div.cards', { role: 'group', 'aria-label': 'Totals' }, METRICS.map(([m, l]) =>
    h('button.card.stat', { type: 'button', 'aria-pressed': String(m == metric), 'data-metric': m,
      'aria-label': `${l}: loading`, on: { click: () => ctx.set({ metric: m }, true) } },
    h('span.label', l), h('span.value', '…'), h('span.delta.flat', '\u00a0'))));
  const intervalSel = h('select', { 'aria-label': 'Interval', on: { change: e => ctx.set({ interval: e.target.value }, true) } },
    ['hour', 'day', 'week', 'month'].map(i => h('option', { value: i, selected: i == interval, disabled: i == 'hour' && !ctx.hourly() }, `By ${i}`)));
  const chartBox = h('div', loading());
  let series = [];
  const chartCard = card(`${metricLabel(metric)} by ${interval}`, [intervalSel,
    csvButton(`${metric}-by-${interval}`, () => [[interval, metric], ...series.map(p => [p.x, p.y])])], chartBox);
  const panels = PANELS.map(p => ({ ...p, body: h('div', loading()), rows: [] }));
  root.append(cards, chartCard, h('div.grid2', panels.map(p =>
    card(p.title, csvButton(p.title, () => [[p.title, ...p.cols], ...p.rows.map(r => [r.dimensions[0], ...r.metrics])]), p.body))));

  const totals = query({ ...base, metrics: METRICS.map(m => m[0]), include: { totals: true, comparison: range == 'all' ? undefined : 'previous_period' } }, signal)
    .then(r => {
      const cur = r.totals || r.results?.[0]?.metrics || [];
      const prev = r.comparison ? r.comparison.totals || r.comparison.results?.[0]?.metrics || null : null;
      [...cards.children].forEach((el, i) => {
        const d = delta(cur[i] ?? 0, prev ? prev[i] ?? 0 : null);
        el.querySelector('.value').textContent = num(cur[i] ?? 0);
        const dl = el.querySelector('.delta');
        dl.className = `delta ${d.cls}`;
        dl.textContent = d.text || '\u00a0';
        dl.title = d.text ? `${d.label} against the previous period (${num(prev[i] ?? 0)})` : '';
        el.setAttribute('aria-label', `${METRICS[i][1]}: ${num(cur[i] ?? 0)}${d.text ? `, ${d.label} against the previous period` : ''}`);
      });
      if (cur.every(v => !v) && !ctx.state.filters.length) {
        cards.after(h('div.banner', { role: 'status' }, `Nothing recorded for ${ctx.conf} in this date range. Try "All time", or send events (see the Events view for what has arrived).`));
      }
    })
    .catch(e => {
      if (e.name == 'AbortError') return;
      for (const el of cards.children) {
        el.querySelector('.value').textContent = '—';
        el.setAttribute('aria-label', `${el.querySelector('.label').textContent}: not available`);
      }
      cards.after(failure(e, 'Totals'));
    });

  const chart = query({ ...base, metrics: [metric], dimensions: [`time:${interval}`] }, signal)
    .then(r => {
      series = r.results.map(x => ({ x: x.dimensions[0], y: x.metrics[0] }));
      clear(chartBox, series.length ? lineChart(series, { label: metricLabel(metric).toLowerCase(), fmtX: fmtBucket(interval), additive: metric != 'uv' })
        : h('p.empty', 'No data in this date range.'));
    })
    .catch(e => { if (e.name != 'AbortError') clear(chartBox, failure(e)); });

  const tops = panels.map(p => query({ ...base, metrics: p.metrics, dimensions: [p.dim], order_by: [[p.metrics[0], 'desc']], limit: 10 }, signal)
    .then(r => {
      p.rows = r.results.filter(x => x.metrics[0] > 0);
      const max = Math.max(1, ...p.rows.map(x => x.metrics[0]));
      if (!p.rows.length) return clear(p.body, h('p.empty', 'No data in this date range.'));
      clear(p.body, h('div.scroll', h('table.top-list', h('caption.sr', p.title),
        h('thead', h('tr', h('th', { scope: 'col' }, p.col), p.cols.map(c => h('th.num', { scope: 'col' }, c)))),
        h('tbody', p.rows.map(x => {
          const v = x.dimensions[0];
          const bar = h('span.bg');
          bar.style.width = `${(x.metrics[0] / max) * 100}%`;
          const name = v == null ? h('span.muted', p.none || '(none)')
            : h('button.link', { type: 'button', title: `Filter by ${v}`, 'aria-label': `Filter: ${p.title} is ${v}`,
              on: { click: () => ctx.addFilter(p.dim, v) } }, String(v));
          return h('tr', { class: v == null ? null : 'clickable' }, h('td.name', bar, name), x.metrics.map(m => h('td.num', num(m))));
        })))));
    })
    .catch(e => { if (e.name != 'AbortError') clear(p.body, failure(e)); }));
  await Promise.all([totals, chart, ...tops]);
  if (!signal.aborted) {
    performance.clearMeasures('overview');
    performance.measure('overview', 'overview-start');
    root.dataset.ready = 'overview';
  }
}

async function funnel(root, ctx) {
  const steps = ['page_view', 'share_open', 'registration', 'checkin'];
  const names = { page_view: 'Page view', share_open: 'Share opened', registration: 'Registration', checkin: 'Check-in' };
  const body = h('div', loading());
  let rows = [];
  root.append(card('Conversion funnel', csvButton('funnel', () => [['step', 'persons', 'conversion', 'conversion_from_first'],
    ...rows.map(r => [r.event, r.visitors, r.conversion, r.conversion_from_first])]),
  h('p.muted', 'Persons who did each step within 7 days of the previous one, in the chosen date range.'), body));
  const r = await query({ funnel: { steps: steps.map(event => ({ event })), window: '7d' }, date_range: ctx.dateRange(), filters: ctx.filters() }, ctx.signal)
    .catch(e => { if (e.name != 'AbortError') clear(body, failure(e, 'Funnel')); return null; });
  if (!r) return;
  rows = r.funnel || [];
  const max = Math.max(1, ...rows.map(s => s.visitors));
  if (!rows.length || !rows[0].visitors) clear(body, h('p.empty', 'No page views in this date range yet, so the funnel is empty.'));
  else clear(body, h('div.funnel', { role: 'list' }, rows.map((s, i) => {
    const fill = h('div.fill');
    fill.style.width = `${(s.visitors / max) * 100}%`;
    return h('div.step', { role: 'listitem', 'aria-label': `${names[s.event] || s.event}: ${num(s.visitors)} persons${i ? `, ${pct(s.conversion)} of the previous step` : ''}` },
      h('div', h('strong', names[s.event] || s.event), h('div.conv', i ? `${pct(s.conversion)} of previous · ${pct(s.conversion_from_first)} of first` : 'first step')),
      h('div.track', fill), h('div.num', h('strong', num(s.visitors)), s.visitors == 1 ? ' person' : ' persons'));
  })));
  root.dataset.ready = 'funnel';
}

/** A time of today, else the day and the time. */
const short = ms => {
  const d = new Date(ms), today = new Date().toDateString() == d.toDateString();
  return today ? d.toLocaleTimeString('en-GB') : d.toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
};

function live(root, ctx) {
  const status = h('span', h('span.live-dot.off'), 'Connecting…');
  const stats = [['active_visitors', 'Active visitors (last 5 min)'], ['page_views_last_minute', 'Page views (last minute)'], ['page_views_today', 'Page views today']];
  const cards = h('div.cards', stats.map(([k, l]) => h('div.card.stat', { 'data-live': k }, h('span.label', l), h('span.value', '…'))));
  const feed = h('ul.feed', { 'aria-label': 'Newest events' });
  const updated = h('span.muted');
  root.append(h('div.panel-head', h('h2', 'Live'), h('span', { role: 'status', 'aria-live': 'polite', id: 'live-status' }, status)),
    cards, card('Newest events', updated, feed));
  const conn = stream(`/api/analytics/live?conference_id=${encodeURIComponent(ctx.conf)}`, (type, data) => {
    if (type != 'summary') return;
    const m = JSON.parse(data);
    for (const [k] of stats) cards.querySelector(`[data-live="${k}"] .value`).textContent = num(m[k] ?? 0);
    updated.textContent = `updated ${new Date(m.at || Date.now()).toLocaleTimeString('en-GB')}`;
    const newest = m.newest || [];
    clear(feed, newest.length ? newest.map(e => h('li', h('span.muted', { title: time(e.at) }, short(e.at)), h('strong', e.type),
      e.page ? h('span', e.page) : null, h('span.muted', e.distinct_id ?? ''))) : h('li.muted', 'No events yet today.'));
    root.dataset.ready = 'live';
  }, (st, detail) => {
    cards.classList.toggle('stale', st != 'open');
    clear(status, h(`span.live-dot${st == 'open' ? '' : '.off'}`),
      st == 'open' ? 'Live' : st == 'reconnecting' ? `reconnecting… (${detail})` : 'Stopped');
  });
  ctx.cleanup.push(() => conn.close());
}

async function events(root, ctx) {
  const type = h('input', { type: 'text', name: 'type', value: ctx.state.etype || '', placeholder: 'e.g. page_view' });
  const who = h('input', { type: 'text', name: 'distinct_id', value: ctx.state.eid || '', placeholder: 'distinct id' });
  const form = h('form.form', { role: 'search', 'aria-label': 'Event filters', on: { submit: e => { e.preventDefault(); ctx.set({ etype: type.value.trim() || null, eid: who.value.trim() || null }, true); } } },
    h('label', 'Type', type), h('label', 'Distinct id', who), h('button.primary', { type: 'submit' }, 'Filter'));
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load older events');
  const note = h('div');
  const loaded = [];
  root.append(card('Recent events', csvButton('events', () => [['server_ts', 'type', 'distinct_id', 'session_id', 'event_id', 'properties', 'context'],
    ...loaded.map(e => [new Date(e.server_ts).toISOString(), e.type, e.distinct_id, e.session_id, e.event_id, e.properties, e.context])]),
  form, h('div.scroll', h('table', h('caption.sr', 'Recent events, newest first'),
    h('thead', h('tr', ['', 'Time', 'Type', 'Distinct id', 'Page'].map(c => h('th', { scope: 'col' }, c)))), tbody)), note, more));
  async function page(before) {
    const q = new URLSearchParams({ conference_id: ctx.conf, limit: '50' });
    if (ctx.state.etype) q.set('type', ctx.state.etype);
    if (ctx.state.eid) q.set('distinct_id', ctx.state.eid);
    if (before != null) q.set('before', before);
    clear(note, loading());
    more.hidden = true;
    let r;
    try { r = await api(`/api/analytics/events?${q}`, { signal: ctx.signal }); } catch (e) {
      if (e.name == 'AbortError') throw e;
      clear(note, failure(e, 'Events'));
      // "Load older events" tries the same page again.
      more.hidden = before == null;
      return;
    }
    clear(note);
    loaded.push(...r.events);
    for (const e of r.events) {
      const detail = h('tr', { hidden: true }, h('td', { colspan: 5 }, h('pre', JSON.stringify(e, null, 2))));
      const btn = h('button.ghost', { type: 'button', 'aria-expanded': 'false', 'aria-label': `Show the JSON of ${e.type} event` }, '▸');
      btn.addEventListener('click', () => {
        detail.hidden = !detail.hidden;
        btn.setAttribute('aria-expanded', String(!detail.hidden));
        btn.textContent = detail.hidden ? '▸' : '▾';
      });
      tbody.append(h('tr', h('td', btn), h('td', { class: 'nowrap', title: time(e.server_ts) }, short(e.server_ts)), h('td', h('strong', e.type)), h('td.text', e.distinct_id ?? ''),
        h('td.text', e.properties?.url ?? e.properties?.page ?? '')), detail);
    }
    if (!loaded.length) note.append(h('p.empty', 'No events match. Events appear here seconds after they are sent.'));
    more.hidden = r.next_before == null;
    more.onclick = () => page(r.next_before).catch(() => { /* aborted: the view changed */ });
    root.dataset.ready = 'events';
  }
  await page(null);
}

async function links(root, ctx) {
  const labelIn = h('input', { type: 'text', name: 'label', placeholder: 'e.g. for the sponsor' });
  const expiry = h('select', { name: 'expiry' }, [['', 'Never'], ['1', '1 day'], ['7', '7 days'], ['30', '30 days']].map(([v, l]) => h('option', { value: v }, l)));
  const created = h('div', { role: 'status' });
  const list = h('div', loading());
  const form = h('form.form', { 'aria-label': 'Create a share link', on: { submit: async e => {
    e.preventDefault();
    try {
      const days = +expiry.value;
      const r = await api('/api/analytics/links', { method: 'POST', body: { conference_id: ctx.conf, label: labelIn.value.trim() || null, expires_at: days ? Date.now() + days * 864e5 : null } });
      const url = `${location.origin}/#link=${encodeURIComponent(r.token)}`;
      const input = h('input', { type: 'text', readonly: true, value: url, 'aria-label': 'The new share link', id: 'new-link' });
      clear(created, h('div.banner', h('p', h('strong', 'Link created. '), 'Copy it now: it is shown only once.'),
        h('div.token', input, h('button', { type: 'button', on: { click: async () => {
          input.select();
          try { await navigator.clipboard.writeText(url); toast('Copied'); } catch { toast('Select the link and copy it'); }
        } } }, 'Copy'))));
      labelIn.value = '';
      await refresh();
    } catch (err) { clear(created, failure(err, 'Could not create the link')); }
  } } }, h('label', 'Label', labelIn), h('label', 'Expires', expiry), h('button.primary', { type: 'submit' }, 'Create link'));
  root.append(card(`Read-only share links for ${ctx.conf}`, null,
    h('p.muted', 'Anyone with a link sees this conference\'s overview and live view, read-only, until it expires or is revoked.'), form, created),
  card('Existing links', null, list));
  async function refresh() {
    const r = await api('/api/analytics/links', { signal: ctx.signal });
    const rows = r.links || [];
    const state = l => (l.revoked ? 'revoked' : l.expires_at && l.expires_at < Date.now() ? 'expired' : 'active');
    clear(list, rows.length ? table([
      { label: 'Label', text: true, cell: l => l.label || h('span.muted', '(none)') },
      { label: 'Conference', text: true, cell: l => l.conference_id },
      { label: 'Created', cell: l => time(l.created_at) },
      { label: 'Expires', cell: l => (l.expires_at ? time(l.expires_at) : 'never') },
      { label: 'Status', cell: l => h('span.badge', state(l)) },
      { label: '', cell: l => (state(l) != 'active' ? '' : h('button', { type: 'button', 'aria-label': `Revoke link ${l.label || l.id}`, on: { click: async e => {
        const b = e.currentTarget;
        if (b.dataset.armed != '1') { b.dataset.armed = '1'; b.textContent = 'Really revoke?'; return; }
        try { await api(`/api/analytics/links/${encodeURIComponent(l.id)}`, { method: 'DELETE' }); toast('Link revoked'); await refresh(); } catch (err) { clear(created, failure(err, 'Could not revoke')); }
      } } }, 'Revoke')) },
    ], rows, 'Share links') : h('p.empty', 'No share links yet.'));
    root.dataset.ready = 'links';
  }
  await refresh().catch(e => { if (e.name != 'AbortError') clear(list, failure(e, 'Share links')); });
}

export const views = { overview, shares, funnel, live, events, links };
