// Main-thread time per event in headless Chromium: EmpMix (the shipped package, sdk-wasm/pkg/, and
// the build with the browser driver in Rust, sdk-wasm/pkg-web/) against posthog-js, mixpanel-browser
// and @amplitude/analytics-browser doing the same work, and a JSON.stringify-only baseline, all
// in one browser run. Run through ./run.sh (it builds the package and installs the peers first).
//
// For each SDK and each of --runs rounds (SDKs interleaved within a round), in a fresh browser
// context: open its page (pages.mjs), wait for init and then for the network to be quiet, read
// Performance.getMetrics (TaskDuration, ScriptDuration) over the DevTools protocol, track
// --events events with ten properties in chunks of --chunk per task, wait until the collecting
// endpoint has received every one of them (and then for quiet again), read the metrics again.
//   µs per event  = ΔTaskDuration / events (all main-thread work of the page in that window)
//   bytes/event   = request bodies as they arrived, byte for byte (compressed when the SDK
//                   compresses: posthog-js and EmpMix's Rust driver gzip; never decompressed) / events;
//                   with headers: plus request line and headers as they arrived
//   longest task  = the longest of: the slowest chunk (performance.now() around its 100 calls),
//                   'longtask' entries (PerformanceObserver; Chromium reports tasks over 50 ms),
//                   and, with --trace, the longest top-level task on the renderer's main thread
//                   in a DevTools trace of the window (category 'toplevel', which sees every
//                   task, the SDK's deferred and network work included). Tracing adds its own
//                   cost to every task, so µs per event is read without it (the default).
// With --latency <ms>, the collecting endpoint answers every request that much later, as a
// real endpoint's round trip would (0 by default: loopback, where an SDK that sends whenever
// nothing is out sends after almost every chunk).
// With --profile <dir>, a CPU profile of the same window (the DevTools protocol's Profiler) goes
// to <dir>/<sdk>-<round>.cpuprofile (open it in DevTools' Performance panel), and the functions
// with the most self time are printed; the sampling slows every task, so µs per event is not
// comparable then. Build the package with KEEP_NAMES=1 (scripts/build.sh) to see the wasm's
// function names.
// Prints a markdown table of the medians, and with --json <file> writes every run.
import http from 'node:http';
import zlib from 'node:zlib';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, extname, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { SDKS, WEB, LABELS, page } from './pages.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const pkgDir = process.env.PKG || join(here, '../pkg');
// The web build (scripts/build.sh --web): the loader index.js imports ./empmix.js (the glue),
// which imports ./context.js; the loader fetches ./empmix.wasm. All four are served from /pkg-web/.
const pkgWebDir = process.env.PKG_WEB || join(here, '../pkg-web');
const webFiles = ['index.js', 'empmix.js', 'context.js', 'empmix.wasm'];
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// ----- options -----
const opts = { runs: 3, events: 10000, chunk: 100, timeout: 300, only: SDKS, json: null, trace: false, profile: null, latency: 0 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i], v = () => process.argv[++i];
  if (a == '--runs') opts.runs = +v();
  else if (a == '--events') opts.events = +v();
  else if (a == '--chunk') opts.chunk = +v();
  else if (a == '--timeout') opts.timeout = +v();
  else if (a == '--only') opts.only = v().split(',');
  else if (a == '--json') opts.json = v();
  else if (a == '--trace') opts.trace = true;
  else if (a == '--profile') opts.profile = v();
  else if (a == '--latency') opts.latency = +v();
  else if (a == '--serve') opts.serve = true;
  else if (a == '-h' || a == '--help') {
    console.log(`usage: run.sh [--runs N (3)] [--events N (10000)] [--chunk N (100)] [--timeout s (300, per run)]
              [--only ${SDKS.join(',')}] [--trace] [--profile dir] [--latency ms (0)] [--json file]
       run.sh --serve   (only the server: open its /page/<sdk> in a browser, run bench.run(events, chunk))`);
    process.exit(0);
  } else fail(`unknown option ${a} (--help lists them)`);
}
for (const s of opts.only) if (!SDKS.includes(s)) fail(`unknown SDK ${s}: one of ${SDKS.join(', ')}`);
if (!(opts.latency >= 0)) fail('--latency must be a number of milliseconds, 0 or more');
if (!(opts.runs >= 1 && opts.events >= 1 && opts.chunk >= 1 && opts.events % opts.chunk == 0))
  fail('--runs, --events and --chunk must be whole numbers above 0, --events a multiple of --chunk');

