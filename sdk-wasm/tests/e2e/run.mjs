// End to end: the built package in headless Chromium (Debian's, driven by playwright-core)
// against a real empmix-server on loopback. Exits non-zero on the first failure.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import webpack from 'webpack';
import { chromiumArgs, closedWhileCompressing, reader, recordIngest, serveSite, startServer, steps, tabSwitch, until } from './support.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const pkg = join(here, '../../pkg');
const KEY = 'ik_e2e', READ = 'rk_e2e', CONF = 'conf-e2e';
const { step, results, failed } = steps();
const dataDir = mkdtempSync(join(tmpdir(), 'empmix-e2e-'));

// ----- the real server -----
const { server, api } = await startServer(dataDir, KEY, READ);
const { query, eventsOf, arrived } = reader(api, READ);
const ingest = api + '/api/analytics/events';

// ----- an app that imports the package by name, bundled by webpack -----
// As a web app's build would: webpack resolves `empmix-wasm`, finds the wasm through
// `new URL(..., import.meta.url)` and emits it as an asset beside the bundle.
const appDir = mkdtempSync(join(tmpdir(), 'empmix-bundle-'));
writeFileSync(join(appDir, 'app.mjs'), `import { EmpMix } from 'empmix-wasm';
window.mix = await EmpMix.init({ apiKey: '${KEY}', endpoint: '${api}', flushInterval: 500 });
window.ready = true;`);
const bundled = await new Promise(res => webpack({
  mode: 'production', context: appDir, entry: './app.mjs', experiments: { topLevelAwait: true },
  output: { path: join(appDir, 'dist'), filename: 'app.js', publicPath: '/bundle/' },
  resolve: { alias: { 'empmix-wasm': pkg } },
}, (err, stats) => res(err ? err.message : stats.hasErrors() ? stats.toString('errors-only') : null)));

// ----- a static server for the package and a test page -----
const page = `<!doctype html><title>e2e</title><button id="btn">Register</button>
<script type="module">
  import { EmpMix } from '/pkg/index.js';
  const q = new URLSearchParams(location.search), conf = q.get('conf');
  // ?conf=<id> configures the conference in init (empty: none); without it, a super property.
  window.mix = await EmpMix.init({ apiKey: '${KEY}', endpoint: q.get('endpoint') || '${api}', debug: true,
    flushInterval: +(q.get('interval') || 500), flushAt: 20, conferenceId: conf || undefined, persist: q.get('persist') != '0' });
  if (conf == null) mix.register({ conference_id: '${CONF}' });
  document.getElementById('btn').onclick = () => mix.track('button_click', { button: 'register' });
  window.ready = true;
</script>`;
const { web, site } = await serveSite({ '/pkg/': pkg, '/bundle/': join(appDir, 'dist') },
  { '/': page, '/bundled': '<!doctype html><title>bundled</title><script src="/bundle/app.js"></script>' });

