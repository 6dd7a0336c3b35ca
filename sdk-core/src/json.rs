//! Minimal JSON reading and writing.
//!
//! Written by hand on purpose: the browser package links this crate, and `serde_json` alone
//! costs about 15 KB gzip, more than the whole package budget (see `shared/design.md`). The
//! core only needs to validate property objects, merge their top-level members, read the
//! server's small response body and its own persisted state, so a borrowing parser of a few
//! hundred lines is enough. Servers decode requests with `serde_json` behind the `decode`
//! feature instead.

use std::borrow::Cow;

/// Deepest nesting the parser accepts. Bounded so that hostile input (a page passing a
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

/// A parsed JSON value that borrows from its text where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, kept as its validated text so no precision is lost.
    Number(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Value<'a>>),
    /// An object's members in text order.
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The member `key` of an object (the last one, as most parsers do).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer number.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The items of an array.
    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The boolean inside a `Bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Parses a complete JSON text.
pub fn parse(text: &str) -> Result<Value<'_>, JsonError> {
    let mut p = Parser { text, pos: 0 };
    p.ws();
    let value = p.value(0)?;
    p.ws();
    if p.pos != text.len() {
        return Err(JsonError::Trailing(p.pos));
    }
    Ok(value)
}

/// Parses a JSON object and returns each member's key with the raw text of its value.
///
/// Used to merge property objects without re-encoding their values.
pub fn object_members(text: &str) -> Result<Vec<(Cow<'_, str>, &str)>, JsonError> {
    let mut p = Parser { text, pos: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(if p.pos >= text.len() {
            JsonError::UnexpectedEnd(p.pos)
        } else {
            JsonError::NotAnObject
        });
    }
    let mut members = Vec::new();
    p.pos += 1;
    p.ws();
    if p.peek() == Some(b'}') {
        p.pos += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            let start = p.pos;
            p.value(1)?;
            members.push((key, &text[start..p.pos]));
            p.ws();
            match p.next_byte()? {
                b',' => continue,
                b'}' => break,
                _ => return Err(JsonError::UnexpectedChar(p.pos - 1)),
            }
        }
    }
    p.ws();
    if p.pos != text.len() {
        return Err(JsonError::Trailing(p.pos));
    }
    Ok(members)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Result<u8, JsonError> {
        let b = self.peek().ok_or(JsonError::UnexpectedEnd(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), JsonError> {
        match self.next_byte()? {
            b if b == want => Ok(()),
            _ => Err(JsonError::UnexpectedChar(self.pos - 1)),
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.text.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(JsonError::UnexpectedChar(self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep(self.pos));
        }
        match self.peek().ok_or(JsonError::UnexpectedEnd(self.pos))? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    members.push((key, self.value(depth + 1)?));
                    self.ws();
                    match self.next_byte()? {
                        b',' => continue,
                        b'}' => return Ok(Value::Object(members)),
                        _ => return Err(JsonError::UnexpectedChar(self.pos - 1)),
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.next_byte()? {
                        b',' => continue,
                        b']' => return Ok(Value::Array(items)),
                        _ => return Err(JsonError::UnexpectedChar(self.pos - 1)),
                    }
                }
            }
            b'"' => Ok(Value::String(self.string()?)),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(JsonError::UnexpectedChar(self.pos)),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.text.as_bytes()[int_start] == b'0') {
            return Err(JsonError::InvalidNumber(start));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(JsonError::InvalidNumber(start));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError::InvalidNumber(start));
            }
        }
        Ok(Value::Number(&self.text[start..self.pos]))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let at = self.pos;
        let digits = self.text.get(self.pos..self.pos + 4).ok_or(JsonError::UnexpectedEnd(at))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JsonError::InvalidEscape(at));
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| JsonError::InvalidEscape(at))
    }

    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.pos;
        // Fast path: no escapes means the string borrows from the text.
        loop {
            match bytes.get(self.pos) {
                None => return Err(JsonError::UnexpectedEnd(self.pos)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
                }
                Some(b'\\') => break,
                Some(b) if *b < 0x20 => return Err(JsonError::UnexpectedChar(self.pos)),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            while let Some(&b) = bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.next_byte()? {
                b'"' => return Ok(Cow::Owned(out)),
                b'\\' => {
                    let at = self.pos - 1;
                    let c = match self.next_byte()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.text.as_bytes()[self.pos..].starts_with(b"\\u") {
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(JsonError::InvalidEscape(at));
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(JsonError::InvalidEscape(at));
                                }
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or(JsonError::InvalidEscape(at))?
                        }
                        _ => return Err(JsonError::InvalidEscape(at)),
                    };
                    out.push(c);
                }
                _ => return Err(JsonError::UnexpectedChar(self.pos - 1)),
            }
        }
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
    fn parses_nested_values_and_escapes() {
        let v = parse(r#" {"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\ud83d\ude00\n"} "#).unwrap();
        assert_eq!(v.get("a").unwrap().as_array().unwrap().len(), 4);
        assert_eq!(v.get("b").unwrap().as_str().unwrap(), "x\"é😀\n");
    }

    #[test]
    fn rejects_malformed_text_with_positions() {
        assert_eq!(parse("{\"a\":}"), Err(JsonError::UnexpectedChar(5)));
        assert_eq!(parse("[1,2"), Err(JsonError::UnexpectedEnd(4)));
        assert_eq!(parse("01"), Err(JsonError::InvalidNumber(0)));
        assert_eq!(parse("1 2"), Err(JsonError::Trailing(2)));
        assert_eq!(parse("\"\\ud800\""), Err(JsonError::InvalidEscape(1)));
        assert_eq!(parse("\"a\u{1}\""), Err(JsonError::UnexpectedChar(2)));
        assert!(matches!(parse("\"\\q\""), Err(JsonError::InvalidEscape(_))));
    }

    #[test]
    fn depth_is_bounded_without_overflowing_the_stack() {
        let deep = "[".repeat(100_000);
        assert!(matches!(parse(&deep), Err(JsonError::TooDeep(_))));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn object_members_keeps_raw_values() {
        let m = object_members(r#"{"a": {"x": [1]}, "b":"s"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], (Cow::Borrowed("a"), r#"{"x": [1]}"#));
        assert_eq!(m[1].1, "\"s\"");
        assert_eq!(object_members("[1]"), Err(JsonError::NotAnObject));
        assert_eq!(object_members("{} x"), Err(JsonError::Trailing(3)));
    }

    #[test]
    fn writer_escapes_round_trip() {
        let original = "quote\" back\\ nl\n ctl\u{1} é 😀";
        let mut out = String::new();
        write_str(&mut out, original);
        assert_eq!(parse(&out).unwrap().as_str().unwrap(), original);
        assert_eq!(out, serde_json::to_string(original).unwrap());
        let mut n = String::new();
        write_u64(&mut n, 0);
        write_u64(&mut n, u64::MAX);
        assert_eq!(n, format!("0{}", u64::MAX));
    }
}
