//! Shares, registrations and identity merges applied by two consumers at once (they lock the
//! share codes and persons they touch, not the project): every registration's credit, the
//! daily `uv` and `share_conversions` are exact whatever order the facts arrive in and however
//! the consumers interleave.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test assertions: a failure is a test failure")]

mod common;
mod scale_support;

use serde_json::{Value, json};

use scale_support::*;

/// splitmix64: a small seedable generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn two_consumers_concurrent_shares_and_registrations_exact_credit() {
    if !services_available("two_consumers_concurrent_shares_and_registrations_exact_credit") {
        return;
    }
    const TREES: usize = 40;
    const SHARES: usize = 20; // per tree
    const REGISTRATIONS: usize = 4000;
    const USERS: usize = 6; // few users: many registrations are by a sharer on their own path
    let mut rng = Rng(now_ms() as u64);
    // (code, parent, sharer) per tree; registrations (code, registrant).
    let mut shares: Vec<(String, Option<String>, String)> = Vec::new();
    for t in 0..TREES {
        for i in 0..SHARES {
            let parent = (i > 0).then(|| format!("t{t}-{}", rng.below(i)));
            shares.push((format!("t{t}-{i}"), parent, format!("u{}", rng.below(USERS))));
        }
    }
    let regs: Vec<(String, String)> = (0..REGISTRATIONS)
        .map(|_| (format!("t{}-{}", rng.below(TREES), rng.below(SHARES)), format!("u{}", rng.below(USERS))))
        .collect();
    // Expected: credited when a share on the path up from the code is someone else's.
    let by_code: std::collections::HashMap<&str, &(String, Option<String>, String)> =
        shares.iter().map(|s| (s.0.as_str(), s)).collect();
    let expected = regs
        .iter()
        .filter(|(code, who)| {
            let mut c = Some(code.as_str());
            while let Some(s) = c.and_then(|c| by_code.get(c)) {
                if &s.2 != who {
                    return true;
                }
                c = s.1.as_deref();
            }
            false
        })
        .count() as i64;

    let mut events: Vec<Value> = Vec::new();
    for (t, chunk) in shares.chunks(SHARES).enumerate() {
        for (code, parent, who) in chunk {
            let mut props =
                json!({"conference_id": format!("conf{t}"), "share_code": code, "channel": "wechat"});
            if let Some(p) = parent {
                props["parent_share_code"] = json!(p);
            }
            events.push(common::event("share", who, props));
        }
    }
    for (code, who) in &regs {
        let conference = code.split('-').next().unwrap().replace('t', "conf");
        let mut reg = common::event("registration", who, json!({"conference_id": conference}));
        reg["attribution"] = json!(code);
        events.push(reg);
    }
    // Shuffled: registrations before their shares, children before parents.
    let (db, _ingest, queue) = consume_concurrently(&events, &mut rng);

    let n = (TREES * SHARES + REGISTRATIONS) as i64;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events"), Some(n), "every event stored once");
    assert_eq!(queue.total_messages(), Some(0));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM shares"), Some((TREES * SHARES) as i64));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM registrations"), Some(REGISTRATIONS as i64));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM registrations WHERE credited"), Some(expected));
    assert_eq!(
        db.scalar("SELECT COALESCE(SUM(share_conversions), 0)::int8 FROM daily"),
        Some(expected),
        "daily share_conversions equal the credited registrations"
    );
    assert_eq!(
        db.scalar("SELECT COALESCE(SUM(registrations), 0)::int8 FROM daily"),
        Some(REGISTRATIONS as i64)
    );
    assert!(expected > 0 && expected < REGISTRATIONS as i64, "the scenario has both outcomes: {expected}");
}

