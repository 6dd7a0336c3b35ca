//! Minimal JSON reading and writing.
//!
//! Written by hand on purpose: the browser package links this crate, and `serde_json` alone
//! costs about 15 KB gzip, more than the whole package budget (10 KB gzip, the browser
//! package's target in `docs/performance.md`). The core only needs to validate property
//! objects, find their top-level members, and read the server's small response body and its
//! own persisted state, so the reader is a validating scanner that builds no tree: it hands
//! back slices of the text (members and items as their raw JSON, keys as written) and decodes
//! a string or number only when asked. Servers decode requests with `serde_json` behind the
//! `decode` feature instead.

use std::borrow::Cow;

/// Deepest nesting the reader accepts. Bounded so that hostile input (a page passing a
/// deeply nested object) cannot exhaust the stack, which in wasm is an unrecoverable trap.
pub const MAX_DEPTH: usize = 64;

/// Why a text is not the JSON that was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text ended in the middle of a value.
    #[error("JSON ends unexpectedly at byte {0}")]
    UnexpectedEnd(usize),
    /// A character that cannot appear at this position.
    #[error("unexpected character in JSON at byte {0}")]
    UnexpectedChar(usize),
    /// A malformed string escape or a lone UTF-16 surrogate.
    #[error("invalid string escape in JSON at byte {0}")]
    InvalidEscape(usize),
    /// A malformed number.
    #[error("invalid number in JSON at byte {0}")]
    InvalidNumber(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than 64 levels at byte {0}")]
    TooDeep(usize),
    /// More text after a complete value.
    #[error("trailing characters after JSON value at byte {0}")]
    Trailing(usize),
    /// A valid value that is not an object where an object is required.
    #[error("expected a JSON object")]
    NotAnObject,
}

/// One member of an object (`key` as written between its quotes, escapes included) or one
/// item of an array (`key` empty), with the raw text of its value.
pub type Member<'a> = (&'a str, &'a str);

/// Checks that `text` is exactly one JSON object.
pub fn check_object(text: &str) -> Result<(), JsonError> {
    read(text, b'{', None)
}

/// The top-level members of a JSON object, in text order, after checking the whole text.
pub fn members(text: &str) -> Result<Vec<Member<'_>>, JsonError> {
    let mut out = Vec::new();
    read(text, b'{', Some(&mut out))?;
    Ok(out)
}

/// The raw items of a JSON array (an empty list for anything else).
pub fn items(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    match read(text, b'[', Some(&mut out)) {
        Ok(()) => out.into_iter().map(|(_, raw)| raw).collect(),
        Err(_) => Vec::new(),
    }
}

/// The raw value of the last member named `key` (the one most parsers keep).
pub fn get<'a>(members: &[Member<'a>], key: &str) -> Option<&'a str> {
    members.iter().rev().find(|(k, _)| key_is(k, key)).map(|(_, raw)| *raw)
}

/// Whether a key as written (escapes included) names `key`.
pub fn key_is(written: &str, key: &str) -> bool {
    written == key || (escaped(written) && unescape(written).is_some_and(|k| k == key))
}

/// Whether two keys as written (escapes included) name the same key.
pub fn same_key(a: &str, b: &str) -> bool {
    a == b || ((escaped(a) || escaped(b)) && unescape(a).is_some_and(|a| unescape(b) == Some(a)))
}

/// Whether a key as written has an escape, so that only such keys are decoded. Keys are
/// short: a byte scan beats `str::contains`' searcher.
fn escaped(written: &str) -> bool {
    written.bytes().any(|b| b == b'\\')
}

/// Appends `"key":raw` for a key as written and a raw value, both already valid JSON.
pub fn write_member(out: &mut String, written_key: &str, raw: &str) {
    out.push('"');
    out.push_str(written_key);
    out.push_str("\":");
    out.push_str(raw);
}

/// The text of a raw JSON string value (quotes included), unescaped; `None` for other values.
pub fn as_str(raw: &str) -> Option<Cow<'_, str>> {
    unescape(raw.strip_prefix('"')?.strip_suffix('"')?)
}

