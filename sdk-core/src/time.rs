//! Wall-clock time as the driver reports it.
//!
//! The core never reads a clock: every method that needs time takes `now`. Wall-clock time
//! (not a monotonic instant) because events carry it and because `std::time::Instant` does not
//! exist in the browser. Clocks can jump either way; the core copes (see the engine docs).

use core::time::Duration;

/// Milliseconds since the Unix epoch, as read by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_unix_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(t.saturating_sub(Duration::from_secs(5)).as_unix_millis(), 0);
        assert_eq!(
            Timestamp::from_unix_millis(u64::MAX).saturating_add(Duration::from_secs(1)).as_unix_millis(),
            u64::MAX
        );
        assert_eq!(t.since(Timestamp::from_unix_millis(2_000)), Duration::ZERO);
        assert_eq!(Timestamp::from_unix_millis(2_500).since(t), Duration::from_millis(1_500));
    }
}
