// EmpMix browser SDK: share links, options objects and the typed events' arguments, shared by
// both drivers' JavaScript (js/index.js, the shipped build's, and js/loader.js, the web
// build's), which scripts/build.sh puts after js/core.js and before either (plain
// declarations: one scope once concatenated).

// The global object, for what a page may lack (Node, workers): `g.document`, `g.location`.
const g = globalThis;

// An options argument as a fresh plain object; anything but an object counts as none (a string
// would otherwise become one property per character).
const opts = o => Object.assign({}, o && typeof o == 'object' ? o : null);

const unescapeParam = s => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch (e) { return null; } };

// Reads the `_s` share parameter (SHARE_PARAM) of an absolute URL as empmix_core::attribution::url does
// (both are checked against sdk-core/fixtures/share_urls.json), keeping every other byte as
// given: { base, kept: the other parameters, f: the fragment, code: the first `_s` decoded,
// had: whether there was any `_s` }.
// Hand-written rather than URLSearchParams, which would re-encode the other parameters.
// Returns null for a URL the core would refuse.
function shareParam(url) {
  const m = /^([a-z][a-z\d+.-]*):(\/\/([^/?#]*))?/i.exec(url), host = m && m[2] && m[3].split('@').pop();
  if (!m || /[\s\0-\x1f\x7f-\x9f]/.test(url) || (m[2] ? !host || host[0] == ':' : /^https?$/i.test(m[1]))) return null;
  const h = url.indexOf('#'), r = h < 0 ? url : url.slice(0, h), q = r.indexOf('?');
  let code = null, had = false;
  const kept = q < 0 ? [] : r.slice(q + 1).split('&').filter(p => {
    const i = p.indexOf('='), k = i < 0 ? p : p.slice(0, i);
    if (!p || (k != SHARE_PARAM && unescapeParam(k) != SHARE_PARAM)) return !!p;
    if (code == null && i >= 0) code = unescapeParam(p.slice(i + 1));
    return !(had = true);
  });
  return { base: q < 0 ? r : r.slice(0, q), kept, f: h < 0 ? '' : url.slice(h), code, had };
}

// The URL back from shareParam's parts, with `extra` parameters appended.
const joinUrl = (u, ...extra) => {
  const k = u.kept.concat(extra);
  return u.base + (k.length ? '?' + k.join('&') : '') + u.f;
};

// The typed events' arguments from their options object, by the engine's kind (0 page_view,
// 1 registration, 2 checkin, 3 ai_chat; crate::driver::kind): [conference, text (the URL,
// form id or method), referrer, count (the message length), the other properties]. The URL, referrer and title
// default to the page's own.
function typedEvent(kind, p) {
  if (!kind) {
    const { conferenceId, url, referrer, ...rest } = opts(p), d = g.document;
    return [conferenceId, url || g.location?.href, referrer ?? d?.referrer, 0, { title: d?.title, ...rest }];
  }
  // The engine reads the text of kinds 1-2 and the count of kind 3, and ignores the other.
  const { conferenceId, [['', 'formId', 'method', 'messageLength'][kind]]: v, ...rest } = opts(p);
  return [conferenceId, v, '', v, rest];
}
