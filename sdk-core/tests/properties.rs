//! Property tests: over any sequence of tracks, clock jumps and transport outcomes, every
//! tracked event ends delivered exactly once or dropped with a reason, and no request breaks a
//! limit.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::collections::HashMap;
use std::time::Duration;

use empmix_core::config::MIN_BATCH_BYTES;
use empmix_core::{
    Config, Engine, Event, EventId, Properties, Report, Response, SeededEntropy, Timestamp, TrackError,
    Transmit,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Track { pad: usize },
    Advance { ms: u64 },
    JumpBack { ms: u64 },
    JumpDays { days: u64 },
    Poll,
    Respond { which: usize, outcome: Outcome },
    Flush,
    Timer,
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    OkRejecting { index: usize },
    ServerError,
    RetryAfter { secs: u64 },
    TooLarge,
    BadRequest,
    Failed,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Ok),
        1 => (0usize..20).prop_map(|index| Outcome::OkRejecting { index }),
        2 => Just(Outcome::ServerError),
        1 => (0u64..600).prop_map(|secs| Outcome::RetryAfter { secs }),
        1 => Just(Outcome::TooLarge),
        1 => Just(Outcome::BadRequest),
        2 => Just(Outcome::Failed),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop_oneof![4 => 0usize..200, 1 => 5_000usize..40_000].prop_map(|pad| Op::Track { pad }),
        3 => (0u64..120_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u64..86_400_000).prop_map(|ms| Op::JumpBack { ms }),
        1 => (1u64..10).prop_map(|days| Op::JumpDays { days }),
        4 => Just(Op::Poll),
        4 => (0usize..8, outcome()).prop_map(|(which, outcome)| Op::Respond { which, outcome }),
        1 => Just(Op::Flush),
        2 => Just(Op::Timer),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (1usize..10, 0usize..40, 0usize..20, 0usize..3, 1usize..4, any::<bool>()).prop_map(
        |(flush_at, extra_queue, extra_batch, bytes_factor, in_flight, drop_oldest)| {
            Config::builder()
                .flush_at(flush_at)
                .max_queue(flush_at + extra_queue)
                .max_batch_events(flush_at + extra_batch)
                .max_batch_bytes(MIN_BATCH_BYTES * (1 + bytes_factor))
                .max_in_flight(in_flight)
                .overflow(if drop_oldest {
                    empmix_core::OverflowPolicy::DropOldest
                } else {
                    empmix_core::OverflowPolicy::DropNewest
                })
                .report_outcomes(true)
                .build()
                .unwrap()
        },
    )
}

struct Sim {
    engine: Engine,
    now: Timestamp,
    rng: SeededEntropy,
    outstanding: Vec<Transmit>,
    tracked: Vec<EventId>,
    outcomes: HashMap<EventId, u32>,
    max_events: usize,
    max_bytes: usize,
    refused: u64,
}

impl Sim {
    fn check_limits(&self, t: &Transmit) -> Result<(), TestCaseError> {
        prop_assert!(t.events >= 1);
        prop_assert!(t.events <= self.max_events, "{} events > {}", t.events, self.max_events);
        prop_assert!(t.body.len() <= self.max_bytes, "{} bytes > {}", t.body.len(), self.max_bytes);
        let body: serde_json::Value = serde_json::from_str(&t.body).unwrap();
        prop_assert_eq!(body["events"].as_array().unwrap().len(), t.events);
        Ok(())
    }

    fn poll_all(&mut self) -> Result<(), TestCaseError> {
        while let Some(t) = self.engine.poll_transmit(self.now) {
            self.check_limits(&t)?;
            self.outstanding.push(t);
        }
        Ok(())
    }