function fail(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}
if (!existsSync(join(pkgDir, 'index.js')) || !existsSync(join(pkgDir, 'empmix.wasm')))
  fail(`the EmpMix package is not built: no index.js and empmix.wasm in ${pkgDir} (run sdk-wasm/scripts/build.sh, or ./run.sh which does)`);
const webMissing = webFiles.filter(f => !existsSync(join(pkgWebDir, f)));
if (webMissing.length && opts.only.some(s => WEB.includes(s)))
  fail(`the EmpMix web build is not complete: no ${webMissing.join(', ')} in ${pkgWebDir} (run sdk-wasm/scripts/build.sh --web, ` +
    `or ./run.sh which does; --only without ${WEB.join(', ')} leaves it out)`);
if (!existsSync(chromiumPath))
  fail(`no Chromium at ${chromiumPath}: install Debian's (apt-get install chromium) or set CHROMIUM=<path>`);

// ----- the collecting endpoint: every SDK's ingest format, answered 200 -----
// Per window (reset before each measurement): requests, body bytes as received, request line
// and header bytes, events decoded, and the distinct indexes (property h) of the tracked events.
let win = newWindow();
function newWindow() {
  return { requests: 0, body: 0, plain: 0, gzipped: 0, lengthMismatch: 0, headers: 0, events: 0, seen: new Set(), duplicates: 0,
    other: 0, unknown: {}, errors: 0, last: Date.now() };
}

