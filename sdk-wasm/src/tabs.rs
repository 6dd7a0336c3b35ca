//! This tab's share of the site's `localStorage`: where its events are stored, when a write
//! happens, and how the events of a tab that is gone are taken over by the next start.
//!
//! Every tab of a site sees one `localStorage`, so each tab stores its events under keys of its
//! own (`<prefix>e:<tab>:<first event id>`, a chunk of events per key), marks itself alive with a
//! heartbeat (`<prefix>t:<tab>`), and a starting tab takes over the chunks of tabs whose
//! heartbeat ran out. These decisions were made by the hand-written JavaScript
//! (`js/index.js`); here they are a sans-IO state machine so they are unit-tested on the host:
//! time is an argument (milliseconds since the epoch, as `Date.now()` gives), storage is the
//! [`Storage`] trait, and nothing depends on wasm or web-sys. The layout is the one the JS
//! release wrote, so what it stored is read back here, the one-record-per-key layout from before
//! chunks included. Nothing formats with `std::fmt` (the package is size-budgeted), and the
//! indexes are sorted `Vec`s searched by hand rather than BTreeMaps or HashMaps: in the wasm
//! build the four BTree instantiations cost about 37 KB of code, more than the whole engine, and
//! std's sorts bring several KB of sorting networks per element type, so the few lists sorted
//! here (a tab's chunk numbers, gone tabs, a gone tab's keys) go through [`sort_small`].

use crate::text::pieces;
use empmix_core::EventId;
use empmix_core::persist::PersistOp;

/// The site's localStorage as this tab sees it (web-sys Storage in the browser; a map in tests).
pub trait Storage {
    /// The value stored under `key`, if any.
    fn get(&self, key: &str) -> Option<String>;
    /// false when the write was refused (quota, blocked storage)
    fn set(&mut self, key: &str, value: &str) -> bool;
    /// Removes `key`; nothing when it is not stored.
    fn remove(&mut self, key: &str);
    /// every key currently stored (any order)
    fn keys(&self) -> Vec<String>;
}

/// How long a tab's heartbeat says it is alive (ms). It is renewed 8 times as often, and
/// outlasts the one-minute timer throttling Chromium applies to tabs hidden for five minutes, so
/// a live background tab is not taken for gone.
pub const BEAT_TTL_MS: f64 = 150_000.0;
/// How often a live tab renews its heartbeat (ms).
pub const BEAT_EVERY_MS: f64 = BEAT_TTL_MS / 8.0;
/// How long a tab that took over a gone tab's events keeps the claim (ms): long enough for the
/// takeover to reach every other tab's copy of localStorage, and no longer, since Chromium keeps
/// a page that holds a Web Lock out of its back/forward cache.
pub const CLAIM_HOLD_MS: f64 = 5_000.0;
/// Records per chunk at most (UTF-16 units, as JS counts string length): a full storage quota
/// still takes some of a burst.
pub const CHUNK_MAX: usize = 65_536;

/// Separates the events of one stored chunk: the ASCII record separator, which JSON text (every
/// record is) can never contain unescaped, as in JSON text sequences (RFC 7464).
const RS: char = '\x1e';
/// The length of an event id's hyphenated text.
const ID_LEN: usize = 36;

/// Counters the driver reports in stats().
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StorageCounts {
    /// Writes storage refused (quota, blocked storage).
    pub storage_errors: u64,
    /// Events kept in memory only: over the bounds, or their chunk's write was refused.
    pub not_persisted: u64,
}

/// A gone tab's stored events, found by `gone_tabs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoneTab {
    /// The gone tab's id.
    pub tab: String,
    /// Its chunk keys (and keys of the one-record-per-key layout).
    pub keys: Vec<String>,
}

/// One chunk this tab wrote.
#[derive(Debug)]
struct Chunk {
    /// Its number (ids in `held` point at it).
    n: u64,
    key: String,
    /// Its events not yet removed.
    left: usize,
    /// Their records' length (UTF-16 units).
    units: usize,
}

/// This tab's view of storage: prefix, tab id, chunk index, pending appends, limits, counts.
#[derive(Debug)]
pub struct TabStorage {
    prefix: String,
    tab: String,
    max_events: usize,
    max_units: usize,
    /// Chunks written, in the order of their numbers (handed out increasing), so found by
    /// binary search: one per task, so there can be as many as events.
    chunks: Vec<Chunk>,
    next_chunk: u64,
    /// (event id, its chunk) for every event this tab holds in storage, sorted by id for binary
    /// search. Ids are UUIDv7, so most inserts are at the end; the ~1,000 held at most make
    /// the shift of the others cheap.
    held: Vec<(String, u64)>,
    /// The ids staged since the last commit, and the chunk value being built for them: one
    /// string, not a list of records, so committing copies nothing.
    pend_ids: Vec<String>,
    pend_value: String,
    pend_units: usize,
    /// The records' length of every event held (UTF-16 units), for `max_bytes`.
    stored_units: usize,
    counts: StorageCounts,
}

/// A record's length as JS counts it (UTF-16 units), so `max_bytes` and [`CHUNK_MAX`] mean what
/// they meant in the JS release.
fn units(s: &str) -> usize {
    // `encode_utf16().count()` was 1.5 µs of each event's main-thread time in the benchmark.
    // Records are nearly always ASCII, one unit a byte, which core checks a word at a time;
    // otherwise from the UTF-8 bytes: each but a continuation byte starts a unit, and a
    // four-byte character (outside the BMP) is a surrogate pair.
    if s.is_ascii() {
        return s.len();
    }
    s.bytes().map(|b| usize::from(b & 0xC0 != 0x80) + usize::from(b >= 0xF0)).sum()
}

