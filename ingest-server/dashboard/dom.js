// Small DOM and formatting helpers. Everything is built with createElement/textContent (no
// innerHTML), so data from events can never become markup, and nothing needs inline styles.

/** h('div.card#x', {attrs, on: {click}}, ...children): an element. */
export function h(spec, attrs, ...kids) {
  if (attrs == null || typeof attrs != 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    if (attrs != null) kids.unshift(attrs);
    attrs = {};
  }
  const [, tag = 'div', rest = ''] = spec.match(/^([a-z0-9]*)(.*)$/i);
  const el = document.createElement(tag || 'div');
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] == '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k == 'on') for (const [ev, f] of Object.entries(v)) el.addEventListener(ev, f);
    else if (k == 'text') el.textContent = v;
    else if (k in el && typeof v != 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k == null || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
}

/** An SVG element with attributes. */
export function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  append(el, kids);
  return el;
}

export const clear = (el, ...kids) => { el.replaceChildren(); append(el, kids); return el; };

const nf = new Intl.NumberFormat('en');
const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
/** A count: 1,234 (or 12.3k when `short` and large). Fractions keep two decimals. */
export function num(v, short = false) {
  if (v == null || Number.isNaN(v)) return '—';
  if (!Number.isInteger(v)) return (Math.round(v * 100) / 100).toLocaleString('en', { maximumFractionDigits: 2 });
  return short && Math.abs(v) >= 10000 ? compact.format(v) : nf.format(v);
}
export const pct = (v, digits = 1) => (v == null ? '—' : `${(v * 100).toFixed(digits).replace(/\.0$/, '')}%`);

/** The change from `prev` to `cur` as { text, cls, label }. */
export function delta(cur, prev) {
  if (prev == null || cur == null) return { text: '', cls: 'flat', label: 'no comparison' };
  if (prev == 0) {
    return cur == 0 ? { text: '0%', cls: 'flat', label: 'no change' } : { text: '▲ new', cls: 'up', label: 'up from 0' };
  }
  const d = (cur - prev) / prev;
  const p = `${Math.abs(Math.round(d * 100))}%`;
  if (Math.round(d * 100) == 0) return { text: '0%', cls: 'flat', label: 'no change' };
  return d > 0 ? { text: `▲ ${p}`, cls: 'up', label: `up ${p}` } : { text: `▼ ${p}`, cls: 'down', label: `down ${p}` };
}

export function time(ms) {
  if (ms == null) return '—';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

/** "Loading…" placeholder. */
export const loading = (what = 'Loading…') => h('div.loading', { role: 'status' }, what);

/** An error box for a failed request. */
export const failure = (e, what) =>
  h('div.banner.error', { role: 'alert' }, what ? `${what}: ` : '', e && e.message ? e.message : String(e));

/** The CSV text of rows (first row = header). A text cell a spreadsheet would run as a formula
 * (starting with = + - @, a tab or a CR) gets a leading ' so it is shown as text: quoting alone
 * does not stop Excel or LibreOffice from evaluating it. Numbers are left as they are. */
function csvText(rows) {
  const cell = v => {
    let t = v == null ? '' : typeof v == 'object' ? JSON.stringify(v) : String(v);
    if (typeof v == 'string' && /^[=+\-@\t\r]/.test(t)) t = `'${t}`;
    return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return rows.map(r => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

/** A CSV download of rows (first row = header), as a file the browser saves. */
export function downloadCsv(name, rows) {
  const blob = new Blob([csvText(rows)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name.replace(/[^\w.-]+/g, '_') + '.csv' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const csvButton = (name, rows) =>
  h('button.ghost', { type: 'button', 'aria-label': `Download ${name} as CSV`, on: { click: () => downloadCsv(name, rows()) } }, 'CSV');

let toastTimer;
export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 2500);
}

/** A table: columns [{ label, num?, text? (free text that may be one long word), cell(row) }], rows. */
export function table(cols, rows, caption) {
  return h('div.scroll', h('table', caption && h('caption.sr', caption),
    h('thead', h('tr', cols.map(c => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)))),
    h('tbody', rows.map(r => h('tr', cols.map(c => h('td', { class: c.num ? 'num' : c.text ? 'text' : null }, c.cell(r))))))));
}

export const card = (title, tools, ...body) =>
  h('section.card', { 'aria-label': title }, h('div.panel-head', h('h2', title), h('div.tools', tools)), ...body);
