//! Helpers the workspace's integration tests share: waiting for a condition with a deadline,
//! instead of sleeping for a fixed time and hoping.
//!
//! ```
//! use std::time::Duration;
//! use empmix_test_support::{poll, wait_until};
//!
//! let mut tries = 0;
//! assert_eq!(poll(Duration::from_secs(5), || { tries += 1; (tries == 3).then_some(tries) }), Some(3));
//! assert!(!wait_until(Duration::from_millis(30), || false));
//! ```

use std::time::{Duration, Instant};

/// How often a condition is checked.
const INTERVAL: Duration = Duration::from_millis(10);

/// Calls `f` every 10 ms until it returns `Some`, for at most `limit` (with one last call at
/// the deadline). `None` when the deadline passed first.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(INTERVAL);
    }
}

/// [`poll`] for a condition: whether `cond` held before `limit` passed.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, || cond().then_some(())).is_some()
}