/// Splits a stored entry into its event id (the first 36 bytes, or fewer when the entry is short
/// or the 36th byte is inside a character) and its record: never panics on any text.
fn split_id(entry: &str) -> (&str, &str) {
    let mut i = ID_LEN.min(entry.len());
    while !entry.is_char_boundary(i) {
        i -= 1;
    }
    entry.split_at_checked(i).unwrap_or((entry, ""))
}

/// The last 36 bytes of a key (its event id), or the nearest shorter tail on a character
/// boundary.
fn tail_id(key: &str) -> &str {
    let mut i = key.len().saturating_sub(ID_LEN);
    while !key.is_char_boundary(i) {
        i += 1;
    }
    key.get(i..).unwrap_or("")
}

/// A stored time: the leading decimal digits of `text` (what `String(Date.now() + BEAT_TTL)`
/// wrote), by hand rather than the float parser, which would cost the package code. Anything
/// else reads as 0 (expired), as JS's `+text` reading NaN did.
fn read_ms(text: &str) -> f64 {
    let mut ms = 0.0;
    for b in text.trim_ascii().bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        ms = ms * 10.0 + f64::from(b - b'0');
    }
    ms
}

/// Marks an entry of `held` removed during a removal (no chunk gets this number: one is handed
/// out per commit).
const GONE: u64 = u64::MAX;

/// Where the chunk numbered `n` is in `chunks` (which is in number order).
fn find_chunk(chunks: &[Chunk], n: u64) -> Option<usize> {
    chunks.binary_search_by_key(&n, |c| c.n).ok()
}

