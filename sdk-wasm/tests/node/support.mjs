// Shared by the Node tests: the built package's wasm bytes and a tiny ingest stand-in that
// records what arrives and answers like empmix-server (200 with every event accepted).
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

// The package under test: pkg/ (the shipped build) or, with EMPMIX_PKG=pkg-stable, the plain
// stable build.
export const pkg = new URL(`../../${process.env.EMPMIX_PKG || 'pkg'}/`, import.meta.url);
export const wasm = await readFile(new URL('empmix.wasm', pkg));
export const { EmpMix } = await import(new URL('index.js', pkg));

export async function ingest() {
  const events = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks), gzip = req.headers['content-encoding'] == 'gzip';
      const batch = JSON.parse((gzip ? gunzipSync(raw) : raw).toString());
      // The context a request's events share, merged into each as the server does (each
      // event's own keys win; docs/protocol.md).
      const shared = c => batch.context ? { ...batch.context, ...c } : c;
      events.push(...batch.events.map(e => Object.assign(e, { key: req.headers['x-api-key'], gzip, path: req.url, context: shared(e.context) })));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ accepted: batch.events.length, rejected: [] }));
    });
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  return { events, endpoint: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
