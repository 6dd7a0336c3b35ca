// The package's localStorage layer in Node, on a Map-backed stand-in for `localStorage` that can
// run out of quota: what is stored when, what survives a dead tab, and what happens when storage
// is full or blocked. (The same layer in real Chromium: tests/e2e/run.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmpMix, ingest, wasm } from './support.mjs';

const RS = '\x1e';
const g = globalThis;

/** `localStorage` as the Web Storage API defines it, with a quota in UTF-16 units. */
class MemoryStorage {
  constructor(quota = Infinity) {
    this.items = new Map();
    this.quota = quota;
    this.sets = []; // every key written, in order
  }
  get length() { return this.items.size; }
  key(i) { return [...this.items.keys()][i] ?? null; }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) {
    v = String(v);
    let used = k.length + v.length;
    for (const [key, val] of this.items) if (key != k) used += key.length + val.length;
    if (used > this.quota) throw new DOMException('the quota has been exceeded', 'QuotaExceededError');
    this.items.set(k, v);
    this.sets.push(k);
    this.changed();
  }
  removeItem(k) {
    this.items.delete(k);
    this.changed();
  }
  changed() {
    // Checked after the write's task step, as a page would see it: a browser never calls back
    // into the page from inside setItem, and the web build's client is busy there.
    queueMicrotask(() => this.waiter && this.waiter.f() && this.waiter.resolve());
  }
  /** Resolves once `f()` holds: at once, or after the change to storage that makes it hold. (The
   * test's own timeout bounds the wait.) */
  when(f) {
    return f() ? Promise.resolve() : new Promise(resolve => (this.waiter = { f, resolve }));
  }
  /** The stored events: { keys: chunk keys, ids: their event ids in order }. */
  events() {
    const keys = [...this.items.keys()].filter(k => k.startsWith('empmix:default:e:'));
    return { keys, ids: keys.flatMap(k => this.items.get(k).split(RS).slice(1).map(e => e.slice(0, 36))) };
  }
}

/** Runs `f` with `storage` as the global `localStorage` (a function: a getter, as a blocked one
 * throws). The SDK instances stay alive after, as in a page (scripts/test.sh runs Node with
 * --test-force-exit). */
async function withStorage(storage, f) {
  Object.defineProperty(g, 'localStorage', { configurable: true, get: typeof storage == 'function' ? storage : () => storage });
  try {
    return await f();
  } finally {
    delete g.localStorage;
  }
}

const init = (srv, o) => EmpMix.init({ apiKey: 'k', endpoint: srv.endpoint, wasm, flushInterval: 60000, ...o });

/** Starts a tab on `ls` that can send nothing (its endpoint refuses connections) and tracks, for
 * each [name, count] of `tasks`, `count` events in one task; returns what it stored. */
async function strandedTab(ls, tasks) {
  return withStorage(ls, async () => {
    const tab = await init({ endpoint: 'http://127.0.0.1:9' }, { flushInterval: 3600000 });
    for (const [name, count] of tasks) {
      for (let i = 0; i < count; i++) tab.track(name, { i });
      await null;
    }
    return ls.events();
  });
}

test('events tracked in one task are written in chunks; delivered ones leave, a partly delivered chunk keeps the rest', { timeout: 20000 }, async () => {
  const srv = await ingest();
  const ls = new MemoryStorage();
  await withStorage(ls, async () => {
    const mix = await init(srv, { flushAt: 500 });
    assert.equal(mix.stats().persistent, true);
    const before = ls.sets.length;
    // 600 events in one task: a batch holds at most 500, so 500 go at once and the other 100
    // wait for the interval.
    for (let i = 0; i < 600; i++) mix.track('burst', { i });
    await null;
    // Chunks of at most 64 K of records, each written once.
    const chunks = ls.events().keys.map(k => ls.getItem(k).split(RS).slice(1).map(e => e.slice(0, 36)));
    const writes = ls.sets.slice(before).filter(k => k.includes(':e:')).length;
    assert.ok(chunks.length > 1 && chunks.length < 10 && writes == chunks.length, `${writes} writes, ${chunks.length} chunks`);
    assert.equal(chunks.flat().length, 600);
    // The client removes the delivered events when it handles the first batch's 200.
    await ls.when(() => mix.stats().delivered == 500);
    const sent = new Set(srv.events.map(e => e.event_id));
    assert.equal(sent.size, 500);
    assert.equal(chunks.filter(c => c.some(id => sent.has(id)) && !c.every(id => sent.has(id))).length, 1,
      'one chunk holds events of both batches');
    const left = ls.events();
    assert.deepEqual(left.ids.sort(), chunks.flat().filter(id => !sent.has(id)).sort(), 'only unsent events stay stored');
    assert.equal(mix.stats().stored, 100);
    assert.equal(await mix.flush(10000), true);
    assert.deepEqual(srv.events.map(e => e.event_id).slice(500).sort(), [...left.ids].sort());
    assert.deepEqual(ls.events().keys, [], 'the chunk goes with its last event');
    assert.equal(mix.stats().stored, 0);
  });
  srv.close();
});

