// A real empmix-server on loopback for the JavaScript end-to-end tests (the dashboard's in
// tests/dashboard/, the browser package's in sdk-wasm/tests/e2e/).
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** The workspace's target directory (CARGO_TARGET_DIR, else target/). */
export const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, 'target');

/** Starts target/debug/empmix-server (EMPMIX_SERVER: another binary, a release build say) on a
 * free port with `dataDir`, the ingest key `key` and the read key `read`; resolves to
 * { server, api } once it listens. */
export async function startServer(dataDir, key, read) {
  const server = spawn(process.env.EMPMIX_SERVER || join(targetDir, 'debug/empmix-server'),
    ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--ingest-key', key, '--read-key', read],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
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
