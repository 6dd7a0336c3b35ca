// Runs bench.html in headless Chromium and prints track() timings (memory only and with
// localStorage). Measures; does not fail on speed. PKG=<dir> serves another build of the package
// (to compare two builds on the same machine in one sitting); MODE=memory or MODE=storage runs
// only that mode; TRACE_GC=1 makes V8 print each collection (with DEBUG=pw:browser to see it).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = fileURLToPath(new URL('.', import.meta.url));
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
// Cross-origin isolation gives the page a 5 µs clock instead of 100 µs. The ingest endpoint
// answers every batch with 200 at once, so the queue drains as in a page with a healthy server.
const isolated = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const web = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (req.method == 'POST') {
    let n = 0;
    req.on('data', c => (n += c.length));
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"accepted":0,"rejected":[]}');
    });
    return;
  }
  const file = path.startsWith('/pkg/') ? join(process.env.PKG || join(here, '../../pkg'), path.slice(5)) : join(here, 'bench.html');
  try {
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': types[extname(file)], ...isolated });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise(r => web.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ...(process.env.TRACE_GC ? ['--js-flags=--trace-gc'] : [])] });
const modes = { memory: [''], storage: ['?persist'] }[process.env.MODE] || ['', '?persist'];
for (const q of modes) {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${web.address().port}/${q}`);
  const r = await page.waitForFunction(() => window.result, null, { timeout: 120000 }).then(h => h.jsonValue());
  const f = x => x.toFixed(2);
  console.log(`track() ten properties, ${q ? 'localStorage' : 'memory only'}: mean ${f(r.meanUs)} µs ` +
    `(with the deferred storage/transmit step ${f(r.meanWithDeferredUs)} µs), p50 ${f(r.p50Us)} µs, ` +
    `p99 ${f(r.p99Us)} µs, max ${f(r.maxMs)} ms (${r.over1ms} calls over 1 ms); ${r.calls} calls, clock ` +
    `${r.isolated ? '5 µs' : '100 µs'}; baseline JSON.stringify alone in the same loop: max ${f(r.baselineMaxMs)} ms ` +
    `(${r.baselineOver1ms} over 1 ms)`);
  await page.close();
}
await browser.close();
web.close();
