//! Frontend settings by name: the one decoder of the options a frontend receives untyped (the
//! browser's `init` options, handed to the engine as a JSON object).
//!
//! A name is spelled as the browser documents it (`flushAt`, `apiKey`). A known name in another
//! spelling (`flush_at`, `APIKEY`) is an error naming the right one: the frontends read their
//! own settings by the documented name, so a misspelt one would otherwise be checked here and
//! then silently not used. Durations are whole milliseconds. A bad value is an error naming the
//! setting and saying what it must be; nothing falls back to a default. Names this version does
//! not know at all are ignored (a page written for a newer release still starts).
//!
//! Some settings configure the engine (`conferenceId`, `flushAt`, `flushInterval`, `maxQueue`,
//! `attribution`); the others are the frontend's own (the endpoint, storage bounds, switches),
//! checked here so that every value is checked by one rule, then used by the frontend as given.

use core::time::Duration;

use crate::attribution::AttributionModel;
use crate::config::{Config, ConfigBuilder, ConfigError};
use crate::json;

/// A setting the frontend cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// A setting's value is not what it must be.
    #[error("{name} must be {expected}")]
    BadValue {
        /// The setting (`flushAt`).
        name: &'static str,
        /// What its value must be (`a whole number above 0`).
        expected: &'static str,
    },
    /// A known setting written in another spelling than its own (`api_key` for `apiKey`).
    #[error("{written} is spelled {name}")]
    Misspelt {
        /// The name as the caller wrote it.
        written: String,
        /// The setting's name.
        name: &'static str,
    },
}

/// How a setting's value is read, and where an engine setting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string, the frontend's.
    Text,
    /// `true` or `false`, the frontend's.
    Flag,
    /// A whole number above zero, the frontend's.
    Count,
    /// A string: the configured conference (empty: none).
    Conference,
    /// A whole number above zero: `flush_at`.
    FlushAt,
    /// A whole number above zero: `max_queue`.
    MaxQueue,
    /// Whole milliseconds above zero: `flush_interval`.
    FlushInterval,
    /// `"first"` or `"last"`: the attribution model.
    Model,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Text | Kind::Conference => "a string",
            Kind::Flag => "true or false",
            Kind::Count | Kind::FlushAt | Kind::MaxQueue => "a whole number above 0",
            Kind::FlushInterval => "a whole number of milliseconds above 0",
            Kind::Model => "\"first\" or \"last\"",
        }
    }
}

/// The frontend's own settings a driver reads itself, by these names (after [`decode`] has
/// checked them).
pub const API_KEY: &str = "apiKey";
/// See [`API_KEY`].
pub const ENDPOINT: &str = "endpoint";
/// See [`API_KEY`].
pub const PROJECT: &str = "project";
/// See [`API_KEY`].
pub const PERSIST: &str = "persist";
/// See [`API_KEY`].
pub const MAX_STORED_EVENTS: &str = "maxStoredEvents";
/// See [`API_KEY`].
pub const MAX_STORED_BYTES: &str = "maxStoredBytes";

/// Every setting a frontend may be given by name, with how its value is read.
static SETTINGS: [(&str, Kind); 15] = [
    (API_KEY, Kind::Text),
    (ENDPOINT, Kind::Text),
    (PROJECT, Kind::Text),
    ("conferenceId", Kind::Conference),
    ("flushAt", Kind::FlushAt),
    ("flushInterval", Kind::FlushInterval),
    ("maxQueue", Kind::MaxQueue),
    ("attribution", Kind::Model),
    (PERSIST, Kind::Flag),
    (MAX_STORED_EVENTS, Kind::Count),
    (MAX_STORED_BYTES, Kind::Count),
    ("autoPageView", Kind::Flag),
    ("shareLinks", Kind::Flag),
    ("cleanUrl", Kind::Flag),
    ("debug", Kind::Flag),
];

