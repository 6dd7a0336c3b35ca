// EmpMix browser SDK: what the page says about its browser, OS and visit, for the events'
// context. The wasm driver (src/browser/start.rs) calls browserContext(); JavaScript's regular
// expressions read a user agent in far fewer bytes than the same rules in Rust would.
// What the user-agent string says, when `navigator.userAgentData` does not (Firefox, Safari,
// insecure pages, older browsers): [pattern, name] pairs tried in order, the first that matches
// wins, its group 1 is the version. The order matters: Edge, Opera, Samsung Internet and
// WebViews also say `Chrome/`, and nearly everything says `Safari/`. The names are the brand
// names Chromium browsers report in `userAgentData`, so a dashboard counts a browser once.
const BROWSERS = [
  /Edg(?:e|A|iOS)?\/(\d+)/, 'Microsoft Edge',
  /OP[RT]\/(\d+)/, 'Opera',
  /SamsungBrowser\/(\d+)/, 'Samsung Internet',
  /; wv\).*Chrome\/(\d+)/, 'Android WebView',
  /(?:Firefox|FxiOS)\/(\d+)/, 'Firefox',
  /Chromium\/(\d+)/, 'Chromium',
  /(?:CriOS|Chrome)\/(\d+)/, 'Google Chrome',
  /Version\/(\d+).*Safari/, 'Safari',
];
// The OS, and its version where the UA string gives a real one: Chromium's reduced UA says
// `Android 10; K` whatever the version, and every current browser freezes the desktop ones
// (`Windows NT 10.0` for 10 and 11, `Mac OS X 10_15_7`), so those are left out.
const SYSTEMS = [
  /Windows/, 'Windows',
  /(?:iPhone|iPad|iPod)(?:.* OS (\d+[_\d]*))?/, 'iOS',
  /Android(?: ([\d.]+)\b(?!; K\)))?/, 'Android',
  /CrOS/, 'Chrome OS',
  /Mac OS X|Macintosh/, 'macOS',
  /Linux|X11/, 'Linux',
];
const pick = (t, ua) => {
  for (let i = 0, m; i < t.length; i += 2) if ((m = t[i].exec(ua))) return [t[i + 1], (m[1] || '').replace(/_/g, '.')];
  return ['', ''];
};

/**
 * The browser and OS of a user agent, as names and versions apart (a dashboard groups by name):
 * `{ browser, browser_version, os, os_version }`, each a string, empty when unknown. From
 * `userAgentData` (Chromium browsers in secure contexts) when it names a brand: a vendor's
 * (Google Chrome, Microsoft Edge, Opera, Brave…) before plain `Chromium`, never a GREASE
 * filler (`Not:A-Brand`, `Not/A)Brand`, `(Not(A:Brand`…); else from the user-agent string.
 * Checked on tests/fixtures/user_agents.json.
 */
export function detectBrowser(userAgent, userAgentData) {
  const ua = String(userAgent || ''), d = userAgentData || {};
  const real = (d.brands || []).filter(b => !/Not[\W_]*A[\W_]*Brand/i.test(b.brand));
  const b = real.find(b => b.brand != 'Chromium') || real[0];
  const [browser, browser_version] = b ? [b.brand, /\d*/.exec(b.version)[0]] : pick(BROWSERS, ua);
  const [os, os_version] = pick(SYSTEMS, ua);
  return { browser, browser_version, os: d.platform && d.platform != 'Unknown' ? d.platform : os, os_version };
}

// The six context strings of the engine's context (driver::Driver::set_context_lines): os, browser, locale, url, referrer and the
// extra JSON object (whose members become context fields too: browser_version, os_version, title…), a line each: one string
// crosses into wasm in fewer bytes of code than an array of them. No field holds a line break (the URLs are parsed, the JSON
// escapes them).
export function browserContext() {
  const g = globalThis, n = g.navigator || {}, extra = {};
  let c = {};
  try {
    c = detectBrowser(n.userAgent, n.userAgentData);
    if (c.browser_version) extra.browser_version = c.browser_version;
    if (c.os_version) extra.os_version = c.os_version;
    extra.title = document.title;
    extra.screen = screen.width + 'x' + screen.height;
    new URL(location.href).searchParams.forEach((v, k) => { if (k.startsWith('utm_')) extra[k] = v; });
  } catch (e) { /* not in a page */ }
  return [c.os || '', c.browser || '', n.language || '', g.location ? location.href : '', g.document ? document.referrer : '', JSON.stringify(extra)].join('\n');
}