/// Appends `ms` as decimal digits (whole milliseconds, as `Date.now()` has), by hand.
fn push_ms(out: &mut String, ms: f64) {
    // Saturating: NaN and negatives give 0.
    let mut n = ms as u64;
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

impl TabStorage {
    /// This tab's view: `prefix` is the whole key prefix (`empmix:<project>:`), `tab` this tab's
    /// id, and at most `max_events` events of `max_bytes` of records (UTF-16 units) are stored.
    pub fn new(prefix: &str, tab: &str, max_events: usize, max_bytes: usize) -> Self {
        TabStorage {
            prefix: prefix.to_string(),
            tab: tab.to_string(),
            max_events,
            max_units: max_bytes,
            chunks: Vec::new(),
            next_chunk: 0,
            held: Vec::new(),
            pend_ids: Vec::new(),
            pend_value: String::new(),
            pend_units: 0,
            stored_units: 0,
            counts: StorageCounts::default(),
        }
    }

    /// The key prefix (`empmix:<project>:`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This tab's id.
    pub fn tab(&self) -> &str {
        &self.tab
    }

    fn key(&self, kind: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + kind.len() + 2);
        k.push_str(&self.prefix);
        k.push_str(kind);
        k
    }

    /// `<prefix>t:<tab>`: a tab's heartbeat.
    fn beat_key(&self, tab: &str) -> String {
        let mut k = self.key("t:");
        k.push_str(tab);
        k
    }

    /// Where `id` is in `held`, or where it would go.
    fn held_at(&self, id: &str) -> Result<usize, usize> {
        self.held.binary_search_by(|(h, _)| h.as_str().cmp(id))
    }

    /// The chunk holding `id`, if this tab holds it.
    fn held_chunk(&self, id: &str) -> Option<u64> {
        self.held_at(id).ok().and_then(|i| self.held.get(i)).map(|&(_, c)| c)
    }

    /// A write, counted as a storage error when refused.
    fn set(&mut self, s: &mut impl Storage, key: &str, value: &str) -> bool {
        let ok = s.set(key, value);
        if !ok {
            self.counts.storage_errors += 1;
        }
        ok
    }

    /// The saved engine state (`<prefix>s`), if any.
    pub fn state(&self, s: &impl Storage) -> Option<String> {
        s.get(&self.key("s"))
    }

    /// Applies one engine persistence op: SaveState writes `<prefix>s`; Append stages
    /// (committing first when the chunk would pass CHUNK_MAX; over the bounds: counted, not
    /// staged); Remove commits pending then removes.
    pub fn apply(&mut self, s: &mut impl Storage, op: PersistOp) {
        match op {
            PersistOp::SaveState { state } => {
                let k = self.key("s");
                self.set(s, &k, &state);
            }
            PersistOp::Append { id, record } => {
                let n = units(&record);
                if self.held.len() + self.pend_ids.len() < self.max_events
                    && self.stored_units + self.pend_units + n <= self.max_units
                {
                    if self.pend_units + n > CHUNK_MAX {
                        self.commit(s);
                    }
                    let mut text = String::with_capacity(ID_LEN);
                    id.write_to(&mut text);
                    self.stage(text, &record, n);
                } else {
                    self.counts.not_persisted += 1;
                }
            }
            PersistOp::Remove { ids } => self.remove(s, &ids),
        }
    }

    fn stage(&mut self, id: String, record: &str, n: usize) {
        self.pend_value.push(RS);
        self.pend_value.push_str(&id);
        self.pend_value.push_str(record);
        self.pend_ids.push(id);
        self.pend_units += n;
    }

    /// Writes what is staged as one chunk (end of a task). Returns false when the write was
    /// refused. One write per task, however many events it tracked: one per event took twice
    /// the deferred work in the JS release, and its garbage slowed the slowest track() calls.
    pub fn commit(&mut self, s: &mut impl Storage) -> bool {
        let Some(first) = self.pend_ids.first() else {
            return true;
        };
        let mut key = self.key("e:");
        key.push_str(&self.tab);
        key.push(':');
        key.push_str(first);
        let value = core::mem::take(&mut self.pend_value);
        let ids = core::mem::take(&mut self.pend_ids);
        let n = core::mem::take(&mut self.pend_units);
        if !self.set(s, &key, &value) {
            self.counts.not_persisted += ids.len() as u64;
            return false;
        }
        let c = self.next_chunk;
        self.next_chunk += 1;
        self.chunks.push(Chunk { n: c, key, left: ids.len(), units: n });
        for id in ids {
            match self.held_at(&id) {
                Ok(i) => {
                    if let Some(h) = self.held.get_mut(i) {
                        h.1 = c;
                    }
                }
                Err(i) => self.held.insert(i, (id, c)),
            }
        }
        self.stored_units += n;
        true
    }

    /// Removes stored events by id.
    pub fn remove(&mut self, s: &mut impl Storage, ids: &[EventId]) {
        let mut text = String::with_capacity(ID_LEN);
        let mut texts = Vec::with_capacity(ids.len());
        for id in ids {
            text.clear();
            id.write_to(&mut text);
            texts.push(text.clone());
        }
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.remove_text(s, &texts);
    }

    /// Records the engine skipped as unreadable at start (not restorable): removed from storage
    /// (by id text, as [`TabStorage::adopt`] returned them). No removal from the engine will
    /// ever name them.
    pub fn forget(&mut self, s: &mut impl Storage, ids: &[&str]) {
        self.remove_text(s, ids);
    }

    // One slice type for both callers: generic over the iterator, this was made twice (1 KB each).
    fn remove_text(&mut self, s: &mut impl Storage, ids: &[&str]) {
        self.commit(s); // the ids may be this task's
        // Removed entries of `held` are marked GONE and emptied chunks left at 0, both dropped
        // in one pass each afterwards: up to 500 ids a batch, and a shift per id would make it
        // O(k·n).
        let mut partial = Vec::new();
        for &id in ids {
            let Ok(i) = self.held_at(id) else {
                continue;
            };
            let Some(h) = self.held.get_mut(i).filter(|h| h.1 != GONE) else {
                continue; // named twice
            };
            let c = core::mem::replace(&mut h.1, GONE);
            let Some(chunk) = find_chunk(&self.chunks, c).and_then(|i| self.chunks.get_mut(i)) else {
                continue;
            };
            if chunk.left == 0 {
                continue; // emptied earlier in this batch
            }
            chunk.left -= 1;
            if chunk.left > 0 {
                partial.push(c);
            } else {
                s.remove(&chunk.key);
                self.stored_units = self.stored_units.saturating_sub(chunk.units);
            }
        }
        self.held.retain(|h| h.1 != GONE);
        self.chunks.retain(|chunk| chunk.left > 0);
        sort_small(&mut partial, |a, b| a < b);
        partial.dedup();
        // A chunk with events still unsent is rewritten without the finished ones, unless it is
        // gone (another tab took this one for gone while it was frozen, and sends them too).
        // A chunk emptied after it was listed here is no longer in `chunks`.
        for c in partial {
            let Some(i) = find_chunk(&self.chunks, c) else {
                continue;
            };
            let Some(key) = self.chunks.get(i).map(|chunk| chunk.key.clone()) else {
                continue;
            };
            let Some(v) = s.get(&key).filter(|v| !v.is_empty()) else {
                continue;
            };
            let mut value = String::with_capacity(v.len());
            let mut n = 0;
            for e in pieces(&v, RS as u8) {
                let (id, record) = split_id(e);
                if self.held_chunk(id) == Some(c) {
                    value.push(RS);
                    value.push_str(e);
                    n += units(record);
                }
            }
            if value.is_empty() {
                // As the JS release wrote it: an empty chunk is the separator alone.
                value.push(RS);
            }
            if self.set(s, &key, &value)
                && let Some(chunk) = self.chunks.get_mut(i)
            {
                self.stored_units = (self.stored_units + n).saturating_sub(chunk.units);
                chunk.units = n;
            }
        }
    }

    /// Marks this tab alive until `now + BEAT_TTL_MS`; a tab that stops doing so leaves its
    /// stored events to the next start. Call every [`BEAT_EVERY_MS`].
    pub fn beat(&mut self, s: &mut impl Storage, now: f64) {
        let k = self.beat_key(&self.tab);
        let mut v = String::with_capacity(16);
        push_ms(&mut v, now + BEAT_TTL_MS);
        self.set(s, &k, &v);
    }

    /// pagehide: the heartbeat goes so the next page takes over at once.
    pub fn leave(&mut self, s: &mut impl Storage) {
        s.remove(&self.beat_key(&self.tab));
    }

    /// The stored events of tabs that are gone: their heartbeat ran out (its time is `now` or
    /// earlier), or they left events and no heartbeat. This tab is never gone. Heartbeats of
    /// gone tabs that left no events are removed on the way.
    pub fn gone_tabs(&self, s: &mut impl Storage, now: f64) -> Vec<GoneTab> {
        // (tab, its keys): a list searched linearly, as there are few tabs.
        let mut by_tab: Vec<(String, Vec<String>)> = Vec::new();
        let mut beats = Vec::new();
        for k in s.keys() {
            let Some(rest) = k.strip_prefix(self.prefix.as_str()) else {
                continue;
            };
            if let Some(rest) = rest.strip_prefix("e:") {
                // `<tab>:<event id>`: what is left of the last 37 bytes (short keys: no tab).
                let tab = rest.len().checked_sub(ID_LEN + 1).and_then(|i| rest.get(..i)).unwrap_or("");
                if tab != self.tab {
                    match by_tab.iter_mut().find(|e| e.0 == tab) {
                        Some(e) => e.1.push(k),
                        None => by_tab.push((tab.to_string(), vec![k])),
                    }
                }
            } else if let Some(tab) = rest.strip_prefix("t:") {
                if tab != self.tab {
                    beats.push((tab.to_string(), k));
                }
            }
        }
        for (tab, k) in beats {
            let i = by_tab.iter().position(|e| e.0 == tab);
            if s.get(&k).is_some_and(|v| read_ms(&v) > now) {
                if let Some(i) = i {
                    by_tab.swap_remove(i);
                }
            } else if i.is_none() {
                s.remove(&k);
            }
        }
        // In tab order, as before.
        sort_small(&mut by_tab, |a, b| a.0 < b.0);
        by_tab.into_iter().map(|(tab, keys)| GoneTab { tab, keys }).collect()
    }

    /// Moves a gone tab's chunks into this tab's own, returns the records (id, record) in time
    /// order, and then removes its heartbeat. An event this tab already holds is left out. A
    /// chunk's old key goes only once its copy is written: a crash in between sends twice (the
    /// server dedups), a full quota leaves it for a later start (its events are still returned,
    /// counted not persisted); neither loses it. The heartbeat goes even then: a tab with events
    /// and no heartbeat is gone, so that later start takes the chunk.
    pub fn adopt(&mut self, s: &mut impl Storage, gone: &GoneTab) -> Vec<(String, String)> {
        let mut keys: Vec<&str> = gone.keys.iter().map(String::as_str).collect();
        // UUIDv7 ids sort by time. Ties (only malformed keys share an id) go by the whole key.
        sort_small(&mut keys, |a, b| (tail_id(a), a) < (tail_id(b), b));
        let mut entries = Vec::new();
        for k in keys {
            let Some(v) = s.get(k).filter(|v| !v.is_empty()) else {
                continue;
            };
            let mut take = |id: &str, record: &str| {
                if self.held_at(id).is_ok() || self.pend_ids.iter().any(|p| p == id) {
                    return;
                }
                self.stage(id.to_string(), record, units(record));
                entries.push((id.to_string(), record.to_string()));
            };
            // A chunk, or a single record under its event id (the layout before chunks).
            if let Some(chunk) = v.strip_prefix(RS) {
                for e in pieces(chunk, RS as u8) {
                    let (id, record) = split_id(e);
                    take(id, record);
                }
            } else {
                take(tail_id(k), &v);
            }
            if self.commit(s) {
                s.remove(k);
            }
        }
        s.remove(&self.beat_key(&gone.tab));
        entries
    }

    /// Without Web Locks: whether this tab may take over now (the lease), taking it if so. The
    /// lease `<prefix>lock` holds `<tab> <expiry ms>`; it is taken when free, expired or this
    /// tab's own, for [`CLAIM_HOLD_MS`]. Best effort: each renderer may read its own, lagging
    /// copy of localStorage.
    pub fn take_lease(&mut self, s: &mut impl Storage, now: f64) -> bool {
        let k = self.key("lock");
        if let Some(v) = s.get(&k).filter(|v| !v.is_empty()) {
            let expiry = pieces(&v, b' ').nth(1).map_or(0.0, read_ms);
            let own = v.strip_prefix(self.tab.as_str()).is_some_and(|r| r.starts_with(' '));
            if expiry > now && !own {
                return false;
            }
        }
        let mut v = String::with_capacity(self.tab.len() + 16);
        v.push_str(&self.tab);
        v.push(' ');
        push_ms(&mut v, now + CLAIM_HOLD_MS);
        self.set(s, &k, &v)
    }

    /// Events this tab holds in storage.
    pub fn stored(&self) -> usize {
        self.held.len()
    }

    /// The counters for stats().
    pub fn counts(&self) -> StorageCounts {
        self.counts
    }
}

