// One page per SDK. Each loads its SDK as published (EmpMix from sdk-wasm/pkg/, its build with the
// browser driver in Rust from sdk-wasm/pkg-web/ (scripts/build.sh --web), the peers from
// this folder's node_modules, through the public API their documentation gives), inits it
// pointed at the page's own origin (the bench server's collecting endpoint) with persistence on
// and batching as alike as their options allow, and hands driver.js one `track(name, props)`.
//
// Batching: at most 50 events per request where the SDK has a size option (mixpanel's /track
// takes at most 50), a flush timer of 1 s where it has one.
//   EmpMix     flushAt 50, flushInterval 1000 (both builds: the same options, the same API)
//   posthog    request_queue_config.flush_interval_ms 1000 (no size option: every interval sends
//              all that is queued, in one request)
//   mixpanel   batch_requests, batch_size 50, batch_flush_interval_ms 1000
//   amplitude  flushQueueSize 50, flushIntervalMillis 1000
// Nothing but the tracked events is captured: no page views, autocapture, session recording,
// remote configuration or feature flags.
// A key name or value choice for a peer is from its documented init options.
export const SDKS = ['baseline', 'empmix-storage', 'empmix-memory', 'empmix-web-storage', 'empmix-web-memory', 'posthog', 'mixpanel',
  'amplitude'];
// The rows that load sdk-wasm/pkg-web/ (bench.mjs needs that build only for these).
export const WEB = ['empmix-web-storage', 'empmix-web-memory'];

export const LABELS = {
  baseline: '`JSON.stringify` only (baseline)',
  'empmix-storage': 'EmpMix, `localStorage`',
  'empmix-memory': 'EmpMix, memory only',
  'empmix-web-storage': 'EmpMix (Rust driver), `localStorage`',
  'empmix-web-memory': 'EmpMix (Rust driver), memory only',
  posthog: 'posthog-js',
  mixpanel: 'mixpanel-browser',
  amplitude: '@amplitude/analytics-browser',
};

// BENCH_STORED=<events>,<characters> raises the storage bounds (defaults 1,000 and 2,000,000):
// a burst that outruns delivery leaves the events past them in memory only (stats'
// notPersisted, printed per run), which makes the localStorage rows cheaper.
const [maxStoredEvents, maxStoredBytes] = (process.env.BENCH_STORED || '1000,2000000').split(',').map(Number);
const inits = {
  // The same chunks, each event only turned into JSON: what any page pays for its data.
  baseline: `
  let sink = 0;
  install('baseline', (name, properties) => { sink += JSON.stringify({ event: name, properties }).length; });`,

  'empmix-storage': empmix(true),
  'empmix-memory': empmix(false),
  // The web build's loader returns the client at once; awaiting it waits for the engine (the
  // glue empmix.js, which imports context.js, and empmix.wasm, fetched beside index.js).
  'empmix-web-storage': empmix(true, 'web'),
  'empmix-web-memory': empmix(false, 'web'),

  posthog: `
  import posthog from '/nm/posthog-js/dist/module.js';
  await new Promise(loaded => posthog.init('phc_bench', {
    api_host: location.origin, persistence: 'localStorage',
    request_queue_config: { flush_interval_ms: 1000 },
    autocapture: false, capture_pageview: false, capture_pageleave: false, disable_session_recording: true,
    advanced_disable_flags: true, loaded,
    // posthog-js drops the events of a browser it takes for a bot (headless, automated); this
    // is its documented switch for end-to-end tests.
    opt_out_useragent_filter: true,
    // Its client-side rate limit (10 events/s, bursts of 100 by default) would drop most of the
    // 10,000 events: raised past them.
    rate_limiting: { events_per_second: 100000, events_burst_limit: 100000 },
  }));
  install('posthog', (name, props) => posthog.capture(name, props));`,

  mixpanel: `
  import mixpanel from '/nm/mixpanel-browser/dist/mixpanel.module.js';
  await new Promise(loaded => mixpanel.init('bench-token', {
    api_host: location.origin, persistence: 'localStorage',
    batch_requests: true, batch_size: 50, batch_flush_interval_ms: 1000,
    track_pageview: false, loaded,
  }));
  install('mixpanel', (name, props) => mixpanel.track(name, props));`,

  amplitude: `
  // The package's own browser build (lib/scripts/amplitude-min.js) defines window.amplitude.
  await window.amplitude.init('bench-api-key', {
    serverUrl: location.origin + '/2/httpapi', identityStorage: 'localStorage',
    flushQueueSize: 50, flushIntervalMillis: 1000,
    autocapture: false, remoteConfig: { fetchRemoteConfig: false }, enableDiagnostics: false,
  }).promise;
  install('amplitude', (name, props) => window.amplitude.track(name, props));`,
};

function empmix(persist, web) {
  return `
  import { EmpMix } from '/${web ? 'pkg-web' : 'pkg'}/index.js';
  const mix = await EmpMix.init({ apiKey: 'ik_bench', endpoint: location.origin, persist: ${persist},
    flushAt: 50, flushInterval: 1000, autoPageView: false, maxStoredEvents: ${maxStoredEvents}, maxStoredBytes: ${maxStoredBytes} });
  window.benchStats = () => mix.stats();
  install('empmix-${web ? 'web-' : ''}${persist ? 'storage' : 'memory'}', (name, props) => mix.track(name, props));`;
}

export function page(sdk) {
  const init = inits[sdk];
  if (!init) return null;
  const pre = sdk == 'amplitude' ? '<script src="/nm/@amplitude/analytics-browser/lib/scripts/amplitude-min.js"></script>\n' : '';
  return `<!doctype html><meta charset="utf-8"><title>bench: ${sdk}</title>
${pre}<script type="module">
  import { install } from '/driver.js';${init.replace(/^\n/, '\n')}
</script>`;
}
