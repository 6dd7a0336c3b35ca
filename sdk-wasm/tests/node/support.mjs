// Shared by the Node tests: the built package's wasm bytes and a tiny ingest stand-in that
// records what arrives and answers like empmix-server (200 with every event accepted).
import http from 'node:http';
import { readFile } from 'node:fs/promises';

export const wasm = await readFile(new URL('../../pkg/empmix.wasm', import.meta.url));

export async function ingest() {
  const events = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', c => (body += c));
    req.on('end', () => {
      const batch = JSON.parse(body);
      events.push(...batch.events.map(e => Object.assign(e, { key: req.headers['x-api-key'] })));
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ accepted: batch.events.length, rejected: [] }));
    });
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  return { events, endpoint: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
