//! Exponential backoff with full jitter, honouring `Retry-After`.

use core::time::Duration;

use crate::config::MAX_RETRY_AFTER;
use crate::entropy::Entropy;
use crate::time::{Timestamp, duration_millis};

/// When the next request may go out after failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Failures in a row since the last success.
    pub failures: u32,
    /// No request before this time.
    pub until: Option<Timestamp>,
}

impl Backoff {
    /// The delay after the `failures`-th failure in a row: uniformly random in
    /// `[0, min(cap, base * 2^(failures-1))]` ("full jitter"), but never shorter than the
    /// server's `Retry-After` (itself capped at [`MAX_RETRY_AFTER`]).
    pub fn delay(
        failures: u32,
        base: Duration,
        cap: Duration,
        retry_after: Option<Duration>,
        rng: &mut impl Entropy,
    ) -> Duration {
        let exp = failures.saturating_sub(1).min(32);
        let ceiling = duration_millis(base).saturating_mul(1u64 << exp).min(duration_millis(cap));
        // Saturating: a base and cap of `Duration::MAX` ("never sooner than ever") make the
        // ceiling u64::MAX milliseconds.
        let jittered = Duration::from_millis(rng.next_u64() % ceiling.saturating_add(1));
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    /// Records a failure at `now` and returns the delay chosen.
    pub fn fail(
        &mut self,
        now: Timestamp,
        base: Duration,
        cap: Duration,
        retry_after: Option<Duration>,
        rng: &mut impl Entropy,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = Self::delay(self.failures, base, cap, retry_after, rng);
        self.until = Some(now.saturating_add(delay));
        delay
    }

    /// Records a success: the next failure starts from `base` again.
    pub fn succeed(&mut self) {
        *self = Backoff::default();
    }

    /// Whether a request may go out at `now`. A deadline further away than any delay could
    /// make means the clock went backwards; it is pulled in to `now + longest`.
    pub fn ready(&mut self, now: Timestamp, longest: Duration) -> bool {
        match self.until {
            Some(until) if until > now => {
                let limit = now.saturating_add(longest);
                if until > limit {
                    self.until = Some(limit);
                }
                false
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn the_largest_durations_give_a_delay_not_an_overflow() {
        let mut rng = SeededEntropy::new(3);
        for failures in [1, 2, 40, u32::MAX] {
            let d = Backoff::delay(failures, Duration::MAX, Duration::MAX, Some(Duration::MAX), &mut rng);
            assert!(d >= MAX_RETRY_AFTER, "{failures}: {d:?}");
        }
        let (mut b, now) = (Backoff::default(), Timestamp::from_unix_millis(u64::MAX - 1));
        b.fail(now, Duration::MAX, Duration::MAX, None, &mut rng);
        assert!(b.until >= Some(now), "{:?}", b.until);
    }

    #[test]
    fn full_jitter_stays_within_the_exponential_ceiling() {
        let mut rng = SeededEntropy::new(9);
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        for failures in 1..=20u32 {
            let ceiling = (1u64 << (failures - 1).min(20)).saturating_mul(1000).min(300_000);
            let mut max_seen = 0;
            for _ in 0..2000 {
                let d = duration_millis(Backoff::delay(failures, base, cap, None, &mut rng));
                assert!(d <= ceiling, "failure {failures}: {d} > {ceiling}");
                max_seen = max_seen.max(d);
            }
            // Jitter covers the range rather than sitting at the bottom.
            assert!(max_seen > ceiling / 2, "failure {failures}: max {max_seen}");
        }
    }

    #[test]
    fn retry_after_is_a_floor_and_is_capped() {
        let mut rng = SeededEntropy::new(1);
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..100 {
            let d = Backoff::delay(1, base, cap, Some(Duration::from_secs(20)), &mut rng);
            assert!(d >= Duration::from_secs(20) && d <= Duration::from_secs(20), "{d:?}");
        }
        let d = Backoff::delay(1, base, cap, Some(Duration::from_secs(86_400)), &mut rng);
        assert_eq!(d, MAX_RETRY_AFTER);
    }

    #[test]
    fn success_resets_and_backwards_clock_is_bounded() {
        let mut rng = SeededEntropy::new(2);
        let mut b = Backoff::default();
        let now = Timestamp::from_unix_millis(1_000_000);
        b.fail(
            now,
            Duration::from_secs(1),
            Duration::from_secs(300),
            Some(Duration::from_secs(100)),
            &mut rng,
        );
        assert_eq!(b.failures, 1);
        let earlier = Timestamp::from_unix_millis(0);
        assert!(!b.ready(earlier, Duration::from_secs(10)));
        assert_eq!(b.until, Some(Timestamp::from_unix_millis(10_000)));
        b.succeed();
        assert!(b.ready(earlier, Duration::from_secs(10)));
        assert_eq!(b.failures, 0);
    }
}
