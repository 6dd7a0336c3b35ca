// The API client. The credential (a read key, or a share link's token) lives in
// sessionStorage only: never localStorage, never the URL, never the console.

const KEY = 'empmix.key', LINK = 'empmix.link';

export const auth = {
  get: () => sessionStorage.getItem(LINK) || sessionStorage.getItem(KEY),
  isLink: () => !!sessionStorage.getItem(LINK),
  setKey: k => { sessionStorage.removeItem(LINK); sessionStorage.setItem(KEY, k); },
  setLink: t => sessionStorage.setItem(LINK, t),
  clear: () => { sessionStorage.removeItem(KEY); sessionStorage.removeItem(LINK); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called on a 401 from any request after sign-in (the key or link stopped working). */
export const hooks = { unauthorized: () => {} };

function describe(status, body, path) {
  if (status == 404 && body.error == 'not_found') {
    return `this server has no ${path.split('?')[0]} endpoint yet (404)`;
  }
  const base = body.message || body.error || `HTTP ${status}`;
  return `${base} (${status}${body.error ? ' ' + body.error : ''})`;
}

/** A JSON request with the credential; throws ApiError. */
export async function api(path, { method = 'GET', body, key = auth.get(), signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name == 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the server did not answer (is empmix-server running?)');
  }
  if (r.status == 204) return null;
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!r.ok) {
    const err = new ApiError(r.status, json?.error || 'http', describe(r.status, json || {}, path));
    if (r.status == 401 && key === auth.get() && key) hooks.unauthorized(err);
    throw err;
  }
  if (json == null && text) throw new ApiError(r.status, 'bad_json', `${path}: the answer is not JSON`);
  return json;
}

export const query = (body, signal) => api('/api/analytics/query', { method: 'POST', body, signal });

/**
 * Reads a Server-Sent Events stream with fetch (EventSource cannot send Authorization) and
 * reconnects with backoff, honouring `retry:`. Returns { close() }.
 * onEvent(type, data, id); onState('open' | 'reconnecting' | 'closed', detail).
 */
export function stream(path, onEvent, onState) {
  let retry = 2000, attempt = 0, lastId = null, stopped = false, ctrl = null, timer = null;
  const STALL = 45000;
  async function connect() {
    ctrl = new AbortController();
    let watchdog;
    const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => ctrl.abort(), STALL); };
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${auth.get()}` };
      if (lastId != null) headers['Last-Event-ID'] = lastId;
      kick();
      const r = await fetch(path, { headers, signal: ctrl.signal, cache: 'no-store' });
      if (r.status == 401) {
        stopped = true;
        onState('closed', 'unauthorized');
        hooks.unauthorized(new ApiError(401, 'unauthorized', 'the key or link is no longer valid'));
        return;
      }
      if (!r.ok || !r.body) throw new Error(r.status == 404 ? 'this server has no live stream endpoint yet (404)' : `HTTP ${r.status}`);
      onState('open');
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '', ev = { type: '', data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        kick();
        buf += value;
        const lines = buf.split(/\r\n|\r|\n/);
        buf = lines.pop();
        for (const line of lines) {
          if (line == '') {
            if (ev.data.length) {
              attempt = 0;
              if (ev.id != null) lastId = ev.id;
              try { onEvent(ev.type || 'message', ev.data.join('\n'), ev.id); } catch (e) { console.warn('live event handler:', e.message); }
            }
            ev = { type: '', data: [], id: null };
            continue;
          }
          if (line[0] == ':') continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? '' : line.slice(i + 1);
          if (val[0] == ' ') val = val.slice(1);
          if (field == 'event') ev.type = val;
          else if (field == 'data') ev.data.push(val);
          else if (field == 'id' && !val.includes('\0')) ev.id = val;
          else if (field == 'retry' && /^\d+$/.test(val)) retry = +val;
        }
      }
      throw new Error('the stream ended');
    } catch (e) {
      if (stopped) return;
      const wait = Math.min(30000, retry * 2 ** Math.min(attempt, 4)) * (0.8 + Math.random() * 0.4);
      attempt++;
      onState('reconnecting', e.name == 'AbortError' ? 'no data for a while' : e.message);
      timer = setTimeout(connect, wait);
    } finally {
      clearTimeout(watchdog);
    }
  }
  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      ctrl?.abort();
    },
  };
}
