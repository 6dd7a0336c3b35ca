// Share tracking: the attribution tree, the per-generation table and the sharers leaderboard.
import { api } from './api.js';
import { h, clear, num, loading, failure, card, table, csvButton } from './dom.js';

const CREDITS = [['full', 'Full credit to every ancestor'], ['equal', 'Split equally'], ['decay', 'Time decay'],
  ['first', 'First touch'], ['last', 'Last touch']];
const OPEN_DEPTH = 3;

function node(n) {
  const kids = n.children || [];
  const depth = n.depth ?? 0;
  const li = h('li', { 'data-code': n.share_code, 'data-depth': depth });
  const sub = h('ul');
  const who = n.sharer ?? '(anonymous)';
  const tog = h('button.tog', { type: 'button', disabled: !kids.length,
    'aria-label': kids.length ? `${kids.length} re-shares of ${who}'s share ${n.share_code}` : `no re-shares of ${n.share_code}` }, kids.length ? '' : '·');
  const more = h('span.badge', { hidden: true }, `+${countAll(kids)}`);
  const set = (open, deep = false) => {
    if (!kids.length) return;
    tog.setAttribute('aria-expanded', String(open));
    tog.textContent = open ? '−' : '+';
    more.hidden = open;
    if (open && !sub.childElementCount) sub.append(...kids.map(k => node(k)));
    sub.hidden = !open;
    if (deep) for (const c of sub.children) c.treeSet(open, true);
  };
  tog.addEventListener('click', () => set(tog.getAttribute('aria-expanded') != 'true'));
  li.treeSet = set;
  li.append(h('div.node',
    tog,
    h('span.sharer', h('b', who), ' ', h('span.chan', `${n.channel || 'unknown channel'} · ${n.share_code}`), ' ', more),
    h('span.num', { title: 'Opens' }, num(n.opens)),
    h('span.num', { title: 'Direct registrations' }, num(n.direct_registrations)),
    h('span.num', { title: 'Credited conversions' }, h('strong', num(n.credited_conversions))),
    h('span.num', { title: 'Re-shares' }, num(n.reshares ?? kids.length))), sub);
  set(depth < OPEN_DEPTH);
  return li;
}
const countAll = ns => ns.reduce((a, n) => a + 1 + countAll(n.children || []), 0);

export async function shares(root, ctx) {
  const credit = ctx.state.credit || 'full';
  const sel = h('select', { 'aria-label': 'Credit model', on: { change: e => ctx.set({ credit: e.target.value }, true) } },
    CREDITS.map(([v, l]) => h('option', { value: v, selected: v == credit }, l)));
  const treeBox = h('div', loading()), genBox = h('div', loading()), boardBox = h('div', loading());
  let trees = [], gens = [], board = [];
  const flat = (ns, out = []) => { for (const n of ns) { out.push(n); flat(n.children || [], out); } return out; };
  const expandAll = v => { for (const li of treeBox.querySelectorAll('ul.tree > li')) li.treeSet(v, true); };
  root.append(
    card(`Attribution tree · ${ctx.conf}`, [h('label.muted', 'Credit ', sel),
      h('button.ghost', { type: 'button', on: { click: () => expandAll(true) } }, 'Expand all'),
      h('button.ghost', { type: 'button', on: { click: () => expandAll(false) } }, 'Collapse'),
      csvButton(`share-tree-${credit}`, () => [['share_code', 'parent', 'depth', 'sharer', 'channel', 'opens', 'direct_registrations', 'credited_conversions', 'reshares'],
        ...flat(trees).map(n => [n.share_code, n.parent_share_code ?? '', n.depth, n.sharer, n.channel, n.opens, n.direct_registrations, n.credited_conversions, n.reshares])])],
    treeBox),
    h('div.grid2', card('By generation', csvButton(`generations-${credit}`, () => [['depth', 'shares', 'sharers', 'opens', 'registrations', 'k_factor'],
      ...gens.map(g => [g.depth, g.shares, g.sharers, g.opens, g.registrations, g.k_factor])]), genBox),
    card('Top sharers', csvButton(`sharers-${credit}`, () => [['sharer', 'shares', 'opens', 'direct_registrations', 'credited_conversions'],
      ...board.map(b => [b.sharer, b.shares, b.opens, b.direct_registrations, b.credited_conversions])]), boardBox)));
  const q = `conference_id=${encodeURIComponent(ctx.conf)}&credit=${credit}`;
  const tree = api(`/api/analytics/shares/tree?${q}`, { signal: ctx.signal }).then(r => {
    trees = r.trees || [];
    gens = r.generations || [];
    if (!trees.length) {
      clear(treeBox, h('div.empty', h('p', 'No shares recorded for this conference yet.'),
        h('p', 'A share is a ', h('code', 'share'), ' event with a ', h('code', 'share_code'), '; opening it sends ', h('code', 'share_open'),
          ', and a registration carrying ', h('code', '"attribution": "<share_code>"'), ' credits the sharers above it.')));
    } else {
      clear(treeBox, h('div.scroll.tree-scroll', { tabindex: 0, role: 'region', 'aria-label': 'Attribution tree (scrolls)' }, h('div.tree-wide', h('div.node.tree-head', { 'aria-hidden': 'true' }, h('span'), h('span', 'Sharer · channel · code'),
        h('span.num', 'Opens'), h('span.num', 'Direct reg.'), h('span.num', 'Credited'), h('span.num', 'Re-shares')),
      h('ul.tree', { 'aria-label': `Attribution tree, ${countAll(trees)} shares` }, trees.map(n => node(n))))));
    }
    if (!r.generations) clear(genBox, failure(new Error('the tree answer has no "generations" yet (server side missing)')));
    else clear(genBox, gens.length ? table([
      { label: 'Depth', num: true, cell: g => g.depth }, { label: 'Shares', num: true, cell: g => num(g.shares) },
      { label: 'Sharers', num: true, cell: g => num(g.sharers) }, { label: 'Opens', num: true, cell: g => num(g.opens) },
      { label: 'Registrations', num: true, cell: g => num(g.registrations) },
      { label: 'K-factor', num: true, cell: g => (g.k_factor == null ? '—' : g.k_factor.toFixed(2)) },
    ], gens, 'Shares by generation') : h('p.empty', 'No generations yet.'));
  }).catch(e => { if (e.name != 'AbortError') { clear(treeBox, failure(e, 'Tree')); clear(genBox, failure(e, 'Generations')); } });
  const lb = api(`/api/analytics/shares/leaderboard?${q}&limit=20`, { signal: ctx.signal }).then(r => {
    board = r.sharers || [];
    clear(boardBox, board.length ? table([
      { label: '#', num: true, cell: b => board.indexOf(b) + 1 }, { label: 'Sharer', text: true, cell: b => b.sharer ?? '(anonymous)' },
      { label: 'Shares', num: true, cell: b => num(b.shares) }, { label: 'Opens', num: true, cell: b => num(b.opens) },
      { label: 'Direct reg.', num: true, cell: b => num(b.direct_registrations) },
      { label: 'Credited', num: true, cell: b => h('strong', num(b.credited_conversions)) },
    ], board, 'Top sharers') : h('p.empty', 'No sharers yet.'));
  }).catch(e => { if (e.name != 'AbortError') clear(boardBox, failure(e, 'Leaderboard')); });
  await Promise.all([tree, lb]);
  root.dataset.ready = 'shares';
}