const formOf = text => new URLSearchParams(text);
const base64 = s => Buffer.from(s, 'base64').toString('utf8');
const asJson = s => JSON.parse(/^\s*[[{]/.test(s) ? s : base64(s));
const list = v => (Array.isArray(v) ? v : v && Array.isArray(v.batch) ? v.batch : v ? [v] : []);

// Returns [events, name of each, property h of each], or throws when the body is not the SDK's.
// The body as sent (`raw`) is what bytes/event counts; the decompressed copy is only read here
// (and its length noted beside, win.plain).
function decode(kind, url, headers, raw) {
  let buf = raw;
  const gz = buf.length > 2 && buf[0] == 0x1f && buf[1] == 0x8b;
  if (headers['content-encoding'] == 'gzip' || url.searchParams.get('compression') == 'gzip-js' || gz) {
    buf = zlib.gunzipSync(buf);
    win.gzipped++;
  }
  win.plain += buf.length;
  const text = buf.toString('utf8');
  const form = (headers['content-type'] || '').includes('x-www-form-urlencoded') || /^data=/.test(text);
  switch (kind) {
    case 'empmix':
      return JSON.parse(text).events.map(e => [e.type || e.event, e.properties?.h]);
    case 'posthog': {
      // gzip (above), base64 in a form's data= (compression=base64), or plain JSON; one event,
      // an array or {batch: [...]}.
      const body = form ? formOf(text).get('data') : text;
      return list(asJson(body)).map(e => [e.event, e.properties?.h]);
    }
    case 'mixpanel':
      // data= (form-encoded), base64 JSON by default (api_payload_format), or JSON.
      return list(asJson(form ? formOf(text).get('data') : text)).map(e => [e.event, e.properties?.h]);
    case 'amplitude':
      return JSON.parse(text).events.map(e => [e.event_type, e.event_properties?.h]);
  }
}

function kindOf(path) {
  if (path == '/api/analytics/events') return 'empmix';
  if (/^\/(e|batch|i\/v0\/e|capture)\/?$/.test(path)) return 'posthog';
  if (/^\/track\/?$/.test(path)) return 'mixpanel';
  if (/^\/2\/httpapi\/?$/.test(path) || path == '/batch') return 'amplitude';
  return null;
}

function answer(res, kind, url, n, bytes) {
  const json = body => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
  if (kind == 'empmix') return json({ accepted: n, rejected: [] });
  if (kind == 'amplitude') return json({ code: 200, events_ingested: n, payload_size_bytes: bytes, server_upload_time: Date.now() });
  if (kind == 'mixpanel' || /^\/(engage|groups)\/?$/.test(url.pathname)) {
    // mixpanel reads {"status":1} with verbose=1 (its batch requests), else the number 1.
    if (url.searchParams.get('verbose') == '1') return json({ status: 1, error: null });
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('1');
  }
  return json({ status: 1 });
}

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
// Cross-origin isolation gives performance.now() 5 µs instead of 100 µs; everything is same-origin.
const isolated = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
// The two EmpMix builds are read once, here, and served from memory: a build running meanwhile
// (build.sh empties its directory first) cannot take files away mid-run or mix two builds.
function snapshot(dir) {
  const files = new Map();
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (statSync(join(dir, f)).isFile()) files.set(f, readFileSync(join(dir, f)));
  return files;
}
const builds = { '/pkg/': snapshot(pkgDir), '/pkg-web/': snapshot(pkgWebDir) };
const built = (dir, prefix) => builds[prefix].has('empmix.wasm')
  ? `${prefix} ${builds[prefix].get('empmix.wasm').length} B wasm of ${statSync(join(dir, 'empmix.wasm')).mtime.toISOString().slice(11, 19)} UTC`
  : `${prefix} not built`;
const statics = [['/nm/', join(here, 'node_modules')]];

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x'), path = url.pathname;
  if (req.method == 'POST') {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      // The body bytes as they came off the connection (Node does not decode Content-Encoding;
      // chunked framing, if any, is not counted): a gzip body counts its compressed size.
      const raw = Buffer.concat(chunks);
      win.requests++;
      win.body += raw.length;
      const declared = req.headers['content-length'];
      if (declared != null && +declared != raw.length) win.lengthMismatch++;
      // As they arrived: the request line, each header line, the blank line.
      win.headers += `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`.length + 2 +
        req.rawHeaders.reduce((n, v, i) => n + Buffer.byteLength(v) + 2, 0);
      win.last = Date.now();
      const kind = kindOf(path);
      let events = [];
      if (kind) {
        try { events = decode(kind, url, req.headers, raw); } catch (e) { win.errors++; console.error(`  cannot decode a ${kind} body on ${path}: ${e.message}`); }
      } else win.unknown[path] = (win.unknown[path] || 0) + 1;
      for (const [name, h] of events) {
        win.events++;
        if (name != 'bench') win.other++;
        else if (win.seen.has(h)) win.duplicates++;
        else win.seen.add(h);
      }
      // --latency: the answer waits, as a real endpoint's round trip would (the events count
      // as arrived at once; only the SDK's view of the request is delayed).
      const reply = () => answer(res, kind, url, events.length, raw.length);
      if (opts.latency > 0) setTimeout(reply, opts.latency); else reply();
    });
    return;
  }
  if (path == '/favicon.ico') { res.writeHead(204); return res.end(); }
  try {
    if (path == '/driver.js') return send(res, join(here, 'page/driver.js'));
    if (path.startsWith('/page/')) {
      const html = page(path.slice(6));
      if (html) { res.writeHead(200, { 'Content-Type': 'text/html', ...isolated }); return res.end(html); }
    }
    for (const prefix in builds) {
      const body = path.startsWith(prefix) && builds[prefix].get(decodeURIComponent(path.slice(prefix.length)));
      if (body) { res.writeHead(200, { 'Content-Type': types[extname(path)] || 'application/octet-stream', ...isolated }); return res.end(body); }
    }
    for (const [prefix, dir] of statics) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, decodeURIComponent(path.slice(prefix.length))));
      if (file.startsWith(normalize(dir) + sep)) return send(res, file);
    }
  } catch {}
  res.writeHead(404);
  res.end();
});
function send(res, file) {
  const body = readFileSync(file);
  res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream', ...isolated });
  res.end(body);
}
await new Promise(r => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
if (opts.serve) {
  console.log(`bench: serving ${SDKS.map(s => `${origin}/page/${s}`).join(' ')}`);
  setInterval(() => { if (win.requests) console.log(`  ${win.requests} requests, ${win.body} body bytes, ${win.seen.size} events`); win = newWindow(); }, 2000);
  await new Promise(() => {});
}

// ----- the browser -----
// launch() gives the browser a fresh temporary user-data-dir (and removes it at close); each run
// gets a fresh context (its own localStorage).
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  // Nothing but the bench server resolves: an SDK's call home (CDN, diagnostics) fails at once.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'];
let browser;
try {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args });
} catch (e) {
  server.close();
  fail(`Chromium at ${chromiumPath} did not start: ${e.message.split('\n')[0]}`);
}
const version = browser.version();