/// Whether a name as written is `name` but for ASCII case and underscores (a misspelling).
fn names_match(written: &str, name: &str) -> bool {
    let (w, n) = (written.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while w.get(i) == Some(&b'_') {
            i += 1;
        }
        while n.get(j) == Some(&b'_') {
            j += 1;
        }
        match (w.get(i), n.get(j)) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => (i, j) = (i + 1, j + 1),
            _ => return false,
        }
    }
}

/// The setting a value out of range is about and what it must be, for the settings this
/// module can set (the others cannot go out of range from here).
fn in_range(e: &ConfigError) -> (&'static str, &'static str) {
    match e {
        // `max_batch_events` is not a setting here, so it is the protocol's 500.
        ConfigError::FlushAt { .. } => ("flushAt", "a whole number from 1 to 500"),
        ConfigError::MaxQueue { .. } => ("maxQueue", "a whole number from flushAt to 1000000"),
        _ => ("settings", "within their ranges"),
    }
}

/// Reads one value (`raw`, JSON) of `kind` into `c`; false when it is not of that kind.
fn apply(c: &mut Config, kind: Kind, raw: &str) -> bool {
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    match (kind, json::as_u64(raw).filter(|n| *n > 0)) {
        (Kind::Text, _) => return json::as_str(raw).is_some(),
        (Kind::Flag, _) => return raw == "true" || raw == "false",
        (Kind::Count, n) => return n.is_some(),
        (Kind::Conference, _) => match json::as_str(raw) {
            Some(text) => c.conference_id = (!text.is_empty()).then(|| text.into_owned()),
            None => return false,
        },
        (Kind::FlushAt, Some(n)) => c.flush_at = count(n),
        (Kind::MaxQueue, Some(n)) => c.max_queue = count(n),
        (Kind::FlushInterval, Some(ms)) => c.flush_interval = Duration::from_millis(ms),
        (Kind::Model, _) if raw == "\"first\"" => c.attribution_model = AttributionModel::FirstTouch,
        (Kind::Model, _) if raw == "\"last\"" => c.attribution_model = AttributionModel::LastTouch,
        _ => return false,
    }
    true
}

/// A [`SettingError::BadValue`].
fn error(name: &'static str, expected: &'static str) -> SettingError {
    SettingError::BadValue { name, expected }
}

