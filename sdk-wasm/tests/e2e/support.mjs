// Shared by the end-to-end scripts (run.mjs for pkg/, web.mjs for pkg-web/): a real
// empmix-server on loopback (tests/support/server.mjs), its query API, waiting, and the steps'
// bookkeeping.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { extname, join } from 'node:path';

export { startServer } from '../../../tests/support/server.mjs';

const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

/** Serves the test site on a free loopback port: files under each `dirs` prefix ('/pkg/' ->
 * a directory), and otherwise the HTML `pages[path]`, or `pages['/']`; '/blank' is a page
 * without the SDK. Resolves to { web, site } (the server and its base URL). */
export async function serveSite(dirs, pages) {
  const web = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    try {
      for (const [prefix, dir] of Object.entries(dirs)) {
        if (!path.startsWith(prefix)) continue;
        const body = readFileSync(join(dir, path.slice(prefix.length)));
        // Any origin may load the package: a sandboxed frame's origin is opaque ("null").
        res.writeHead(200, { 'Content-Type': types[extname(path)] || 'application/octet-stream', 'Access-Control-Allow-Origin': '*' });
        return res.end(body);
      }
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(pages[path] ?? (path == '/blank' ? '<!doctype html><title>no SDK</title>' : pages['/']));
    } catch {
      console.log('  404 ' + path);
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise(r => web.listen(0, '127.0.0.1', r));
  return { web, site: `http://127.0.0.1:${web.address().port}` };
}

/** Resolves to `f()`'s first truthy value, polled every 250 ms for at most `ms`. */
export async function until(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise(r => setTimeout(r, 250));
  }
}

/** The server's query API with the read key: query(path), and eventsOf / arrived for the stored
 * events of a distinct id (optionally of one type), oldest first (by the store's cursor). */
export function reader(api, read) {
  async function query(path) {
    const r = await fetch(api + path, { headers: { 'X-API-Key': read } });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  }
  const eventsOf = async (distinctId, type) =>
    (await query(`/api/analytics/events?distinct_id=${encodeURIComponent(distinctId)}${type ? '&type=' + type : ''}&limit=1000`))
      .events.sort((x, y) => x.cursor - y.cursor);
  const arrived = (id, type, n = 1) => until(`${n} ${type} of ${id}`, async () => (await eventsOf(id, type)).length >= n && (await eventsOf(id, type)));
  return { query, eventsOf, arrived };
}

/** Runs named steps, logging `ok`/`not ok` for each; `only` (numbers, from 1) runs a subset. */
export function steps(only) {
  const results = [];
  let n = 0;
  async function step(name, f) {
    n++;
    if (only && !only.includes(n)) return;
    const t = Date.now();
    try {
      await f();
      results.push([name, true]);
      console.log(`ok - ${name} (${Date.now() - t} ms)`);
    } catch (e) {
      results.push([name, false]);
      console.log(`not ok - ${name}: ${e.message}`);
    }
  }
  const failed = () => results.filter(r => !r[1]).length;
  return { step, results, failed };
}

/** Throws `message` unless `ok`: a step's failure. */
export const assert = (ok, message) => { if (!ok) throw new Error(message); };

/** Chromium's flags for these tests (the machine's closed network refuses its background
 * connections otherwise). */
export const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

// The requests of a page (or a context) to the ingest endpoint `ingest`, as they go: { encoding,
// bytes (on the wire), body (decoded text), ids (its event ids), beacon, type (the resource type) }.
export function recordIngest(p, ingest) {
  const sent = [];
  p.on('request', r => {
    if (r.method() != 'POST' || !r.url().startsWith(ingest)) return;
    const raw = r.postDataBuffer() || Buffer.alloc(0), encoding = r.headers()['content-encoding'] || null;
    let body;
    try { body = (encoding == 'gzip' ? gunzipSync(raw) : raw).toString(); } catch (e) { body = 'undecodable: ' + e.message; }
    sent.push({ encoding, bytes: raw.length, body, ids: [...body.matchAll(/"event_id":"([^"]+)"/g)].map(m => m[1]),
      beacon: r.url().includes('api_key='), type: r.resourceType() });
  });
  return sent;
}