/// A raw JSON value that is a non-negative integer of at most 19 digits (which cannot
/// overflow). A digit loop rather than `str::parse`, which costs the browser package more.
pub fn as_u64(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 {
        return None;
    }
    raw.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        Some(n * 10 + u64::from(digit))
    })
}

/// The body of a JSON string (between its quotes) with its escapes decoded; `None` when an
/// escape is malformed.
pub fn unescape(body: &str) -> Option<Cow<'_, str>> {
    // A byte scan rather than `str::find`, whose char searcher costs the browser package bytes.
    let Some(first) = body.bytes().position(|b| b == b'\\') else {
        return Some(Cow::Borrowed(body));
    };
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..first]);
    let mut chars = body[first..].chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next()? {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = take_unit(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    (chars.next() == Some('\\') && chars.next() == Some('u')).then_some(())?;
                    let lo = take_unit(&mut chars)?.checked_sub(0xDC00).filter(|lo| *lo < 0x400)?;
                    0x10000 + ((hi - 0xD800) << 10) + lo
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            c @ ('"' | '\\' | '/') => c,
            _ => return None,
        };
        out.push(decoded);
    }
    Some(Cow::Owned(out))
}

fn take_unit(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let unit = hex_unit(chars.as_str().get(..4)?)?;
    chars.nth(3);
    Some(unit)
}

/// Hex digits as a UTF-16 code unit (no sign, unlike `from_str_radix`).
fn hex_unit(digits: &str) -> Option<u32> {
    digits.bytes().try_fold(0, |unit, b| Some(unit << 4 | char::from(b).to_digit(16)?))
}

/// Reads one complete value that must open with `open` (`{` or `[`), passing its top-level
/// members or items to `out`.
fn read<'a>(text: &'a str, open: u8, out: Option<&mut Vec<Member<'a>>>) -> Result<(), JsonError> {
    let mut s = Scanner { text, pos: 0 };
    match s.ws() {
        Some(c) if c == open => {}
        Some(_) if open == b'{' => {
            s.value(0, None)?;
            return Err(JsonError::NotAnObject);
        }
        _ => return Err(s.unexpected()),
    }
    s.value(0, out)?;
    match s.ws() {
        None => Ok(()),
        Some(_) => Err(JsonError::Trailing(s.pos)),
    }
}

