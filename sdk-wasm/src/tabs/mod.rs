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
/// The length of an event id's hyphenated text (the core's, as every driver slices it).
const ID_LEN: usize = empmix_core::frontend::EVENT_ID_LEN;

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
        // Ids are UUIDv7, so a new event's nearly always sorts last: checked first, it spares
        // each commit a binary search per event.
        match self.held.last() {
            None => Err(0),
            Some((last, _)) if last.as_str() < id => Err(self.held.len()),
            Some(_) => self.held.binary_search_by(|(h, _)| h.as_str().cmp(id)),
        }
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
mod tests;
