//! Shares and registrations applied by two consumers at once (they take the project lock shared
//! and lock share codes instead): every registration's credit and the daily
//! `share_conversions` are exact whatever order the facts arrive in and however the consumers
//! interleave.

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
    let _consumers = [consumer(&db, &queue), consumer(&db, &queue)];

    let n = (TREES * SHARES + REGISTRATIONS) as i64;
    let stored = common::poll(std::time::Duration::from_secs(120), || {
        let got = db.scalar("SELECT COUNT(*) FROM events")?;
        (got == n && queue.total_messages() == Some(0)).then_some(got)
    });
    assert_eq!(stored, Some(n), "every event stored once");
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
