// EmpMix browser SDK, web build: request bodies gzipped in a worker. CompressionStream runs on
// the thread that made it, and zlib on the page's main thread cost it 3 to 5 ms per batch of
// 500 events (docs/performance.md); a worker takes that off the page. Part of the web build's
// context.js (scripts/build.sh); the wasm driver (src/browser/send.rs) calls both functions.
//
// The worker answers the page's hook with (0, handle, gzipped bytes). A worker that fails (it
// could not start, under a Content-Security-Policy without blob: workers, it threw, or it could
// not compress) calls (5, handle) instead, and the driver compresses on the main thread from
// then on: what the worker held is sent again from there.
const GZIP_WORKER =
  "onmessage=e=>new Response(new Response(e.data[1]).body.pipeThrough(new CompressionStream('gzip')))" +
  '.arrayBuffer().then(b=>postMessage([e.data[0],b],[b]),()=>postMessage([e.data[0]]))';

export function gzipWorker(hook) {
  try {
    const w = new Worker(URL.createObjectURL(new Blob([GZIP_WORKER], { type: 'text/javascript' })));
    w.onmessage = e => hook(e.data[1] ? 0 : 5, e.data[0], e.data[1]);
    w.onerror = e => {
      e.preventDefault(); // handled: not the page's uncaught error
      hook(5, 0);
    };
    return w;
  } catch (e) {
    return null; // no Worker (Node), or one the page may not start
  }
}

// A copy of `bytes` (a view of the wasm's memory) goes to the worker, which owns it.
export function gzipIn(worker, handle, bytes) {
  const b = bytes.slice();
  worker.postMessage([handle, b], [b.buffer]);
}
