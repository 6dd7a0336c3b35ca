// End to end: the web dashboard in headless Chromium (Debian's, driven by playwright-core)
// against a real empmix-server on loopback. Asserts on rendered text; saves a screenshot of
// each view at desktop and phone width under target/dashboard-screenshots/.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, targetDir } from '../support/server.mjs';

const KEY = 'ik_dash', READ = 'rk_dash', CONF = 'c1';
const shots = join(targetDir, 'dashboard-screenshots');
mkdirSync(shots, { recursive: true });
const dataDir = mkdtempSync(join(tmpdir(), 'empmix-dash-'));
const results = [];
const consoleErrors = [];

// ----- the real server -----
const { server, api: base } = await startServer(dataDir, KEY, READ);

// ----- helpers -----
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function api(path, { method = 'GET', body, key = READ } = {}) {
  const r = await fetch(base + path, { method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}
/** An endpoint of the contract that this server does not have yet fails the step loudly. */
async function need(path, method = 'GET', body) {
  const r = await api(path, { method, body });
  if (r.status == 404 && r.json?.error == 'not_found' && r.json?.message == 'no such endpoint') {
    throw new Error(`MISSING ENDPOINT: ${method} ${path.split('?')[0]} is not on this server yet`);
  }
  return r;
}
let n = 0;
function event(type, who, props, extra = {}) {
  return { event_id: randomUUID(), type, distinct_id: who, anonymous_id: who, session_id: `s-${who}`, timestamp: Date.now() - 1000 + n++,
    properties: props, ...extra };
}
async function ingest(events) {
  const r = await fetch(base + '/api/analytics/events', { method: 'POST', headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json' }, body: JSON.stringify({ events }) });
  if (r.status != 200) throw new Error(`ingest: ${r.status} ${await r.text()}`);
}
async function until(what, f, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { const v = await f(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await sleep(200);
  }
}
async function step(name, f, ms = 30000) {
  const t = Date.now();
  try {
    await Promise.race([f(), sleep(ms).then(() => { throw new Error(`step timed out after ${ms} ms`); })]);
    results.push([name, true]);
    console.log(`ok - ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`not ok - ${name}: ${e.message.split('\n')[0]}`);
  }
}
const text = async (p, sel) => (await p.locator(sel).first().textContent({ timeout: 10000 }))?.trim();
const card = (p, m) => text(p, `[data-metric="${m}"] .value`);
const ready = (p, view) => p.waitForSelector(`#view[data-ready="${view}"]`, { timeout: 15000 });
// Chromium logs each 4xx answer as a console error; the 401s the wrong-key and revoked-link
// steps cause on purpose are expected there, and only there.
let allow401 = false;
function watch(p, label) {
  p.on('console', m => {
    if (m.type() != 'error' || (allow401 && /status of 401/.test(m.text()))) return;
    consoleErrors.push(`${label}: ${m.text()} ${m.location()?.url || ''}`);
  });
  p.on('pageerror', e => consoleErrors.push(`${label}: page error: ${e.message}`));
  return p;
}
async function signIn(p, key = READ) {
  await p.goto(base + '/');
  await p.fill('#key', key);
  await p.click('#signin-form button[type=submit]');
}
const tab = (p, view) => p.click(`#tabs a[data-view="${view}"]`);
// Signs in at 390×844 and shows each of `views` (`show(page, view)`); fails naming the views
// wider than the phone (a page-wide horizontal scroll).
async function atPhoneWidth(label, views, show) {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const m = watch(await phone.newPage(), label);
  await signIn(m);
  await ready(m, 'overview');
  const wide = [];
  for (const v of views) {
    await show(m, v);
    const w = await m.evaluate(() => document.documentElement.scrollWidth);
    if (w > 392) wide.push(`${v}: ${w}px`);
  }
  await phone.close();
  if (wide.length) throw new Error('wider than the phone: ' + wide.join(', '));
}
async function shot(p, name) {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// The seed: the share scenario of ingest-server/tests/analytics.rs, plus three page views.
const reg = event('registration', 'C', { conference_id: CONF });
reg.attribution = 'b';
const seed = [
  event('page_view', 'A', { conference_id: CONF, url: '/agenda' }, { context: { browser: 'Chrome', os: 'Linux', referrer_host: 'wechat.com' } }),
  event('page_view', 'B', { conference_id: CONF, url: '/agenda' }, { context: { browser: 'Firefox', os: 'Windows' } }),
  event('page_view', 'C', { conference_id: CONF, url: '/register' }, { context: { browser: 'Chrome', os: 'Android', utm_source: 'newsletter' } }),
  event('share', 'A', { conference_id: CONF, share_code: 'a', channel: 'wechat', target_url: 'https://m.example/c' }),
  event('share_open', 'B', { share_code: 'a' }),
  event('share', 'B', { conference_id: CONF, share_code: 'b', channel: 'copy_link', target_url: 'https://m.example/c', parent_share_code: 'a' }),
  event('share_open', 'C', { share_code: 'b' }),
  reg,
];

const timings = {};
let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const desk = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const p = watch(await desk.newPage(), 'desktop');

  await step('the page is served at / with its security policy, and every asset loads', async () => {
    const r = await fetch(base + '/');
    const csp = r.headers.get('content-security-policy') || '';
    if (r.status != 200 || !csp.includes("script-src 'self'") || !csp.includes("frame-ancestors 'none'")) throw new Error(`GET /: ${r.status}, CSP ${csp}`);
    const failed = [];
    p.on('requestfailed', q => failed.push(q.url()));
    p.on('response', q => { if (q.status() >= 400 && !q.url().includes('/api/')) failed.push(`${q.status()} ${q.url()}`); });
    await p.goto(base + '/');
    await p.waitForSelector('#signin:not([hidden])');
    if (failed.length) throw new Error('assets failed: ' + failed.join(', '));
  });

  await step('a wrong key says so and shows no data', async () => {
    allow401 = true;
    await signIn(p, 'not-the-key');
    await p.waitForSelector('#signin-error:not([hidden])', { timeout: 10000 });
    const msg = await text(p, '#signin-error');
    if (!/not accepted/i.test(msg)) throw new Error('error text: ' + msg);
    if (await p.locator('#controls').isVisible() || (await p.locator('#view').innerText()).trim()) throw new Error('data shown after a wrong key');
    if (await p.evaluate(() => sessionStorage.length + localStorage.length)) throw new Error('a wrong key was stored');
    await shot(p, 'signin-error-desktop');
    allow401 = false;
  });

  await step('a new project: sign-in shows the getting-started state with the curl line', async () => {
    await signIn(p);
    await p.waitForSelector('#controls:not([hidden])', { timeout: 10000 });
    await p.waitForSelector('section[aria-label="Getting started"]', { timeout: 10000 });
    const t = await p.locator('#view').innerText();
    if (!t.includes('curl -X POST ' + base + '/api/analytics/events') || !t.includes('cargo run -p empmix-quickstart')) throw new Error('empty state: ' + t);
    await shot(p, 'empty-desktop');
  });

  await step('the seed scenario is ingested and consumed', async () => {
    await ingest(seed);
    await until('the share tree credits A and B', async () => {
      const t = (await api(`/api/analytics/shares/tree?conference_id=${CONF}`)).json;
      return t?.trees?.[0]?.children?.[0]?.credited_conversions == 1 && t.trees[0].credited_conversions == 1;
    });
    await until('all 8 events stored', async () => (await api(`/api/analytics/events?conference_id=${CONF}&limit=100`)).json.events.length >= 5);
  });

  await step('the read key is kept in sessionStorage only (not localStorage, not the URL) and survives a reload', async () => {
    await need('/api/analytics/whoami');
    await p.reload();
    await p.waitForSelector('#controls:not([hidden])', { timeout: 10000 });
    const where = await p.evaluate(k => ({ local: JSON.stringify(localStorage).includes(k), session: JSON.stringify(sessionStorage).includes(k), url: location.href.includes(k) }), READ);
    if (where.local || where.url || !where.session) throw new Error('key stored as ' + JSON.stringify(where));
  });

  await step('overview cards show the seed: pv 3, registrations 1, shares 2, share conversions 1', async () => {
    await need('/api/analytics/query', 'POST', { metrics: ['pv'], date_range: '30d' });
    await ready(p, 'overview');
    const t0 = await p.evaluate(() => performance.getEntriesByName('overview')[0]?.duration);
    timings.overview = t0;
    const got = { pv: await card(p, 'pv'), registrations: await card(p, 'registrations'), shares: await card(p, 'shares'), share_conversions: await card(p, 'share_conversions') };
    const want = { pv: '3', registrations: '1', shares: '2', share_conversions: '1' };
    if (JSON.stringify(got) != JSON.stringify(want)) throw new Error(`cards ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    if (!(await p.locator('.chart svg path.line').count())) throw new Error('no chart line');
    const pages = await p.locator('section[aria-label="Top pages"] tbody').innerText();
    if (!pages.includes('/agenda') || !pages.includes('/register')) throw new Error('top pages: ' + pages);
    const box = await p.locator('.chart svg').boundingBox();
    await p.mouse.move(box.x + box.width - 15, box.y + box.height / 2);
    const tip = await text(p, '.chart .tip');
    if (!/\d{4}\s*3 pageviews/.test(tip)) throw new Error('tooltip: ' + tip);
    await shot(p, 'overview-desktop');
    console.log(`  overview rendered in ${Math.round(t0)} ms`);
  });

  await step('a click on a top-N row filters, and the URL restores the filtered view after reload', async () => {
    // By keyboard: the row's name is a button (Tab reaches it, Enter applies the filter).
    await p.locator('section[aria-label="Browsers"] button.link:text-is("Chrome")').focus();
    await p.keyboard.press('Enter');
    await p.waitForSelector('.chip');
    await ready(p, 'overview');
    await until('pv 2 with the filter', async () => (await card(p, 'pv')) == '2', 10000);
    const url = p.url();
    if (!url.includes('f=context.browser') || url.includes(READ)) throw new Error('url: ' + url);
    await p.reload();
    await ready(p, 'overview');
    const chip = await text(p, '.chip');
    if (!/Browser is Chrome/.test(chip) || (await card(p, 'pv')) != '2') throw new Error(`after reload: chip ${chip}, pv ${await card(p, 'pv')}`);
    await shot(p, 'overview-filtered-desktop');
    await p.click('.chip button');
    await until('the filter removed', async () => !(await p.locator('.chip').count()) && (await card(p, 'pv')) == '3', 10000);
  });

  await step('the chart is described with a total for pageviews, and none for visitors (not a sum of days)', async () => {
    const described = async metric => {
      await p.goto(`${base}/?view=overview&metric=${metric}&range=7d`);
      await ready(p, 'overview');
      return p.locator('.chart svg').getAttribute('aria-label');
    };
    const pv = await described('pv'), uv = await described('uv');
    if (!/^pageviews over time: 7 points, total 3, peak 3$/.test(pv)) throw new Error('pageviews: ' + pv);
    if (!/^visitors over time: 7 points, peak 3$/.test(uv)) throw new Error('visitors: ' + uv);
    await p.goto(`${base}/?view=overview`);
    await ready(p, 'overview');
  });

  await step('CSV export of the series downloads a file', async () => {
    const [dl] = await Promise.all([p.waitForEvent('download'), p.click('button[aria-label^="Download pv-by-"]')]);
    const file = await dl.path();
    const body = (await import('node:fs')).readFileSync(file, 'utf8');
    if (!/^day,pv\r\n/.test(body)) throw new Error('csv: ' + body.slice(0, 80));
  });

  await step('date range: a preset and a custom from/to change the chart, the cards and the URL', async () => {
    const points = async () => Number((await p.locator('.chart svg').getAttribute('aria-label')).match(/(\d+) points/)[1]);
    await p.selectOption('#range', 'today');
    await ready(p, 'overview');
    if (!p.url().includes('range=today') || (await points()) != 24 || (await card(p, 'pv')) != '3') throw new Error(`today: ${p.url()}, ${await points()} points, pv ${await card(p, 'pv')}`);
    await p.selectOption('#range', 'custom');
    await p.waitForSelector('#custom:not([hidden])');
    const today = new Date().toISOString().slice(0, 10), before = new Date(Date.now() - 864e5 * 9).toISOString().slice(0, 10);
    await p.fill('#from', before);
    await p.fill('#to', today);
    await p.click('#apply-custom');
    await until('the custom range', async () => p.url().includes(`from=${before}`) && (await p.locator('#view[data-ready="overview"]').count()) && (await points()) == 10, 10000);
    await p.selectOption('#range', 'yesterday');
    await ready(p, 'overview');
    if ((await card(p, 'pv')) != '0' || !(await p.locator('.banner').count())) throw new Error('yesterday: pv ' + (await card(p, 'pv')));
    await p.selectOption('#range', '30d');
    await ready(p, 'overview');
  });

  await step('share tracking: the tree shows A → B with their credits, generations and leaderboard', async () => {
    await tab(p, 'shares');
    await ready(p, 'shares');
    const a = p.locator('li[data-code="a"]');
    const aRow = await a.locator(':scope > .node').innerText();
    const bRow = await a.locator('li[data-code="b"] > .node').innerText();
    if (!/\bA\b/.test(aRow) || !/\bB\b/.test(bRow)) throw new Error(`rows: ${aRow} / ${bRow}`);
    const credited = async li => (await p.locator(`li[data-code="${li}"] > .node [title="Credited conversions"]`).innerText()).trim();
    if ((await credited('a')) != '1' || (await credited('b')) != '1') throw new Error(`credited a ${await credited('a')}, b ${await credited('b')}`);
    await shot(p, 'shares-desktop');
    const gen = await p.locator('section[aria-label="By generation"]').innerText();
    if (/Generations:|MISSING|no .*endpoint|no "generations"/i.test(gen) || !/K-factor/.test(gen)) throw new Error('generations: ' + gen.replace(/\s+/g, ' '));
    const board = await p.locator('section[aria-label="Top sharers"]').innerText();
    if (!/\bA\b/.test(board) || !/\bB\b/.test(board)) throw new Error('leaderboard: ' + board.replace(/\s+/g, ' '));
  });

  await step('share tracking: the credit model picker reloads the tree with that model', async () => {
    await p.selectOption('select[aria-label="Credit model"]', 'equal');
    await ready(p, 'shares');
    if (!p.url().includes('credit=equal')) throw new Error('url ' + p.url());
    const credited = async li => (await p.locator(`li[data-code="${li}"] > .node [title="Credited conversions"]`).innerText()).trim();
    // Equal split over A and B: one half each.
    if ((await credited('a')) != '0.5' || (await credited('b')) != '0.5') throw new Error(`equal: a ${await credited('a')}, b ${await credited('b')}`);
  });

  await step('funnel: page view → share open → registration → check-in with persons per step', async () => {
    await need('/api/analytics/query', 'POST', { funnel: { steps: [{ event: 'page_view' }, { event: 'registration' }], window: '7d' }, date_range: '30d' });
    await tab(p, 'funnel');
    await ready(p, 'funnel');
    const steps = await p.locator('.funnel .step').allInnerTexts();
    if (steps.length != 4 || !/3\s*persons/.test(steps[0]) || !/Registration/.test(steps[2])) throw new Error('steps: ' + steps.join(' | '));
    // The seed's share_open events carry no conference_id (only the share_code), so a funnel
    // filtered to the conference counts no share opens unless the server resolves the
    // conference through the share. Reported, not asserted.
    if (/^Share opened[\s\S]*\b0\s*persons/.test(steps[1])) console.log('  note: the funnel counts 0 share opens for the conference: share_open events without conference_id are not resolved through their share_code');
    await shot(p, 'funnel-desktop');
  });

  await step('live: a page view posted now raises the live counter within 3 s', async () => {
    await tab(p, 'live');
    await p.waitForSelector('#view[data-ready="live"]', { timeout: 8000 }).catch(async () => {
      await need(`/api/analytics/live/summary?conference_id=${CONF}`);
      throw new Error('the live view got no summary: ' + (await text(p, '#live-status')));
    });
    const before = Number((await text(p, '[data-live="page_views_today"] .value')).replace(/,/g, ''));
    const t = Date.now();
    await ingest([event('page_view', 'D', { conference_id: CONF, url: '/live' }, { context: { browser: 'Safari', os: 'iOS' } })]);
    await until('the live counter to rise', async () => Number((await text(p, '[data-live="page_views_today"] .value')).replace(/,/g, '')) > before, 3000);
    console.log(`  live counter rose after ${Date.now() - t} ms`);
    await shot(p, 'live-desktop');
  });

  await step('events: recent events listed, a row expands to its JSON', async () => {
    await tab(p, 'events');
    await ready(p, 'events');
    const rows = await p.locator('#view tbody tr:not([hidden])').allInnerTexts();
    // share_open events carry no conference_id, so the conference's list has the rest.
    if (!rows.some(r => r.includes('registration')) || !rows.some(r => /\bshare\b/.test(r))) throw new Error('rows: ' + rows.join(' | '));
    await p.locator('#view tbody button[aria-expanded="false"]').first().click();
    const json = await text(p, '#view tbody pre');
    if (!json.includes('"event_id"')) throw new Error('json: ' + json);
    await shot(p, 'events-desktop');
  });

  let linkUrl = null;
  await step('share links: create a link for the conference', async () => {
    await need('/api/analytics/links');
    await tab(p, 'links');
    await ready(p, 'links');
    await p.fill('input[name=label]', 'e2e sponsor');
    await p.click('#view form button[type=submit]');
    await p.waitForSelector('#new-link', { timeout: 10000 });
    linkUrl = await p.inputValue('#new-link');
    if (!linkUrl.startsWith(base + '/#link=')) throw new Error('link ' + linkUrl);
    await until('the link listed', async () => (await p.locator('#view table').innerText()).includes('e2e sponsor'));
    await shot(p, 'links-desktop');
  });

  await step('a share link shows its conference only, and stops working once revoked', async () => {
    if (!linkUrl) throw new Error('no link was created');
    await ingest([event('page_view', 'Z', { conference_id: 'other-conf', url: '/secret' })]);
    const lc = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const lp = watch(await lc.newPage(), 'link');
    await lp.goto(linkUrl);
    await ready(lp, 'overview');
    if (lp.url().includes('link=')) throw new Error('the token stayed in the address bar: ' + lp.url());
    const tabs = await lp.locator('#tabs a').allInnerTexts();
    if (tabs.join() != 'Overview,Live') throw new Error('tabs: ' + tabs);
    if (await lp.locator('#conf').isVisible() || await lp.locator('#signout').isVisible()) throw new Error('picker or sign-out shown');
    if (!(await text(lp, '#fixed-conf')).includes(CONF)) throw new Error('conference label: ' + (await text(lp, '#fixed-conf')));
    if ((await card(lp, 'registrations')) != '1') throw new Error('link overview registrations ' + (await card(lp, 'registrations')));
    if ((await lp.locator('#view').innerText()).includes('/secret')) throw new Error('another conference leaked');
    await shot(lp, 'link-overview-desktop');
    await tab(lp, 'live');
    await ready(lp, 'live');
    await tab(lp, 'overview');
    await ready(lp, 'overview');
    // Revoke it in the owner's page; the link's page then says so and shows nothing.
    await p.click('#view button[aria-label^="Revoke link e2e sponsor"]');
    await p.click('#view button[aria-label^="Revoke link e2e sponsor"]');
    await until('revoked in the list', async () => (await p.locator('#view table').innerText()).includes('revoked'));
    allow401 = true;
    await lp.reload();
    await lp.waitForSelector('#signin-error:not([hidden])', { timeout: 10000 });
    const msg = await text(lp, '#signin-error');
    if (!/no longer valid|not valid/.test(msg) || await lp.locator('#controls').isVisible()) throw new Error('after revoke: ' + msg);
    await shot(lp, 'link-revoked-desktop');
    allow401 = false;
    await lc.close();
  });

  await step('sign out forgets the key', async () => {
    await tab(p, 'overview');
    await p.click('#signout');
    await p.waitForSelector('#signin:not([hidden])');
    if (await p.evaluate(() => sessionStorage.length)) throw new Error('sessionStorage not cleared');
  });

  await step('phone width (390×844): every view renders without horizontal page scroll', async () => {
    await atPhoneWidth('phone', ['overview', 'shares', 'funnel', 'live', 'events', 'links'], async (m, v) => {
      await tab(m, v);
      await ready(m, v).catch(() => {});
      await sleep(150);
      await shot(m, `${v}-phone`);
    });
  }, 60000);

  await step('dark colour scheme: the overview renders with the dark palette', async () => {
    const dark = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    const d = watch(await dark.newPage(), 'dark');
    await signIn(d);
    await ready(d, 'overview');
    await d.selectOption('#conf', CONF);
    await ready(d, 'overview');
    const bg = await d.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (bg != 'rgb(15, 17, 23)') throw new Error('body background ' + bg);
    await shot(d, 'overview-dark-desktop');
    await dark.close();
  });

  await step('a tree of 585 shares shows depths 0-3 and expands deeper levels on demand', async () => {
    const big = [];
    // 5 roots, 4 children each, 4 each, 3 each (depth 3), one each (depth 4): 5+20+80+240+240.
    const add = (code, parent, depth) => {
      big.push(event('share', `u-${code}`, { conference_id: 'big', share_code: code, channel: 'wechat', ...(parent ? { parent_share_code: parent } : {}) }));
      for (let i = 0; i < ([4, 4, 3, 1][depth] ?? 0); i++) add(`${code}.${i}`, code, depth + 1);
    };
    for (let r = 0; r < 5; r++) add(`r${r}`, null, 0);
    for (let i = 0; i < big.length; i += 100) await ingest(big.slice(i, i + 100));
    const count = ns => ns.reduce((a, n) => a + 1 + count(n.children || []), 0);
    await until('the big tree', async () => count((await api('/api/analytics/shares/tree?conference_id=big')).json.trees || []) == big.length);
    const bp = watch(await desk.newPage(), 'big');
    await signIn(bp);
    await ready(bp, 'overview');
    await bp.goto(base + '/?view=shares&conf=big');
    await ready(bp, 'shares');
    const t0 = Date.now();
    await bp.reload();
    await ready(bp, 'shares');
    const took = Date.now() - t0;
    const shown = await bp.locator('.tree li').count();
    const closed = await bp.locator('.tree li[data-depth="3"] > .node button.tog[aria-expanded="false"]').count();
    if (shown != 345 || closed != 240) throw new Error(`${shown} rows shown (want 345: depths 0-3), ${closed} depth-3 nodes collapsed (want 240)`);
    await shot(bp, 'shares-big-desktop');
    await bp.click('button:text-is("Expand all")');
    const all = await bp.locator('.tree li').count();
    if (all != big.length) throw new Error(`expand all: ${all} rows, want ${big.length}`);
    await bp.click('button:text-is("Collapse")');
    const roots = await bp.locator('.tree > li').count(), visible = await bp.locator('.tree li:visible').count();
    if (roots != 5 || visible != 5) throw new Error(`collapse: ${visible} visible, want the 5 roots`);
    console.log(`  the 585-share tree loaded and rendered in ${took} ms (page reload included)`);
    await bp.close();
  }, 60000);

  // Odd values from real apps: one-word ids and URLs hundreds of characters long, markup in
  // names, a formula as a page, an event that happened days ago.
  const ODD = 'odd-' + 'L'.repeat(150), LONG_ID = 'sharer-' + 'W'.repeat(150), LONG_URL = '/' + 'segment-without-spaces'.repeat(20);
  const FORMULA = '=HYPERLINK("http://evil")', MARKUP = '<img src=x onerror=alert(1)>';
  const oldAt = Date.now() - 3 * 864e5;
  const conf = encodeURIComponent(ODD);
  let op = null, dialogs = 0;
  const pageWide = () => op.evaluate(() => document.documentElement.scrollWidth);
  await step('odd values: a conference with long one-word values, markup and a formula is ingested', async () => {
    const oreg = event('registration', 'o1', { conference_id: ODD });
    oreg.attribution = 'odd1';
    await ingest([
      event('share', LONG_ID, { conference_id: ODD, share_code: 'odd1', channel: 'wechat' }),
      event('share_open', 'o1', { share_code: 'odd1' }), oreg,
      event('page_view', LONG_ID, { conference_id: ODD, url: LONG_URL }),
      event('page_view', 'x', { conference_id: ODD, url: FORMULA }, { context: { browser: MARKUP } }),
    ]);
    // Last, so that it is the newest arrival: a page view that happened three days ago.
    const old = { ...event('page_view', 'old', { conference_id: ODD, url: '/old' }), timestamp: oldAt };
    const r = await fetch(base + '/api/analytics/events', { method: 'POST', headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json' }, body: JSON.stringify({ sent_at: Date.now(), events: [old] }) });
    if (r.status != 200) throw new Error('ingest: ' + r.status);
    await until('the odd conference stored', async () => (await api(`/api/analytics/events?conference_id=${ODD}&limit=100`)).json.events.length >= 5
      && (await api(`/api/analytics/shares/leaderboard?conference_id=${ODD}`)).json.sharers?.[0]?.credited_conversions == 1);
    op = watch(await desk.newPage(), 'odd');
    op.on('dialog', d => { dialogs++; d.dismiss(); });
    await signIn(op);
    await ready(op, 'overview');
  });

  await step('odd values: markup reads as text, and a formula is defused in the CSV', async () => {
    await op.goto(`${base}/?view=overview&conf=${conf}`);
    await ready(op, 'overview');
    const pages = await op.locator('section[aria-label="Top pages"] tbody').innerText();
    const browsers = await op.locator('section[aria-label="Browsers"] tbody').innerText();
    if (!pages.includes(FORMULA) || !pages.includes(LONG_URL.slice(0, 60)) || !browsers.includes(MARKUP)) throw new Error(`top lists: ${pages} / ${browsers}`);
    if (await op.locator('#view img').count() || dialogs) throw new Error('a value became markup');
    if ((await pageWide()) > 1280) throw new Error('overview wider than the window: ' + (await pageWide()));
    // CSV: a spreadsheet shows the formula as text ('=…), it does not run it.
    const [dl] = await Promise.all([op.waitForEvent('download'), op.click('button[aria-label="Download Top pages as CSV"]')]);
    const csv = (await import('node:fs')).readFileSync(await dl.path(), 'utf8');
    if (!csv.includes(`"'=HYPERLINK(""http://evil"")",1,1`)) throw new Error('csv: ' + csv.split('\r\n').find(l => l.includes('HYPERLINK')));
  });

  await step('odd values: a long sharer wraps in the tree and the leaderboard, beside its numbers', async () => {
    await op.goto(`${base}/?view=shares&conf=${conf}`);
    await ready(op, 'shares');
    const row = op.locator('li[data-code="odd1"] > .node');
    const [textW, boxW] = await row.locator('.sharer').evaluate(e => [e.scrollWidth, e.clientWidth]);
    if (!(await row.innerText()).includes(LONG_ID) || textW > boxW + 1) throw new Error(`the sharer's name (${textW} px) runs out of its column (${boxW} px) under the numbers`);
    const board = op.locator('section[aria-label="Top sharers"]');
    const credited = await board.locator('tbody td').last().boundingBox(), boardBox = await board.boundingBox();
    if ((await board.locator('tbody td').last().innerText()).trim() != '1' || credited.x + credited.width > boardBox.x + boardBox.width) throw new Error('the leaderboard\'s Credited column is pushed out of its card');
    if ((await pageWide()) > 1280) throw new Error('share tracking wider than the window: ' + (await pageWide()));
    await shot(op, 'shares-odd-desktop');
  });

  await step('odd values: the events table keeps its Page column in view beside a long distinct id', async () => {
    await op.goto(`${base}/?view=events&conf=${conf}`);
    await ready(op, 'events');
    const sc = await op.locator('#view .scroll').first().evaluate(e => [e.scrollWidth, e.clientWidth]);
    if (sc[0] > sc[1] + 1) throw new Error(`the events table scrolls sideways on a desktop (${sc[0]} > ${sc[1]} px), hiding its Page column`);
  });

  await step('odd values: the live feed dates an event from another day', async () => {
    await op.goto(`${base}/?view=live&conf=${conf}`);
    await ready(op, 'live');
    const day = new Date(oldAt).toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
    const first = await op.locator('.feed li').first().innerText();
    if (!first.includes('/old') || !first.includes(day)) throw new Error(`newest event reads "${first.replace(/\s+/g, ' ')}", want its day ${day}`);
    await op.close();
  });

  await step('odd values: at phone width a 155-character conference id does not widen the page', async () => {
    await atPhoneWidth('odd-phone', ['overview', 'shares', 'events', 'live', 'links'], async (m, v) => {
      await m.goto(`${base}/?view=${v}&conf=${conf}`);
      await ready(m, v);
      if (v == 'overview') await shot(m, 'overview-odd-phone');
    });
  }, 60000);

  await step('a conference list the server refuses: the picker and the page say so', async () => {
    // Not watched: the 422 is on purpose.
    const rc = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const rp = await rc.newPage();
    await rp.route('**/api/analytics/query', route => (route.request().postData() || '').includes('"date_range":"all"')
      ? route.fulfill({ status: 422, contentType: 'application/json', body: JSON.stringify({ error: 'query_timeout', message: 'the query ran longer than its 5000 ms budget and was cancelled' }) })
      : route.continue());
    await signIn(rp);
    await rp.waitForSelector('#view .banner.error', { timeout: 10000 });
    const msg = await text(rp, '#view .banner.error'), opt = await text(rp, '#conf option');
    await rc.close();
    if (!/Could not list the conferences: the query ran longer .*\(422 query_timeout\)/.test(msg) || opt != 'Conferences not available') throw new Error(`"${msg}", picker "${opt}"`);
  });

  await step('no console errors', async () => {
    if (consoleErrors.length) throw new Error(consoleErrors.join(' | '));
  });

  let dropped = null;
  await step('live: when the stream drops the page says "reconnecting…"', async () => {
    const lp = dropped = watch(await desk.newPage(), 'drop');
    await lp.goto(base + '/');
    await lp.fill('#key', READ);
    await lp.click('#signin-form button[type=submit]');
    await ready(lp, 'overview');
    await tab(lp, 'live');
    await ready(lp, 'live');
    server.kill();
    await until('"reconnecting…"', async () => /reconnecting…/.test(await text(lp, '#live-status')), 10000);
    await shot(lp, 'live-reconnecting-desktop');
  });

  await step('the server stopped: the events and the overview say so, with no endless spinner', async () => {
    const lp = dropped;
    if (!lp) throw new Error('no page from the previous step');
    await tab(lp, 'events');
    await until('the events error', async () => /Events: the server did not answer/.test(await lp.locator('#view').innerText()), 10000);
    if (await lp.locator('#view .loading').count()) throw new Error('"Loading…" still shown beside the error');
    await tab(lp, 'overview');
    await until('the totals error', async () => /Totals: the server did not answer/.test(await lp.locator('#view').innerText()), 10000);
    const values = await lp.locator('.cards .value').allInnerTexts();
    if (values.some(v => v.trim() != '—')) throw new Error('cards read ' + values.join(' ') + ' (want — each)');
    await shot(lp, 'overview-server-stopped-desktop');
  });
} catch (e) {
  results.push(['setup', false]);
  console.log(`not ok - setup: ${e.message.split('\n')[0]}`);
} finally {
  await browser?.close();
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
if (timings.overview) console.log(`overview render: ${Math.round(timings.overview)} ms`);
console.log(`screenshots: ${shots}`);
const failed = results.filter(r => !r[1]).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
