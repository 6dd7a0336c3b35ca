//! Frontend settings by name: the one decoder of the options a frontend receives untyped (the
//! browser's `init` options, handed to the engine as a JSON object).
//!
//! A name is a [`ConfigBuilder`] setting in `snake_case` and matches whatever its ASCII case
//! and underscores, so the browser's `flushAt` is `flush_at`. Durations are whole
//! milliseconds. A bad value is an error naming the setting as the caller wrote it and saying
//! what it must be; nothing falls back to a default. Names this version does not know are
//! ignored (a page written for a newer release still starts).
//!
//! Some settings configure the engine (`conference_id`, `flush_at`, `flush_interval`,
//! `max_queue`, `attribution`); the others are the frontend's own (the endpoint, storage
//! bounds, switches), checked here so that every value is checked by one rule, then used by
//! the frontend as given.

use core::time::Duration;

use crate::attribution::AttributionModel;
use crate::config::{Config, ConfigBuilder, ConfigError};
use crate::json;

/// A setting with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} must be {expected}")]
pub struct SettingError {
    /// The setting, as the caller wrote its name (`flushAt`).
    pub name: String,
    /// What its value must be (`a whole number above 0`).
    pub expected: &'static str,
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

/// Every setting a frontend may be given by name, with how its value is read.
static SETTINGS: [(&str, Kind); 15] = [
    ("api_key", Kind::Text),
    ("endpoint", Kind::Text),
    ("project", Kind::Text),
    ("conference_id", Kind::Conference),
    ("flush_at", Kind::FlushAt),
    ("flush_interval", Kind::FlushInterval),
    ("max_queue", Kind::MaxQueue),
    ("attribution", Kind::Model),
    ("persist", Kind::Flag),
    ("max_stored_events", Kind::Count),
    ("max_stored_bytes", Kind::Count),
    ("auto_page_view", Kind::Flag),
    ("share_links", Kind::Flag),
    ("clean_url", Kind::Flag),
    ("debug", Kind::Flag),
];

/// Whether a name as written is `name`, ignoring ASCII case and underscores.
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
        ConfigError::FlushAt { .. } => ("flush_at", "a whole number from 1 to 500"),
        ConfigError::MaxQueue { .. } => ("max_queue", "a whole number from flush_at to 1000000"),
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

/// A [`SettingError`].
fn error(name: &str, expected: &'static str) -> SettingError {
    SettingError { name: name.into(), expected }
}

/// Applies the settings of `object` (a JSON object of name → value) on top of `base` and
/// builds the configuration. Every known setting's value is checked, the frontend's own ones
/// too; an error names the first bad one.
pub fn decode(object: &str, base: ConfigBuilder) -> Result<Config, SettingError> {
    let Ok(members) = json::members(object) else {
        return Err(error("settings", "a JSON object"));
    };
    let mut b = base;
    for (key, raw) in &members {
        for (name, kind) in &SETTINGS {
            if names_match(key, name) && !apply(&mut b.config, *kind, raw) {
                return Err(error(key, kind.expected()));
            }
        }
    }
    b.build().map_err(|e| {
        // Named as the caller wrote it, when the caller gave it.
        let (setting, expected) = in_range(&e);
        let given = members.iter().rev().map(|(key, _)| *key).find(|key| names_match(key, setting));
        error(given.unwrap_or(setting), expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(object: &str) -> (String, &'static str) {
        match decode(object, Config::builder()) {
            Err(SettingError { name, expected }) => (name, expected),
            Ok(c) => panic!("{object} was accepted: {c:?}"),
        }
    }

    #[test]
    fn good_settings_are_applied_in_either_spelling() {
        let c = decode(
            r#"{"flushAt":5,"flush_interval":1500,"MAXQUEUE":50,"attribution":"last","conferenceId":"c1",
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
    }

    #[test]
    fn a_bad_value_is_an_error_naming_it_as_written() {
        assert_eq!(err(r#"{"flushAt":"20"}"#), ("flushAt".into(), "a whole number above 0"));
        assert_eq!(err(r#"{"flushAt":0}"#), ("flushAt".into(), "a whole number above 0"));
        assert_eq!(err(r#"{"flushAt":2.5}"#), ("flushAt".into(), "a whole number above 0"));
        assert_eq!(err(r#"{"flush_at":501}"#), ("flush_at".into(), "a whole number from 1 to 500"));
        assert_eq!(
            err(r#"{"flushInterval":null}"#),
            ("flushInterval".into(), "a whole number of milliseconds above 0")
        );
        assert_eq!(
            err(r#"{"flushAt":30,"maxQueue":10}"#),
            ("maxQueue".into(), "a whole number from flush_at to 1000000")
        );
        assert_eq!(
            err(r#"{"maxQueue":99999999999999999999}"#),
            ("maxQueue".into(), "a whole number above 0")
        );
        assert_eq!(
            err(r#"{"maxQueue":5000000}"#),
            ("maxQueue".into(), "a whole number from flush_at to 1000000")
        );
        assert_eq!(err(r#"{"attribution":"middle"}"#), ("attribution".into(), "\"first\" or \"last\""));
        assert_eq!(err(r#"{"persist":"no"}"#), ("persist".into(), "true or false"));
        assert_eq!(err(r#"{"endpoint":42}"#), ("endpoint".into(), "a string"));
        assert_eq!(err(r#"{"maxStoredBytes":-1}"#), ("maxStoredBytes".into(), "a whole number above 0"));
        assert_eq!(err("[1]"), ("settings".into(), "a JSON object"));
        // The first bad one, in the order given.
        assert_eq!(err(r#"{"debug":1,"flushAt":0}"#).0, "debug");
    }

    #[test]
    fn an_out_of_range_default_is_named_by_the_builder() {
        let base = Config::builder().max_queue(10);
        let e = decode("{}", base).unwrap_err();
        assert_eq!((e.name.as_str(), e.expected), ("max_queue", "a whole number from flush_at to 1000000"));
        assert_eq!(e.to_string(), "max_queue must be a whole number from flush_at to 1000000");
    }

    #[test]
    fn names_match_ignoring_case_and_underscores_only() {
        assert!(names_match("autoPageView", "auto_page_view"));
        assert!(names_match("auto_page_view", "auto_page_view"));
        assert!(!names_match("autoPageVie", "auto_page_view"));
        assert!(!names_match("autoPageViews", "auto_page_view"));
        assert!(!names_match("", "debug"));
    }
}
