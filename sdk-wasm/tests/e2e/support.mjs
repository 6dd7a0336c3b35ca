// Shared by the end-to-end scripts (run.mjs for pkg/, web.mjs for pkg-web/): a real
// empmix-server on loopback, its query API, waiting, and the steps' bookkeeping.
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** Starts target/debug/empmix-server on a free port with `dataDir`, the ingest key `key` and
 * the read key `read`; resolves to { server, api } once it listens. */
export async function startServer(dataDir, key, read) {
  const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target');
  const server = spawn(join(targetDir, 'debug/empmix-server'),
    ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--ingest-key', key, '--read-key', read], { stdio: ['ignore', 'pipe', 'inherit'] });
  const api = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', d => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) resolve(m[1]);
    });
    server.on('exit', c => reject(new Error('empmix-server exited ' + c)));
    setTimeout(() => reject(new Error('empmix-server did not start')), 30000);
  });
  return { server, api };
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
