//! Event properties: a JSON object held as validated text.
//!
//! Properties are encoded once, when the event is built, so that a batch body is a
//! concatenation of already-encoded events (measured in `docs/performance.md`, section
//! `sdk-core`: about 45 ns per event). Frontends hand in JSON text they already have
//! (`JSON.stringify` in the page, `serde_json` in Rust) or build it with [`Properties::insert`].

use crate::json::{self, JsonError};

/// A JSON object of event properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// Always a valid JSON object.
    json: String,
}

impl Default for Properties {
    fn default() -> Self {
        Properties::new()
    }
}

/// A property value for [`Properties::insert`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PropertyValue<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float; NaN and infinities become `null`, as in `JSON.stringify`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
}

impl<'a> From<&'a str> for PropertyValue<'a> {
    fn from(s: &'a str) -> Self {
        PropertyValue::Str(s)
    }
}
impl<'a> From<&'a String> for PropertyValue<'a> {
    fn from(s: &'a String) -> Self {
        PropertyValue::Str(s)
    }
}
impl From<i64> for PropertyValue<'_> {
    fn from(n: i64) -> Self {
        PropertyValue::Int(n)
    }
}
impl From<u64> for PropertyValue<'_> {
    fn from(n: u64) -> Self {
        PropertyValue::Uint(n)
    }
}
impl From<i32> for PropertyValue<'_> {
    fn from(n: i32) -> Self {
        PropertyValue::Int(n.into())
    }
}
impl From<u32> for PropertyValue<'_> {
    fn from(n: u32) -> Self {
        PropertyValue::Uint(n.into())
    }
}
impl From<f64> for PropertyValue<'_> {
    fn from(n: f64) -> Self {
        PropertyValue::Float(n)
    }
}
impl From<bool> for PropertyValue<'_> {
    fn from(b: bool) -> Self {
        PropertyValue::Bool(b)
    }
}

impl Properties {
    /// An empty object.
    pub fn new() -> Self {
        Properties { json: String::from("{}") }
    }

    /// Takes JSON text that must be an object (`{…}`), validating it.
    pub fn from_json(text: impl Into<String>) -> Result<Self, JsonError> {
        let json = text.into();
        json::check_object(&json)?;
        Ok(Properties { json })
    }

    /// The output of [`Properties::write_merged`], an object by construction (both inputs
    /// were), so not checked again.
    pub(crate) fn merged(json: String) -> Self {
        Properties { json }
    }

    /// Adds a member at the end. A key added twice keeps its last value when decoded.
    pub fn insert<'v>(mut self, key: &str, value: impl Into<PropertyValue<'v>>) -> Self {
        self.push_key(key);
        match value.into() {
            PropertyValue::Str(s) => json::write_str(&mut self.json, s),
            PropertyValue::Int(n) => {
                if n < 0 {
                    self.json.push('-');
                }
                json::write_u64(&mut self.json, n.unsigned_abs());
            }
            PropertyValue::Uint(n) => json::write_u64(&mut self.json, n),
            PropertyValue::Float(f) => {
                if f.is_finite() {
                    self.json.push_str(&f.to_string());
                } else {
                    self.json.push_str("null");
                }
            }
            PropertyValue::Bool(b) => self.json.push_str(if b { "true" } else { "false" }),
            PropertyValue::Null => self.json.push_str("null"),
        }
        self.json.push('}');
        self
    }

    /// Adds a member whose value is an array of strings.
    pub fn insert_str_array<'s>(mut self, key: &str, items: impl IntoIterator<Item = &'s str>) -> Self {
        self.push_key(key);
        json::write_str_array(&mut self.json, items);
        self.json.push('}');
        self
    }

    /// Adds a string member only when `value` is present.
    pub fn insert_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.insert(key, v),
            None => self,
        }
    }

    fn push_key(&mut self, key: &str) {
        let was_empty = self.is_empty();
        // Reopen the object: drop the closing brace (and any whitespace a caller's text had).
        while self.json.ends_with(|c: char| c.is_ascii_whitespace()) {
            self.json.pop();
        }
        self.json.pop();
        if !was_empty {
            self.json.push(',');
        }
        json::write_key(&mut self.json, key);
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.inner().is_empty()
    }

    /// The object as JSON text.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// The text between the braces, trimmed (JSON whitespace is ASCII only).
    fn inner(&self) -> &str {
        let t = self.json.trim_ascii();
        t.get(1..t.len().saturating_sub(1)).unwrap_or("").trim_ascii()
    }

    /// Writes `base` merged with `self` into `out`: members of `self` win over members of
    /// `base` with the same key. Used to apply super properties to an event.
    pub(crate) fn write_merged(&self, base: &Properties, out: &mut String) {
        out.push('{');
        let mut first = true;
        if !base.is_empty() {
            // Both texts were validated when built, so the scans cannot fail.
            let own = self.members();
            for (key, raw) in base.members() {
                if own.iter().any(|(k, _)| json::same_key(k, key)) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json::write_member(out, key, raw);
            }
        }
        let inner = self.inner();
        if !inner.is_empty() {
            if !first {
                out.push(',');
            }
            out.push_str(inner);
        }
        out.push('}');
    }

    /// Members as (key as written, raw JSON value) pairs.
    pub(crate) fn members(&self) -> Vec<json::Member<'_>> {
        json::members(&self.json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_writes_valid_json() {
        let p = Properties::new()
            .insert("s", "a\"b")
            .insert("i", -5i64)
            .insert("u", 7u64)
            .insert("f", 1.5)
            .insert("nan", f64::NAN)
            .insert("b", true)
            .insert("n", PropertyValue::Null)
            .insert_str_array("arr", ["x", "y"]);
        let v: serde_json::Value = serde_json::from_str(p.as_json()).unwrap();
        assert_eq!(v["s"], "a\"b");
        assert_eq!(v["i"], -5);
        assert_eq!(v["f"], 1.5);
        assert!(v["nan"].is_null());
        assert_eq!(v["arr"][1], "y");
    }

    #[test]
    fn from_json_rejects_non_objects() {
        assert!(Properties::from_json("[1]").is_err());
        assert!(Properties::from_json("{\"a\":").is_err());
        let p = Properties::from_json(" { \"a\" : 1 } ").unwrap().insert("b", 2i64);
        let v: serde_json::Value = serde_json::from_str(p.as_json()).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": 2}));
    }

    #[test]
    fn merge_lets_event_properties_win() {
        let base = Properties::new().insert("a", 1i64).insert("b", 2i64);
        let own = Properties::from_json(r#"{"b": 3, "c": {"d": [1]}}"#).unwrap();
        let mut out = String::new();
        own.write_merged(&base, &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "b": 3, "c": {"d": [1]}}));
        let mut out = String::new();
        Properties::new().write_merged(&Properties::new(), &mut out);
        assert_eq!(out, "{}");
        let mut out = String::new();
        Properties::new().write_merged(&base, &mut out);
        assert_eq!(out, r#"{"a":1,"b":2}"#);
    }

    #[test]
    fn merge_matches_keys_written_with_escapes() {
        let base = Properties::from_json(r#"{"a":1,"\u0062":2,"c\"":3}"#).unwrap();
        let own = Properties::from_json(r#"{"\u0061":9,"b":8,"c\u0022":7}"#).unwrap();
        let mut out = String::new();
        own.write_merged(&base, &mut out);
        assert_eq!(out, r#"{"\u0061":9,"b":8,"c\u0022":7}"#);
    }
}
