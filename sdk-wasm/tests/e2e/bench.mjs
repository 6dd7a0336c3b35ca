// Runs bench.html in headless Chromium and prints track() timings (memory only and with
// localStorage). Measures; does not fail on speed.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = fileURLToPath(new URL('.', import.meta.url));
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const web = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  const file = path.startsWith('/pkg/') ? join(here, '../../pkg', path.slice(5)) : join(here, 'bench.html');
  try {
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': types[extname(file)] });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise(r => web.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] });
for (const q of ['', '?persist']) {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${web.address().port}/${q}`);
  const r = await page.waitForFunction(() => window.result, null, { timeout: 120000 }).then(h => h.jsonValue());
  const f = x => x.toFixed(2);
  console.log(`track() ten properties, ${q ? 'localStorage' : 'memory only'}: mean ${f(r.meanUs)} µs ` +
    `(with deferred storage/transmit ${f(r.meanWithDeferredUs)} µs), p50 ${f(r.p50Us)} µs, p99 ${f(r.p99Us)} µs, max ${f(r.maxMs)} ms, ${r.calls} calls`);
  await page.close();
}
await browser.close();
web.close();
