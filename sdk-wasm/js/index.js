// EmpMix browser SDK: the hand-written driver around the wasm engine (sdk-wasm/src/wasm.rs).
// The engine decides everything; this file does the IO: fetch/sendBeacon, timers,
// localStorage, the browser context. No public method throws or waits.

const MAX_ARG = 1 << 20; // longest string handed to wasm (UTF-16 units); longer is refused
// The core's constants are in js/core.js, generated from the core (empmix_core::frontend) and put
// before this file by scripts/build.sh: the error codes (E_OPTED_OUT, …) and their names by
// number (ERRORS); the protocol's EVENTS_PATH, API_KEY_HEADER, API_KEY_PARAM, SHARE_PARAM and
// BEACON_MAX_BYTES; and EVENT_ID_LEN, the length of an event id in storage ops.
// Separates the events of one stored chunk: the ASCII record separator, which JSON text (every
// record is) can never contain unescaped, as in JSON text sequences (RFC 7464).
const RS = '\x1e';
// Records per chunk at most (UTF-16 units): a full storage quota still takes some of a burst.
const CHUNK_MAX = 65536;
// How long a tab's heartbeat says it is alive (ms). It is renewed 8 times as often, and outlasts
// the one-minute timer throttling Chromium applies to tabs hidden for five minutes, so a live
// background tab is not taken for gone.
const BEAT_TTL = 150000;
// How long a tab that took over a gone tab's events keeps it claimed (ms): long enough for the
// takeover to reach every other tab's copy of localStorage, and no longer, since Chromium keeps a
// page that holds a Web Lock out of its back/forward cache.
const CLAIM_HOLD = 5000;
const enc = new TextEncoder();
const dec = new TextDecoder();

// Writes `s` as UTF-8 at m[p..end]; returns the bytes written. Short ASCII strings (the common
// case: event names, JSON.stringify output) are copied in a loop, which in Chromium costs a
// fraction of a call into TextEncoder.
function put(m, s, p, end) {
  const n = s.length;
  if (n < 512) {
    let i = 0;
    for (let c; i < n && (c = s.charCodeAt(i)) < 128; i++) m[p + i] = c;
    if (i == n) return n;
  }
  return enc.encodeInto(s, m.subarray(p, end)).written;
}

// opts, shareParam and joinUrl are in js/share.js, put before this file by scripts/build.sh.

