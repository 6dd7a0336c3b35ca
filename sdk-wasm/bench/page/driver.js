// The in-page part of the benchmark, the same for every SDK: tracks `events` events with ten
// properties in chunks of `chunk` calls, one chunk per task (setTimeout 0 between chunks), and
// times each chunk with performance.now(). A PerformanceObserver collects 'longtask' entries
// (Chromium reports tasks over 50 ms) from before the first chunk until bench.finish() is called,
// after the endpoint has received every event, so work the SDK schedules later is covered too.
const props = n => ({ a: 'one', b: 2, c: true, d: 'four', e: 5.5, f: null, g: 'seven', h: n, i: 'nine', j: 'ten' });

export function install(name, track) {
  let longtasks = [], observer = null;
  window.bench = {
    name,
    async run(events, chunk) {
      longtasks = [];
      observer = new PerformanceObserver(list => { for (const e of list.getEntries()) longtasks.push(e.duration); });
      observer.observe({ type: 'longtask' });
      let maxChunk = 0, sumChunk = 0, refused = 0;
      const start = performance.now();
      for (let c = 0; c < events / chunk; c++) {
        await new Promise(r => setTimeout(r, 0));
        const t = performance.now();
        for (let i = 0; i < chunk; i++) if (track('bench', props(c * chunk + i)) === false) refused++;
        const d = performance.now() - t;
        sumChunk += d;
        if (d > maxChunk) maxChunk = d;
      }
      return { maxChunkMs: maxChunk, sumChunkMs: sumChunk, trackMs: performance.now() - start, refused,
        isolated: globalThis.crossOriginIsolated === true };
    },
    async finish() {
      // Entries are delivered asynchronously: give the observer a task to run in.
      await new Promise(r => setTimeout(r, 50));
      if (observer) { for (const e of observer.takeRecords()) longtasks.push(e.duration); observer.disconnect(); }
      return { longtasks: longtasks.length, maxLongtaskMs: longtasks.length ? Math.max(...longtasks) : 0,
        stats: window.benchStats ? window.benchStats() : null };
    },
  };
  window.ready = true;
}
