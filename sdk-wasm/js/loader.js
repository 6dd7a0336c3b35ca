// EmpMix browser SDK: the loader, the one module on the page's critical path. `EmpMix.init`
// returns a client at once; calls made before the engine is ready are kept in order, each with
// its own time, and handed to it when it is (the wasm is fetched and compiled meanwhile with
// WebAssembly.compileStreaming). Everything that decides — batching, identity, storage, which
// tab owns what, retries — is Rust (src/browser, src/tabs and empmix-core), reached through
// the wasm-bindgen glue (empmix.js). What stays here is the API's argument handling, share
// links (made here, so that createShare answers synchronously), and watching the address.
// The constants (SHARE_PARAM, SHARE_ALPHABET, …) come from js/core.js, generated from the core;
// error codes are named by the engine (Client.errorName) for debug warnings.

// The engine's commands, all through Client.call (empmix_wasm::driver::command, whose numbers
// a test in src/driver.rs checks against these).
const C_TRACK = 0, C_IDENTIFY = 1, C_ALIAS = 2, C_RESET = 3, C_REGISTER = 4, C_UNREGISTER = 5, C_OPT = 6,
  C_SHARE = 7, C_OPEN_SHARE = 8, C_EVENT = 16;
// Their names, for debug warnings (the typed events are C_EVENT + kind).
const NAMES = 'track identify alias reset register unregister opt share openShare'.split(' ');


const str = x => (typeof x == 'string' ? x : typeof x == 'number' && isFinite(x) ? String(x) : '');
// Properties as JSON text: '' for none, '!' (which the engine refuses as invalid JSON) for
// what JSON.stringify cannot or will not turn into text.
const props = p => {
  if (p == null) return '';
  try {
    const s = JSON.stringify(p);
    return typeof s == 'string' ? s : '!';
  } catch (e) {
    return '!';
  }
};

// opts, shareParam and joinUrl are in js/share.js, put before this file by scripts/build.sh.

// A fresh share code, as the engine would make it (empmix_core::ShareCode::ALPHABET): made
// here so that createShare returns its link before the engine has loaded.
function newCode() {
  let c = '';
  for (const b of crypto.getRandomValues(new Uint8Array(SHARE_CODE_LEN))) c += SHARE_ALPHABET[b & 63];
  return c;
}

// The engine's module, compiled while the page goes on: from a URL or a Response (or a promise
// of one), which must be served as application/wasm, from bytes, or already compiled.
function compile(src) {
  if (typeof src == 'string' || src instanceof URL) src = fetch(src);
  return src instanceof WebAssembly.Module ? src
    : src instanceof Promise || src instanceof Response ? WebAssembly.compileStreaming(src) : WebAssembly.compile(src);
}

async function load(o) {
  const { wasm, ...options } = o;
  const [glue, module] = await Promise.all([import('./empmix.js'), compile(wasm || new URL('empmix.wasm', import.meta.url))]);
  await glue.instantiate(module);
  return glue.Client.start(options);
}

export class EmpMix {
  /**
   * A client for this page, at once. Its calls work immediately; `await` it (or its `ready`)
   * to know the engine runs: that rejects when the wasm cannot be loaded, or with an Error
   * naming an option with a bad value (the core's settings decoder checks every one; nothing
   * is stored or sent then).
   */
  static init(options) {
    return new EmpMix(options);
  }

  constructor(options) {
    const o = (this.o = opts(options));
    this.q = []; // commands' arguments kept until the engine runs
    this.ready = load(o).then(
      c => {
        this.c = c;
        this.q.map(a => this._r(a[0], c.call(...a)));
        this.then = undefined; // awaited from now on, the client is itself
        return this;
      },
      e => {
        this.q = this.dead = e;
        throw e;
      },
    );
    this.ready.catch(() => {});
    if (g.location && g.history) {
      const u = o.shareLinks !== false && shareParam(location.href);
      if (u && u.had) {
        // A malformed `_s` records nothing but is still removed from the address.
        if (u.code != null) this._do(C_OPEN_SHARE, Date.now(), 0, u.code);
        const clean = joinUrl(u);
        if (clean != location.href && o.cleanUrl !== false) {
          try { history.replaceState(history.state, '', clean); } catch (e) { /* sandboxed */ }
        }
      }
      this.href = location.href;
      if (o.autoPageView !== false) {
        this.pageView();
        const nav = () => {
          const r = this.href;
          if (location.href != r) this.pageView({ referrer: r }, (this.href = location.href));
        };
        for (const m of ['pushState', 'replaceState']) {
          const f = history[m];
          history[m] = function () { const r = f.apply(this, arguments); nav(); return r; };
        }
        addEventListener('popstate', nav);
      }
    }
  }