// The core's `protocol::events_url` (the rule every SDK shares): an endpoint whose path ends in
// the events path or /track is the ingest URL; any other is a base (or a prefix the server is
// mounted under) that gets the events path after its trailing slashes, the query kept last.
// Written here as well because the wasm would cost this build more; the package's Node tests
// check it against the core's own cases (sdk-core/fixtures/endpoints.json).
function eventsUrl(e) {
  const i = e.search(/[?#]|$/), path = e.slice(0, i);
  return path.endsWith(EVENTS_PATH) || path.endsWith(TRACK_PATH) ? e : path.replace(/\/+$/, '') + EVENTS_PATH + e.slice(i);
}

// localStorage behind try/catch; null when blocked (private modes, sandboxed iframes).
function openStorage() {
  try {
    const ls = g.localStorage, k = 'empmix:probe';
    ls.setItem(k, k);
    ls.removeItem(k);
    return ls;
  } catch (e) {
    return null;
  }
}

// detectBrowser and browserContext are in js/context.js, shared with the wasm-bindgen driver
// and put before this file by scripts/build.sh.

export class EmpMix {
  /**
   * Loads the engine, restores what this site stored, and starts tracking. Rejects when the
   * wasm file cannot be loaded, and with an Error naming the option when one has a bad value
   * (the engine's settings decoder, in the core, checks every option; nothing is stored or
   * sent then).
   */
  static async init(options) {
    const o = opts(options);
    let src = o.wasm || new URL('empmix.wasm', import.meta.url);
    if (typeof src == 'string' || src instanceof URL) src = fetch(src);
    const { instance } = src instanceof Promise || src instanceof Response
      ? await WebAssembly.instantiateStreaming(src).catch(async () => WebAssembly.instantiate(await (await src).arrayBuffer()))
      : await WebAssembly.instantiate(src);
    const mix = new EmpMix(instance.exports, o);
    await mix._start();
    return mix;
  }

  constructor(w, o) {
    this.w = w;
    this.o = o;
    this.ls = o.persist === false ? null : openStorage();
    // Every option but the engine's bytes goes to the core's settings decoder first: a bad value
    // throws, naming it (options over MAX_ARG reach it as none, which is no object).
    const n = w.em_settings((this._args(JSON.stringify(o, (k, v) => (k == 'wasm' ? void 0 : v))) || [-1])[0], this.ls ? 1 : 0);
    if (n >= 0) throw new Error('[empmix] ' + this._out(n));
    this.key = o.apiKey || '';
    this.url = eventsUrl(o.endpoint || '');
    this.p = 'empmix:' + (o.project || 'default') + ':';
    this.tab = Math.random().toString(36).slice(2, 10);
    this.keys = new Map(); // event id -> its chunk { k: key, n: events left, b: their record bytes }, per stored event
    this.storedBytes = 0;
    this.pend = []; // id, record, id, record… appended in this task, not yet written
    this.pendBytes = 0;
    this.beaconed = [];
    // Requests that die with the page: compressing, or posted without keepalive (see _unload).
    this.dying = new Set();
    this.waiters = [];
    this.c = { invalid: 0, storageErrors: 0, notPersisted: 0, beacons: 0 };
  }

  // ----- the wasm boundary -----

  // A view of all wasm memory, renewed when the memory has grown (which detaches the old one).
  _mem() {
    const b = this.w.memory.buffer;
    return this.m && this.m.buffer == b ? this.m : (this.m = new Uint8Array(b));
  }

  // Writes strings into the input buffer; their UTF-8 lengths, or null when too long.
  _args(...s) {
    let max = 0;
    for (const x of s) max += x.length * 3;
    if (max > MAX_ARG * 3) return null;
    const p = this.w.em_in(max), m = this._mem(), end = p + max;
    let at = p;
    return s.map(x => { const n = put(m, x, at, end); at += n; return n; });
  }

  // The hot path's two strings, without the general case's arrays: the first one's length is
  // left in this.n1. Returns the second one's length, or -1 when too long.
  _two(a, b) {
    const max = (a.length + b.length) * 3;
    if (max > MAX_ARG * 3) return -1;
    const p = this.w.em_in(max), m = this._mem();
    return put(m, b, p + (this.n1 = put(m, a, p, p + max)), p + max);
  }

  // The string a wasm function left in the output buffer, as a copy of its bytes or as text.
  _bytes(n) {
    const p = this.w.em_out();
    return this._mem().slice(p, p + n);
  }

  _out(n) {
    const p = this.w.em_out();
    return n < 0 ? null : dec.decode(this._mem().subarray(p, p + n));
  }

  _warn(what, code) {
    if (code) {
      if (code == E_INVALID_JSON || code == E_INVALID_NAME || code == E_TOO_LARGE) this.c.invalid++;
      if (this.o.debug) console.warn('[empmix] ' + what + ': ' + (ERRORS[code] || code));
    }
    return code;
  }

  // An exception caught at the API boundary becomes a warning: nothing reaches the host page.
  _caught(what, e, fallback) {
    this.c.invalid++;
    if (this.o.debug) console.warn('[empmix] ' + what + ':', e);
    return fallback;
  }

  // Runs `f` behind the boundary.
  _safe(what, f, fallback) {
    try {
      return f();
    } catch (e) {
      return this._caught(what, e, fallback);
    }
  }

  _props(p) {
    if (p === undefined || p === null) return '';
    const s = JSON.stringify(p);
    return typeof s == 'string' ? s : '!';
  }

  _str(x) {
    return typeof x == 'string' ? x : typeof x == 'number' && isFinite(x) ? String(x) : '';
  }

  // ----- storage -----

  _get(k) {
    try { return this.ls && this.ls.getItem(k); } catch (e) { return null; }
  }

  _set(k, v) {
    try { this.ls.setItem(k, v); return true; } catch (e) { this.c.storageErrors++; return false; }
  }

  _del(k) {
    try { this.ls.removeItem(k); } catch (e) { /* ignore */ }
  }

  // Where this tab stores a chunk of events: empmix:<project>:e:<tab>:<its first event id>.
  _key(id) {
    return this.p + 'e:' + this.tab + ':' + id;
  }

  _stage(id, rec) {
    this.pend.push(id, rec);
    this.pendBytes += rec.length;
  }

  // Writes the events appended since the last write as one chunk: one `setItem` per task (or per
  // 64 K of records), however many events it tracked. One per event took twice the deferred
  // work, and its garbage made the slowest 1% of track() calls 2-5 times slower in a burst
  // (docs/performance.md).
  _commit() {
    const e = this.pend;
    if (!e.length) return true;
    const c = { k: this._key(e[0]), n: e.length / 2, b: this.pendBytes };
    let v = '';
    for (let i = 0; i < e.length; i += 2) v += RS + e[i] + e[i + 1];
    this.pend = [];
    this.pendBytes = 0;
    if (!this._set(c.k, v)) return void (this.c.notPersisted += c.n);
    for (let i = 0; i < e.length; i += 2) this.keys.set(e[i], c);
    this.storedBytes += c.b;
    return true;
  }

  // Applies every storage change the engine has pending.
  _persist() {
    for (let n; (n = this.w.em_poll_persist()) >= 0;) this._apply(n);
    this._commit();
  }

  // Applies the storage change the engine left in its output buffer (`n` bytes):
  // `s<state>`, `a<event id><record>` (staged for this task's chunk) or `r<event ids>`. The
  // pieces are decoded separately: an id sliced out of the whole op would keep the op's record
  // alive (V8 slices share their parent) for as long as the id is a key of `keys`.
  _apply(n) {
    const p = this.w.em_out(), m = this._mem(), t = m[p], text = (a, b) => dec.decode(m.subarray(p + a, p + b));
    if (t == 115) {
      if (this.ls) this._set(this.p + 's', text(1, n));
    } else if (t == 97) {
      const id = text(1, EVENT_ID_LEN + 1), rec = text(EVENT_ID_LEN + 1, n);
      const max = this.o.maxStoredEvents || 1000, maxBytes = this.o.maxStoredBytes || 2e6; // checked by the core
      if (this.ls && this.keys.size + this.pend.length / 2 < max && this.storedBytes + this.pendBytes + rec.length <= maxBytes) {
        if (this.pendBytes + rec.length > CHUNK_MAX) this._commit();
        this._stage(id, rec);
      } else this.c.notPersisted++;
    } else if (t == 114) this._remove(text(1, n));
  }

  // Removes stored events (`ids`: their ids, concatenated).
  _remove(ids) {
    this._commit(); // the ids may be this task's
    const partial = new Set();
    for (let i = 0; i < ids.length; i += EVENT_ID_LEN) {
      const id = ids.slice(i, i + EVENT_ID_LEN), c = this.keys.get(id);
      if (!c) continue;
      this.keys.delete(id);
      if (--c.n) partial.add(c);
      else {
        partial.delete(c);
        this._del(c.k);
        this.storedBytes -= c.b;
      }
    }
    // A chunk with events still unsent is rewritten without the finished ones, unless it is gone
    // (another tab took this one for gone while it was frozen, and sends them too).
    for (const c of partial) {
      const v = this._get(c.k);
      if (!v) continue;
      const left = v.split(RS).filter(e => this.keys.get(e.slice(0, EVENT_ID_LEN)) == c);
      const b = left.reduce((sum, e) => sum + e.length - EVENT_ID_LEN, 0);
      if (this._set(c.k, RS + left.join(RS))) {
        this.storedBytes += b - c.b;
        c.b = b;
      }
    }
  }

  // Marks this tab alive; a tab that stops doing so leaves its stored events to the next start.
  _beat() {
    if (this.ls) this._set(this.p + 't:' + this.tab, String(Date.now() + BEAT_TTL));
  }

  // The stored events of tabs that are gone (their heartbeat ran out), as tab -> chunk keys.
  // Heartbeats of gone tabs that left no events are removed on the way.
  _orphans() {
    const ls = this.ls, p = this.p, now = Date.now(), byTab = new Map(), beats = [];
    for (let i = 0; i < ls.length; i++) {
      const k = ls.key(i) || '', t = k.slice(p.length + 2, -EVENT_ID_LEN - 1);
      if (k.startsWith(p + 'e:')) t != this.tab && byTab.set(t, (byTab.get(t) || []).concat(k));
      else if (k.startsWith(p + 't:')) beats.push(k);
    }
    for (const k of beats) {
      const t = k.slice(p.length + 2);
      if (+this._get(k) > now) byTab.delete(t);
      else if (!byTab.has(t)) this._del(k);
    }
    return byTab;
  }

  // Moves the events stored under `keys` (a gone tab's) into this tab's own chunks and returns
  // them, each as its id and record. An event already taken is left out of the copy. A chunk's
  // old key goes only once the copy is written: a crash in between sends twice (the server
  // dedups), a full quota leaves it for a later start; neither loses it.
  _adopt(keys) {
    const entries = [];
    keys.sort((a, b) => (a.slice(-EVENT_ID_LEN) < b.slice(-EVENT_ID_LEN) ? -1 : 1)); // UUIDv7 ids sort by time
    for (const k of keys) {
      const v = this._get(k);
      if (!v) continue;
      // A chunk, or a single record under its event id (the layout before chunks).
      for (const e of v[0] == RS ? v.slice(1).split(RS) : [k.slice(-EVENT_ID_LEN) + v]) {
        const id = e.slice(0, EVENT_ID_LEN);
        if (this.keys.has(id)) continue;
        this._stage(id, e.slice(EVENT_ID_LEN));
        entries.push(e);
      }
      if (this._commit()) this._del(k);
    }
    return entries;
  }

  // Takes over the events of gone tabs. Which tab takes a gone tab's events is settled by a Web
  // Lock named after it, taken only when free and held CLAIM_HOLD past the takeover.
  // localStorage alone cannot settle it: in Chromium each renderer reads its own copy of it,
  // updated asynchronously, so a tab starting beside the taker can still see the keys the taker
  // has just moved (the end-to-end test saw two tabs restore the same 13 events when one lock
  // only serialised the takeovers). Without Web Locks, a lease key decides, best effort.
  async _takeOver() {
    const locks = g.navigator && navigator.locks, entries = [];
    const hold = () => new Promise(r => setTimeout(r, CLAIM_HOLD));
    for (const [t, keys] of this._orphans()) {
      const take = () => {
        entries.push(...this._adopt(keys));
        this._del(this.p + 't:' + t);
      };
      if (locks) {
        await new Promise(res => locks.request(this.p + 'claim:' + t, { ifAvailable: true }, l => {
          res(l && take());
          return l && hold();
        }).catch(res));
      } else {
        const k = this.p + 'lock', v = this._get(k), now = Date.now();
        if (v && +v.split(' ')[1] > now && !v.startsWith(this.tab + ' ')) break;
        if (this._set(k, this.tab + ' ' + (now + CLAIM_HOLD))) take();
      }
    }
    return entries;
  }

  // ----- start and the driver loop -----

  async _start() {
    const o = this.o, w = this.w;
    let entries = [], unreadable = '';
    if (this.ls) {
      this._beat();
      this._hb = setInterval(() => this._beat(), BEAT_TTL / 8);
      entries = await this._takeOver().catch(() => []);
    }
    // A record the engine cannot read is skipped at start, and no removal will name it: it goes
    // from storage here.
    for (const e of entries) {
      const a = this._args(e.slice(EVENT_ID_LEN));
      if (!a || !w.em_stage(a[0])) unreadable += e.slice(0, EVENT_ID_LEN);
    }
    this._remove(unreadable);
    const seed = crypto.getRandomValues(new Uint32Array(2));
    // The engine starts with the options the constructor had decoded (em_settings).
    const a = this._args((this.ls && this._get(this.p + 's')) || '') || [0];
    w.em_start(Date.now(), seed[0], seed[1], a[0]);
    this._context();
    if (this.ls && g.addEventListener) {
      // Another tab of this site saved its state (identify, reset, opt-out, a link opened):
      // adopt it, so the tabs stay one user without a reload.
      addEventListener('storage', e => this._safe('storage', () => {
        const a = e.key == this.p + 's' && e.newValue && this._args(e.newValue);
        // A record this version cannot read (a newer release's) leaves this tab as it was.
        if (a) this._cmd('storage', this.w.em_adopt_state(a[0]) && 0);
      }));
    }
    if (g.location && g.history) {
      const u = o.shareLinks !== false && shareParam(location.href);
      if (u && u.had) {
        // A malformed `_s` records nothing but is still removed from the address.
        const a = u.code != null && this._args(u.code), clean = joinUrl(u);
        if (a) w.em_open_share(Date.now(), a[0]);
        if (clean != location.href && o.cleanUrl !== false) {
          try { history.replaceState(history.state, '', clean); } catch (e) { /* sandboxed */ }
          this._context();
        }
      }
      this.href = location.href;
      if (o.autoPageView !== false) {
        this.pageView();
        const nav = () => this._safe('navigation', () => this._nav());
        for (const m of ['pushState', 'replaceState']) {
          const orig = history[m];
          history[m] = function () { const r = orig.apply(this, arguments); nav(); return r; };
        }
        addEventListener('popstate', nav);
      }
      const hide = () => this._safe('unload', () => this._unload());
      // Leaving: the heartbeat goes too, so the next page of the site takes over what is still
      // stored without waiting for it to run out (a page back from the back/forward cache beats
      // again).
      addEventListener('pagehide', () => { hide(); this._del(this.p + 't:' + this.tab); });
      // Hidden: sent by keepalive fetch, plain (there may be no time to compress), so coming
      // back resends nothing; beacons are for pagehide.
      addEventListener('visibilitychange', () => (document.visibilityState == 'hidden' ? this._safe('unload', () => this._unload(1)) : this._back()));
      addEventListener('pageshow', () => this._back());
      addEventListener('online', () => this._pump());
    }
    this._pump();
  }

  _context() {
    const a = this._args(...browserContext().split('\n'));
    if (a) this.w.em_set_context(...a);
  }

  _nav() {
    if (location.href == this.href) return;
    this._context();
    this.pageView({ referrer: this.href });
    this.href = location.href;
  }

  // Step 2 of the driver contract, coalesced to once per task so track() stays cheap.
  _schedule() {
    if (!this._queued) {
      this._queued = true;
      queueMicrotask(() => this._pump());
    }
  }

  _pump() {
    this._queued = false;
    const w = this.w, now = Date.now();
    this._persist();
    for (let n; (n = w.em_poll_transmit(now)) >= 0;) this._send(this._bytes(n), w.em_last_handle());
    clearTimeout(this._timer);
    const t = w.em_poll_timeout(now);
    if (t >= 0) this._timer = setTimeout(() => { w.em_timeout(Date.now()); this._pump(); }, Math.min(t - now, 2e9));
    if (this.waiters.length && w.em_is_flushed()) for (const f of this.waiters.splice(0)) f(true);
  }

  // Gzip where the browser has CompressionStream (about a twentieth of the bytes), plain JSON
  // where it has not or compressing fails. zlib runs on the page's thread here; the web build
  // moves it to a worker (js/gzip.js), whose 230 B gzip this build has no room for.
  _send(body, handle) {
    this.dying.add(handle);
    if (!g.CompressionStream) return this._post(body, handle);
    // Not posted when the page abandoned the request meanwhile (_unload).
    new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
      .then(b => this.dying.has(handle) && this._post(b, handle, 1), () => this.dying.has(handle) && this._post(body, handle));
  }

  // Sends `body`, gzip with `gz`, as the engine's request `handle`. Its outcome goes to the
  // engine: the status (0: failed), Retry-After as sent (the core reads seconds and HTTP dates)
  // and the body.
  _post(body, handle, gz) {
    const keepalive = body.byteLength < BEACON_MAX_BYTES;
    if (keepalive) this.dying.delete(handle);
    const done = (status, retry, text) => this._safe('response', () => {
      this.dying.delete(handle);
      const a = this._args(retry || '', text.slice(0, 65536)) || [0, 0];
      this.w.em_response(Date.now(), handle, status, a[0], a[1]);
      this._pump();
    });
    fetch(this.url, {
      method: 'POST',
      keepalive,
      headers: { 'Content-Type': 'application/json', [API_KEY_HEADER]: this.key, ...(gz && { 'Content-Encoding': 'gzip' }) },
      body,
    }).then(
      r => r.text().then(t => done(r.status, r.headers.get('Retry-After'), t)),
      () => done(0, '', ''),
    );
  }

  // The page is `hidden` (a tab switch, or closing) or going away (pagehide): everything waiting
  // goes now. When hidden, by keepalive fetch, whose answer arrives while the page lives; at
  // pagehide, by beacon, whose outcome is unknown, so the events stay stored and, if the page
  // comes back, are sent again (the server dedups). At pagehide, the requests that die with the
  // page (still compressing, or a fetch without keepalive, which the browser cancels) fail first,
  // so their events go by beacon too: without storage nothing else would ever send them (a copy
  // that arrives after all is deduplicated).
  _unload(hidden) {
    const w = this.w, now = Date.now();
    if (!hidden) {
      for (const h of this.dying) w.em_response(now, h, 0, 0, 0);
      this.dying.clear();
    }
    this._persist();
    const url = this.url + (this.url.includes('?') ? '&' : '?') + API_KEY_PARAM + '=' + encodeURIComponent(this.key);
    for (let n; (n = w.em_poll_unload(now, BEACON_MAX_BYTES)) >= 0;) {
      if (hidden) {
        this._post(this._bytes(n), w.em_last_handle());
        continue;
      }
      const body = this._out(n), h = w.em_last_handle();
      this.beaconed.push(h);
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) this.c.beacons++;
    }
  }

  _back() {
    this._beat();
    for (const h of this.beaconed.splice(0)) this.w.em_response(Date.now(), h, 0, 0, 0);
    this._pump();
  }

  _cmd(what, code) {
    this._warn(what, code);
    this._schedule();
    return code == 0;
  }

  // ----- the public API (see index.d.ts) -----

  track(name, properties) {
    // The hot path: no closure, no arrays (each would be garbage to collect on every call).
    try {
      if (typeof name != 'string') return this._cmd('track', E_INVALID_NAME);
      const n = this._two(name, this._props(properties));
      return this._cmd('track', n < 0 ? E_TOO_LARGE : this.w.em_track(Date.now(), this.n1, n));
    } catch (e) {
      return this._caught('track', e, false);
    }
  }

  // The typed events are built by the core (em_event, kind 0-3) from their arguments; the other
  // properties go on top. The conference defaults to the one given to init, in the engine.
  pageView(p) {
    return this._event(0, ...typedEvent(0, p));
  }

  registration(p) {
    return this._event(1, ...typedEvent(1, p));
  }

  checkin(p) {
    return this._event(2, ...typedEvent(2, p));
  }

  aiChat(p) {
    return this._event(3, ...typedEvent(3, p));
  }

  _event(kind, conference, text, referrer, count, rest) {
    return this._safe('event', () => {
      const a = this._args(this._str(conference), this._str(text), this._str(referrer), this._props(rest));
      return this._cmd('event', a ? this.w.em_event(Date.now(), kind, ...a, typeof count == 'number' ? count : -1) : E_TOO_LARGE);
    }, false);
  }

  identify(userId) {
    return this._safe('identify', () => {
      const a = this._args(this._str(userId));
      return this._cmd('identify', a ? this.w.em_identify(Date.now(), a[0]) : E_INVALID_NAME);
    }, false);
  }

  alias(id) {
    return this._safe('alias', () => {
      const a = this._args(this._str(id));
      return this._cmd('alias', a ? this.w.em_alias(Date.now(), a[0]) : E_INVALID_NAME);
    }, false);
  }

  reset() {
    return this._safe('reset', () => this._cmd('reset', this.w.em_reset(Date.now())), false);
  }

  register(properties, options) {
    return this._safe('register', () => {
      const a = this._args(this._props(properties) || '{}');
      return this._cmd('register', a ? this.w.em_register(a[0], options && options.once ? 1 : 0) : E_TOO_LARGE);
    }, false);
  }

  unregister(key) {
    return this._safe('unregister', () => {
      const a = this._args(this._str(key));
      return this._cmd('unregister', a ? this.w.em_unregister(a[0]) : E_INVALID_NAME);
    }, false);
  }

  optOut() {
    this._safe('optOut', () => this._cmd('optOut', this.w.em_opt_out(1) && 0));
  }

  optIn() {
    this._safe('optIn', () => this._cmd('optIn', this.w.em_opt_out(0)));
  }

  get optedOut() {
    return this._safe('optedOut', () => this.w.em_opt_out(2) == 1, false);
  }

  createShare(options) {
    return this._safe('createShare', () => {
      const o = opts(options);
      // Clean the target first: a link must never pass on someone else's code.
      const u = shareParam(this._str(o.url) || (g.location ? location.href : ''));
      const a = u && this._args(this._str(o.channel) || 'link', joinUrl(u), this._str(o.conferenceId));
      const code = a && this._out(this.w.em_share(Date.now(), a[0], a[1], a[2]));
      this._cmd('createShare', code ? 0 : a ? this.w.em_last_error() : E_INVALID_URL);
      return code ? { code, url: joinUrl(u, SHARE_PARAM + '=' + code) } : null;
    }, null);
  }

  flush(timeout) {
    return new Promise(resolve => {
      // Settled by the engine (true) or the timeout (false), whichever comes first; each undoes
      // the other, so neither a timer nor a waiter outlives the promise.
      let timer;
      const done = ok => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(ok);
      };
      try {
        this.waiters.push(done);
        timer = setTimeout(() => done(false), timeout >= 0 && timeout < 2e9 ? timeout : 10000);
        this.w.em_flush();
        this._pump();
      } catch (e) {
        resolve(false);
      }
    });
  }

  _id(which) {
    return this._safe('id', () => this._out(this.w.em_id(which)), null);
  }

  get distinctId() { return this._id(0); }
  get anonymousId() { return this._id(1); }
  get sessionId() { return this._id(2); }

  stats() {
    return this._safe('stats', () => Object.assign(JSON.parse(this._out(this.w.em_stats())), this.c,
      { stored: this.keys.size, persistent: !!this.ls }), {});
  }
}

export default EmpMix;