test("a dead tab's events, chunked or stored one per key, are taken over and sent by the next start; unreadable and repeated records leave storage", async () => {
  const srv = await ingest();
  const ls = new MemoryStorage();
  const tracked = await strandedTab(ls, [['left', 4], ['left', 1]]);
  assert.equal(tracked.keys.length, 2);
  assert.equal(tracked.ids.length, 5);
  // The tab is gone: its heartbeat ran out. One of its chunks is rewritten the way events were
  // stored before chunks, one key per event id holding the bare record.
  for (const k of [...ls.items.keys()]) if (k.startsWith('empmix:default:t:')) ls.setItem(k, '0');
  const [chunk] = tracked.keys.filter(k => ls.getItem(k).split(RS).length == 5);
  const tab = chunk.split(':')[3], entries = ls.getItem(chunk).split(RS).slice(1);
  ls.removeItem(chunk);
  for (const e of entries) ls.setItem(`empmix:default:e:${tab}:${e.slice(0, 36)}`, e.slice(36));
  // The other chunk gains a record nobody can read and a second copy of an event.
  const [other] = tracked.keys.filter(k => k != chunk);
  ls.setItem(other, ls.getItem(other) + RS + '00000000-0000-7000-8000-000000000000{"event_id":' + RS + entries[0]);
  await withStorage(ls, async () => {
    const next = await init(srv);
    assert.equal(next.stats().restored, 5);
    assert.equal(next.stats().corruptRecords, 1);
    // Until they are delivered, the five stay stored, once each, and nothing else does.
    assert.deepEqual(ls.events().ids.sort(), [...tracked.ids].sort());
    assert.equal(await next.flush(5000), true);
    assert.deepEqual(srv.events.map(e => e.event_id).sort(), [...tracked.ids].sort());
    assert.deepEqual(ls.events().keys, []);
  });
  srv.close();
});

test('a start takes over only gone tabs, clears their heartbeats, and keeps a chunk it has no room to copy', async () => {
  const srv = await ingest();
  const ls = new MemoryStorage();
  const tracked = await strandedTab(ls, [['alive', 2], ['gone', 3]]);
  const [two, three] = tracked.keys.map(k => [k, ls.getItem(k)]).sort((a, b) => a[1].split(RS).length - b[1].split(RS).length);
  const idsOf = v => v.split(RS).slice(1).map(e => e.slice(0, 36));
  // The two-event chunk belongs to a tab that is still alive; the first tab is gone; another gone
  // tab left only its heartbeat.
  ls.removeItem(two[0]);
  const alive = 'empmix:default:e:alive:' + idsOf(two[1])[0];
  ls.setItem(alive, two[1]);
  ls.setItem('empmix:default:t:alive', String(Date.now() + 60000));
  for (const k of [...ls.items.keys()]) if (k.startsWith('empmix:default:t:') && !k.endsWith(':alive')) ls.setItem(k, '0');
  ls.setItem('empmix:default:t:left', '0');
  // Room for this start's heartbeat and state, not for a copy of the gone tab's chunk.
  ls.quota = [...ls.items].reduce((n, [k, v]) => n + k.length + v.length, 0) + three[1].length / 2;
  const beats = () => [...ls.items.keys()].filter(k => k.includes(':t:')).length;
  await withStorage(ls, async () => {
    const next = await init(srv);
    assert.equal(next.stats().restored, 3, "only the gone tab's events");
    assert.equal(ls.getItem(three[0]), three[1], 'the chunk stays where it was');
    assert.equal(ls.getItem(alive), two[1], "the live tab's chunk is untouched");
    assert.equal(beats(), 2, 'the heartbeats of gone tabs are gone: ' + [...ls.items.keys()]);
    assert.equal(await next.flush(5000), true);
  });
  assert.deepEqual(srv.events.map(e => e.event_id).sort(), idsOf(three[1]).sort());
  // With room, a later start (after the first one's takeover lease ran out) takes it over and
  // sends it again; the server deduplicates on event_id.
  ls.quota = Infinity;
  ls.setItem('empmix:default:lock', 'x 0');
  await withStorage(ls, async () => {
    const last = await init(srv);
    assert.equal(last.stats().restored, 3);
    assert.equal(await last.flush(5000), true);
    assert.equal(ls.getItem(three[0]), null);
    assert.deepEqual(ls.events().keys, [alive]);
  });
  srv.close();
});

test('bounds, a full quota and blocked storage fall back to memory and lose no event', async () => {
  const srv = await ingest();
  // At most 3 events stored: the other 2 of the task are held in memory only.
  const bounded = new MemoryStorage();
  await withStorage(bounded, async () => {
    const mix = await init(srv, { maxStoredEvents: 3 });
    for (let i = 0; i < 5; i++) mix.track('bounded', { i });
    await null;
    assert.equal(bounded.events().ids.length, 3);
    assert.equal(mix.stats().notPersisted, 2);
    assert.equal(await mix.flush(5000), true);
  });
  // Room for the state and the page's own key, not for events: QuotaExceededError.
  const full = new MemoryStorage(2000);
  full.setItem('app:settings', 'dark');
  await withStorage(full, async () => {
    const mix = await init(srv);
    for (let i = 0; i < 5; i++) mix.track('full', { i });
    await null;
    const s = mix.stats();
    assert.equal(s.persistent, true);
    assert.equal(s.notPersisted, 5);
    assert.ok(s.storageErrors >= 1);
    assert.equal(full.getItem('app:settings'), 'dark', "the page's own keys are untouched");
    assert.equal(await mix.flush(5000), true);
  });
  // Storage that throws on access (a sandboxed iframe, some private modes).
  await withStorage(() => { throw new DOMException('denied', 'SecurityError'); }, async () => {
    const mix = await init(srv);
    assert.equal(mix.stats().persistent, false);
    assert.equal(mix.track('blocked'), true);
    assert.equal(await mix.flush(5000), true);
  });
  const got = type => srv.events.filter(e => e.type == type).length;
  assert.deepEqual([got('bounded'), got('full'), got('blocked')], [5, 5, 1]);
  srv.close();
});