  // While loading, `await client` waits for the engine (see init).
  then(...a) {
    return this.ready.then(...a);
  }

  // The engine's answer to command `op` (an error code) as the call's result, warned about in
  // debug mode (opt's answer is whether the user is opted out).
  _r(op, code) {
    if (code && this.o.debug && op != C_OPT) console.warn('[empmix] ' + (NAMES[op] || 'event') + ': ' + (this.c ? this.c.constructor.errorName(code) : code));
    return !code;
  }

  // Runs the engine's command (C_*) made at a time, with a number and up to four strings (see
  // Client.call), or keeps it for the engine: accepted until it says otherwise.
  _do(...x) {
    return this.c ? this._r(x[0], this.c.call(...x)) : !this.dead && this.q.push(x) > 0;
  }

  track(name, properties) {
    return this._do(C_TRACK, Date.now(), 0, typeof name == 'string' ? name : '', props(properties));
  }

  // The typed events are built by the engine (kind 0-3) from their arguments; the other
  // properties go on top. The conference defaults to the one given to init, in the engine.
  _event(kind, conference, text, referrer, count, rest) {
    return this._do(C_EVENT + kind, Date.now(), typeof count == 'number' ? count : -1, str(conference), str(text), str(referrer), props(rest));
  }

  identify(userId) {
    return this._do(C_IDENTIFY, Date.now(), 0, str(userId));
  }

  alias(id) {
    return this._do(C_ALIAS, Date.now(), 0, str(id));
  }

  reset() {
    return this._do(C_RESET, Date.now());
  }

  register(properties, options) {
    return this._do(C_REGISTER, 0, options?.once ? 1 : 0, props(properties) || '{}');
  }

  unregister(key) {
    return this._do(C_UNREGISTER, 0, 0, str(key));
  }

  optOut() {
    this._do(C_OPT, 0, (this.out = 1));
  }

  optIn() {
    this._do(C_OPT, 0, (this.out = 0));
  }

  get optedOut() {
    return (this.c ? this.c.call(C_OPT, 0, 2) : this.out) == 1;
  }

  createShare(options) {
    const o = opts(options);
    // Clean the target first: a link must never pass on someone else's code.
    const u = shareParam(str(o.url) || g.location?.href || ''), code = newCode();
    if (!u) return this._r(C_SHARE, E_INVALID_URL) || null;
    return this._do(C_SHARE, Date.now(), 0, code, str(o.channel) || 'link', joinUrl(u), str(o.conferenceId))
      ? { code, url: joinUrl(u, SHARE_PARAM + '=' + code) }
      : null;
  }

  flush(timeout) {
    const t = typeof timeout == 'number' ? timeout : -1; // the engine's default for anything else
    return this.c ? this.c.flush(t) : this.ready.then(m => m.flush(t), () => false);
  }

  // The engine's ids; null until it runs.
  get distinctId() { return this.c ? this.c.id(0) : null; }
  get anonymousId() { return this.c ? this.c.id(1) : null; }
  get sessionId() { return this.c ? this.c.id(2) : null; }

  // The engine's counters and the driver's; {} until it runs.
  stats() {
    return this.c ? JSON.parse(this.c.stats()) : {};
  }
}

// The typed events (pageView, registration, checkin, aiChat: the engine's kinds 0-3, their
// arguments by typedEvent), and no method throws into the page: an exception from the caller's
// arguments (a getter or a toJSON that throws, a Proxy) becomes a warning and a refusal. These
// six read an options object; the others only pass their arguments through str() and props(),
// which cannot throw.
['pageView', 'registration', 'checkin', 'aiChat', 'register', 'createShare'].forEach((m, i) => {
  const f = i < 4 ? function (p) { return this._event(i, ...typedEvent(i, p)); } : EmpMix.prototype[m];
  EmpMix.prototype[m] = function (...a) {
    try {
      return f.apply(this, a);
    } catch (e) {
      if (this.o.debug) console.warn('[empmix]', m, e);
      return i > 4 && null; // createShare's refusal is null, the others' false
    }
  };
});

export default EmpMix;