/// Applies the settings of `object` (a JSON object of name → value) on top of `base` and
/// builds the configuration. Every known setting's value is checked, the frontend's own ones
/// too (the frontend then reads them by the names below); an error names the first bad one.
pub fn decode(object: &str, base: ConfigBuilder) -> Result<Config, SettingError> {
    let Ok(members) = json::members(object) else {
        return Err(error("settings", "a JSON object"));
    };
    let mut b = base;
    for (key, raw) in &members {
        for (name, kind) in &SETTINGS {
            if json::key_is(key, name) {
                if !apply(&mut b.config, *kind, raw) {
                    return Err(error(name, kind.expected()));
                }
            } else if names_match(key, name) {
                return Err(SettingError::Misspelt { written: (*key).into(), name });
            }
        }
    }
    b.build().map_err(|e| {
        let (name, expected) = in_range(&e);
        error(name, expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(object: &str) -> (&'static str, &'static str) {
        match decode(object, Config::builder()) {
            Err(SettingError::BadValue { name, expected }) => (name, expected),
            other => panic!("{object}: {other:?}"),
        }
    }

    #[test]
    fn good_settings_are_applied() {
        let c = decode(
            r#"{"flushAt":5,"flushInterval":1500,"maxQueue":50,"attribution":"last","conferenceId":"c1",
                "apiKey":"k","endpoint":"","persist":false,"maxStoredEvents":3,"debug":true,"unknown":[1]}"#,
            Config::builder(),
        )
        .unwrap();
        assert_eq!(c.flush_at(), 5);
        assert_eq!(c.flush_interval(), Duration::from_millis(1500));
        assert_eq!(c.max_queue(), 50);
        assert_eq!(c.attribution_model, AttributionModel::LastTouch);
        assert_eq!(c.conference_id.as_deref(), Some("c1"));
        assert_eq!(decode("{}", Config::builder()).unwrap(), Config::builder().build().unwrap());
        // A name written with escapes is the same name.
        assert_eq!(decode(r#"{"flush\u0041t":7}"#, Config::builder()).unwrap().flush_at(), 7);
    }

    #[test]
    fn a_known_setting_in_another_spelling_is_an_error_naming_the_right_one() {
        // Were these accepted, the browser drivers (which read `apiKey`, `persist`, ...) would
        // run without the value the page gave.
        for (written, name) in
            [("api_key", "apiKey"), ("flush_at", "flushAt"), ("MAXQUEUE", "maxQueue"), ("Persist", "persist")]
        {
            let e = decode(&format!(r#"{{"{written}":1}}"#), Config::builder()).unwrap_err();
            assert_eq!(e, SettingError::Misspelt { written: written.into(), name });
            assert_eq!(e.to_string(), format!("{written} is spelled {name}"));
        }
        // Unknown names stay ignored: a page written for a newer release still starts.
        assert!(decode(r#"{"apiKeys":"k","flushAtOnce":true}"#, Config::builder()).is_ok());
    }

    #[test]
    fn a_bad_value_is_an_error_naming_it() {
        assert_eq!(err(r#"{"flushAt":"20"}"#), ("flushAt", "a whole number above 0"));
        assert_eq!(err(r#"{"flushAt":0}"#), ("flushAt", "a whole number above 0"));
        assert_eq!(err(r#"{"flushAt":2.5}"#), ("flushAt", "a whole number above 0"));
        assert_eq!(err(r#"{"flushAt":501}"#), ("flushAt", "a whole number from 1 to 500"));
        assert_eq!(
            err(r#"{"flushInterval":null}"#),
            ("flushInterval", "a whole number of milliseconds above 0")
        );
        assert_eq!(
            err(r#"{"flushAt":30,"maxQueue":10}"#),
            ("maxQueue", "a whole number from flushAt to 1000000")
        );
        assert_eq!(err(r#"{"maxQueue":99999999999999999999}"#), ("maxQueue", "a whole number above 0"));
        assert_eq!(err(r#"{"maxQueue":5000000}"#), ("maxQueue", "a whole number from flushAt to 1000000"));
        assert_eq!(err(r#"{"attribution":"middle"}"#), ("attribution", "\"first\" or \"last\""));
        assert_eq!(err(r#"{"persist":"no"}"#), ("persist", "true or false"));
        assert_eq!(err(r#"{"endpoint":42}"#), ("endpoint", "a string"));
        assert_eq!(err(r#"{"maxStoredBytes":-1}"#), ("maxStoredBytes", "a whole number above 0"));
        assert_eq!(err("[1]"), ("settings", "a JSON object"));
        // The first bad one, in the order given.
        assert_eq!(err(r#"{"debug":1,"flushAt":0}"#).0, "debug");
    }

    #[test]
    fn an_out_of_range_default_is_named_by_the_builder() {
        let e = decode("{}", Config::builder().max_queue(10)).unwrap_err();
        assert_eq!(
            e,
            SettingError::BadValue { name: "maxQueue", expected: "a whole number from flushAt to 1000000" }
        );
        assert_eq!(e.to_string(), "maxQueue must be a whole number from flushAt to 1000000");
    }

    #[test]
    fn names_match_ignoring_case_and_underscores_only() {
        assert!(names_match("auto_page_view", "autoPageView"));
        assert!(names_match("AUTOPAGEVIEW", "autoPageView"));
        assert!(!names_match("autoPageVie", "autoPageView"));
        assert!(!names_match("autoPageViews", "autoPageView"));
        assert!(!names_match("", "debug"));
    }
}