/// Shuffles `events` into batches of 4, publishes them (some twice, as redeliveries) through
/// an ingest process, then starts two consumers together, so they apply concurrently, and
/// waits until every distinct event is stored and the queue is empty.
fn consume_concurrently(events: &[Value], rng: &mut Rng) -> (TestDb, Proc, TestQueue) {
    let mut events = events.to_vec();
    for i in (1..events.len()).rev() {
        events.swap(i, rng.below(i + 1));
    }
    let batches: Vec<String> = events
        .chunks(4)
        .map(|c| {
            let now = now_ms();
            batch_body(&c.iter().map(Value::to_string).collect::<Vec<_>>(), now)
        })
        .collect();

    let (db, queue) = (TestDb::create(), TestQueue::new());
    let ingest = ingest(&db, &queue);
    let addr = ingest.addr();
    // Published first, then two consumers start together, so they apply concurrently.
    let senders: Vec<_> = batches
        .chunks(batches.len().div_ceil(4))
        .map(|part| {
            let part = part.to_vec();
            std::thread::spawn(move || {
                let mut client = empmix_server::loopback::Client::new(addr);
                for body in &part {
                    post_until_ok(&mut client, body);
                }
                // Some batches twice: redelivery-like duplicates.
                for body in part.iter().step_by(7) {
                    post_until_ok(&mut client, body);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let consumers = [consumer(&db, &queue), consumer(&db, &queue)];

    let ids: std::collections::HashSet<&str> = events.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let n = ids.len() as i64;
    let stored = common::poll(std::time::Duration::from_secs(120), || {
        let got = db.scalar("SELECT COUNT(*) FROM events")?;
        (got == n && queue.total_messages() == Some(0)).then_some(got)
    });
    assert_eq!(stored, Some(n), "every event stored once");
    drop(consumers);
    (db, ingest, queue)
}

/// Identify and alias merges beside page views, shares and registrations of the same persons,
/// two consumers at once: `uv` counts each final person once per conference and day, and a
/// registration is credited exactly when its path holds a share of another final person.
#[test]
fn two_consumers_concurrent_identity_merges_exact_counts() {
    if !services_available("two_consumers_concurrent_identity_merges_exact_counts") {
        return;
    }
    const USERS: usize = 8;
    const ANONS: usize = 48; // anonymous ids, a{k} identified as u{k % USERS}
    const PAGE_VIEWS: usize = 1500;
    const SHARES: usize = 40;
    const REGISTRATIONS: usize = 400;
    const CONFERENCES: usize = 3;
    let mut rng = Rng(now_ms() as u64);
    // Every id and the final person it belongs to (aliases x{j} join u{j}).
    let mut ids: Vec<(String, usize)> = (0..USERS).map(|j| (format!("u{j}"), j)).collect();
    ids.extend((0..ANONS).map(|k| (format!("a{k}"), k % USERS)));
    ids.extend((0..USERS).map(|j| (format!("x{j}"), j)));
    let person: std::collections::HashMap<&str, usize> =
        ids.iter().map(|(id, p)| (id.as_str(), *p)).collect();
    let pick = |rng: &mut Rng| ids[rng.below(ids.len())].0.clone();

    let mut events: Vec<Value> = Vec::new();
    let mut viewers: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    for _ in 0..PAGE_VIEWS {
        let (who, conference) = (pick(&mut rng), rng.below(CONFERENCES));
        viewers.insert((conference, person[who.as_str()]));
        events.push(common::event("page_view", &who, json!({"conference_id": format!("conf{conference}")})));
    }
    for k in 0..ANONS {
        let mut identify = common::event("identify", &format!("u{}", k % USERS), json!({}));
        identify["anonymous_id"] = json!(format!("a{k}"));
        events.push(identify);
    }
    for j in 0..USERS {
        events.push(common::event("alias", &format!("u{j}"), json!({"alias": format!("x{j}")})));
    }
    let mut shares: Vec<(String, Option<String>, String)> = Vec::new();
    for i in 0..SHARES {
        let parent = (i > 0 && rng.below(4) > 0).then(|| format!("s{}", rng.below(i)));
        let share = (format!("s{i}"), parent, pick(&mut rng));
        let mut props = json!({"conference_id": "conf0", "share_code": share.0});
        if let Some(p) = &share.1 {
            props["parent_share_code"] = json!(p);
        }
        events.push(common::event("share", &share.2, props));
        shares.push(share);
    }
    let by_code: std::collections::HashMap<&str, &(String, Option<String>, String)> =
        shares.iter().map(|s| (s.0.as_str(), s)).collect();
    let mut expected_credited = 0;
    for _ in 0..REGISTRATIONS {
        let (code, who) = (format!("s{}", rng.below(SHARES)), pick(&mut rng));
        let mut c = Some(code.as_str());
        while let Some(s) = c.and_then(|c| by_code.get(c)) {
            if person[s.2.as_str()] != person[who.as_str()] {
                expected_credited += 1;
                break;
            }
            c = s.1.as_deref();
        }
        let mut reg = common::event("registration", &who, json!({"conference_id": "conf0"}));
        reg["attribution"] = json!(code);
        events.push(reg);
    }

    let (db, _ingest, _queue) = consume_concurrently(&events, &mut rng);

    assert_eq!(db.scalar("SELECT COALESCE(SUM(pv), 0)::int8 FROM daily"), Some(PAGE_VIEWS as i64));
    for conference in 0..CONFERENCES {
        let expected = viewers.iter().filter(|(c, _)| *c == conference).count() as i64;
        let sql =
            format!("SELECT COALESCE(SUM(uv), 0)::int8 FROM daily WHERE conference_id = 'conf{conference}'");
        assert_eq!(db.scalar(&sql), Some(expected), "uv of conf{conference}: each final person once");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(DISTINCT root)::int8 FROM identity_links"),
        Some(USERS as i64),
        "every anonymous id and alias ends under its user"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM registrations WHERE credited"), Some(expected_credited));
    assert_eq!(
        db.scalar("SELECT COALESCE(SUM(share_conversions), 0)::int8 FROM daily"),
        Some(expected_credited),
        "daily share_conversions equal the credited registrations"
    );
    assert!(
        expected_credited > 0 && expected_credited < REGISTRATIONS as i64,
        "the scenario has both outcomes: {expected_credited}"
    );
}
