//! Sessions: a new id after a stretch of inactivity.

use core::time::Duration;

use crate::entropy::Entropy;
use crate::event::EventId;
use crate::time::Timestamp;

/// The current session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub id: String,
    pub last_activity: Timestamp,
}

impl Session {
    /// A session starting at `now`.
    pub fn new(now: Timestamp, rng: &mut impl Entropy) -> Self {
        Session { id: EventId::new(now, rng).to_text(), last_activity: now }
    }

    /// Records activity at `now`; starts a new session first when `timeout` has passed since
    /// the last activity. Returns whether a new session started. A clock that went backwards
    /// neither starts a session nor moves the last activity back.
    pub fn touch(&mut self, now: Timestamp, timeout: Duration, rng: &mut impl Entropy) -> bool {
        let rolled = now.since(self.last_activity) >= timeout;
        if rolled {
            *self = Session::new(now, rng);
        } else if now > self.last_activity {
            self.last_activity = now;
        }
        rolled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn rolls_over_after_inactivity_only() {
        let mut rng = SeededEntropy::new(4);
        let timeout = Duration::from_secs(1800);
        let t0 = Timestamp::from_unix_millis(10_000_000);
        let mut s = Session::new(t0, &mut rng);
        let first = s.id.clone();
        // Activity every 29 minutes keeps the session alive for hours.
        let mut t = t0;
        for _ in 0..10 {
            t = t.saturating_add(Duration::from_secs(29 * 60));
            assert!(!s.touch(t, timeout, &mut rng));
        }
        assert_eq!(s.id, first);
        assert!(!s.touch(t0, timeout, &mut rng), "backwards clock keeps the session");
        assert_eq!(s.last_activity, t);
        assert!(s.touch(t.saturating_add(timeout), timeout, &mut rng));
        assert_ne!(s.id, first);
    }
}
