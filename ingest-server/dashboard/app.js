// The dashboard: sign-in, the view state in the URL, the header controls and the views.
import { api, auth, hooks, query } from './api.js';
import { h, clear, failure } from './dom.js';
import { views, onboarding } from './views.js';

const $ = id => document.getElementById(id);
const TABS = [['overview', 'Overview'], ['shares', 'Share tracking'], ['funnel', 'Funnel'], ['live', 'Live'],
  ['events', 'Events'], ['links', 'Share links']];
const LINK_TABS = ['overview', 'live'];
const DEFAULTS = { view: 'overview', range: '30d', metric: 'pv', credit: 'full' };

let who = null, state = {}, conferences = [], current = null, listFailed = false;

// ----- the view state <-> the URL (never any key) -----
function readUrl() {
  const q = new URLSearchParams(location.search);
  const st = { ...DEFAULTS };
  for (const k of ['view', 'conf', 'range', 'from', 'to', 'interval', 'metric', 'credit', 'etype', 'eid']) {
    if (q.get(k)) st[k] = q.get(k);
  }
  st.filters = q.getAll('f').map(f => {
    const i = f.indexOf(':');
    return i > 0 ? [f.slice(0, i), f.slice(i + 1)] : null;
  }).filter(Boolean);
  return st;
}
function writeUrl(push) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (k == 'filters' || v == null || v === '' || (DEFAULTS[k] == v && k != 'view')) continue;
    if (who?.scope == 'link' && k == 'conf') continue;
    q.set(k, v);
  }
  for (const [d, v] of state.filters) q.append('f', `${d}:${v}`);
  const url = `${location.pathname}?${q}`;
  if (url != location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

// ----- dates in the project's time zone -----
const dayIn = (tz, ms = Date.now()) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
const addDays = (d, n) => new Date(Date.parse(d + 'T00:00:00Z') + n * 864e5).toISOString().slice(0, 10);
function dateRange() {
  const tz = who?.time_zone || 'UTC', today = (() => { try { return dayIn(tz); } catch { return dayIn('UTC'); } })();
  switch (state.range) {
    case 'today': return [today, today];
    case 'yesterday': return [addDays(today, -1), addDays(today, -1)];
    case '7d': return [addDays(today, -6), today];
    case 'month': return [today.slice(0, 8) + '01', today];
    case 'year': return [today.slice(0, 5) + '01-01', today];
    case 'all': return 'all';
    case 'custom': if (state.from && state.to) return state.from <= state.to ? [state.from, state.to] : [state.to, state.from];
    // falls through
    default: return [addDays(today, -29), today];
  }
}
function rangeDays() {
  const r = dateRange();
  return r == 'all' ? Infinity : (Date.parse(r[1]) - Date.parse(r[0])) / 864e5 + 1;
}
function defaultInterval() {
  const days = rangeDays();
  return days <= 2 ? 'hour' : days <= 62 ? 'day' : days <= 190 ? 'week' : 'month';
}
// Hourly buckets only up to a month (past that a chart has thousands of points).
const HOURS_UP_TO = 31;

// ----- what a view is given -----
function context(signal) {
  return {
    state, who, signal, conferences,
    conf: state.conf,
    link: who.scope == 'link',
    dateRange,
    interval: () => (state.interval == 'hour' && rangeDays() > HOURS_UP_TO ? 'day' : state.interval || defaultInterval()),
    hourly: () => rangeDays() <= HOURS_UP_TO,
    filters(extra = true) {
      const all = [['is', 'properties.conference_id', [state.conf]]];
      if (extra) for (const [d, v] of state.filters) all.push(['is', d, [v]]);
      return ['and', ...all];
    },
    set: (patch, push = false) => setState(patch, push),
    addFilter(dim, value) {
      if (!state.filters.some(([d, v]) => d == dim && v == value)) setState({ filters: [...state.filters, [dim, value]] }, true);
    },
    cleanup: [],
  };
}

function setState(patch, push = false) {
  state = { ...state, ...patch };
  writeUrl(push);
  render();
}

// ----- sign-in -----
function showSignin(message) {
  who = null;
  current?.abort();
  for (const id of ['controls', 'who', 'tabs', 'filters']) $(id).hidden = true;
  clear($('view'));
  $('signin').hidden = false;
  const err = $('signin-error');
  err.hidden = !message;
  err.textContent = message || '';
  $('key').value = '';
  $('key').focus();
}

hooks.unauthorized = () => {
  const wasLink = who?.scope == 'link' || auth.isLink();
  auth.clear();
  showSignin(wasLink ? 'This share link is no longer valid: it was revoked or it expired. Ask its owner for a new one.'
    : 'Your read key is no longer accepted. Sign in again.');
};

async function signIn(key) {
  try {
    return await api('/api/analytics/whoami', { key });
  } catch (e) {
    if (e.status == 401) return { error: 'That read key was not accepted. Check the key given to empmix-server with --read-key (or printed at its start) and try again.' };
    return { error: `Could not sign in: ${e.message}` };
  }
}

$('signin-form').addEventListener('submit', async e => {
  e.preventDefault();
  const key = $('key').value.trim();
  if (!key) return;
  const btn = e.submitter || $('signin-form').querySelector('button');
  btn.disabled = true;
  const r = await signIn(key);
  btn.disabled = false;
  if (r.error) return showSignin(r.error);
  auth.setKey(key);
  start(r);
});
$('signout').addEventListener('click', () => {
  auth.clear();
  history.replaceState(null, '', location.pathname);
  state = readUrl();
  showSignin('');
});

// ----- header -----
function fillHeader() {
  $('signin').hidden = true;
  $('controls').hidden = false;
  $('who').hidden = false;
  $('tabs').hidden = false;
  const link = who.scope == 'link';
  $('signout').hidden = link;
  $('who-text').textContent = link
    ? `Shared read-only view${who.link?.expires_at ? ` · expires ${new Date(who.link.expires_at).toLocaleString('en-GB')}` : ''}`
    : `Project ${who.project}`;
  $('conf').parentElement.hidden = link;
  $('fixed-conf').hidden = !link;
  $('fixed-conf').textContent = link ? `Conference ${who.conference_id}` : '';
  const tabs = TABS.filter(([id]) => !link || LINK_TABS.includes(id));
  clear($('tabs'), tabs.map(([id, label]) => h('a', {
    href: `?view=${id}`, 'data-view': id,
    on: { click: e => { e.preventDefault(); setState({ view: id }, true); } },
  }, label)));
}

function syncControls() {
  const sel = $('conf');
  const names = conferences.includes(state.conf) || !state.conf ? conferences : [state.conf, ...conferences];
  clear(sel, names.map(c => h('option', { value: c, selected: c == state.conf }, c)));
  if (!names.length) sel.append(h('option', { value: '' }, listFailed ? 'Conferences not available' : 'No conferences yet'));
  // Only the overview and the funnel take a date range.
  const ranged = ['overview', 'funnel'].includes(state.view);
  $('range').parentElement.hidden = !ranged;
  $('range').value = state.range;
  $('custom').hidden = !ranged || state.range != 'custom';
  const r = dateRange();
  if (Array.isArray(r)) { $('from').value = state.from || r[0]; $('to').value = state.to || r[1]; }
  for (const a of $('tabs').querySelectorAll('a')) {
    if (a.dataset.view == state.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const chips = $('filters');
  const filtered = state.filters.length && ['overview', 'funnel'].includes(state.view);
  chips.hidden = !filtered;
  clear(chips, filtered ? [h('span.muted', 'Filtered by'), state.filters.map(([d, v], i) => h('span.chip', `${label(d)} is ${v}`,
    h('button', { type: 'button', 'aria-label': `Remove filter ${label(d)} is ${v}`,
      on: { click: () => setState({ filters: state.filters.filter((_, j) => j != i) }, true) } }, '×')))] : []);
}
const LABELS = { 'properties.url': 'Page', 'context.referrer_host': 'Referrer', 'context.utm_source': 'UTM source',
  'context.browser': 'Browser', 'context.os': 'OS', type: 'Event type' };
const label = d => LABELS[d] || d;

$('conf').addEventListener('change', e => setState({ conf: e.target.value, filters: [] }, true));
$('range').addEventListener('change', e => {
  const range = e.target.value;
  if (range == 'custom') {
    const r = dateRange();
    return setState({ range, from: state.from || (Array.isArray(r) ? r[0] : ''), to: state.to || (Array.isArray(r) ? r[1] : ''), interval: null }, true);
  }
  setState({ range, from: null, to: null, interval: null }, true);
});
$('apply-custom').addEventListener('click', () => {
  if ($('from').value && $('to').value) setState({ range: 'custom', from: $('from').value, to: $('to').value, interval: null }, true);
});
addEventListener('popstate', () => { if (who) { state = readUrl(); if (who.scope == 'link') state.conf = who.conference_id; render(); } });

// ----- start and render -----
async function start(w) {
  who = w;
  state = readUrl();
  fillHeader();
  if (who.scope == 'link') {
    state.conf = who.conference_id;
    conferences = [who.conference_id];
    if (!LINK_TABS.includes(state.view)) state.view = 'overview';
  } else {
    clear($('view'), h('div.loading', { role: 'status' }, 'Loading conferences…'));
    listFailed = false;
    try {
      const r = await query({ metrics: ['events'], dimensions: ['properties.conference_id'], date_range: 'all', order_by: [['events', 'desc']], limit: 100 });
      conferences = r.results.map(x => x.dimensions[0]).filter(c => c != null);
    } catch (e) {
      if (!who) return;
      listFailed = true;
      conferences = state.conf ? [state.conf] : [];
      if (!conferences.length) {
        syncControls();
        return clear($('view'), failure(e, 'Could not list the conferences'));
      }
    }
    if (!who) return;
    if (!state.conf || !conferences.includes(state.conf)) state.conf = state.conf || conferences[0];
  }
  if (!TABS.some(([id]) => id == state.view)) state.view = 'overview';
  writeUrl(false);
  render();
}

function render() {
  if (!who) return;
  if (who.scope == 'link' && !LINK_TABS.includes(state.view)) state.view = 'overview';
  if (!Object.hasOwn(views, state.view)) state.view = 'overview';
  current?.abort();
  const ctrl = new AbortController();
  const ctx = context(ctrl.signal);
  current = { abort: () => { ctrl.abort(); for (const f of ctx.cleanup) f(); ctx.cleanup.length = 0; }, ctx };
  syncControls();
  const root = clear($('view'));
  delete root.dataset.ready;
  if (!state.conf) return root.append(onboarding());
  Promise.resolve(views[state.view](root, ctx)).catch(e => {
    if (e.name != 'AbortError' && !ctrl.signal.aborted) root.append(failure(e));
  });
}

// ----- boot -----
(async () => {
  const m = location.hash.match(/^#link=([^&]+)/);
  if (m) {
    auth.setLink(decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const key = auth.get(), link = auth.isLink();
  if (!key) return showSignin('');
  const r = await signIn(key);
  if (r.error) {
    auth.clear();
    return showSignin(link ? 'This share link is not valid: it was revoked or it expired. Ask its owner for a new one.' : r.error);
  }
  start(r);
})();