/// A validating pass over JSON text that only moves a position: no tree, no allocation
/// (kept to a few small loops, which matters twice in the browser: size and speed).
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// Skips whitespace; the next byte, not consumed.
    fn ws(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&c) = bytes.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    fn unexpected(&self) -> JsonError {
        if self.pos >= self.text.len() {
            JsonError::UnexpectedEnd(self.pos)
        } else {
            JsonError::UnexpectedChar(self.pos)
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), JsonError> {
        if self.ws() != Some(want) {
            return Err(self.unexpected());
        }
        self.pos += 1;
        Ok(())
    }

    /// One value starting at the next non-space byte; an object's members or an array's items
    /// go to `out` when given.
    fn value(&mut self, depth: usize, mut out: Option<&mut Vec<Member<'a>>>) -> Result<(), JsonError> {
        let close = match self.ws() {
            Some(b'"') => return self.string(),
            Some(b'{') => b'}',
            Some(b'[') => b']',
            Some(b'-' | b'0'..=b'9') => return self.number(),
            Some(c) => {
                let word: &[u8] = match c {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !self.text.as_bytes()[self.pos..].starts_with(word) {
                    return Err(self.unexpected());
                }
                self.pos += word.len();
                return Ok(());
            }
            None => return Err(self.unexpected()),
        };
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep(self.pos));
        }
        self.pos += 1;
        if self.ws() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let mut key = "";
            if close == b'}' {
                if self.ws() != Some(b'"') {
                    return Err(self.unexpected());
                }
                let start = self.pos + 1;
                self.string()?;
                key = self.text.get(start..self.pos - 1).unwrap_or("");
                self.expect(b':')?;
            }
            self.ws();
            let start = self.pos;
            self.value(depth + 1, None)?;
            if let Some(out) = out.as_deref_mut() {
                out.push((key, self.text.get(start..self.pos).unwrap_or("")));
            }
            match self.ws() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// A string, at its opening quote: control characters, malformed escapes and lone
    /// surrogates are refused (the text is already UTF-8).
    fn string(&mut self) -> Result<(), JsonError> {
        let bytes = self.text.as_bytes();
        self.pos += 1;
        loop {
            let Some(&c) = bytes.get(self.pos) else {
                return Err(JsonError::UnexpectedEnd(self.pos));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(()),
                0..=0x1f => return Err(JsonError::UnexpectedChar(self.pos - 1)),
                b'\\' => {
                    let at = self.pos - 1;
                    let bad = JsonError::InvalidEscape(at);
                    match bytes.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                        Some(b'u') => {
                            let hi = self.hex4().ok_or(bad)?;
                            if (0xDC00..0xE000).contains(&hi) {
                                return Err(bad);
                            }
                            if (0xD800..0xDC00).contains(&hi) {
                                let lo = match bytes.get(self.pos) {
                                    Some(b'\\') => {
                                        self.pos += 1;
                                        self.hex4()
                                    }
                                    _ => None,
                                };
                                if !lo.is_some_and(|lo| (0xDC00..0xE000).contains(&lo)) {
                                    return Err(bad);
                                }
                            }
                        }
                        _ => return Err(bad),
                    }
                }
                _ => {}
            }
        }
    }

    /// `u` and four hex digits, at the `u`.
    fn hex4(&mut self) -> Option<u32> {
        let unit = hex_unit(self.text.get(self.pos..self.pos + 5)?.strip_prefix('u')?)?;
        self.pos += 5;
        Some(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.text.as_bytes().get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let bad = JsonError::InvalidNumber(start);
        if bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int = self.pos;
        match self.digits() {
            0 => return Err(bad),
            n if n > 1 && bytes.get(int) == Some(&b'0') => return Err(bad),
            _ => {}
        }
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(bad);
            }
        }
        Ok(())
    }
}

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Appends `"key":` to an object being written.
pub fn write_key(out: &mut String, key: &str) {
    write_str(out, key);
    out.push(':');
}

