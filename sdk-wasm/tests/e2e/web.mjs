// End to end for the Rust browser driver (pkg-web/, built by `scripts/build.sh --web`): the
// package in headless Chromium (Debian's, driven by playwright-core) against a real
// empmix-server on loopback, as run.mjs does for pkg/. Exits non-zero if a step fails.
// Run from sdk-wasm/: `node tests/e2e/web.mjs` (STEPS=1,3 runs only those steps).
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { assert, chromiumArgs, closedWhileCompressing, reader, recordIngest, serveSite, setVisibility, startServer, steps, tabSwitch, until } from './support.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
// The package as built when the run starts, copied so that a rebuild meanwhile cannot mix two
// builds in one run.
const built = join(here, '../../pkg-web'), files = ['index.js', 'empmix.js', 'empmix.wasm', 'context.js'];
const missing = files.filter(f => !existsSync(join(built, f)));
if (missing.length) throw new Error(`${built}: no ${missing} (run scripts/build.sh --web)`);
const pkg = mkdtempSync(join(tmpdir(), 'empmix-pkg-web-'));
cpSync(built, pkg, { recursive: true });
const KEY = 'ik_e2e', READ = 'rk_e2e';
const { step, results, failed } = steps(process.env.STEPS && process.env.STEPS.split(',').map(Number));
const dataDir = mkdtempSync(join(tmpdir(), 'empmix-e2e-web-'));

// ----- the real server -----
const { server, api } = await startServer(dataDir, KEY, READ);
const { query, eventsOf, arrived } = reader(api, READ);
const ingest = api + '/api/analytics/events';

// ----- a static server for the package and the test pages -----
// `/`: init with ?interval= (flushInterval, default 500) and awaits the engine.
const page = `<!doctype html><title>e2e web</title>
<script type="module">
  import { EmpMix } from '/pkg-web/index.js';
  const q = new URLSearchParams(location.search);
  window.mix = await EmpMix.init({ apiKey: '${KEY}', endpoint: '${api}', debug: true,
    flushInterval: +(q.get('interval') || 500), persist: q.get('persist') != '0' });
  window.ready = true;
</script>`;
// `/queued`: calls made before the engine loads. The wasm is handed to init as a promise that
// resolves only when the test calls `release()`, so every call below is certainly kept by the
// loader; `window.queued` says they are made.
const queued = `<!doctype html><title>e2e queued</title>
<script type="module">
  import { EmpMix } from '/pkg-web/index.js';
  const log = (window.log = {});
  const wasm = new Promise(r => (window.release = () => r(fetch('/pkg-web/empmix.wasm'), (log.released = Date.now()))));
  const mix = (window.mix = EmpMix.init({ apiKey: '${KEY}', endpoint: '${api}', debug: true, flushInterval: 300, wasm }));
  mix.track('a');
  log.a = Date.now();
  // 60 ms of the page's own time between the calls, so their timestamps differ by it.
  while (Date.now() < log.a + 60);
  mix.track('b');
  log.b = Date.now();
  mix.identify('u1');
  mix.track('c');
  log.share = mix.createShare({ channel: 'copy' });
  // The engine's ids are null until it runs (\`c\`, \`q\`: the loader's engine and kept calls, shown only).
  log.before = { distinctId: mix.distinctId, engine: !!mix.c, kept: Array.isArray(mix.q) ? mix.q.length : null };
  window.queued = true;
  await mix;
  window.ready = true;
</script>`;
// `/framed`: the page `/` in a sandboxed frame, whose origin is opaque: `localStorage` throws
// and Web Locks reject every request (a SecurityError, after the call has returned).
const framed = `<!doctype html><title>e2e framed</title><iframe sandbox="allow-scripts" src="/?interval=300"></iframe>`;
const { web, site } = await serveSite({ '/pkg-web/': pkg }, { '/': page, '/queued': queued, '/framed': framed });

// ----- helpers -----

