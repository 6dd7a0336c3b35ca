// A time-series line/area chart drawn as SVG, with a hover (and keyboard) tooltip.
import { h, s, num } from './dom.js';

// A round step (1, 2 or 5 × 10^k, at least 1) giving about four gridlines up to `max`.
const step = max => {
  const raw = Math.max(1, max / 4), p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
};

/**
 * lineChart(points, { label, fmtX, additive }): points = [{ x: '2026-06-20', y: 12 }].
 * Returns a container that redraws itself to its width. `additive: false` for a series whose
 * points do not sum to a total (visitors: one person on two days is one visitor), so that its
 * description gives no total.
 */
export function lineChart(points, { label = 'value', fmtX = x => x, additive = true } = {}) {
  const box = h('div.chart');
  const tip = h('div.tip', { hidden: true, role: 'presentation' });
  let drawn = 0, active = -1, geo = null;

  function draw() {
    const width = Math.max(280, Math.round(box.clientWidth || 600));
    if (width == drawn) return;
    drawn = width;
    const height = width < 500 ? 200 : 260, L = 44, R = 12, T = 12, B = 28;
    const peak = Math.max(0, ...points.map(p => p.y || 0)), st = step(peak), ticks = Math.max(1, Math.ceil(peak / st)), max = st * ticks;
    const n = points.length, w = width - L - R, hh = height - T - B;
    const X = i => L + (n <= 1 ? w / 2 : (i * w) / (n - 1)), Y = v => T + hh - (v / max) * hh;
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, tabindex: 0, role: 'img',
      'aria-label': `${label} over time: ${points.length} points, ${additive ? `total ${num(points.reduce((a, p) => a + (p.y || 0), 0))}, ` : ''}peak ${num(peak)}` });
    for (let k = 0; k <= ticks; k++) {
      const v = st * k, y = Y(v);
      svg.append(s('line', { class: 'grid', x1: L, x2: width - R, y1: y, y2: y }),
        s('text', { class: 'axis', x: L - 6, y: y + 4, 'text-anchor': 'end' }, num(v, true)));
    }
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(w / 90))));
    points.forEach((p, i) => {
      if (i % every == 0) svg.append(s('text', { class: 'axis', x: X(i), y: height - 8, 'text-anchor': n == 1 ? 'middle' : i == 0 ? 'start' : 'middle' }, fmtX(p.x, true)));
    });
    if (n) {
      const line = points.map((p, i) => `${i ? 'L' : 'M'}${X(i).toFixed(1)},${Y(p.y || 0).toFixed(1)}`).join('');
      svg.append(s('path', { class: 'area', d: `${line}L${X(n - 1).toFixed(1)},${Y(0)}L${X(0).toFixed(1)},${Y(0)}Z` }),
        s('path', { class: 'line', d: line }));
    }
    const guide = s('line', { class: 'guide', y1: T, y2: T + hh, visibility: 'hidden' });
    const dot = s('circle', { class: 'dot', r: 4, visibility: 'hidden' });
    svg.append(guide, dot);
    geo = { X, Y, L, T, w, guide, dot, svg, width };
    svg.addEventListener('pointermove', e => {
      const r = svg.getBoundingClientRect();
      const x = ((e.clientX - r.left) / r.width) * width;
      show(n <= 1 ? 0 : Math.round(((x - L) / w) * (n - 1)));
    });
    svg.addEventListener('pointerleave', hide);
    svg.addEventListener('blur', hide);
    svg.addEventListener('focus', () => show(active < 0 ? n - 1 : active));
    svg.addEventListener('keydown', e => {
      if (e.key == 'ArrowLeft' || e.key == 'ArrowRight') {
        e.preventDefault();
        show(Math.max(0, Math.min(n - 1, (active < 0 ? n - 1 : active) + (e.key == 'ArrowLeft' ? -1 : 1))));
      }
    });
    box.replaceChildren(svg, tip);
  }

  function show(i) {
    if (!geo || !points.length) return;
    i = Math.max(0, Math.min(points.length - 1, i));
    active = i;
    const p = points[i], x = geo.X(i), y = geo.Y(p.y || 0);
    geo.guide.setAttribute('x1', x); geo.guide.setAttribute('x2', x); geo.guide.setAttribute('visibility', 'visible');
    geo.dot.setAttribute('cx', x); geo.dot.setAttribute('cy', y); geo.dot.setAttribute('visibility', 'visible');
    const scale = geo.svg.getBoundingClientRect().width / geo.width || 1;
    tip.replaceChildren(h('strong', fmtX(p.x, false)), h('br'), `${num(p.y)} ${label}`);
    tip.style.left = `${Math.max(60, Math.min(geo.width * scale - 60, x * scale))}px`;
    tip.style.top = `${y * scale}px`;
    tip.classList.toggle('below', y < geo.T + 50);
    tip.hidden = false;
  }
  function hide() {
    if (!geo) return;
    tip.hidden = true;
    geo.guide.setAttribute('visibility', 'hidden');
    geo.dot.setAttribute('visibility', 'hidden');
  }

  const ro = new ResizeObserver(() => draw());
  ro.observe(box);
  box.chartPoints = points;
  requestAnimationFrame(draw);
  return box;
}