const sleep = ms => new Promise(r => setTimeout(r, ms));
// Quiet: no request for `ms`.
async function quiet(ms, limit) {
  const end = Date.now() + limit;
  while (Date.now() - win.last < ms && Date.now() < end) await sleep(50);
}
async function metrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map(x => [x.name, x.value]));
  return { task: m.TaskDuration, script: m.ScriptDuration };
}

// Writes a CPU profile and prints the functions with the most self time (share of the samples
// outside idle time).
let profiled = 0;
function writeProfile(sdk, profile) {
  mkdirSync(opts.profile, { recursive: true });
  const file = join(opts.profile, `${sdk}-${++profiled}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const byId = new Map(profile.nodes.map(n => [n.id, n])), self = new Map();
  const gaps = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame, name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}${f.url ? ':' + f.lineNumber : ''}`;
    self.set(name, (self.get(name) || 0) + (gaps[i + 1] ?? 0));
  });
  const busy = [...self].filter(([n]) => !/^\((idle|program|garbage collector)\)/.test(n));
  const total = busy.reduce((a, [, t]) => a + t, 0);
  console.log(`  profile ${file}: ${(total / 1000).toFixed(0)} ms sampled busy; most self time:`);
  for (const [n, t] of busy.sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`    ${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(1).padStart(7)} ms  ${n.slice(0, 140)}`);
  const gc = self.get('(garbage collector) ') || 0;
  console.log(`    (garbage collector: ${(gc / 1000).toFixed(1)} ms)`);
}

// The longest top-level task on a renderer main thread in a trace ('toplevel' category).
function longestTask(trace) {
  const events = JSON.parse(trace.toString('utf8')).traceEvents;
  const main = new Set(events.filter(e => e.ph == 'M' && e.name == 'thread_name' && e.args?.name == 'CrRendererMain').map(e => `${e.pid}:${e.tid}`));
  let max = 0;
  for (const e of events) if (e.ph == 'X' && e.dur && main.has(`${e.pid}:${e.tid}`) && e.dur > max) max = e.dur;
  return max / 1000;
}

