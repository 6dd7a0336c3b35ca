//! The storage state machine on a manual clock and an in-memory `Storage` with a quota.

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