    fn respond(&mut self, which: usize, outcome: Outcome) {
        if self.outstanding.is_empty() {
            return;
        }
        let t = self.outstanding.remove(which % self.outstanding.len());
        let rejecting;
        let response = match outcome {
            Outcome::Ok => Response::Status { status: 200, retry_after: None, body: "" },
            Outcome::OkRejecting { index } => {
                rejecting =
                    format!(r#"{{"accepted":0,"rejected":[{{"index":{index},"reason":"invalid_field"}}]}}"#);
                Response::Status { status: 200, retry_after: None, body: &rejecting }
            }
            Outcome::ServerError => Response::Status { status: 503, retry_after: None, body: "" },
            Outcome::RetryAfter { secs } => {
                Response::Status { status: 429, retry_after: Some(Duration::from_secs(secs)), body: "" }
            }
            Outcome::TooLarge => Response::Status { status: 413, retry_after: None, body: "" },
            Outcome::BadRequest => Response::Status { status: 400, retry_after: None, body: "" },
            Outcome::Failed => Response::Failed,
        };
        self.engine.handle_response(self.now, &mut self.rng, t.batch, response);
    }

    fn collect_reports(&mut self) {
        while let Some(r) = self.engine.poll_report() {
            let ids = match r {
                Report::Delivered { ids } | Report::Dropped { ids, .. } => ids,
            };
            for id in ids {
                *self.outcomes.entry(id).or_default() += 1;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_event_is_delivered_once_or_dropped_and_no_batch_breaks_a_limit(
        config in config(),
        ops in proptest::collection::vec(op(), 1..120),
        seed in any::<u64>(),
    ) {
        let mut rng = SeededEntropy::new(seed);
        let now = Timestamp::from_unix_millis(1_781_944_200_000);
        let max_events = config.max_batch_events();
        let max_bytes = config.max_batch_bytes();
        let engine = Engine::new(config, now, &mut rng);
        let mut sim = Sim {
            engine, now, rng, outstanding: Vec::new(), tracked: Vec::new(),
            outcomes: HashMap::new(), max_events, max_bytes, refused: 0,
        };
        for op in ops {
            match op {
                Op::Track { pad } => {
                    let props = Properties::new().insert("pad", "x".repeat(pad).as_str());
                    match sim.engine.track(sim.now, &mut sim.rng, Event::custom("e", props).unwrap()) {
                        Ok(id) => sim.tracked.push(id),
                        // Refused at the door: counted as a drop, never given an outcome.
                        Err(TrackError::TooLarge { .. } | TrackError::QueueFull) => sim.refused += 1,
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Advance { ms } => sim.now = sim.now.saturating_add(Duration::from_millis(ms)),
                Op::JumpBack { ms } => sim.now = sim.now.saturating_sub(Duration::from_millis(ms)),
                Op::JumpDays { days } => sim.now = sim.now.saturating_add(Duration::from_secs(days * 86_400)),
                Op::Poll => sim.poll_all()?,
                Op::Respond { which, outcome } => sim.respond(which, outcome),
                Op::Flush => { let _ = sim.engine.flush(); }
                Op::Timer => {
                    if let Some(deadline) = sim.engine.poll_timeout(sim.now) {
                        sim.now = sim.now.max(deadline);
                        sim.engine.handle_timeout(sim.now);
                    }
                }
            }
            sim.collect_reports();
        }
        // Drain: the server comes back and answers 200 to everything.
        let _ = sim.engine.shutdown();
        for _ in 0..10_000 {
            sim.poll_all()?;
            while !sim.outstanding.is_empty() {
                sim.respond(0, Outcome::Ok);
                sim.poll_all()?;
            }
            sim.collect_reports();
            if sim.engine.is_idle() {
                break;
            }
            let deadline = sim.engine.poll_timeout(sim.now);
            prop_assert!(deadline.is_some(), "work left but no timer: {:?}", sim.engine.stats());
            sim.now = sim.now.max(deadline.unwrap());
            sim.engine.handle_timeout(sim.now);
        }
        prop_assert!(sim.engine.is_idle());
        for id in &sim.tracked {
            prop_assert_eq!(sim.outcomes.get(id).copied(), Some(1), "event {} outcome count", id);
        }
        prop_assert_eq!(sim.outcomes.len(), sim.tracked.len(), "reports for untracked ids");
        let stats = sim.engine.stats();
        prop_assert_eq!(stats.delivered + stats.dropped.total(), sim.tracked.len() as u64 + sim.refused);
    }
}