async function measure(sdk) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const problems = [];
  p.on('pageerror', e => problems.push('page error: ' + e.message));
  p.on('console', m => m.type() == 'error' && problems.push('console: ' + m.text()));
  // The bench server's own requests only (the peers' calls home fail by design, see args).
  const ours = u => u.startsWith(origin + '/');
  const fetched = [];
  p.on('requestfinished', q => ours(q.url()) && q.method() == 'GET' && fetched.push(q.url()));
  p.on('requestfailed', q => ours(q.url()) && problems.push(`request failed: ${q.method()} ${q.url()} ${q.failure()?.errorText || ''}`));
  p.on('response', q => ours(q.url()) && q.status() >= 400 && problems.push(`HTTP ${q.status()}: ${q.url()}`));
  const cdp = await context.newCDPSession(p);
  await cdp.send('Performance.enable');
  let tracing = false;
  try {
    win = newWindow();
    await p.goto(`${origin}/page/${sdk}`);
    try {
      await p.waitForFunction(() => window.ready === true, null, { timeout: 30000 });
    } catch (e) {
      // What the page got of its SDK's files, for the report.
      const files = fetched.map(u => u.slice(origin.length)).filter(u => !u.startsWith('/page/')).join(' ');
      throw new Error(`init did not finish in 30 s (files fetched: ${files || 'none'})` +
        (problems.length ? `; ${problems.slice(0, 5).join('; ')}` : ''));
    }
    // Init settled: a second without requests (the peers' first sends, if any, are done).
    await sleep(1000);
    await quiet(1000, 10000);
    win = newWindow();
    if (opts.trace) { await browser.startTracing(p, { categories: ['toplevel'] }); tracing = true; }
    if (opts.profile) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
      await cdp.send('Profiler.start');
    }
    const m0 = await metrics(cdp);
    const t0 = Date.now();
    const r = await p.evaluate(([n, c]) => window.bench.run(n, c), [opts.events, opts.chunk]);
    const want = sdk == 'baseline' ? 0 : opts.events;
    const end = t0 + opts.timeout * 1000;
    while (win.seen.size < want && Date.now() < end) await sleep(50);
    const complete = win.seen.size >= want;
    // Then quiet for a second (answers handled, storage cleaned up), at most 10 s more.
    await quiet(1000, 10000);
    const f = await p.evaluate(() => window.bench.finish());
    const m1 = await metrics(cdp);
    const wall = Date.now() - t0;
    const traced = opts.trace ? longestTask(await browser.stopTracing()) : null;
    tracing = false;
    if (opts.profile) writeProfile(sdk, (await cdp.send('Profiler.stop')).profile);
    const w = win;
    return {
      sdk, complete, arrived: w.seen.size, duplicates: w.duplicates, otherEvents: w.other, requests: w.requests,
      unknown: w.unknown, decodeErrors: w.errors, wallMs: wall, gzipped: w.gzipped, lengthMismatch: w.lengthMismatch,
      plainBytesPerEvent: w.plain / opts.events,
      usPerEvent: ((m1.task - m0.task) * 1e6) / opts.events, scriptUsPerEvent: ((m1.script - m0.script) * 1e6) / opts.events,
      trackUsPerEvent: (r.sumChunkMs * 1000) / opts.events,
      bodyBytesPerEvent: w.body / opts.events, wireBytesPerEvent: (w.body + w.headers) / opts.events,
      maxChunkMs: r.maxChunkMs, longtasks: f.longtasks, maxLongtaskMs: f.maxLongtaskMs, maxTaskMs: traced,
      longestMs: Math.max(r.maxChunkMs, f.maxLongtaskMs, traced || 0),
      refused: r.refused, isolated: r.isolated, stats: f.stats, problems: problems.slice(0, 5),
    };
  } finally {
    if (tracing) await browser.stopTracing().catch(() => {});
    await context.close().catch(() => {});
  }
}

// ----- the runs -----
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`bench: ${opts.events} events, ${opts.chunk} per task, ${opts.runs} run(s) of ${opts.only.join(', ')}; ` +
  `Chromium ${version}; ${built(pkgDir, '/pkg/')}, ${built(pkgWebDir, '/pkg-web/')}; endpoint latency ${opts.latency} ms; load average before: ${load}`);