// ----- helpers -----
// The events stored in a page's localStorage: { keys: how many chunk keys, ids: their event ids }.
const storedEvents = p => p.evaluate(() => {
  const keys = Object.keys(localStorage).filter(k => k.startsWith('empmix:default:e:'));
  return { keys: keys.length, ids: keys.flatMap(k => localStorage.getItem(k).split('\x1e').slice(1).map(e => e.slice(0, 36))) };
});
async function open(context, url = site + '/') {
  const p = await context.newPage();
  p.on('console', m => m.type() == 'warning' && console.log('  page:', m.text()));
  p.on('pageerror', e => console.log('  page error:', e.message));
  await p.goto(url);
  await p.waitForFunction(() => window.ready === true);
  return p;
}
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs });
try {
  const ctx = await browser.newContext();

  await step('a page loads and its page_view arrives', async () => {
    const p = await open(ctx);
    const id = await p.evaluate(() => mix.distinctId);
    const [ev] = await arrived(id, 'page_view');
    if (!JSON.stringify(ev).includes(site)) throw new Error('page_view without the page URL: ' + JSON.stringify(ev));
    await p.close();
  });

  await step('the stored context names the browser Chromium, its major version and the OS apart', async () => {
    // Debian's Chromium brands itself only with `Chromium` and a GREASE filler (`Not:A-Brand`).
    const p = await open(ctx);
    const [ev] = await arrived(await p.evaluate(() => mix.distinctId), 'page_view');
    const c = ev.context || {}, major = await p.evaluate(() => navigator.userAgent.match(/Chrome\/(\d+)/)[1]);
    if (c.browser !== 'Chromium' || !/^\d+$/.test(c.browser_version) || c.browser_version !== major || c.os !== 'Linux') {
      throw new Error('context: ' + JSON.stringify(c));
    }
    console.log(`  context: browser ${c.browser}, browser_version ${c.browser_version}, os ${c.os}`);
    await p.close();
  });

  await step('an app bundled by webpack loads the package and its page_view arrives', async () => {
    if (bundled) throw new Error('webpack failed: ' + bundled);
    const p = await open(ctx, site + '/bundled');
    const id = await p.evaluate(() => mix.distinctId);
    await arrived(id, 'page_view');
    await p.close();
  });

  await step('a click tracks an event', async () => {
    const p = await open(ctx);
    await p.click('#btn');
    await arrived(await p.evaluate(() => mix.distinctId), 'button_click');
    await p.close();
  });

  await step('bodies are gzip on the wire and decoded by the server; beacons stay plain JSON', async () => {
    const p = await open(ctx, site + '/?interval=600000');
    const sent = recordIngest(p, ingest);
    const id = await p.evaluate(() => mix.distinctId);
    await p.evaluate(() => {
      for (let i = 0; i < 100; i++) mix.track('bulk', { i, text: `value of event ${i}`, ok: i % 2 == 0 });
      return mix.flush();
    });
    const got = await arrived(id, 'bulk', 100);
    const bulk = sent.filter(r => r.ids.length && !r.beacon);
    if (!bulk.length || bulk.some(r => r.encoding != 'gzip')) throw new Error('not gzip: ' + JSON.stringify(bulk.map(r => r.encoding)));
    const ids = bulk.flatMap(r => r.ids), wire = bulk.reduce((a, r) => a + r.bytes, 0), json = bulk.reduce((a, r) => a + Buffer.byteLength(r.body), 0);
    for (const e of got) if (!ids.includes(e.event_id)) throw new Error('stored but not seen on the wire: ' + e.event_id);
    if (wire * 4 > json) throw new Error(`gzip ${wire} bytes, JSON ${json}: not compressed`);
    console.log(`  ${bulk.length} request(s), ${ids.length} events: ${(wire / ids.length).toFixed(1)} B/event gzip, ${(json / ids.length).toFixed(1)} B/event JSON`);
    // Leaving (a pagehide, with the page kept open so its requests are seen): what waits goes
    // by beacon, which cannot say Content-Encoding.
    await p.evaluate(() => { mix.track('left'); dispatchEvent(new PageTransitionEvent('pagehide')); });
    await arrived(id, 'left');
    const beacons = sent.filter(r => r.beacon);
    if (!beacons.length || beacons.some(r => r.encoding || !r.body.startsWith('{'))) throw new Error('beacons: ' + JSON.stringify(beacons.map(r => [r.encoding, r.body.slice(0, 20)])));
    await p.close();
  });

  await step('a tab switch sends by keepalive and coming back resends nothing', async () => {
    const c = await browser.newContext();
    const s = await tabSwitch(c, c => open(c, site + '/?interval=600000'), ingest, { eventsOf, arrived });
    if (s.beacons) throw new Error('a beacon at a tab switch: ' + JSON.stringify(s));
    await c.close();
  });

  await step('a page closed while a body is compressing (memory only) sends those events by beacon', async () => {
    const c = await browser.newContext();
    await closedWhileCompressing(c, c => open(c, site + '/?interval=600000&persist=0'), { arrived });
    await c.close();
  });

  await step('a tab closed before the flush interval still delivers (beacon) and its heartbeat goes', async () => {
    const p = await open(ctx, site + '/?interval=600000');
    const id = await p.evaluate(() => { for (let i = 0; i < 5; i++) mix.track('before_close', { i }); return mix.distinctId; });
    const beat = await p.evaluate(() => { const k = 'empmix:default:t:' + mix.tab; return localStorage.getItem(k) && k; });
    if (!beat) throw new Error('no heartbeat stored');
    await p.close({ runBeforeUnload: true });
    await arrived(id, 'before_close', 5);
    // Its heartbeat went with it, so the next page takes over what is still stored at once.
    const blank = await ctx.newPage();
    await blank.goto(site + '/blank');
    const left = await blank.evaluate(k => localStorage.getItem(k), beat);
    if (left != null) throw new Error('the heartbeat stayed: ' + left);
    await blank.close();
  });

  await step('the network is cut and restored and nothing is lost', async () => {
    const c = await browser.newContext();
    const p = await open(c);
    const id = await p.evaluate(() => mix.distinctId);
    await c.setOffline(true);
    await p.evaluate(() => { for (let i = 0; i < 10; i++) mix.track('offline', { i }); });
    // Wait until a send has been tried and failed while offline (a retry is scheduled).
    await until('a failed send while offline', () => p.evaluate(() => mix.stats().retried > 0));
    const s = await p.evaluate(() => mix.stats());
    if (s.delivered > 2 || s.queued + s.inFlight < 10) throw new Error('sent while offline? ' + JSON.stringify(s));
    // Unsent events are in localStorage until a send of them succeeds.
    const before = await storedEvents(p);
    if (s.stored < 10 || before.ids.length != s.stored) throw new Error(`not stored: ${s.stored}, ${JSON.stringify(before)}`);
    await c.setOffline(false);
    const got = await arrived(id, 'offline', 10, 60000);
    if (new Set(got.map(e => JSON.stringify(e.properties ?? e))).size < 10) throw new Error('events missing');
    await until('delivered events removed from storage', () => p.evaluate(() => mix.flush()));
    const after = [await p.evaluate(() => mix.stats().stored), await storedEvents(p)];
    if (after[0] != 0 || after[1].keys != 0) throw new Error('delivered events still stored: ' + JSON.stringify(after));
    await c.close();
  });

  await step('events left by a crashed tab are sent once, by one of the next tabs', async () => {
    const c = await browser.newContext();
    // The first tab's endpoint refuses connections, so nothing it tracks gets out, not even by
    // beacon when it closes.
    const p = await open(c, site + '/?interval=600000&endpoint=http://127.0.0.1:9');
    const id = await p.evaluate(() => { for (let i = 0; i < 12; i++) mix.track('orphan', { i }); return mix.distinctId; });
    await until('the events stored', () => p.evaluate(() => mix.stats().stored == 13));
    // The page_view at load and the 12 tracked in one task: one storage write each task.
    const stored = await storedEvents(p);
    if (stored.keys != 2 || new Set(stored.ids).size != 13) throw new Error('stored as ' + JSON.stringify(stored));
    // The tab dies. A crashed tab's heartbeat runs out after 150 s; here it is expired at once.
    await p.close();
    const blank = await c.newPage();
    await blank.goto(site + '/blank');
    await blank.evaluate(() => Object.keys(localStorage).filter(k => k.startsWith('empmix:default:t:')).forEach(k => localStorage.setItem(k, '0')));
    // A gone tab's events go to whichever tab takes the Web Lock that claims them. While another
    // page holds it, tabs that start take nothing.
    const dead = (await blank.evaluate(() => Object.keys(localStorage).find(k => k.startsWith('empmix:default:e:')))).split(':')[3];
    const claim = 'empmix:default:claim:' + dead;
    await blank.evaluate(l => void navigator.locks.request(l, () => new Promise(r => (window.release = r))), claim);
    await until('this page to hold the claim', () => blank.evaluate(() => !!window.release));
    const early = await Promise.all([open(c), open(c)]);
    const held = [await early[0].evaluate(() => mix.stats().restored), await early[1].evaluate(() => mix.stats().restored),
      await blank.evaluate(t => Object.keys(localStorage).filter(k => k.startsWith(t)).map(k => localStorage.getItem(k).split('\x1e').length - 1)
        .reduce((a, b) => a + b, 0), 'empmix:default:e:' + dead + ':')];
    if (held.join() != '0,0,13') throw new Error('restored while claimed elsewhere, and left stored: ' + held);
    await blank.evaluate(() => window.release());
    // Two more tabs start at once; only one of them may take the dead tab's events.
    const [pb, pc] = await Promise.all([open(c), open(c)]);
    const got = await arrived(id, 'orphan', 12);
    const taken = [await pb.evaluate(() => mix.stats().restored), await pc.evaluate(() => mix.stats().restored)];
    if (taken[0] + taken[1] != 13 || Math.min(...taken) != 0) throw new Error('restored by the two tabs: ' + taken);
    await until('delivered events removed from storage', async () =>
      (await pb.evaluate(() => mix.flush())) && (await pc.evaluate(() => mix.flush())) && (await storedEvents(blank)).keys == 0);
    if (new Set(got.map(e => e.event_id ?? JSON.stringify(e))).size != 12) throw new Error('events: ' + got.length);
    await c.close();
  });

  await step('a reload keeps the identity', async () => {
    const p = await open(ctx);
    const before = await p.evaluate(() => [mix.anonymousId, mix.identify('reload-user') && mix.distinctId]);
    await p.reload();
    await p.waitForFunction(() => window.ready === true);
    const after = await p.evaluate(() => [mix.anonymousId, mix.distinctId]);
    if (before[0] != after[0] || after[1] != 'reload-user') throw new Error(`${before} -> ${after}`);
    await p.close();
  });

  await step('two tabs stay one user: an identify in one applies in the other', async () => {
    const c = await browser.newContext();
    const [pa, pb] = [await open(c), await open(c)];
    if (await pa.evaluate(() => mix.anonymousId) != await pb.evaluate(() => mix.anonymousId)) throw new Error('tabs started as two users');
    await pa.evaluate(() => mix.identify('tab-user'));
    await until('tab B to see the identify', () => pb.evaluate(() => mix.distinctId == 'tab-user'));
    await pb.evaluate(() => { mix.track('from_tab_b'); return mix.flush(); });
    await arrived('tab-user', 'from_tab_b');
    await c.close();
  });

  await step('share chain A -> B -> C credits A and B in the share tree', async () => {
    const [a, b, c] = [await browser.newContext(), await browser.newContext(), await browser.newContext()];
    const pa = await open(a);
    const linkA = await pa.evaluate(() => mix.createShare({ channel: 'copy' }));
    await pa.evaluate(() => mix.flush());
    const pb = await open(b, linkA.url);
    if ((await pb.evaluate(() => location.href)).includes('_s=')) throw new Error('_s not removed from the address');
    const linkB = await pb.evaluate(() => mix.createShare({ channel: 'wechat' }));
    await pb.evaluate(() => mix.flush());
    const pc = await open(c, linkB.url);
    await pc.evaluate(c => mix.registration({ conferenceId: c, formId: 'main' }), CONF);
    await pc.evaluate(() => mix.flush());
    const tree = await until('the share tree', async () => {
      const t = await query(`/api/analytics/shares/tree?conference_id=${CONF}`);
      const find = (nodes, code) => { for (const n of nodes || []) { if (n.share_code == code) return n; const f = find(n.children, code); if (f) return f; } };
      const na = find(t.trees, linkA.code), nb = na && find(na.children, linkB.code);
      return na && nb && na.credited_conversions >= 1 && nb.credited_conversions >= 1 && { na, nb };
    });
    console.log(`  tree: A ${tree.na.share_code} (opens ${tree.na.opens}, credited ${tree.na.credited_conversions}) -> B ${tree.nb.share_code} (opens ${tree.nb.opens}, credited ${tree.nb.credited_conversions})`);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  await step('share chain A -> B -> C without super properties counts in the daily row', async () => {
    const conf = 'conf-e2e-plain';
    const [a, b, c] = [await browser.newContext(), await browser.newContext(), await browser.newContext()];
    // A's conference is configured in init; B and C configure none and B names it in createShare.
    const pa = await open(a, `${site}/?conf=${conf}`);
    const linkA = await pa.evaluate(() => mix.createShare({ channel: 'copy' }));
    await pa.evaluate(() => mix.flush());
    const pb = await open(b, linkA.url.replace(`conf=${conf}`, 'conf='));
    const linkB = await pb.evaluate(c => mix.createShare({ channel: 'wechat', conferenceId: c }), conf);
    await pb.evaluate(() => mix.flush());
    const pc = await open(c, linkB.url);
    await pc.evaluate(c => mix.registration({ conferenceId: c, formId: 'main' }), conf);
    await pc.evaluate(() => mix.flush());
    const row = await until('the daily row', async () => {
      const r = (await query(`/api/analytics/daily?conference_id=${conf}`))[0];
      return r && r.shares == 2 && r.share_conversions == 1 && r;
    });
    console.log(`  daily: shares ${row.shares}, share_conversions ${row.share_conversions}`);
    await Promise.all([a.close(), b.close(), c.close()]);
  });
} finally {
  await browser.close();
  web.close();
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(appDir, { recursive: true, force: true });
}
console.log(`e2e: ${results.length - failed()} passed, ${failed()} failed`);
process.exit(failed() ? 1 : 0);