/// Appends an unsigned integer.
pub fn write_u64(out: &mut String, n: u64) {
    // `fmt::Write` would pull the formatting machinery into the wasm build.
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// Appends a JSON array of strings.
pub fn write_str_array<'s>(out: &mut String, items: impl IntoIterator<Item = &'s str>) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_u64_reads_whole_numbers_only() {
        assert_eq!(as_u64("0"), Some(0));
        assert_eq!(as_u64("20"), Some(20));
        assert_eq!(as_u64("9999999999999999999"), Some(9_999_999_999_999_999_999));
        for bad in [
            "",
            "18446744073709551615",
            "00000000000000000001",
            "-1",
            "+5",
            "1.5",
            "1e3",
            " 1",
            "\"1\"",
            "null",
        ] {
            assert_eq!(as_u64(bad), None, "{bad}");
        }
    }

    fn valid(text: &str) -> Result<(), JsonError> {
        let mut s = Scanner { text, pos: 0 };
        s.value(0, None)?;
        if s.ws().is_some() { Err(JsonError::Trailing(s.pos)) } else { Ok(()) }
    }

    #[test]
    fn reads_members_items_and_escapes() {
        let text = r#" {"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\ud83d\ude00\n", "k\u0065y": 7} "#;
        let m = members(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(items(get(&m, "a").unwrap()), ["1", "-2.5e3", "true", "null"]);
        assert_eq!(as_str(get(&m, "b").unwrap()).unwrap(), "x\"é😀\n");
        assert_eq!(get(&m, "key").and_then(as_u64), Some(7));
        assert_eq!(get(&m, "missing"), None);
        assert!(items("{}").is_empty());
        assert_eq!(as_str("1"), None);
    }

    #[test]
    fn rejects_malformed_text_with_positions() {
        assert_eq!(valid("{\"a\":}"), Err(JsonError::UnexpectedChar(5)));
        assert_eq!(valid("[1,2"), Err(JsonError::UnexpectedEnd(4)));
        assert_eq!(valid("01"), Err(JsonError::InvalidNumber(0)));
        assert_eq!(valid("1."), Err(JsonError::InvalidNumber(0)));
        assert_eq!(valid("-"), Err(JsonError::InvalidNumber(0)));
        assert_eq!(valid("1 2"), Err(JsonError::Trailing(2)));
        assert_eq!(valid("\"\\ud800\""), Err(JsonError::InvalidEscape(1)));
        assert_eq!(valid("\"\\udc00\""), Err(JsonError::InvalidEscape(1)));
        assert_eq!(valid("\"\\u+123\""), Err(JsonError::InvalidEscape(1)));
        assert_eq!(valid("\"a\u{1}\""), Err(JsonError::UnexpectedChar(2)));
        assert_eq!(valid("tru"), Err(JsonError::UnexpectedChar(0)));
        assert_eq!(valid("nul"), Err(JsonError::UnexpectedChar(0)));
        assert!(matches!(valid("\"\\q\""), Err(JsonError::InvalidEscape(_))));
        assert_eq!(valid(""), Err(JsonError::UnexpectedEnd(0)));
        assert_eq!(valid("{\"a\" 1}"), Err(JsonError::UnexpectedChar(5)));
        assert_eq!(valid("{1:2}"), Err(JsonError::UnexpectedChar(1)));
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        for text in [
            "{}",
            "[]",
            " [ ] ",
            "0",
            "-0",
            "1e5",
            "1E+5",
            "1.5e-3",
            "\"\\/\"",
            "{\"a\":{\"b\":[{}]}}",
            "00",
            "+1",
            ".5",
            "1e",
            "[1,]",
            "{\"a\":1,}",
            "{,}",
            "[,1]",
            "\"\t\"",
            "truex",
            "\"\\u12\"",
            "\"\\ud83d\\u0041\"",
            "{\"a\"}",
            "[1 2]",
            "\u{feff}1",
        ] {
            assert_eq!(
                valid(text).is_ok(),
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn depth_is_bounded_without_overflowing_the_stack() {
        let deep = "[".repeat(100_000);
        assert!(matches!(valid(&deep), Err(JsonError::TooDeep(_))));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(valid(&ok).is_ok());
    }

    #[test]
    fn members_keep_raw_values_and_refuse_other_values() {
        let m = members(r#"{"a": {"x": [1]}, "b":"s"}"#).unwrap();
        assert_eq!(m, [("a", r#"{"x": [1]}"#), ("b", "\"s\"")]);
        assert_eq!(members("[1]"), Err(JsonError::NotAnObject));
        assert_eq!(members("{} x"), Err(JsonError::Trailing(3)));
        assert_eq!(check_object("{\"a\":[}"), Err(JsonError::UnexpectedChar(6)));
        assert!(check_object(" {\"a\" : 1 } ").is_ok());
    }

    #[test]
    fn unescape_decodes_every_escape_and_refuses_broken_ones() {
        assert_eq!(unescape(r#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"#).unwrap(), "a\"\\/\u{8}\u{c}\n\r\té😀");
        for broken in [r"\", r"\x", r"\u12", r"\ud83d", r"\ud83dx", r"\ud83d\u0041"] {
            assert_eq!(unescape(broken), None, "{broken}");
        }
    }

    #[test]
    fn writer_escapes_round_trip() {
        let original = "quote\" back\\ nl\n ctl\u{1} é 😀";
        let mut out = String::new();
        write_str(&mut out, original);
        assert_eq!(as_str(&out).unwrap(), original);
        assert_eq!(out, serde_json::to_string(original).unwrap());
        let mut n = String::new();
        write_u64(&mut n, 0);
        write_u64(&mut n, u64::MAX);
        assert_eq!(n, format!("0{}", u64::MAX));
    }
}