// Counts the bodies handed to the compression worker; with a mode, the page has no working
// one: 'throws' (the constructor refuses, as under a Content-Security-Policy without blob:
// workers), 'fails' (it starts, and throws on the first body it is given: an error event,
// with that body lost) or 'refuses' (it answers the first body without compressing it).
const workerSpy = mode => `(() => {
  const W = window.Worker;
  window.__toWorker = 0;
  window.Worker = class extends W {
    constructor(url, o) {
      if (${JSON.stringify(mode)} == 'throws') throw new DOMException('blocked', 'SecurityError');
      const script = { fails: 'onmessage = () => { throw new Error("no") }', refuses: 'onmessage = e => postMessage([e.data[0]])' }[${JSON.stringify(mode)}];
      super(script ? URL.createObjectURL(new Blob([script])) : url, o);
    }
    postMessage(m, t) { __toWorker++; return super.postMessage(m, t); }
  };
})()`;
async function open(context, url = site + '/', until = () => window.ready === true) {
  const p = await context.newPage();
  p.errors = [];
  p.on('console', m => (m.type() == 'warning' || m.type() == 'error') && (p.errors.push(m.text()), console.log('  page:', m.text())));
  p.on('pageerror', e => (p.errors.push(e.message), console.log('  page error:', e.message)));
  await p.goto(url);
  await p.waitForFunction(until, null, { timeout: 20000 });
  return p;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs });
try {
  await step('calls made before the engine loads arrive in order with their own timestamps', async () => {
    const c = await browser.newContext();
    const p = await open(c, site + '/queued', () => window.queued === true);
    const before = await p.evaluate(() => window.log);
    await p.evaluate(() => release());
    await p.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
    const log = { ...before, released: await p.evaluate(() => log.released) };
    assert(!log.before.engine && log.before.distinctId == null, 'the engine ran before the calls: ' + JSON.stringify(log.before));
    console.log('  before the engine: ' + JSON.stringify(log.before) + ', createShare gave ' + log.share.code);
    assert(log.share && /^[A-Za-z0-9_-]{12}$/.test(log.share.code) && log.share.url.endsWith('_s=' + log.share.code),
      'createShare before the engine: ' + JSON.stringify(log.share));
    const anon = await p.evaluate(() => mix.anonymousId);
    assert(await p.evaluate(() => mix.distinctId) == 'u1', 'distinct id after the replay: ' + (await p.evaluate(() => mix.distinctId)));
    await p.evaluate(() => mix.flush());
    const want = ['page_view', 'a', 'b', 'c', 'share'];
    const got = await until('a, b, c and the share', async () => {
      const all = [...(await eventsOf(anon)), ...(await eventsOf('u1'))].sort((x, y) => x.cursor - y.cursor);
      const seen = all.filter(e => want.includes(e.type));
      return seen.length >= want.length && { all, seen };
    });
    console.log('  stored: ' + got.all.map(e => `${e.type}@+${e.client_ts - got.all[0].client_ts}ms(${e.distinct_id == 'u1' ? 'u1' : 'anon'})`).join(' '));
    const seen = got.seen, by = Object.fromEntries(seen.map(e => [e.type, e]));
    assert(seen.map(e => e.type).join() == want.join(), 'stored in the order ' + seen.map(e => e.type));
    for (let i = 1; i < seen.length; i++) assert(seen[i].client_ts >= seen[i - 1].client_ts, 'client timestamps out of order: ' + seen.map(e => e.client_ts));
    assert(by.b.client_ts - by.a.client_ts >= 50, `b only ${by.b.client_ts - by.a.client_ts} ms after a`);
    assert(Math.abs(by.a.client_ts - log.a) <= 5 && Math.abs(by.b.client_ts - log.b) <= 5,
      `timestamps are not the calls' own: a ${by.a.client_ts} vs ${log.a}, b ${by.b.client_ts} vs ${log.b}`);
    // Sent only once the engine had the wasm.
    assert(Math.min(...seen.map(e => e.received_at)) >= log.released, 'received before the wasm was given?');
    assert(by.a.distinct_id == anon && by.b.distinct_id == anon, 'a and b not anonymous: ' + [by.a.distinct_id, by.b.distinct_id]);
    assert(by.c.distinct_id == 'u1' && by.c.anonymous_id == anon, `c: ${by.c.distinct_id} / ${by.c.anonymous_id}`);
    assert(JSON.stringify(by.share).includes(log.share.code), 'the share without its code: ' + JSON.stringify(by.share));
    assert(p.errors.length == 0, 'page errors: ' + p.errors);
    await c.close();
  });

  await step('bodies are gzip on the wire, compressed in a worker, and decoded by the server', async () => {
    const c = await browser.newContext();
    await c.addInitScript(workerSpy(''));
    const p = await open(c, site + '/?interval=600000');
    const sent = recordIngest(p, ingest);
    const id = await p.evaluate(() => mix.distinctId);
    await p.evaluate(() => {
      for (let i = 0; i < 200; i++) {
        const props = {};
        for (let k = 0; k < 10; k++) props['prop_' + k] = k % 3 ? `value ${k} of event ${i}` : i * 10 + k;
        mix.track('bulk', props);
      }
      return mix.flush();
    });
    const got = await arrived(id, 'bulk', 200);
    assert(new Set(got.map(e => e.event_id)).size == 200, 'stored ' + got.length);
    const bulk = sent.filter(r => r.ids.length);
    assert(bulk.length > 0, 'no ingest request seen');
    const notGzip = bulk.filter(r => r.encoding != 'gzip');
    assert(notGzip.length == 0, 'not gzip: ' + JSON.stringify(notGzip.map(r => [r.encoding, r.bytes, r.type])));
    const ids = bulk.flatMap(r => r.ids), wire = bulk.reduce((a, r) => a + r.bytes, 0), json = bulk.reduce((a, r) => a + Buffer.byteLength(r.body), 0);
    for (const e of got) assert(ids.includes(e.event_id), 'stored but not seen on the wire: ' + e.event_id);
    assert(wire < json, `gzip ${wire} bytes not smaller than the JSON ${json}`);
    console.log(`  ${bulk.length} request(s), ${ids.length} events: ${wire} bytes gzip on the wire (${(wire / ids.length).toFixed(1)} B/event), `
      + `${json} bytes JSON (${(json / ids.length).toFixed(1)} B/event), ratio ${(json / wire).toFixed(1)}x`);
    const toWorker = await p.evaluate(() => __toWorker);
    assert(toWorker == bulk.length, `${toWorker} bodies went to the worker, ${bulk.length} requests were sent`);
    await c.close();
  });

  await step('without a working compression worker (it cannot start, throws, or does not compress) every event still goes gzip', async () => {
    for (const mode of ['throws', 'fails', 'refuses']) {
      const c = await browser.newContext();
      await c.addInitScript(workerSpy(mode));
      const p = await open(c, site + '/?interval=600000');
      const sent = recordIngest(p, ingest);
      const id = await p.evaluate(() => mix.distinctId);
      await p.evaluate(() => {
        for (let i = 0; i < 30; i++) mix.track('no_worker', { i });
        mix.flush();
      });
      // 'fails', 'refuses': the first body is lost with the worker and its batch retried
      // (after the backoff), compressed on the main thread like every later one.
      const got = await arrived(id, 'no_worker', 30);
      assert(new Set(got.map(e => e.event_id)).size == 30, mode + ': stored ' + got.length);
      const bulk = sent.filter(r => r.ids.length);
      assert(bulk.length > 0 && bulk.every(r => r.encoding == 'gzip'), mode + ': ' + JSON.stringify(bulk.map(r => r.encoding)));
      const toWorker = await p.evaluate(() => __toWorker);
      assert(toWorker == (mode == 'throws' ? 0 : 1), `${mode}: ${toWorker} bodies went to the worker`);
      assert(p.errors.length == 0, mode + ': page errors: ' + p.errors);
      console.log(`  ${mode}: ${got.length} events in ${bulk.length} gzip request(s), ${toWorker} body to the worker`);
      await c.close();
    }
  });

  await step('a tab switch sends by keepalive and coming back resends nothing', async () => {
    const c = await browser.newContext();
    const s = await tabSwitch(c, c => open(c, site + '/?interval=600000'), ingest, { eventsOf, arrived });
    assert(s.resent == 0, 'stats: ' + JSON.stringify(s));
    await c.close();
  });

  await step('a page closed while a body is compressing (memory only) sends those events by beacon', async () => {
    const c = await browser.newContext();
    await closedWhileCompressing(c, c => open(c, site + '/?interval=600000&persist=0'), { arrived });
    await c.close();
  });

  await step('two tabs opened at once on a first visit share one anonymous id (3 fresh contexts)', async () => {
    for (let round = 1; round <= 3; round++) {
      const c = await browser.newContext();
      const [pa, pb] = await Promise.all([open(c), open(c)]);
      const ids = [await pa.evaluate(() => mix.anonymousId), await pb.evaluate(() => mix.anonymousId)];
      assert(ids[0] && ids[0] == ids[1], `round ${round}: two anonymous ids ${ids}`);
      await Promise.all([pa.evaluate(() => mix.flush()), pb.evaluate(() => mix.flush())]);
      const views = await arrived(ids[0], 'page_view', 2);
      const anon = new Set(views.map(e => e.anonymous_id));
      assert(views.length == 2 && anon.size == 1 && anon.has(ids[0]), `round ${round}: page_views ${JSON.stringify(views.map(e => [e.distinct_id, e.anonymous_id]))}`);
      console.log(`  round ${round}: ${ids[0]} in both tabs, both page_views stored with it`);
      await c.close();
    }
  });

  await step('in a sandboxed frame (no storage, Web Locks refuse) the client starts, in memory, and sends', async () => {
    const c = await browser.newContext();
    const p = await open(c, site + '/framed', () => true);
    const frame = await until('the frame', async () => p.frames().find(f => f != p.mainFrame()));
    await frame.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
    const seen = await frame.evaluate(async () => ({
      origin: origin,
      lock: await navigator.locks.request('probe', () => 'granted').catch(e => e.name),
      persistent: mix.stats().persistent,
      id: mix.distinctId,
    }));
    console.log('  in the frame: ' + JSON.stringify(seen));
    assert(seen.origin == 'null' && seen.lock == 'SecurityError', 'the frame is not an opaque origin: ' + JSON.stringify(seen));
    assert(seen.persistent === false && seen.id, 'the client in the frame: ' + JSON.stringify(seen));
    assert(await frame.evaluate(() => { mix.track('framed'); return mix.flush(10000); }), 'the flush in the frame timed out');
    await arrived(seen.id, 'framed');
    assert(p.errors.length == 0, 'page errors: ' + p.errors);
    await c.close();
  });

  await step('pagehide to the back/forward cache and back: the beacon\'s events are resent and counted', async () => {
    // Playwright turns the back/forward cache off; this step's browser has it.
    const bf = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs,
      ignoreDefaultArgs: ['--disable-back-forward-cache'] });
    try {
      const c = await bf.newContext();
      const p = await open(c, site + '/?interval=600000');
      // A beacon sent at pagehide is reported to the context, not the page that is leaving.
      const sent = recordIngest(c, ingest);
      const id = await p.evaluate(() => mix.distinctId);
      await p.evaluate(() => {
        window.__life = [];
        for (const e of ['pagehide', 'pageshow']) addEventListener(e, ev => __life.push(e + (ev.persisted ? ':persisted' : '')));
        document.addEventListener('visibilitychange', () => __life.push('visibility:' + document.visibilityState));
        for (let i = 0; i < 5; i++) mix.track('bf', { i });
      });
      const left = Date.now();
      await p.goto(site + '/blank');
      // The beacon's events arrive while the page is away: waited for before going back, as
      // the navigation can end before the beacon reaches the server.
      await arrived(id, 'bf', 5);
      const back = Date.now();
      // A page restored from the cache fires no load.
      await p.goBack({ waitUntil: 'commit' });
      const life = await until('the page back', () => p.evaluate(() => window.ready && (window.__life || []).some(e => e.startsWith('pageshow')) && __life)
        .catch(() => null), 10000).catch(() => p.evaluate(() => window.__life || null));
      const restored = !!life && life.includes('pageshow:persisted');
      console.log(`  back/forward cache: ${restored ? 'restored' : 'not restored'}; events seen ${JSON.stringify(life)}`);
      assert(restored, 'the page was not restored from the back/forward cache');
      const s = await until('the resent counted', async () => { const s = await p.evaluate(() => mix.stats()); return s.resent >= 5 && s; });
      // Everything delivered, the resend included, before the count below.
      assert(await p.evaluate(() => mix.flush(10000)), 'the flush after coming back timed out');
      const got = await arrived(id, 'bf', 5);
      const all = await eventsOf(id, 'bf');
      assert(all.length == 5 && new Set(all.map(e => e.event_id)).size == 5, 'stored: ' + all.map(e => e.event_id));
      // Chromium does not report to the DevTools protocol a beacon sent by a page going into the
      // cache, so the server's receive time shows it: between leaving and coming back.
      assert(s.beacons >= 1, 'no beacon queued: ' + JSON.stringify(s));
      assert(all.every(e => e.received_at >= left && e.received_at <= back),
        `not received while the page was away (${left}..${back}): ${all.map(e => e.received_at)}`);
      const wire = sent.flatMap(r => r.ids).filter(x => got.some(e => e.event_id == x));
      assert(wire.length == 5, `after coming back the bf events went ${wire.length} times on the wire (5 events, resent once)`);
      console.log(`  beacon delivered ${all[0].received_at - left} ms after leaving; back: resent ${s.resent}, beacons ${s.beacons}, `
        + `${sent.length} fetch(es) after, carrying the 5 bf events again; stored once each`);
      await c.close();
    } finally {
      await bf.close();
    }
  });
} finally {
  await browser.close();
  web.close();
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(pkg, { recursive: true, force: true });
}
console.log(`e2e web: ${results.length - failed()} passed, ${failed()} failed`);
process.exit(failed() ? 1 : 0);
