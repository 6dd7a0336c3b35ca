//! A driver on a manual clock: time only moves when a test moves it.
#![allow(dead_code, reason = "each test file uses a different part of the harness")]

use std::time::Duration;

use empmix_core::{Config, Engine, Event, EventId, Properties, Response, SeededEntropy, Timestamp, Transmit};

pub const T0: u64 = 1_781_944_200_000; // 2026-06-20T08:30:00Z

pub struct Harness {
    pub engine: Engine,
    pub now: Timestamp,
    pub rng: SeededEntropy,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let now = Timestamp::from_unix_millis(T0);
        let mut rng = SeededEntropy::new(42);
        let engine = Engine::new(config, now, &mut rng);
        Harness { engine, now, rng }
    }

    pub fn with(builder: impl FnOnce(empmix_core::ConfigBuilder) -> empmix_core::ConfigBuilder) -> Self {
        Harness::new(builder(Config::builder()).build().unwrap())
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    pub fn track(&mut self, name: &str) -> EventId {
        self.track_event(Event::custom(name, Properties::new()).unwrap())
    }

    pub fn track_event(&mut self, event: Event) -> EventId {
        self.engine.track(self.now, &mut self.rng, event).unwrap()
    }

    pub fn poll(&mut self) -> Option<Transmit> {
        self.engine.poll_transmit(self.now)
    }

    pub fn respond(&mut self, t: &Transmit, status: u16) {
        self.respond_with(t, status, None, "");
    }

    pub fn respond_with(&mut self, t: &Transmit, status: u16, retry_after: Option<Duration>, body: &str) {
        self.engine.handle_response(
            self.now,
            &mut self.rng,
            t.batch,
            Response::Status { status, retry_after, body },
        );
    }

    /// Jumps the clock to the engine's next deadline, as a driver's timer would.
    pub fn fire_timer(&mut self) -> Option<Timestamp> {
        let deadline = self.engine.poll_timeout(self.now)?;
        if deadline > self.now {
            self.now = deadline;
        }
        self.engine.handle_timeout(self.now);
        Some(deadline)
    }
}

/// The parsed JSON body of a request.
pub fn body(t: &Transmit) -> serde_json::Value {
    serde_json::from_str(&t.body).unwrap()
}

/// The event ids in a request, in order.
pub fn ids(t: &Transmit) -> Vec<EventId> {
    body(t)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| EventId::parse(e["event_id"].as_str().unwrap()).unwrap())
        .collect()
}
