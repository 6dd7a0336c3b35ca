//! Share-code attribution: codes, the `_s` URL parameter, and which code a user is credited to.
//!
//! A user shares a link carrying `_s=<code>`; the next user opens it (`share_open`), and from
//! then on, within the attribution window, their events carry that code. When they share in
//! turn, their `share` event names it as the parent, so the backend can build the tree and
//! credit a later registration to every sharer up the chain.

pub mod url;

use core::time::Duration;

use crate::entropy::Entropy;
use crate::time::Timestamp;

/// Longest share code accepted from a URL.
pub const MAX_CODE_LEN: usize = 64;
/// Codes this device created that are remembered, so that opening one's own link attributes
/// nothing.
const OWN_CODES_KEPT: usize = 128;
/// Codes kept in the attribution chain sent with `share_open`.
const CHAIN_KEPT: usize = 16;

/// A share code: URL-safe (`A-Z a-z 0-9 - _`), 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareCode(String);

impl ShareCode {
    /// Length of generated codes: 12 base64url characters carry 72 random bits.
    pub const GENERATED_LEN: usize = 12;
    /// The characters of generated codes (base64url), indexed by 6 random bits. A driver that
    /// must hand out a link before its engine has loaded (the browser's loader) draws codes
    /// from the same alphabet and hands them to [`crate::Engine::share_with_code`].
    pub const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// A fresh random code.
    pub fn generate(rng: &mut impl Entropy) -> Self {
        const ALPHABET: &[u8; 64] = ShareCode::ALPHABET;
        let mut bytes = [0u8; 9];
        rng.fill_bytes(&mut bytes);
        let mut code = String::with_capacity(Self::GENERATED_LEN);
        for chunk in bytes.chunks(3) {
            let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
            for shift in [18, 12, 6, 0] {
                code.push(ALPHABET[(n >> shift & 63) as usize] as char);
            }
        }
        ShareCode(code)
    }

    /// Accepts a code read from a URL or storage, if well-formed.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= MAX_CODE_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| ShareCode(text.to_string()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which share a user is credited to when they open several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttributionModel {
    /// The first code opened within the window keeps the credit.
    #[default]
    FirstTouch,
    /// The most recently opened code takes the credit.
    LastTouch,
}

/// A share link made by `create_share`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    /// The new code.
    pub code: ShareCode,
    /// The target URL with `_s=<code>`.
    pub url: String,
}

/// What `handle_incoming_url` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingUrl {
    /// The URL with `_s` removed: show this one, and share this one.
    pub url: String,
    /// The share code the URL carried, if any and well-formed.
    pub share_code: Option<ShareCode>,
    /// Whether a `share_open` was recorded (false for no code or one's own code).
    pub recorded_open: bool,
}

/// This device's attribution state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attribution {
    /// The code credited and when it was opened.
    pub current: Option<(ShareCode, Timestamp)>,
    /// Codes opened, oldest first.
    pub chain: Vec<ShareCode>,
    /// Codes this device created, oldest first. A `Vec` (at most 128, so dropping the oldest
    /// is a short move), like `chain`: one collection type less in the browser build.
    pub own: Vec<ShareCode>,
}

impl Attribution {
    /// The code credited at `now`, if still inside the window.
    pub fn active(&self, now: Timestamp, window: Duration) -> Option<&ShareCode> {
        self.current.as_ref().filter(|(_, at)| now.since(*at) < window).map(|(c, _)| c)
    }

    /// Whether this device created `code`.
    pub fn is_own(&self, code: &ShareCode) -> bool {
        self.own.contains(code)
    }

    /// Records that this device created `code`.
    pub fn record_created(&mut self, code: ShareCode) {
        if self.own.len() == OWN_CODES_KEPT {
            self.own.remove(0);
        }
        self.own.push(code);
    }

    /// Records an opened link (not one's own) and updates the credited code.
    pub fn record_open(
        &mut self,
        code: &ShareCode,
        now: Timestamp,
        model: AttributionModel,
        window: Duration,
    ) {
        let keep_current = model == AttributionModel::FirstTouch && self.active(now, window).is_some();
        if !keep_current {
            self.current = Some((code.clone(), now));
        }
        self.chain.retain(|c| c != code);
        if self.chain.len() == CHAIN_KEPT {
            self.chain.remove(0);
        }
        self.chain.push(code.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn generated_codes_are_url_safe_unique_and_parse() {
        let mut rng = SeededEntropy::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let c = ShareCode::generate(&mut rng);
            assert_eq!(c.as_str().len(), ShareCode::GENERATED_LEN);
            assert_eq!(ShareCode::parse(c.as_str()).as_ref(), Some(&c));
            assert!(seen.insert(c));
        }
        assert_eq!(ShareCode::parse(""), None);
        assert_eq!(ShareCode::parse("a b"), None);
        assert_eq!(ShareCode::parse("ü"), None);
        assert_eq!(ShareCode::parse(&"a".repeat(65)), None);
    }

    #[test]
    fn first_touch_keeps_the_first_code_until_the_window_ends() {
        let window = Duration::from_secs(100);
        let (a, b) = (ShareCode::parse("A").unwrap(), ShareCode::parse("B").unwrap());
        let mut attr = Attribution::default();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        attr.record_open(&a, t0, AttributionModel::FirstTouch, window);
        attr.record_open(
            &b,
            t0.saturating_add(Duration::from_secs(10)),
            AttributionModel::FirstTouch,
            window,
        );
        assert_eq!(attr.active(t0.saturating_add(Duration::from_secs(50)), window), Some(&a));
        assert_eq!(attr.active(t0.saturating_add(Duration::from_secs(100)), window), None);
        let later = t0.saturating_add(Duration::from_secs(200));
        attr.record_open(&b, later, AttributionModel::FirstTouch, window);
        assert_eq!(attr.active(later, window), Some(&b));
        assert_eq!(attr.chain, vec![a, b]);
    }

    #[test]
    fn last_touch_takes_the_latest_code() {
        let window = Duration::from_secs(100);
        let (a, b) = (ShareCode::parse("A").unwrap(), ShareCode::parse("B").unwrap());
        let mut attr = Attribution::default();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        attr.record_open(&a, t0, AttributionModel::LastTouch, window);
        attr.record_open(&b, t0, AttributionModel::LastTouch, window);
        assert_eq!(attr.active(t0, window), Some(&b));
    }
}