/// Insertion sort by `less`: one small loop per element type where std's sorts would link
/// their sorting networks (see the module doc). The lists sorted here are short (a tab's
/// chunks, the gone tabs, one gone tab's keys) and mostly in order already, where insertion
/// sort is linear.
fn sort_small<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use empmix_core::{SeededEntropy, Timestamp};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    const P: &str = "empmix:default:";
    const T0: f64 = 1.75e12;

    #[derive(Debug, Default)]
    struct Inner {
        items: BTreeMap<String, String>,
        /// Characters (UTF-16 units) of keys and values at most, as the JS test's.
        quota: Option<usize>,
        /// Every key written, in order.
        sets: Vec<String>,
    }

    /// `localStorage` as every tab of a site sees it: clones share one map.
    #[derive(Debug, Clone, Default)]
    struct MemoryStorage(Rc<RefCell<Inner>>);

    impl MemoryStorage {
        fn with_quota(quota: usize) -> Self {
            let s = Self::default();
            s.0.borrow_mut().quota = Some(quota);
            s
        }
        fn set_quota(&self, quota: Option<usize>) {
            self.0.borrow_mut().quota = quota;
        }
        fn used(&self) -> usize {
            self.0.borrow().items.iter().map(|(k, v)| units(k) + units(v)).sum()
        }
        fn sets(&self) -> Vec<String> {
            self.0.borrow().sets.clone()
        }
        fn has(&self, key: &str) -> bool {
            self.0.borrow().items.contains_key(key)
        }
        /// The stored events' chunk keys.
        fn event_keys(&self) -> Vec<String> {
            let prefix = format!("{P}e:");
            self.0.borrow().items.keys().filter(|k| k.starts_with(&prefix)).cloned().collect()
        }
        /// The event ids stored in chunks, in key order.
        fn ids(&self) -> Vec<String> {
            let items = &self.0.borrow().items;
            self.event_keys()
                .iter()
                .flat_map(|k| items[k].split(RS).skip(1).map(|e| e[..36].to_string()).collect::<Vec<_>>())
                .collect()
        }
    }

    impl Storage for MemoryStorage {
        fn get(&self, key: &str) -> Option<String> {
            self.0.borrow().items.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &str) -> bool {
            let mut s = self.0.borrow_mut();
            let used: usize = units(key)
                + units(value)
                + s.items.iter().filter(|(k, _)| *k != key).map(|(k, v)| units(k) + units(v)).sum::<usize>();
            if s.quota.is_some_and(|q| used > q) {
                return false;
            }
            s.items.insert(key.to_string(), value.to_string());
            s.sets.push(key.to_string());
            true
        }
        fn remove(&mut self, key: &str) {
            self.0.borrow_mut().items.remove(key);
        }
        // Reversed, so code that relies on the storage's key order (rather than sorting) fails.
        fn keys(&self) -> Vec<String> {
            self.0.borrow().items.keys().rev().cloned().collect()
        }
    }

    /// Event ids in time order by `n`.
    fn id(n: u64) -> EventId {
        EventId::new(Timestamp::from_unix_millis(1_750_000_000_000 + n), &mut SeededEntropy::new(n))
    }
    fn text(n: u64) -> String {
        id(n).to_text()
    }
    fn record(n: u64) -> String {
        format!("{{\"event_id\":\"{}\",\"timestamp\":{},\"i\":{n}}}", text(n), 1_750_000_000_000 + n)
    }
    fn append(n: u64) -> PersistOp {
        PersistOp::Append { id: id(n), record: record(n) }
    }
    fn tab(name: &str) -> TabStorage {
        TabStorage::new(P, name, 1000, 2_000_000)
    }
    /// Tab `name` stores events `ns`, one task per slice.
    fn stranded(s: &mut MemoryStorage, name: &str, tasks: &[&[u64]]) -> TabStorage {
        let mut t = tab(name);
        t.beat(s, T0);
        for task in tasks {
            for &n in *task {
                t.apply(s, append(n));
            }
            assert!(t.commit(s));
        }
        t
    }
    fn chunk(ns: &[u64]) -> String {
        ns.iter().map(|&n| format!("{RS}{}{}", text(n), record(n))).collect()
    }

    #[test]
    fn units_are_utf16_code_units() {
        for text in [
            "",
            "plain",
            "caf\u{e9}",
            "\u{4e2d}\u{6587}",
            "\u{1f600} and \u{1f680}",
            "a\u{10ffff}\u{7ff}\u{800}\u{ffff}",
        ] {
            assert_eq!(units(text), text.encode_utf16().count(), "{text}");
        }
    }

    #[test]
    fn chunked_writes_one_set_per_commit_split_at_chunk_max() {
        let mut s = MemoryStorage::default();
        let mut t = tab("a");
        // 600 records of 200 units: 120 000 units, so two chunks of at most CHUNK_MAX.
        let pad = "x".repeat(200 - 2);
        for n in 0..600 {
            t.apply(&mut s, PersistOp::Append { id: id(n), record: format!("{{{pad}}}") });
        }
        // A chunk is written only when the next record would pass CHUNK_MAX.
        assert_eq!(s.event_keys().len(), 1);
        assert_eq!(t.stored(), 327);
        assert!(t.commit(&mut s));
        let keys = s.event_keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(s.sets().len(), 2, "one set per chunk");
        assert_eq!(keys[0], format!("{P}e:a:{}", text(0)));
        assert_eq!(keys[1], format!("{P}e:a:{}", text(327)));
        for k in &keys {
            let records = s.get(k).unwrap().split(RS).skip(1).map(|e| units(&e[36..])).sum::<usize>();
            assert!(records <= CHUNK_MAX, "{records}");
        }
        assert_eq!(s.ids(), (0..600).map(text).collect::<Vec<_>>());
        assert_eq!(t.stored(), 600);
        assert_eq!(t.stored_units, 600 * 200);
        // Nothing staged: no write.
        assert!(t.commit(&mut s));
        assert_eq!(s.sets().len(), 2);
    }

    #[test]
    fn beat_state_and_values_are_the_js_layout() {
        let mut s = MemoryStorage::default();
        let mut t = tab("a");
        t.beat(&mut s, T0);
        assert_eq!(s.get(&format!("{P}t:a")).as_deref(), Some("1750000150000"));
        assert_eq!(t.state(&s), None);
        t.apply(&mut s, PersistOp::SaveState { state: "1{}".into() });
        assert_eq!(t.state(&s).as_deref(), Some("1{}"));
        assert_eq!(s.get(&format!("{P}s")).as_deref(), Some("1{}"));
        t.apply(&mut s, append(1));
        t.apply(&mut s, append(2));
        t.commit(&mut s);
        assert_eq!(s.get(&format!("{P}e:a:{}", text(1))), Some(chunk(&[1, 2])));
        let mut v = String::new();
        push_ms(&mut v, 0.0);
        push_ms(&mut v, f64::NAN);
        push_ms(&mut v, 9.0);
        assert_eq!(v, "009");
        assert_eq!(read_ms("1750000150000"), 1.75000015e12);
    }

    #[test]
    fn removal_deletes_whole_chunks_and_rewrites_a_partly_delivered_one() {
        let mut s = MemoryStorage::default();
        let mut t = stranded(&mut s, "a", &[&[1, 2, 3], &[4, 5, 6]]);
        let (a, b) = (format!("{P}e:a:{}", text(1)), format!("{P}e:a:{}", text(4)));
        let per = units(&record(1));
        assert_eq!(t.stored_units, 6 * per);
        t.remove(&mut s, &[id(1), id(2), id(3), id(5), id(99)]);
        assert!(!s.has(&a), "the chunk goes with its last event");
        assert_eq!(s.get(&b), Some(chunk(&[4, 6])), "the rest of the chunk stays");
        assert_eq!(t.stored(), 2);
        assert_eq!(t.stored_units, 2 * per);
        t.apply(&mut s, PersistOp::Remove { ids: vec![id(4), id(6)] });
        assert_eq!(s.event_keys(), Vec::<String>::new());
        assert_eq!((t.stored(), t.stored_units), (0, 0));
    }

    #[test]
    fn removal_commits_this_tasks_appends_first() {
        let mut s = MemoryStorage::default();
        let mut t = tab("a");
        t.apply(&mut s, append(1));
        t.apply(&mut s, append(2));
        t.apply(&mut s, PersistOp::Remove { ids: vec![id(1)] });
        assert_eq!(s.ids(), vec![text(2)]);
        assert_eq!(t.stored(), 1);
    }

    #[test]
    fn a_chunk_taken_by_another_tab_is_not_recreated() {
        let mut s = MemoryStorage::default();
        let mut t = stranded(&mut s, "a", &[&[1, 2, 3]]);
        let k = format!("{P}e:a:{}", text(1));
        // Another tab took this one for gone while it was frozen.
        s.remove(&k);
        t.remove(&mut s, &[id(2)]);
        assert!(!s.has(&k));
        assert_eq!(t.counts(), StorageCounts::default());
    }

    #[test]
    fn bounds_count_not_persisted_and_keep_nothing_over() {
        let mut s = MemoryStorage::default();
        let mut t = TabStorage::new(P, "a", 3, 2_000_000);
        for n in 0..5 {
            t.apply(&mut s, append(n));
        }
        t.commit(&mut s);
        assert_eq!(s.ids().len(), 3);
        assert_eq!(t.counts().not_persisted, 2);
        // By record length: room for exactly two records.
        let mut s = MemoryStorage::default();
        let mut t = TabStorage::new(P, "a", 1000, 2 * units(&record(0)));
        for n in 0..5 {
            t.apply(&mut s, append(n));
        }
        t.commit(&mut s);
        assert_eq!(s.ids(), vec![text(0), text(1)]);
        assert_eq!(t.counts(), StorageCounts { storage_errors: 0, not_persisted: 3 });
        // Removal frees room again.
        t.remove(&mut s, &[id(0)]);
        t.apply(&mut s, append(9));
        t.commit(&mut s);
        assert_eq!(t.stored(), 2);
    }

    #[test]
    fn a_full_quota_counts_errors_and_loses_nothing_stored() {
        let mut s = MemoryStorage::with_quota(2000);
        s.set("app:settings", "dark");
        let mut t = stranded(&mut s, "a", &[&[1]]);
        let stored = s.get(&format!("{P}e:a:{}", text(1)));
        for n in 10..30 {
            t.apply(&mut s, append(n));
        }
        assert!(!t.commit(&mut s));
        assert_eq!(t.counts().not_persisted, 20);
        assert_eq!(t.counts().storage_errors, 1);
        assert_eq!(t.stored(), 1);
        assert_eq!(s.get(&format!("{P}e:a:{}", text(1))), stored);
        assert_eq!(s.get("app:settings").as_deref(), Some("dark"));
        // A refused state write or heartbeat counts too.
        t.apply(&mut s, PersistOp::SaveState { state: "x".repeat(3000) });
        assert_eq!(t.counts().storage_errors, 2);
        // The rewrite of a partly delivered chunk fails: the chunk stays as it was.
        let mut s = MemoryStorage::default();
        let mut t = stranded(&mut s, "a", &[&[1, 2]]);
        // Over quota already (another key grew): even a shorter value is refused.
        s.set_quota(Some(s.used() / 2));
        t.remove(&mut s, &[id(1)]);
        assert_eq!(s.get(&format!("{P}e:a:{}", text(1))), Some(chunk(&[1, 2])));
        assert_eq!(t.counts().storage_errors, 1);
        assert_eq!(t.stored_units, 2 * units(&record(1)));
    }

    #[test]
    fn a_live_tab_is_taken_over_only_once_its_heartbeat_runs_out() {
        let mut s = MemoryStorage::default();
        let _a = stranded(&mut s, "a", &[&[1, 2], &[3]]);
        let mut clock = T0;
        let mut b = tab("b");
        b.beat(&mut s, clock);
        assert_eq!(b.gone_tabs(&mut s, clock), vec![]);
        clock += BEAT_TTL_MS - 1.0;
        assert_eq!(b.gone_tabs(&mut s, clock), vec![], "fresh one ms before it runs out");
        clock += 1.0;
        let gone = b.gone_tabs(&mut s, clock);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].tab, "a");
        assert_eq!(gone[0].keys.len(), 2);
        let entries = b.adopt(&mut s, &gone[0]);
        assert_eq!(entries, [1, 2, 3].map(|n| (text(n), record(n))).to_vec());
        // One chunk of this tab's per chunk taken.
        assert_eq!(s.event_keys(), [1, 3].map(|n| format!("{P}e:b:{}", text(n))).to_vec());
        assert_eq!(s.ids(), [1, 2, 3].map(text).to_vec());
        assert!(!s.has(&format!("{P}t:a")), "the gone tab's heartbeat is removed");
        assert!(s.has(&format!("{P}t:b")));
        assert_eq!(b.stored(), 3);
        // What was adopted is this tab's: removed like its own.
        b.remove(&mut s, &[id(1), id(2), id(3)]);
        assert_eq!(s.event_keys(), Vec::<String>::new());
    }

    #[test]
    fn own_tab_is_never_gone_and_a_tab_with_events_but_no_heartbeat_is() {
        let mut s = MemoryStorage::default();
        let mut a = stranded(&mut s, "a", &[&[1]]);
        let _c = stranded(&mut s, "c", &[&[2]]);
        s.remove(&format!("{P}t:c"));
        // Long after a's own heartbeat ran out.
        let gone = a.gone_tabs(&mut s, T0 + 10.0 * BEAT_TTL_MS);
        assert_eq!(gone, vec![GoneTab { tab: "c".into(), keys: vec![format!("{P}e:c:{}", text(2))] }]);
        assert!(s.has(&format!("{P}t:a")), "its own heartbeat stays");
        a.leave(&mut s);
        assert!(!s.has(&format!("{P}t:a")));
    }

    #[test]
    fn heartbeats_of_gone_tabs_without_events_are_removed() {
        let mut s = MemoryStorage::default();
        s.set(&format!("{P}t:left"), "0");
        s.set(&format!("{P}t:junk"), "soon");
        s.set(&format!("{P}t:alive"), "1750000060000");
        s.set("empmix:other:t:left", "0");
        let mut b = tab("b");
        b.beat(&mut s, T0);
        assert_eq!(b.gone_tabs(&mut s, T0), vec![]);
        assert!(!s.has(&format!("{P}t:left")));
        assert!(!s.has(&format!("{P}t:junk")));
        assert!(s.has(&format!("{P}t:alive")));
        assert!(s.has("empmix:other:t:left"), "another project's keys are untouched");
    }

    #[test]
    fn leave_removes_the_heartbeat_so_the_next_start_takes_over_at_once() {
        let mut s = MemoryStorage::default();
        let mut a = stranded(&mut s, "a", &[&[1]]);
        let b = tab("b");
        assert_eq!(b.gone_tabs(&mut s, T0 + 1.0), vec![]);
        a.leave(&mut s);
        assert!(!s.has(&format!("{P}t:a")));
        assert_eq!(b.gone_tabs(&mut s, T0 + 1.0).len(), 1);
    }

    #[test]
    fn the_legacy_one_record_per_key_layout_is_adopted() {
        let mut s = MemoryStorage::default();
        for n in [3, 1, 2] {
            s.set(&format!("{P}e:old:{}", text(n)), &record(n));
        }
        s.set(&format!("{P}t:old"), "0");
        let mut b = tab("b");
        let gone = b.gone_tabs(&mut s, T0);
        assert_eq!(gone.len(), 1);
        let entries = b.adopt(&mut s, &gone[0]);
        assert_eq!(entries, [1, 2, 3].map(|n| (text(n), record(n))).to_vec());
        // Each old key became one chunk of this tab's, in the chunk layout.
        let mut keys = [1, 2, 3].map(|n| format!("{P}e:b:{}", text(n))).to_vec();
        keys.sort();
        assert_eq!(s.event_keys(), keys);
        assert_eq!(s.get(&keys[0]), Some(chunk(&[1])));
    }

    #[test]
    fn repeated_ids_are_adopted_once() {
        let mut s = MemoryStorage::default();
        let mut b = stranded(&mut s, "b", &[&[9]]);
        s.set(&format!("{P}e:old:{}", text(1)), &(chunk(&[1, 2, 1]) + &chunk(&[9])));
        s.set(&format!("{P}e:old:{}", text(3)), &chunk(&[3, 2]));
        s.set(&format!("{P}e:old:{}", text(2)), &record(2));
        let gone = b.gone_tabs(&mut s, T0);
        let entries = b.adopt(&mut s, &gone[0]);
        assert_eq!(entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), [1, 2, 3].map(text).to_vec());
        let mut ids = s.ids();
        ids.sort();
        assert_eq!(ids, [1, 2, 3, 9].map(text).to_vec(), "each once");
        assert_eq!(b.stored(), 4);
    }

    #[test]
    fn a_chunk_with_no_room_for_its_copy_stays_for_a_later_start() {
        let mut s = MemoryStorage::default();
        let _a = stranded(&mut s, "a", &[&[1, 2, 3]]);
        s.set(&format!("{P}t:a"), "0");
        let key = format!("{P}e:a:{}", text(1));
        let value = s.get(&key);
        let mut b = tab("b");
        s.set_quota(Some(s.used() + 100));
        let gone = b.gone_tabs(&mut s, T0);
        let entries = b.adopt(&mut s, &gone[0]);
        // Returned to send from memory, not stored twice, and the old chunk kept.
        assert_eq!(entries.len(), 3);
        assert_eq!(s.get(&key), value);
        assert_eq!(s.event_keys(), vec![key.clone()]);
        assert_eq!(b.counts(), StorageCounts { storage_errors: 1, not_persisted: 3 });
        assert_eq!(b.stored(), 0);
        assert!(!s.has(&format!("{P}t:a")));
        // With room, a later start takes it (no heartbeat: gone).
        s.set_quota(None);
        let mut c = tab("c");
        let gone = c.gone_tabs(&mut s, T0);
        assert_eq!(c.adopt(&mut s, &gone[0]).len(), 3);
        assert!(!s.has(&key));
        assert_eq!(c.stored(), 3);
    }

    #[test]
    fn adoption_is_in_event_id_order_whatever_the_key_order() {
        let mut s = MemoryStorage::default();
        s.set(&format!("{P}e:old:{}", text(5)), &chunk(&[5, 6]));
        s.set(&format!("{P}e:old:{}", text(1)), &chunk(&[1, 2]));
        s.set(&format!("{P}e:old:{}", text(3)), &record(3));
        let mut b = tab("b");
        let mut gone = b.gone_tabs(&mut s, T0).remove(0);
        gone.keys = [3, 5, 1].map(|n| format!("{P}e:old:{}", text(n))).to_vec();
        let got: Vec<_> = b.adopt(&mut s, &gone).into_iter().map(|e| e.0).collect();
        assert_eq!(got, [1, 2, 3, 5, 6].map(text).to_vec());
    }

    #[test]
    fn unreadable_records_are_forgotten() {
        let mut s = MemoryStorage::default();
        let bad = "00000000-0000-7000-8000-000000000000{\"event_id\":";
        s.set(&format!("{P}e:old:{}", text(1)), &(chunk(&[1]) + &format!("{RS}{bad}")));
        let mut b = tab("b");
        let gone = b.gone_tabs(&mut s, T0).remove(0);
        let entries = b.adopt(&mut s, &gone);
        assert_eq!(entries.len(), 2);
        let skipped: Vec<&str> = entries
            .iter()
            .filter(|(_, r)| !empmix_core::persist::is_restorable(r))
            .map(|(i, _)| i.as_str())
            .collect();
        assert_eq!(skipped, vec!["00000000-0000-7000-8000-000000000000"]);
        b.forget(&mut s, &skipped);
        assert_eq!(s.ids(), vec![text(1)]);
        assert_eq!(b.stored(), 1);
    }

    #[test]
    fn the_lease_refuses_a_second_tab_until_claim_hold_passes() {
        let mut s = MemoryStorage::default();
        let (mut a, mut b) = (tab("a"), tab("b"));
        let mut clock = T0;
        assert!(a.take_lease(&mut s, clock));
        assert_eq!(s.get(&format!("{P}lock")).as_deref(), Some("a 1750000005000"));
        clock += 1.0;
        assert!(!b.take_lease(&mut s, clock));
        assert!(a.take_lease(&mut s, clock), "its own");
        clock += CLAIM_HOLD_MS - 1.0;
        assert!(!b.take_lease(&mut s, clock));
        clock += 1.0;
        assert!(b.take_lease(&mut s, clock));
        // A tab whose id starts with another's is not that tab.
        let mut ab = tab("ab");
        assert!(!ab.take_lease(&mut s, clock));
        // An expired or unreadable lease is free.
        s.set(&format!("{P}lock"), "x 0");
        assert!(a.take_lease(&mut s, clock));
        s.set(&format!("{P}lock"), "x");
        assert!(b.take_lease(&mut s, clock));
    }

    #[test]
    fn malformed_storage_never_panics() {
        let id = text(1);
        let odd = [
            String::new(),
            RS.to_string(),
            format!("{RS}{RS}"),
            "é".repeat(40),
            format!("{RS}{}", "é".repeat(40)),
            format!("{RS}{}", &id[..35]),
            format!("{RS}x{}", "€".repeat(12)),
            format!("{RS}{id}"),
            "🦀".repeat(10),
            "-1".into(),
            "99999999999999999999999999".into(),
            " 12 ".into(),
            "a".into(),
            "a 🦀".into(),
            " ".into(),
        ];
        for v in &odd {
            for key in [
                format!("{P}e:{v}"),
                format!("{P}e:old:{v}"),
                format!("{P}e:{v}:{id}"),
                format!("{P}e:old:{id}"),
                format!("{P}t:{v}"),
                format!("{P}t:old"),
                format!("{P}{v}"),
            ] {
                let mut s = MemoryStorage::default();
                s.set(&key, v);
                s.set(&format!("{P}lock"), v);
                s.set(&format!("{P}s"), v);
                let mut b = tab("b");
                let _ = b.take_lease(&mut s, T0);
                let _ = b.state(&s);
                for gone in b.gone_tabs(&mut s, T0) {
                    let entries = b.adopt(&mut s, &gone);
                    let ids: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
                    if let Some((first, rest)) = ids.split_first() {
                        b.forget(&mut s, rest);
                        // Corrupt the kept chunk before the rewrite of a partial removal.
                        for k in s.event_keys() {
                            s.set(&k, v);
                        }
                        b.forget(&mut s, &[first]);
                    }
                }
                b.remove(&mut s, &[self::id(1)]);
                b.beat(&mut s, f64::NAN);
                b.beat(&mut s, -1.0);
                b.beat(&mut s, f64::INFINITY);
            }
        }
        for v in &odd {
            assert!(split_id(v).0.len() <= 36);
            let _ = tail_id(v);
            let _ = read_ms(v);
        }
    }
}