// Wraps the page's fetch so that each request to the ingest endpoint says whether it was
// keepalive (which the DevTools protocol does not report) and, for a plain body (a string, or
// bytes), its event ids.
const fetchSpy = `(() => {
  const f = window.fetch;
  window.__fetches = [];
  window.fetch = function (url, init) {
    if (String(url).includes('/api/analytics/events')) {
      const b = init && init.body, body = typeof b == 'string' ? b : b instanceof Uint8Array ? new TextDecoder().decode(b) : '';
      __fetches.push({ keepalive: !!(init && init.keepalive), ids: [...body.matchAll(/"event_id":"([^"]+)"/g)].map(m => m[1]) });
    }
    return f.apply(this, arguments);
  };
})()`;

// Makes the page hidden or visible as the browser would for a tab switch: headless Chromium
// keeps every page visible (bringToFront on another tab fires nothing), so the state is
// overridden on the document and the event dispatched there, bubbling as the browser's does.
export const setVisibility = (p, state) => p.evaluate(s => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => s == 'hidden' });
  document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
}, state);

/** A tab switch, checked the same way for both builds: the events waiting when the page is
 * hidden go by keepalive fetch, and once they are answered, coming back sends none of them
 * again (once each on the wire, not only after the server's dedup). `open(context)` opens the
 * build's test page in `context` with a long flush interval. Resolves to the client's stats. */
export async function tabSwitch(context, open, ingest, { eventsOf, arrived }) {
  await context.addInitScript(fetchSpy);
  const p = await open(context);
  const sent = recordIngest(p, ingest);
  const id = await p.evaluate(() => mix.distinctId);
  await p.evaluate(() => { for (let i = 0; i < 8; i++) mix.track('switch', { i }); });
  await setVisibility(p, 'hidden');
  const ours = await until('the events tracked', async () => {
    const s = await eventsOf(id, 'switch');
    return s.length >= 8 && s;
  });
  const fetches = await p.evaluate(() => __fetches), keepalive = fetches.filter(f => f.keepalive).length;
  const byKeepalive = fetches.filter(f => f.keepalive).flatMap(f => f.ids);
  assert(keepalive >= 1 && ours.every(e => byKeepalive.includes(e.event_id)),
    'the events not sent by keepalive fetch at hidden: ' + JSON.stringify(fetches));
  // Back once the keepalive answers are in (the engine counts them delivered).
  await until('the keepalive answers', () => p.evaluate(() => mix.stats().delivered >= 8));
  await setVisibility(p, 'visible');
  await p.evaluate(() => mix.track('after_switch'));
  // Everything tracked so far delivered: a resend, had there been one, went before this.
  assert(await p.evaluate(() => mix.flush(10000)), 'the flush after the switch timed out');
  await arrived(id, 'after_switch');
  const stored = await eventsOf(id, 'switch');
  assert(stored.length == 8 && new Set(stored.map(e => e.event_id)).size == 8, 'stored: ' + stored.map(e => e.event_id));
  const wire = sent.flatMap(r => r.ids).filter(x => ours.some(e => e.event_id == x));
  assert(wire.length == 8, `switch events sent ${wire.length} times on the wire (8 events)`);
  const s = await p.evaluate(() => mix.stats());
  console.log(`  ${sent.length} ingest request(s), ${keepalive} keepalive; resent ${s.resent}, beacons ${s.beacons}`);
  return s;
}

/** A page closed while a request's body is still being compressed, checked the same way for
 * both builds: that request never reached the network, so its events go by beacon with the
 * rest, and arrive, though the page keeps nothing in storage. `open(context)` opens the build's
 * test page in `context` with persistence off and a long flush interval. */
export async function closedWhileCompressing(context, open, { arrived }) {
  // Compression that never ends, on the page's thread: no worker (the web build's compresses
  // there otherwise) and a CompressionStream that never answers.
  await context.addInitScript(() => {
    window.Worker = undefined;
    window.CompressionStream = class extends TransformStream {
      constructor() { super({ transform: () => new Promise(() => {}) }); }
    };
  });
  const p = await open(context);
  const id = await p.evaluate(() => mix.distinctId);
  await p.evaluate(() => { for (let i = 0; i < 6; i++) mix.track('compressing', { i }); mix.flush(); });
  await until('the request compressing', () => p.evaluate(() => mix.stats().inFlight >= 6));
  const s = await p.evaluate(() => mix.stats());
  assert(!s.persistent && s.delivered == 0, 'not the case under test: ' + JSON.stringify(s));
  await p.close({ runBeforeUnload: true });
  const got = await arrived(id, 'compressing', 6);
  assert(new Set(got.map(e => e.properties.i)).size == 6, 'events missing: ' + JSON.stringify(got.map(e => e.properties)));
}
