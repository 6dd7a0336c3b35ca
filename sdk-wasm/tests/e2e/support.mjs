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