const all = [];
for (let round = 1; round <= opts.runs; round++) {
  for (const sdk of opts.only) {
    let r;
    try {
      r = await measure(sdk);
    } catch (e) {
      r = { sdk, failed: e.message.split('\n')[0] };
    }
    all.push({ round, ...r });
    if (r.failed) { console.log(`  ${round} ${sdk}: FAILED ${r.failed}`); continue; }
    const f = (x, d = 1) => (x == null ? '–' : x.toFixed(d));
    console.log(`  ${round} ${sdk}: ${f(r.usPerEvent)} µs/event (script ${f(r.scriptUsPerEvent)}, in the calls ${f(r.trackUsPerEvent)}), ` +
      `${f(r.bodyBytesPerEvent)} B/event body (${f(r.wireBytesPerEvent)} with headers, ${r.requests} requests` +
      `${r.gzipped ? `, ${r.gzipped} gzip, ${f(r.plainBytesPerEvent)} B/event decompressed` : ''}` +
      `${r.lengthMismatch ? `, ${r.lengthMismatch} bodies not of their Content-Length` : ''}), ` +
      `longest chunk ${f(r.maxChunkMs, 2)} ms, longtasks ${r.longtasks} (max ${f(r.maxLongtaskMs)} ms), longest task ${f(r.maxTaskMs, 2)} ms; ` +
      `${r.arrived}/${sdk == 'baseline' ? 0 : opts.events} arrived${r.complete ? '' : ' (TIMED OUT)'}` +
      `${r.duplicates ? `, ${r.duplicates} duplicates` : ''}${r.otherEvents ? `, ${r.otherEvents} other events` : ''}` +
      `${Object.keys(r.unknown).length ? `, other POSTs ${JSON.stringify(r.unknown)}` : ''}${r.decodeErrors ? `, ${r.decodeErrors} bodies not decoded` : ''}` +
      `${r.refused ? `, ${r.refused} calls refused` : ''}${r.stats ? `, stats: stored ${r.stats.stored}, notPersisted ${r.stats.notPersisted}, storageErrors ${r.stats.storageErrors}, dropped ${r.stats.dropped}` : ''}` +
      `; ${(r.wallMs / 1000).toFixed(1)} s` + (r.problems.length ? `\n      ${r.problems.join('\n      ')}` : ''));
  }
}
await browser.close();
server.close();
const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ----- the table: medians over the runs -----
const median = xs => { const s = xs.filter(x => x != null).sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null; };
const f = (x, d) => (x == null ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const range = (xs, d) => { const s = xs.filter(x => x != null); return s.length > 1 ? ` (${f(Math.min(...s), d)}–${f(Math.max(...s), d)})` : ''; };
const base = all.filter(r => r.sdk == 'baseline' && !r.failed);
const baseUs = median(base.map(r => r.usPerEvent));
console.log(`\n${opts.events.toLocaleString('en-US')} events with ten properties, ${opts.chunk} per task; median of ${opts.runs} run(s) (range); ` +
  `Chromium ${version} headless; endpoint latency ${opts.latency} ms; load average ${load} before, ${loadAfter} after\n`);
console.log('| SDK | main thread µs/event | minus baseline | in the calls µs/event | bytes/event on the wire (body) | with headers | requests | longest task ms | slowest chunk ms | longtasks > 50 ms (max ms) | arrived |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const sdk of opts.only) {
  const rs = all.filter(r => r.sdk == sdk && !r.failed), col = k => rs.map(r => r[k]);
  if (!rs.length) { console.log(`| ${LABELS[sdk]} | failed | | | | | | | | | |`); continue; }
  const us = median(col('usPerEvent'));
  const arrived = sdk == 'baseline' ? '–' : rs.map(r => (r.complete ? 'all' : `${r.arrived}`)).join(', ');
  console.log(`| ${LABELS[sdk]} | **${f(us, 1)}**${range(col('usPerEvent'), 1)} | ${sdk == 'baseline' || baseUs == null ? '–' : f(us - baseUs, 1)} | ` +
    `${f(median(col('trackUsPerEvent')), 1)} | ${sdk == 'baseline' ? '–' : `**${f(median(col('bodyBytesPerEvent')), 0)}**`} | ` +
    `${sdk == 'baseline' ? '–' : f(median(col('wireBytesPerEvent')), 0)} | ${sdk == 'baseline' ? '–' : f(median(col('requests')), 0)} | ` +
    `**${f(median(col('longestMs')), 1)}**${range(col('longestMs'), 1)} | ${f(median(col('maxChunkMs')), 2)} | ` +
    `${rs.map(r => r.longtasks).join(', ')} (${f(Math.max(...col('maxLongtaskMs')), 0)}) | ${arrived} |`);
}
if (opts.json) writeFileSync(opts.json, JSON.stringify({ opts, version, load, loadAfter, runs: all }, null, 2));
const bad = all.filter(r => r.failed || (r.sdk != 'baseline' && !r.complete));
if (bad.length) {
  console.error(`bench: ${bad.length} run(s) failed or timed out before every event arrived (see above)`);
  process.exit(1);
}
